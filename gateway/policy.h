// The policy engine: pure functions from flow facts and a Config to a
// decision. No I/O, no clocks, no allocation beyond the returned strings.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/hostname.h"
#include "base/sockaddr.h"
#include "gateway/cidr.h"
#include "gateway/config.h"

namespace tollgate::gateway {

struct FlowFacts {
  SockAddr src;                       // the sandbox end of the flow
  SockAddr dst;                       // original destination (address and port)
  std::optional<HostName> name;       // normalized SNI / Host, if any
};

struct Decision {
  Action action = Action::Deny;
  std::string reason;  // "rule" | "default" | "no_sandbox"
  // Both point into the Config passed to decide(); valid while it lives.
  const Sandbox* sandbox = nullptr;
  const Rule* rule = nullptr;
  // Rule::label() of the matching rule, "" when no rule matched.
  std::string ruleLabel() const;
};

// True when every selector the rule has matches: hosts (needs a name that is
// not an IP literal), cidrs (against dst), ports (against dst.port()).
bool ruleMatches(const Rule& rule, const SockAddr& dst, const std::optional<HostName>& name);

// The first sandbox whose sources contain src, or nullptr.
const Sandbox* selectSandbox(const Config& config, const SockAddr& src);

// First matching rule of the sandbox wins, else the sandbox default.
// No sandbox for src: Deny with reason "no_sandbox".
Decision decide(const Config& config, const FlowFacts& facts);

// The decision for a flow whose name is not known yet, if and only if no
// name could change it: rules are walked in order; a rule with hosts that
// could still match (its ports and cidrs, if any, admit dst) → nullopt (the
// caller must peek for a name); a name-less rule that matches → its decision;
// the end → the sandbox default. No sandbox → Deny "no_sandbox". Used to
// serve server-speaks-first protocols at accept time.
std::optional<Decision> decideWithoutName(const Config& config, const SockAddr& src,
                                          const SockAddr& dst);

// For a flow whose client has sent nothing for opaque_wait_ms: the decision
// to act on now, if and only if it lets the flow through (passthrough by a
// name-less rule or the default; the server-speaks-first case) and no name
// could still turn it into something else (no earlier hosts rule admitting dst
// denies or inspects). Otherwise nullopt: a refusal, or a decision a late
// ClientHello could change, waits for the full peek_timeout_ms.
std::optional<Decision> decideSilentEarly(const Config& config, const SockAddr& src,
                                          const SockAddr& dst);

// UDP admission (NFQUEUE): Passthrough with reason "rule" (Decision::rule
// stays nullptr; no Rule object exists for udp entries) when a `udp:` entry
// of the sandbox admits dst, else Deny "default"; no sandbox → Deny
// "no_sandbox". The caller still applies checkUpstream() to admitted flows.
// `entry`, if given, receives the index of the admitting `udp:` entry.
Decision decideUdp(const Config& config, const SockAddr& src, const SockAddr& dst,
                   size_t* entry = nullptr);

// ICMP(v6) echo admission (NFQUEUE): echo has no name and no port, so only
// address rules count. The first `rules:` entry without hosts whose cidrs
// contain dst decides (deny rule: Deny "rule"; otherwise Passthrough "rule",
// Decision::rule set); else a `udp:` entry with cidrs containing dst admits
// (Passthrough "rule", `*udp_entry` set when given); else Deny "default" —
// the sandbox default is not applied, so `default: passthrough` does not
// open ping to everywhere. No sandbox → Deny "no_sandbox".
Decision decideIcmp(const Config& config, const SockAddr& src, const SockAddr& dst,
                    size_t* udp_entry = nullptr);

// For `dns: policy`: could some flow to `normalized_name` be allowed
// (passthrough or mitm) in this sandbox by a rule that names it? Only rules
// with `hosts:` count (cidrs/ports-only rules govern addresses, and counting
// them would make every name answerable). False when a deny rule catching all
// flows to the name comes first, or no non-deny hosts rule matches it and the
// default is deny.
bool nameMayBeAllowed(const Sandbox& sandbox, std::string_view normalized_name);

// A rule with both hosts and cidrs judged the sandbox's chosen destination;
// tollgate then connects to what the name resolves to, which must be inside
// the rule's cidrs as well (else a name the rule allows, pointed elsewhere by
// DNS or static_hosts, would leave the ranges the rule names). True when the
// rule lacks hosts or cidrs (nothing more to check) or a cidr contains
// `resolved`; false means refuse with kResolvedOutsideRuleCidrs.
bool resolvedWithinRule(const Rule& rule, const SockAddr& resolved);
inline constexpr std::string_view kResolvedOutsideRuleCidrs = "resolved_outside_rule_cidrs";

struct UpstreamVerdict {
  bool denied = false;
  // "" when allowed; "deny_cidr:<cidr>" naming the matched prefix (from
  // deny_cidrs, the host itself or `extra`), "invalid_address" for a non-IP address.
  std::string reason;
  // When the match was on an IPv4 address embedded in IPv6 (compatible,
  // NAT64, 6to4, Teredo), that IPv4 address. (IPv4-mapped addresses are
  // IPv4 addresses to Cidr::contains() and match directly.)
  std::optional<SockAddr> embedded_v4;
};

// Judges an address tollgate is about to connect to, after resolution:
// denied when it is inside deny_cidrs, the host itself (0.0.0.0/8,
// 127.0.0.0/8, ::/128, ::1/128: always, whatever deny_cidrs says) or `extra`
// (tollgate's own addresses, sandbox subnets), or when an IPv4 address it
// embeds is: ::ffff:0:0/96,
// IPv4-compatible ::/96, 64:ff9b::/96 (last 32 bits), 64:ff9b:1::/48 (RFC
// 6052 /48 layout), 2002::/16 6to4 (bits 16-47), Teredo 2001::/32 (client
// address = last 32 bits XOR 0xffffffff).
UpstreamVerdict checkUpstream(const Config& config, const SockAddr& addr,
                              std::span<const Cidr> extra);

// The IPv4 addresses embedded in an IPv6 address by the schemes above (none
// for IPv4 input), in the order listed. Exposed for tests and diagnostics.
std::vector<SockAddr> embeddedIpv4(const SockAddr& addr);

}  // namespace tollgate::gateway
