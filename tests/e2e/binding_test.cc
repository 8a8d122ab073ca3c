// End-to-end: sandboxes bound to their bridge ports (sandboxes[].ports).
//
// Three sandboxes share one bridge: `trusted` (sb1, 10.77.0.11) may reach
// api.example.test and UDP 5353 of the real upstream; `untrusted` (sb0,
// 10.77.0.10) may reach only slow.example.test; `agents` (sb2, 10.77.0.12)
// nothing. The victim goes quiet (drops its addresses, as a stopped VM
// would) and an attacker with root in its own sandbox takes over the
// victim's addresses the way one does on a LAN: configure them and announce
// them (gratuitous ARP, unsolicited neighbour advertisement), then use
// trusted's policy. With ports that gets nothing; without ports it works,
// which is the limit the README states and what keeps these probes honest.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "scenario.h"

namespace tollgate::e2e {
namespace {
using namespace std::chrono_literals;

constexpr const char* kVictim4 = "10.77.0.11";
constexpr const char* kVictim6 = "fd77::11";
constexpr int kUntrusted = 0;
constexpr int kVictim = 1;
constexpr int kUnbound = 2;

// `ports_prefix` is "" (bound) or "# " (ports commented out: not bound, and
// a reload that uncomments them binds).
Scenario::Options options(const std::string& ports_prefix) {
  Scenario::Options o;
  o.sandboxes = 3;
  o.agents_sources = "[10.77.0.12/32, \"fd77::12/128\"]";
  o.rules_yaml = "      - hosts: [denied.example.test]\n        action: deny\n";
  o.extra_sandboxes_yaml =
      "  - name: untrusted\n"
      "    sources: [10.77.0.10/32, \"fd77::10/128\"]\n" +
      std::string("    ") + ports_prefix +
      "ports: [sb0]\n"
      "    rules:\n"
      "      - hosts: [slow.example.test]\n"
      "        action: passthrough\n"
      "  - name: trusted\n"
      "    sources: [10.77.0.11/32, \"fd77::11/128\"]\n" +
      std::string("    ") + ports_prefix +
      "ports: [\"sb1*\"]\n"
      "    rules:\n"
      "      - hosts: [api.example.test, api6.example.test]\n"
      "        action: passthrough\n"
      "    udp:\n"
      "      - cidrs: [198.51.100.10/32]\n"
      "        ports: [5353]\n";
  return o;
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// curl from `sandbox` with source address `src`, no DNS involved.
harness::CommandResult curlFrom(const Scenario& s, int sandbox, const std::string& src,
                                const std::string& host, const std::string& ip) {
  const bool v6 = ip.find(':') != std::string::npos;
  return s.curl({"--max-time", "5", "--interface", src, "--resolve",
                 host + ":443:" + (v6 ? "[" + ip + "]" : ip), "https://" + host + "/"},
                sandbox);
}

std::string macOf(const Scenario& s, int sandbox) {
  auto r = s.inSandbox({"cat", "/sys/class/net/eth0/address"}, 5s, sandbox);
  return r.out.substr(0, r.out.find('\n'));
}

// The victim goes quiet; `attacker` configures its addresses and announces them.
void takeOver(const Scenario& s, int attacker) {
  ASSERT_EQ(
      s.inSandbox({"ip", "addr", "flush", "dev", "eth0", "scope", "global"}, 5s, kVictim).exit_code,
      0);
  ASSERT_EQ(
      s.inSandbox({"ip", "addr", "add", std::string(kVictim4) + "/24", "dev", "eth0"}, 5s, attacker)
          .exit_code,
      0);
  ASSERT_EQ(s.inSandbox(
                 {"ip", "-6", "addr", "add", std::string(kVictim6) + "/64", "dev", "eth0", "nodad"},
                 5s, attacker)
                .exit_code,
            0);
  // Past the host's neighbour-entry lock time (1 s), so an announcement
  // would be believed.
  std::this_thread::sleep_for(1200ms);
  for (const char* addr : {kVictim4, kVictim6}) {
    auto r = s.inSandbox(netprobe({"announce", "eth0", addr}), 5s, attacker);
    ASSERT_TRUE(has(r.out, "announced")) << r.out << r.err;
  }
}

struct Outcome {
  bool tcp4 = false;  // trusted's HTTPS over IPv4 worked from the attacker
  bool tcp6 = false;
  bool udp = false;  // a datagram from the victim's address reached trusted's UDP destination
  std::string detail;
};

Outcome attack(Scenario& s, int attacker, harness::Process* udp_server) {
  Outcome o;
  auto v4 = curlFrom(s, attacker, kVictim4, "api.example.test", kRealV4);
  auto v6 = curlFrom(s, attacker, kVictim6, "api6.example.test", kRealV6);
  o.tcp4 = has(v4.out, "hello from real");
  o.tcp6 = has(v6.out, "hello from real");
  const size_t before = udp_server->stdoutText().size();
  (void)s.inSandbox(netprobe({"spoof-udp", kVictim4, kRealV4, "5353"}), 5s, attacker);
  std::this_thread::sleep_for(300ms);
  o.udp = has(udp_server->stdoutText().substr(before), std::string("got ::ffff:") + kVictim4);
  o.detail = "v4: " + v4.out + v4.err + "\nv6: " + v6.out + v6.err +
             "\nudp server: " + udp_server->stdoutText() +
             "\nhost neighbours: " + s.inHost({"ip", "neigh"}).out;
  return o;
}

void expectNothingThrough(const Outcome& o) {
  EXPECT_FALSE(o.tcp4) << o.detail;
  EXPECT_FALSE(o.tcp6) << o.detail;
  EXPECT_FALSE(o.udp) << o.detail;
}

long counterOf(const Scenario& s, const std::string& family, const std::string& chain) {
  auto r = s.inHost({"nft", "list", "chain", family, "tollgate", chain});
  const std::string key = "counter packets ";
  size_t at = r.out.rfind(key);  // the chain's last rule: its drop
  return at == std::string::npos ? -1L : std::stol(r.out.substr(at + key.size()));
}

// Each sandbox works as its policy says, before any attack (positive controls).
void expectPoliciesWork(Scenario& s) {
  auto trusted = curlFrom(s, kVictim, kVictim4, "api.example.test", kRealV4);
  EXPECT_TRUE(has(trusted.out, "hello from real")) << trusted.out << trusted.err;
  auto trusted6 = curlFrom(s, kVictim, kVictim6, "api6.example.test", kRealV6);
  EXPECT_TRUE(has(trusted6.out, "hello from real")) << trusted6.out << trusted6.err;
  auto untrusted = curlFrom(s, kUntrusted, "10.77.0.10", "api.example.test", kRealV4);
  EXPECT_FALSE(has(untrusted.out, "hello from real")) << untrusted.out;
  auto own = curlFrom(s, kUntrusted, "10.77.0.10", "slow.example.test", kRealV4);
  EXPECT_TRUE(has(own.out, "hello from real")) << own.out << own.err;
}

TEST(BindingTest, AddressTakeoverFromABoundPortGetsNothing) {
  Scenario s(options(""));
  EXPECT_TRUE(has(s.gatewayStderr(), "sandboxes without ports (agents)")) << s.gatewayStderr();
  auto udp = serveNetprobe(s, s.topo().upstreamNs("real"), {"udp-echo-server", "::", "5353"});
  ASSERT_NE(udp, nullptr);
  expectPoliciesWork(s);
  const std::string attacker_mac = macOf(s, kUntrusted);
  const long port_drops = counterOf(s, "bridge", "port_untrusted");
  const long nd_drops = counterOf(s, "bridge", "nd_untrusted");

  takeOver(s, kUntrusted);
  Outcome o = attack(s, kUntrusted, udp.get());
  expectNothingThrough(o);
  // The host never learnt the attacker's MAC for the victim's addresses.
  for (const char* addr : {kVictim4, kVictim6}) {
    auto n = s.inHost({"ip", "neigh", "show", addr});
    EXPECT_FALSE(has(n.out, attacker_mac)) << addr << ": " << n.out;
  }
  // Dropped at the bridge port, and counted there.
  EXPECT_GT(counterOf(s, "bridge", "port_untrusted"), port_drops);
  EXPECT_GT(counterOf(s, "bridge", "nd_untrusted"), nd_drops);
  // The attacker's own address and policy still work.
  auto own = curlFrom(s, kUntrusted, "10.77.0.10", "slow.example.test", kRealV4);
  EXPECT_TRUE(has(own.out, "hello from real")) << own.out << own.err;
}

// A machine on a port no sandbox names (here sb2, of the unbound `agents`)
// cannot use a bound sandbox's addresses either: they count only when they
// come through that sandbox's ports.
TEST(BindingTest, AnUnboundPortCannotUseABoundSandboxsAddresses) {
  Scenario s(options(""));
  auto udp = serveNetprobe(s, s.topo().upstreamNs("real"), {"udp-echo-server", "::", "5353"});
  ASSERT_NE(udp, nullptr);
  const long from_drops = counterOf(s, "inet", "from_trusted");
  takeOver(s, kUnbound);
  Outcome o = attack(s, kUnbound, udp.get());
  expectNothingThrough(o);
  EXPECT_GT(counterOf(s, "inet", "from_trusted"), from_drops);
}

// Without ports the takeover works: tollgate warns about exactly this at
// start. Binding them with a reload closes it for new flows at once.
TEST(BindingTest, WithoutPortsATakeoverBorrowsThePolicyUntilAReloadBindsThem) {
  Scenario s(options("# "));
  EXPECT_TRUE(has(s.gatewayStderr(), "sandboxes without ports (untrusted, trusted, agents)"))
      << s.gatewayStderr();
  auto udp = serveNetprobe(s, s.topo().upstreamNs("real"), {"udp-echo-server", "::", "5353"});
  ASSERT_NE(udp, nullptr);
  expectPoliciesWork(s);
  takeOver(s, kUntrusted);
  Outcome before = attack(s, kUntrusted, udp.get());
  EXPECT_TRUE(before.tcp4) << before.detail;
  EXPECT_TRUE(before.tcp6) << before.detail;
  EXPECT_TRUE(before.udp) << before.detail;

  ASSERT_EQ(s.inHost({"sed", "-i", "s/# ports:/ports:/", s.configPath()}).exit_code, 0);
  auto rl = harness::runCommand(
      "", {TOLLGATE_BINARY, "reload", "--control", s.tmpDir() + "/control.sock"}, 10s);
  ASSERT_EQ(rl.exit_code, 0) << rl.out << rl.err << s.gatewayStderr();
  EXPECT_TRUE(has(s.gatewayStderr(), "port bindings replaced (2 sandboxes with ports)"))
      << s.gatewayStderr();
  // The binding drops before conntrack's verdicts count, so even the UDP
  // flow admitted before the reload carries nothing more.
  Outcome after = attack(s, kUntrusted, udp.get());
  expectNothingThrough(after);
  auto list = s.inHost({"nft", "list", "table", "bridge", "tollgate"});
  EXPECT_TRUE(has(list.out, "iifname \"sb1*\" counter")) << list.out;
}

constexpr const char* kMetricsAddr = "127.0.0.1:19465";
constexpr const char* kDropsLogged = "port binding dropped in the last 10 s: ";

std::string metricsText(const Scenario& s) {
  auto m = s.inHost(
      {"curl", "-sS", "--max-time", "5", std::string("http://") + kMetricsAddr + "/metrics"});
  EXPECT_EQ(m.exit_code, 0) << m.err;
  return m.out;
}

// tollgate_binding_drops_total{sandbox=SANDBOX,check=CHECK}, -1 when absent.
long dropsMetric(const std::string& text, const std::string& sandbox, const std::string& check) {
  const std::string series =
      "\ntollgate_binding_drops_total{sandbox=\"" + sandbox + "\",check=\"" + check + "\"} ";
  size_t at = text.find(series);
  return at == std::string::npos ? -1L : std::stol(text.substr(at + series.size()));
}

nlohmann::json status(const Scenario& s) {
  auto st = harness::runCommand(
      "", {TOLLGATE_BINARY, "status", "--control", s.tmpDir() + "/control.sock"}, 10s);
  EXPECT_EQ(st.exit_code, 0) << st.err;
  return nlohmann::json::parse(st.out, nullptr, false);
}

// The drops the warning lines reported, summed per "sandbox check".
std::map<std::string, long> loggedDrops(const std::string& log) {
  static const std::regex kEntry(R"(([A-Za-z0-9_.-]+: )?([a-z_]+) \+(\d+))");
  std::map<std::string, long> out;
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    size_t at = line.find(kDropsLogged);
    if (at == std::string::npos) {
      continue;
    }
    std::string list = line.substr(at + std::string(kDropsLogged).size());
    list = list.substr(0, list.find(" ("));
    std::string sandbox;
    for (std::sregex_iterator it(list.begin(), list.end(), kEntry), end; it != end; ++it) {
      if ((*it)[1].matched) {
        sandbox = (*it)[1].str().substr(0, (*it)[1].length() - 2);
      }
      out[sandbox + " " + (*it)[2].str()] += std::stol((*it)[3].str());
    }
  }
  return out;
}

// Every attempt is dropped and shows: per sandbox and check in the metrics
// and `tollgate status`, and in a warning line at the next periodic check;
// the totals survive a reload that replaces the tables (and their counters).
TEST(BindingTest, TakeoverAttemptsShowInMetricsStatusAndTheLog) {
  Scenario::Options o = options("");
  o.extra_gateway_yaml = std::string("  metrics: ") + kMetricsAddr + "\n";
  Scenario s(o);
  auto udp = serveNetprobe(s, s.topo().upstreamNs("real"), {"udp-echo-server", "::", "5353"});
  ASSERT_NE(udp, nullptr);
  std::string before = metricsText(s);
  for (const char* sandbox : {"untrusted", "trusted"}) {
    for (const char* check : {"source", "neighbour", "routed_source", "foreign_port"}) {
      EXPECT_EQ(dropsMetric(before, sandbox, check), 0) << sandbox << " " << check << "\n"
                                                        << before;
    }
  }
  EXPECT_EQ(dropsMetric(before, "agents", "source"), -1) << "agents has no ports";

  takeOver(s, kUntrusted);
  expectNothingThrough(attack(s, kUntrusted, udp.get()));
  // A machine on an unbound port using trusted's address.
  auto spoofed = s.inSandbox(netprobe({"spoof-udp", kVictim4, kRealV4, "5353"}), 5s, kUnbound);
  ASSERT_TRUE(has(spoofed.out, "sent")) << spoofed.out << spoofed.err;

  // The metrics show the kernel's counters: between two reads of them.
  const long port_low = counterOf(s, "bridge", "port_untrusted");
  const long nd_low = counterOf(s, "bridge", "nd_untrusted");
  const long from_low = counterOf(s, "inet", "from_trusted");
  std::string after = metricsText(s);
  const long source = dropsMetric(after, "untrusted", "source");
  const long neighbour = dropsMetric(after, "untrusted", "neighbour");
  const long foreign = dropsMetric(after, "trusted", "foreign_port");
  EXPECT_GT(port_low, 0);
  EXPECT_GT(nd_low, 0);
  EXPECT_GT(from_low, 0);
  EXPECT_GE(source, port_low) << after;
  EXPECT_LE(source, counterOf(s, "bridge", "port_untrusted")) << after;
  EXPECT_GE(neighbour, nd_low) << after;
  EXPECT_LE(neighbour, counterOf(s, "bridge", "nd_untrusted")) << after;
  EXPECT_GE(foreign, from_low) << after;
  EXPECT_LE(foreign, counterOf(s, "inet", "from_trusted")) << after;
  EXPECT_EQ(dropsMetric(after, "trusted", "source"), 0) << "the victim's port sent nothing foreign";

  nlohmann::json st = status(s);
  ASSERT_TRUE(st.contains("binding")) << st.dump(2);
  EXPECT_GE(st["binding"]["untrusted"]["source"].get<long>(), source) << st.dump(2);
  EXPECT_GE(st["binding"]["untrusted"]["neighbour"].get<long>(), neighbour) << st.dump(2);
  EXPECT_GE(st["binding"]["trusted"]["foreign_port"].get<long>(), foreign) << st.dump(2);
  EXPECT_EQ(st["binding"]["trusted"]["routed_source"], 0) << st.dump(2);
  EXPECT_FALSE(st["binding"].contains("agents")) << st.dump(2);

  // The periodic check (every 10 s) names each sandbox and check that grew.
  std::map<std::string, long> logged;
  for (int i = 0; i < 120; ++i) {
    logged = loggedDrops(s.gatewayStderr());
    if (logged["untrusted source"] >= port_low && logged["untrusted neighbour"] >= nd_low &&
        logged["trusted foreign_port"] >= from_low) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GE(logged["untrusted source"], port_low) << s.gatewayStderr();
  EXPECT_GE(logged["untrusted neighbour"], nd_low) << s.gatewayStderr();
  EXPECT_GE(logged["trusted foreign_port"], from_low) << s.gatewayStderr();
  EXPECT_EQ(logged.count("trusted source"), 0u) << s.gatewayStderr();
  EXPECT_EQ(logged.count("agents source"), 0u) << s.gatewayStderr();

  // A reload that changes trusted's ports replaces both tables, whose
  // counters start again from zero; the totals carry on.
  const long source_before_reload = dropsMetric(metricsText(s), "untrusted", "source");
  ASSERT_EQ(s.inHost({"sed", "-i", "s/\"sb1\\*\"/sb1/", s.configPath()}).exit_code, 0);
  auto rl = harness::runCommand(
      "", {TOLLGATE_BINARY, "reload", "--control", s.tmpDir() + "/control.sock"}, 10s);
  ASSERT_EQ(rl.exit_code, 0) << rl.out << rl.err << s.gatewayStderr();
  ASSERT_TRUE(has(s.gatewayStderr(), "port bindings replaced (2 sandboxes with ports)"))
      << s.gatewayStderr();
  EXPECT_LT(counterOf(s, "bridge", "port_untrusted"), port_low) << "the tables were not replaced";
  std::string reloaded = metricsText(s);
  EXPECT_GE(dropsMetric(reloaded, "untrusted", "source"), source_before_reload) << reloaded;
  EXPECT_GE(dropsMetric(reloaded, "trusted", "foreign_port"), foreign) << reloaded;
  EXPECT_GE(status(s)["binding"]["untrusted"]["neighbour"].get<long>(), neighbour);
}

// `capture: tproxy` needs br_netfilter off, so bridged traffic never meets
// table inet tollgate: frames from or to a bound sandbox's ports are still
// not switched to another port, and the binding holds as with redirect.
TEST(BindingTest, UnderTproxyNoLateralTrafficAndNoTakeover) {
  Scenario::Options o = options("");
  o.start_gateway = false;
  o.extra_gateway_yaml = "  capture: tproxy\n";
  Scenario s(o);
  for (const char* k :
       {"net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0"}) {
    ASSERT_EQ(s.inHost({"sysctl", "-qw", k}).exit_code, 0);
  }
  auto tcp =
      serveNetprobe(s, s.sandbox(kVictim), {"banner-server", "::", "8080", "lateral-banner"});
  auto udp = serveNetprobe(s, s.sandbox(kVictim), {"udp-echo-server", "::", "9999"});
  ASSERT_TRUE(tcp && udp);
  // The probes work while nothing isolates the ports.
  auto open = s.inSandbox(netprobe({"tcp", kVictim4, "8080"}), 10s, kUntrusted);
  ASSERT_TRUE(has(open.out, "lateral-banner")) << open.out << open.err;
  std::string err;
  ASSERT_TRUE(s.startGateway(&err)) << err;
  EXPECT_TRUE(has(s.gatewayStderr(), "sandboxes with ports are isolated regardless"))
      << s.gatewayStderr();
  for (int from : {kUntrusted, kUnbound}) {
    auto t4 = s.inSandbox(netprobe({"tcp", kVictim4, "8080"}), 10s, from);
    EXPECT_FALSE(has(t4.out, "lateral-banner")) << from << ": " << t4.out;
    auto t6 = s.inSandbox(netprobe({"tcp", kVictim6, "8080"}), 10s, from);
    EXPECT_FALSE(has(t6.out, "lateral-banner")) << from << ": " << t6.out;
    auto u = s.inSandbox(netprobe({"udp", kVictim4, "9999", "1"}), 10s, from);
    EXPECT_TRUE(has(u.out, "answered 0/1")) << from << ": " << u.out;
  }
  expectPoliciesWork(s);
  auto real_udp = serveNetprobe(s, s.topo().upstreamNs("real"), {"udp-echo-server", "::", "5353"});
  ASSERT_NE(real_udp, nullptr);
  takeOver(s, kUntrusted);
  Outcome o2 = attack(s, kUntrusted, real_udp.get());
  expectNothingThrough(o2);
}

}  // namespace
}  // namespace tollgate::e2e
