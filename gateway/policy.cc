#include "gateway/policy.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace tollgate::gateway {
namespace {

bool anyCidrContains(const std::vector<Cidr>& cidrs, const SockAddr& addr) {
  return std::any_of(cidrs.begin(), cidrs.end(), [&](const Cidr& c) { return c.contains(addr); });
}

bool anyPortAdmits(const std::vector<PortRange>& ports, uint16_t port) {
  return std::any_of(ports.begin(), ports.end(),
                     [&](const PortRange& r) { return r.contains(port); });
}

// The name-independent selectors of a rule (cidrs, ports) admit dst.
bool addressSelectorsMatch(const Rule& rule, const SockAddr& dst) {
  if (!rule.cidrs.empty() && !anyCidrContains(rule.cidrs, dst)) {
    return false;
  }
  if (!rule.ports.empty() && !anyPortAdmits(rule.ports, dst.port())) {
    return false;
  }
  return true;
}

Decision noSandbox() { return Decision{Action::Deny, "no_sandbox", nullptr, nullptr}; }

Decision byDefault(const Sandbox& sandbox) {
  return Decision{sandbox.default_action, "default", &sandbox, nullptr};
}

Decision byRule(const Sandbox& sandbox, const Rule& rule) {
  return Decision{rule.action, "rule", &sandbox, &rule};
}

SockAddr v4FromBytes(const uint8_t* b) {
  std::array<uint8_t, 4> copy = {b[0], b[1], b[2], b[3]};
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  std::memcpy(&sin.sin_addr, copy.data(), 4);
  return *SockAddr::fromSockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof(sin));
}

// RFC 4291 2.5.5.2 (mapped), 2.5.5.1 (compatible), RFC 6052 2.2 (NAT64 /96 and
// /48), RFC 3056 2 (6to4), RFC 4380 4 (Teredo).
std::vector<SockAddr> embeddedV4(const uint8_t* a) {
  std::vector<SockAddr> out;
  static constexpr uint8_t kZero[12] = {};
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static constexpr uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  static constexpr uint8_t kNat64Local[6] = {0, 0x64, 0xff, 0x9b, 0, 0x01};
  if (std::memcmp(a, kMapped, 12) == 0 || std::memcmp(a, kZero, 12) == 0 ||
      std::memcmp(a, kNat64, 12) == 0) {
    out.push_back(v4FromBytes(a + 12));
  }
  if (std::memcmp(a, kNat64Local, 6) == 0) {
    // /48 prefix: v4 octets at bytes 6, 7, then 9, 10 (byte 8 is the u octet).
    const uint8_t v4[4] = {a[6], a[7], a[9], a[10]};
    out.push_back(v4FromBytes(v4));
  }
  if (a[0] == 0x20 && a[1] == 0x02) {
    out.push_back(v4FromBytes(a + 2));
  }
  if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) {
    const uint8_t v4[4] = {static_cast<uint8_t>(~a[12]), static_cast<uint8_t>(~a[13]),
                           static_cast<uint8_t>(~a[14]), static_cast<uint8_t>(~a[15])};
    out.push_back(v4FromBytes(v4));
  }
  return out;
}

// The host itself, however spelled: "this network" (0.0.0.0 connects to the
// local host on Linux), loopback, and their IPv6 forms. Denied whatever
// deny_cidrs says (a custom list replaces the default one).
const std::vector<Cidr>& hostItself() {
  static const std::vector<Cidr> kHost = {*Cidr::parse("0.0.0.0/8"), *Cidr::parse("127.0.0.0/8"),
                                          *Cidr::parse("::/128"), *Cidr::parse("::1/128")};
  return kHost;
}

const Cidr* firstContaining(std::span<const Cidr> cidrs, const SockAddr& addr) {
  for (const Cidr& c : cidrs) {
    if (c.contains(addr)) {
      return &c;
    }
  }
  return nullptr;
}

}  // namespace

std::string Decision::ruleLabel() const { return rule != nullptr ? rule->label() : std::string(); }

bool ruleMatches(const Rule& rule, const SockAddr& dst, const std::optional<HostName>& name) {
  if (!rule.hosts.empty()) {
    if (!name || name->is_ip) {
      return false;
    }
    bool any = std::any_of(rule.hosts.begin(), rule.hosts.end(),
                           [&](const HostPattern& p) { return p.matches(*name); });
    if (!any) {
      return false;
    }
  }
  return addressSelectorsMatch(rule, dst);
}

const Sandbox* selectSandbox(const Config& config, const SockAddr& src) {
  for (const Sandbox& sandbox : config.sandboxes) {
    if (anyCidrContains(sandbox.sources, src)) {
      return &sandbox;
    }
  }
  return nullptr;
}

Decision decide(const Config& config, const FlowFacts& facts) {
  const Sandbox* sandbox = selectSandbox(config, facts.src);
  if (sandbox == nullptr) {
    return noSandbox();
  }
  for (const Rule& rule : sandbox->rules) {
    if (ruleMatches(rule, facts.dst, facts.name)) {
      return byRule(*sandbox, rule);
    }
  }
  return byDefault(*sandbox);
}

std::optional<Decision> decideWithoutName(const Config& config, const SockAddr& src,
                                          const SockAddr& dst) {
  const Sandbox* sandbox = selectSandbox(config, src);
  if (sandbox == nullptr) {
    return noSandbox();
  }
  for (const Rule& rule : sandbox->rules) {
    if (!addressSelectorsMatch(rule, dst)) {
      continue;  // cannot match whatever the name
    }
    if (!rule.hosts.empty()) {
      return std::nullopt;  // matches or not depending on the name
    }
    return byRule(*sandbox, rule);
  }
  return byDefault(*sandbox);
}

std::optional<Decision> decideSilentEarly(const Config& config, const SockAddr& src,
                                          const SockAddr& dst) {
  const Sandbox* sandbox = selectSandbox(config, src);
  if (sandbox == nullptr) {
    return std::nullopt;
  }
  for (const Rule& rule : sandbox->rules) {
    if (!addressSelectorsMatch(rule, dst)) {
      continue;
    }
    if (!rule.hosts.empty()) {
      if (rule.action != Action::Passthrough) {
        return std::nullopt;  // a name could still deny or inspect this flow
      }
      continue;
    }
    if (rule.action != Action::Passthrough) {
      return std::nullopt;
    }
    return byRule(*sandbox, rule);
  }
  if (sandbox->default_action != Action::Passthrough) {
    return std::nullopt;
  }
  return byDefault(*sandbox);
}

Decision decideUdp(const Config& config, const SockAddr& src, const SockAddr& dst,
                   size_t* entry) {
  const Sandbox* sandbox = selectSandbox(config, src);
  if (sandbox == nullptr) {
    return noSandbox();
  }
  for (size_t i = 0; i < sandbox->udp.size(); ++i) {
    const UdpRule& udp = sandbox->udp[i];
    if (udp.cidrs.empty() && udp.ports.empty()) {
      continue;  // rejected by the validator; never admit everything by accident
    }
    if ((udp.cidrs.empty() || anyCidrContains(udp.cidrs, dst)) &&
        (udp.ports.empty() || anyPortAdmits(udp.ports, dst.port()))) {
      if (entry != nullptr) {
        *entry = i;
      }
      return Decision{Action::Passthrough, "rule", sandbox, nullptr};
    }
  }
  return Decision{Action::Deny, "default", sandbox, nullptr};
}

Decision decideIcmp(const Config& config, const SockAddr& src, const SockAddr& dst,
                    size_t* udp_entry) {
  const Sandbox* sandbox = selectSandbox(config, src);
  if (sandbox == nullptr) {
    return noSandbox();
  }
  for (const Rule& rule : sandbox->rules) {
    if (!rule.hosts.empty() || rule.cidrs.empty() || !anyCidrContains(rule.cidrs, dst)) {
      continue;
    }
    Decision d = byRule(*sandbox, rule);
    if (d.action == Action::Mitm) {
      d.action = Action::Passthrough;  // nothing to terminate in an echo
    }
    return d;
  }
  for (size_t i = 0; i < sandbox->udp.size(); ++i) {
    const UdpRule& udp = sandbox->udp[i];
    if (!udp.cidrs.empty() && anyCidrContains(udp.cidrs, dst)) {
      if (udp_entry != nullptr) {
        *udp_entry = i;
      }
      return Decision{Action::Passthrough, "rule", sandbox, nullptr};
    }
  }
  return Decision{Action::Deny, "default", sandbox, nullptr};
}

bool nameMayBeAllowed(const Sandbox& sandbox, std::string_view normalized_name) {
  for (const Rule& rule : sandbox.rules) {
    // Rules without hosts govern addresses, not names: they do not make a
    // name answerable, or any name would be (and lookups an exfiltration
    // channel). Reaching such destinations by name needs `dns: open`.
    bool name_matches = std::any_of(rule.hosts.begin(), rule.hosts.end(),
                                    [&](const HostPattern& p) { return p.matches(normalized_name); });
    if (!name_matches) {
      continue;
    }
    if (rule.action != Action::Deny) {
      return true;  // some address/port of this name may take this rule
    }
    if (rule.cidrs.empty() && rule.ports.empty()) {
      return false;  // every flow to the name stops here
    }
  }
  return sandbox.default_action != Action::Deny;
}

bool resolvedWithinRule(const Rule& rule, const SockAddr& resolved) {
  if (rule.hosts.empty() || rule.cidrs.empty()) {
    return true;
  }
  return anyCidrContains(rule.cidrs, resolved);
}

std::vector<SockAddr> embeddedIpv4(const SockAddr& addr) {
  if (!addr.isV6()) {
    return {};
  }
  return embeddedV4(addr.addrBytes());
}

UpstreamVerdict checkUpstream(const Config& config, const SockAddr& addr,
                              std::span<const Cidr> extra) {
  if (!addr.isV4() && !addr.isV6()) {
    return UpstreamVerdict{true, "invalid_address", std::nullopt};
  }
  auto judge = [&](const SockAddr& a) -> const Cidr* {
    if (const Cidr* c = firstContaining(config.deny_cidrs, a)) {
      return c;
    }
    if (const Cidr* c = firstContaining(hostItself(), a)) {
      return c;
    }
    return firstContaining(extra, a);
  };
  if (const Cidr* c = judge(addr)) {
    return UpstreamVerdict{true, "deny_cidr:" + c->toString(), std::nullopt};
  }
  for (const SockAddr& v4 : embeddedIpv4(addr)) {
    if (const Cidr* c = judge(v4)) {
      return UpstreamVerdict{true, "deny_cidr:" + c->toString(), v4};
    }
  }
  return UpstreamVerdict{};
}

}  // namespace tollgate::gateway
