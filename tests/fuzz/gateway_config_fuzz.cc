// libFuzzer target: parseConfig() over arbitrary bytes. It must never crash,
// hang or throw, every error must carry a position and a message, and any
// config it accepts must hold the invariants policy relies on.
// Seeds: tests/data/config/*.yaml.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/config.h"
#include "gateway/policy.h"

namespace tollgate::gateway {
namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

void checkInvariants(const Config& config) {
  check(!config.gateway.interfaces.empty());
  check(config.gateway.listen_port != 0);
  check(config.gateway.opaque_wait_ms <= config.gateway.peek_timeout_ms);
  check(!config.sandboxes.empty());
  for (size_t i = 0; i < config.sandboxes.size(); ++i) {
    const Sandbox& sb = config.sandboxes[i];
    check(!sb.name.empty() && !sb.sources.empty());
    for (size_t j = 0; j < i; ++j) {
      for (const Cidr& a : sb.sources) {
        for (const Cidr& b : config.sandboxes[j].sources) {
          check(!a.overlaps(b));
        }
      }
    }
    for (size_t r = 0; r < sb.rules.size(); ++r) {
      const Rule& rule = sb.rules[r];
      check(rule.index == r);
      check(!rule.hosts.empty() || !rule.cidrs.empty() || !rule.ports.empty());
      for (const HostPattern& p : rule.hosts) {
        check(!p.name.empty() && p.name.find('*') == std::string::npos);
      }
      for (const PortRange& pr : rule.ports) {
        check(pr.lo >= 1 && pr.lo <= pr.hi);
      }
      check(rule.credentials.empty() || rule.action == Action::Mitm);
      for (const std::string& name : rule.credentials) {
        check(config.credentials.count(name) == 1);
      }
    }
    for (const UdpRule& u : sb.udp) {
      check(!u.cidrs.empty() || !u.ports.empty());
    }
  }
  for (const auto& [name, cred] : config.credentials) {
    check(cred.name == name);
    check(cred.placeholder.size() >= 24);
    check(!cred.hosts.empty());
    check(cred.inject_header.empty() != cred.inject_query.empty());
    check(cred.format.find("{value}") != std::string::npos);
    for (const auto& [other_name, other] : config.credentials) {
      if (other_name != name) {
        check(other.placeholder.find(cred.placeholder) == std::string::npos);
      }
    }
  }
}

void exercisePolicy(const Config& config) {
  static const char* const kAddrs[] = {"10.77.0.5",   "192.0.2.1",          "203.0.113.5",
                                       "fd77::5",     "::ffff:10.77.0.5",   "169.254.169.254",
                                       "2001:db8::1", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::"};
  static const char* const kNames[] = {"", "api.openai.com", "a.github.com",
                                       "xn--bcher-kva.example", "192.0.2.1"};
  for (const char* s : kAddrs) {
    SockAddr src = *SockAddr::parseIp(s, 40000);
    for (const char* d : kAddrs) {
      SockAddr dst = *SockAddr::parseIp(d, 443);
      auto early = decideWithoutName(config, src, dst);
      for (const char* n : kNames) {
        std::optional<HostName> name;
        if (*n != '\0') {
          name = normalizeHostName(n);
        }
        Decision full = decide(config, FlowFacts{src, dst, name});
        if (early) {
          check(early->action == full.action && early->rule == full.rule);
        }
      }
      (void)decideUdp(config, src, dst);
      (void)checkUpstream(config, dst, {});
    }
  }
}

}  // namespace
}  // namespace tollgate::gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tollgate::gateway;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto result = parseConfig(text, "fuzz.yaml");
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&result)) {
    check(!errors->empty());
    for (const ConfigError& e : *errors) {
      check(e.line >= 1 && e.column >= 1 && !e.message.empty());
    }
    return 0;
  }
  const Config& config = std::get<Config>(result);
  checkInvariants(config);
  exercisePolicy(config);
  return 0;
}
