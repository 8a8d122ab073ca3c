// The tollgate configuration: the data model of DESIGN.md "Config (YAML) —
// the contract" and its loader/validator. Pure: parseConfig() touches no
// files; loadConfig() reads exactly one. Secret values are never read here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/sockaddr.h"
#include "gateway/cidr.h"
#include "gateway/host_pattern.h"

namespace tollgate::gateway {

enum class Action { Passthrough, Deny, Mitm };
// "passthrough" | "deny" | "mitm".
std::string_view actionName(Action action);

// Inclusive destination port range; config accepts 443 or "8000-8100".
struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 0;
  bool contains(uint16_t port) const { return port >= lo && port <= hi; }
  std::string toString() const;  // "443" or "8000-8100"
  bool operator==(const PortRange& o) const = default;
};

struct Rule {
  size_t index = 0;  // 0-based position in the sandbox's `rules:` list
  std::string name;  // optional `name:` key, else ""
  std::vector<HostPattern> hosts;
  std::vector<Cidr> cidrs;
  std::vector<PortRange> ports;
  Action action = Action::Deny;
  std::vector<std::string> credentials;  // names of Config::credentials (mitm rules only)

  // The name if set, else the index as decimal ("0", "1", ...): what audit
  // records carry in `rule`.
  std::string label() const;
};

// One `udp:` entry: datagrams to a destination in `cidrs` (any, if empty) and
// a port in `ports` (any, if empty) are admitted. At least one is non-empty.
struct UdpRule {
  std::vector<Cidr> cidrs;
  std::vector<PortRange> ports;
};

enum class DnsMode { Policy, Open };

struct Sandbox {
  std::string name;
  std::vector<Cidr> sources;
  Action default_action = Action::Deny;
  std::vector<Rule> rules;
  DnsMode dns = DnsMode::Policy;
  std::vector<UdpRule> udp;
  // Interfaces its machines attach through (bridge ports such as taps or
  // veths, or routed interfaces), an nft-style trailing '*' for a prefix.
  // Non-empty: its sources are accepted only from these ports and these
  // ports may send only its sources (nat::PortBinding).
  std::vector<std::string> ports;
  // Overrides of gateway.max_flows_per_sandbox / max_mitm_flows_per_sandbox.
  std::optional<uint32_t> max_flows;
  std::optional<uint32_t> max_mitm_flows;
};

struct CredentialSource {
  // Env: an environment variable; File: an absolute path; Credential: a
  // systemd credential (LoadCredential=), read from $CREDENTIALS_DIRECTORY/ref.
  enum Kind { Env, File, Credential } kind = Env;
  std::string ref;  // variable name, absolute file path, or plain file name (no '/')
};

struct Credential {
  std::string name;
  CredentialSource source;
  std::string placeholder;  // >= 24 chars of [A-Za-z0-9._~-]; unique, no substring of another
  std::vector<HostPattern> hosts;  // non-empty: the only hosts the value may go to
  std::string inject_header;       // exactly one of inject_header / inject_query is set
  std::string inject_query;
  std::string format = "{value}";  // contains "{value}" exactly once
};

enum class CaptureMode { Redirect, Tproxy };
enum class Ipv6Mode { Capture, Block };
enum class OnExit { Block, Open };
enum class DenyStyle { TlsAlert, Http403 };
// Key type of the one key pair every minted leaf shares (MITM, http-403).
enum class LeafKey { EcdsaP256, Rsa2048 };

struct GatewayConfig {
  std::vector<std::string> interfaces;  // non-empty, unique, valid Linux interface names
  CaptureMode capture = CaptureMode::Redirect;
  uint16_t listen_port = 15001;  // never 0, never 53
  uint16_t dns_port = 15053;     // where sandbox DNS (port 53) is redirected; != listen_port
  Ipv6Mode ipv6 = Ipv6Mode::Capture;
  std::string state_dir = "/var/lib/tollgate";
  std::string ca_cert;                 // default state_dir + "/ca.crt"
  std::string ca_key;                  // default state_dir + "/ca.key"
  std::string upstream_ca = "system";  // "system" or an absolute PEM bundle path
  bool resolvers_system = true;
  std::vector<SockAddr> resolvers;  // set when !resolvers_system; port 53 unless given
  std::map<std::string, std::vector<SockAddr>> static_hosts;  // keys canonical (A-labels); port 0
  std::string audit_log = "-";                                // "-" (stdout) or an absolute path
  std::string metrics;  // "" (off), "IP:PORT" or "unix:/abs/path"
  std::string control = "/run/tollgate/control.sock";
  std::optional<std::string> user;
  OnExit on_exit = OnExit::Block;
  uint32_t peek_timeout_ms = 3000;  // 10..60000
  uint32_t opaque_wait_ms = 300;    // 0..peek_timeout_ms
  DenyStyle deny_style = DenyStyle::TlsAlert;
  LeafKey leaf_key = LeafKey::EcdsaP256;  // rsa-2048 for clients that need RSA
  // Per sandbox (sandboxes[].max_flows / max_mitm_flows override): concurrent
  // TCP flows, and concurrent MITM sessions among them. Beyond: refused.
  uint32_t max_flows_per_sandbox = 1024;
  uint32_t max_mitm_flows_per_sandbox = 64;
  // A relayed flow that moved no byte either way for this long is closed; 0: never.
  uint32_t idle_timeout_s = 3600;
  // deny_style: http-403: leaves minted per sandbox and minute (bucket of
  // as many); beyond it denials get the TLS alert. 0: always the alert.
  uint32_t deny_leaves_per_minute = 60;
};

struct Config {
  std::string path;
  GatewayConfig gateway;
  std::vector<Cidr> deny_cidrs;  // `default` expanded (defaultDenyCidrs())
  std::vector<Sandbox> sandboxes;
  std::map<std::string, Credential> credentials;
};

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when the error is about the file as a whole
  int column = 0;  // 1-based; 0 when the error is about the file as a whole
  std::string message;
  // "FILE:LINE:COL: message".
  std::string toString() const;
};

// Parses and validates a config document. `path` is only used to name the
// file in errors and is stored in Config::path. On failure returns every
// error found (capped at a few hundred), each with the 1-based line and
// column of the offending YAML node. Never throws.
std::variant<Config, std::vector<ConfigError>> parseConfig(std::string_view yaml_text,
                                                           const std::string& path);
// Reads `path` (at most 16 MiB) and parses it. An unreadable file yields one
// error "FILE:0:0: cannot read: <strerror>".
std::variant<Config, std::vector<ConfigError>> loadConfig(const std::string& path);

// With several sandboxes, those without sandboxes[].ports can have their
// addresses taken over on a shared bridge: what to tell the operator, or
// nothing when every sandbox is bound (or there is only one).
std::optional<std::string> unboundSandboxesWarning(const Config& config);

// Every key the loader accepts, as dotted paths in document order of the
// loader's tables: "gateway", "gateway.listen_port", "gateway.ca.cert",
// "sandboxes[].rules[].hosts", "credentials.NAME.source.env", ... (maps whose
// keys are user-chosen names, static_hosts and credentials, appear once, the
// latter with NAME standing for the name). docs/config.md documents exactly
// these; a unit test keeps the two in step.
std::vector<std::string> knownConfigKeys();

// DESIGN.md "Default deny_cidrs", IPv4 first, in the documented order.
std::vector<Cidr> defaultDenyCidrs();

}  // namespace tollgate::gateway
