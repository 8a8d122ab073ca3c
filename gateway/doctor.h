// `tollgate doctor`: a read-only survey of the host tollgate runs on. This
// header is the pure half: the facts a probe collected (HostFacts), the rules
// that turn them into findings (evaluate), and the two renderings (a table
// for people, JSON for tools). gateway/doctor_probe.h collects the facts.
#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config.h"

namespace tollgate::gateway::doctor {

enum class Status { Pass, Warn, Fail };
std::string_view statusName(Status status);  // "pass" | "warn" | "fail"

// One line of the survey. `id` is stable (documented in README "tollgate
// doctor"; per-object findings carry the object: "interface:br0").
struct Finding {
  std::string id;
  Status status = Status::Pass;
  std::string detail;  // what was seen
  std::string fix;     // what to do; empty for a pass
};

// Where a credential's real value comes from (never the value itself).
struct CredentialRef {
  std::string name;
  CredentialSource::Kind kind = CredentialSource::Env;
  std::string ref;
};

// What evaluate() needs from the config (derived by summarize()).
struct ConfigSummary {
  std::vector<std::string> interfaces;
  CaptureMode capture = CaptureMode::Redirect;
  Ipv6Mode ipv6 = Ipv6Mode::Capture;
  OnExit on_exit = OnExit::Block;
  uint16_t listen_port = 15001;
  uint16_t dns_port = 15053;
  bool needs_ca = false;  // some rule has action: mitm
  bool has_udp = false;   // some sandbox admits UDP (NFQUEUE)
  std::string ca_cert;
  std::string ca_key;
  std::string control;
  std::optional<std::string> user;
  std::vector<CredentialRef> credentials;
  // Every sandbox by name with its sandboxes[].ports (empty: not bound).
  std::vector<std::pair<std::string, std::vector<std::string>>> sandbox_ports;
};
ConfigSummary summarize(const Config& config);

// An interface named in gateway.interfaces, as found on the host.
struct InterfaceFacts {
  std::string name;
  bool exists = false;
  bool up = false;
  bool is_bridge = false;
  std::vector<std::string> ipv4;          // addresses, no prefix
  std::vector<std::string> ipv6;          // global / ULA addresses (link-local left out)
  std::optional<int> rp_filter;           // net.ipv4.conf.<name>.rp_filter
  std::vector<std::string> bridge_ports;  // members of a bridge (/sys/class/net/<name>/brif)
};

// A base chain in some nftables table (hooked into the stack).
struct NftChain {
  std::string family;  // "ip", "ip6", "inet", "bridge", "arp", "netdev"
  std::string table;
  std::string name;
  std::string type;  // "filter", "nat", "route"
  std::string hook;  // "prerouting", "input", "forward", "output", "postrouting", ...
  int32_t priority = 0;
  bool policy_drop = false;
};

struct NftTable {
  std::string family;
  std::string name;
};

// One kernel config symbol: 'y' built in, 'm' module, 'n' not set; nullopt
// when the kernel config could not be read.
struct KernelSymbol {
  char state = 'n';
  bool module_loaded = false;     // 'm' only: in /proc/modules or /sys/module
  bool module_available = false;  // 'm' only: listed in /lib/modules/<release>/modules.dep
};

struct CaFacts {
  bool cert_exists = false;
  bool key_exists = false;
  std::optional<uint32_t> key_mode;  // st_mode & 07777
  std::optional<uint32_t> key_uid;
  std::optional<time_t> not_after;  // when the certificate could be parsed
  std::string load_error;           // ca::Authority::load's message; "" when it loaded
};

// A credential source as seen from here; secret values are never read.
struct CredentialFacts {
  CredentialRef source;
  // File: whether the file exists, and its mode. Credential: whether
  // $CREDENTIALS_DIRECTORY/NAME exists (only known when doctor runs inside
  // the service, e.g. as ExecStartPre).
  std::optional<bool> exists;
  std::optional<uint32_t> mode;
  // Credential, outside the service: the unit file or drop-in that has
  // LoadCredential[Encrypted]=NAME:... ("" when none does); nullopt when no
  // tollgate.service was found at all.
  std::optional<std::string> unit_line_in;
};

struct DaemonFacts {
  std::string control;
  bool socket_exists = false;
  bool answered = false;  // GET /status returned 200 with JSON
  bool refused = false;   // the socket file is there but nobody listens (a stopped daemon)
  std::string error;      // why not
};

// Everything the probe saw. A std::nullopt / empty error means "could not be
// read"; evaluate() says so rather than guessing.
struct HostFacts {
  time_t now = 0;
  uint32_t euid = 0;
  std::string kernel_release;

  std::string config_path;
  bool config_given = false;               // --config was passed (else the default path was tried)
  bool config_found = true;                // false: the (default) file does not exist
  std::vector<std::string> config_errors;  // FILE:LINE:COL: message
  std::optional<ConfigSummary> config;     // set when the config loaded

  std::optional<int> ip_forward;       // net.ipv4.ip_forward
  std::optional<int> ipv6_forwarding;  // net.ipv6.conf.all.forwarding
  std::optional<int> rp_filter_all;    // net.ipv4.conf.all.rp_filter
  bool br_netfilter = false;           // /proc/sys/net/bridge exists
  std::optional<int> bridge_nf_call_iptables;
  std::optional<int> bridge_nf_call_ip6tables;

  bool kernel_config_known = false;
  std::string kernel_config_source;            // "/proc/config.gz", "/boot/config-<release>"
  std::map<std::string, KernelSymbol> kernel;  // "CONFIG_NFT_TPROXY" -> state

  std::string nft_error;  // "" when the dump worked
  std::vector<NftTable> nft_tables;
  std::vector<NftChain> nft_chains;
  std::vector<std::string> legacy_iptables;  // /proc/net/ip{,6}_tables_names, as "ip filter"

  std::vector<InterfaceFacts> interfaces;    // one per configured interface
  std::optional<CaFacts> ca;                 // probed when a config loaded
  std::vector<CredentialFacts> credentials;  // one per credentials: entry
  std::optional<DaemonFacts> daemon;
};

// The kernel config symbols the probe reads, each with why tollgate wants it.
struct KernelNeed {
  std::string_view symbol;
  std::string_view purpose;
};
const std::vector<KernelNeed>& kernelSymbols();

// Pure: facts in, findings out, in a fixed order.
std::vector<Finding> evaluate(const HostFacts& facts);

// Exit status of `tollgate doctor`: 1 with `strict` when any finding fails,
// else 0.
int exitCode(const std::vector<Finding>& findings, bool strict);

// {"findings": [{"id","status","detail","fix"}...], "summary": {"pass","warn","fail"}}.
std::string renderJson(const std::vector<Finding>& findings);
// STATUS  ID  DETAIL, then "  fix: ..." under each non-pass finding, then a
// one-line summary.
std::string renderTable(const std::vector<Finding>& findings);

}  // namespace tollgate::gateway::doctor
