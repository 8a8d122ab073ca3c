// End-to-end: `capture: tproxy` — TPROXY in the mangle prerouting hook, policy
// routing installed by tollgate, transparent listeners; original destination
// from getsockname. Same guarantees as redirect, IPv4 and IPv6.
#include <gtest/gtest.h>

#include "scenario.h"

namespace tollgate::e2e {
namespace {
using namespace std::chrono_literals;

std::unique_ptr<Scenario> tproxyScenario(const std::string& bridge_nf, const std::string& on_exit) {
  Scenario::Options o;
  o.start_gateway = false;
  o.on_exit = on_exit;
  o.extra_gateway_yaml = "  capture: tproxy\n";
  auto s = std::make_unique<Scenario>(o);
  // br_netfilter state of the gateway's namespace (Docker hosts: 1).
  s->inHost({"sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=" + bridge_nf,
             "net.bridge.bridge-nf-call-ip6tables=" + bridge_nf});
  return s;
}

TEST(TproxyTest, FlowsAreCapturedGovernedAndRoutedByName) {
  auto s = tproxyScenario("0", "open");
  std::string err;
  ASSERT_TRUE(s->startGateway(&err)) << err;
  auto ok = s->curl({"https://api.example.test/tp"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err << s->gatewayStderr();
  EXPECT_NE(ok.out.find("hello from real"), std::string::npos) << ok.out;
  auto rec = s->auditWhere("sni", "api.example.test");
  ASSERT_FALSE(rec.is_null());
  EXPECT_EQ(rec["dst"], std::string(kRealV4) + ":443") << "original destination via getsockname";
  EXPECT_EQ(rec["action"], "passthrough");
  // An allowed SNI aimed at the attacker still reaches the real host.
  auto spoof = s->curl({"--resolve", std::string("api.example.test:443:") + kAttackerV4,
                        "https://api.example.test/spoof"});
  ASSERT_EQ(spoof.exit_code, 0) << spoof.err;
  EXPECT_EQ(spoof.out.find("attacker"), std::string::npos) << spoof.out;
  // Denied hosts are refused; IPv6 is captured too.
  EXPECT_NE(s->curl({"https://denied.example.test/"}).exit_code, 0);
  auto v6 = s->curl({"-6", "https://api6.example.test/v6"});
  ASSERT_EQ(v6.exit_code, 0) << v6.err << s->gatewayStderr();
  auto rec6 = s->auditWhere("sni", "api6.example.test");
  EXPECT_EQ(rec6["dst"], std::string("[") + kRealV6 + "]:443");
  // Raw TCP to a destination no rule allows is reset, as with redirect (a
  // silent client that could only be refused is, at the 3 s peek deadline).
  auto raw = s->inSandbox({"python3", "-c",
                           "import socket\n"
                           "s=socket.create_connection(('203.0.113.66',8080),timeout=3)\n"
                           "s.settimeout(8)\n"
                           "try:\n print(len(s.recv(10)))\nexcept Exception as e:\n print(type(e).__name__)\n"});
  EXPECT_NE(raw.out.find("ConnectionResetError"), std::string::npos) << raw.out << raw.err;
  // The policy routing tollgate installed, and its removal at stop.
  auto rule = s->inHost({"ip", "rule", "show"});
  EXPECT_NE(rule.out.find("lookup 7467"), std::string::npos) << rule.out;
  EXPECT_EQ(s->stopGateway(), 0) << s->gatewayStderr();
  EXPECT_EQ(s->inHost({"ip", "rule", "show"}).out.find("lookup 7467"), std::string::npos);
  EXPECT_NE(s->inHost({"nft", "list", "table", "inet", "tollgate"}).exit_code, 0);
}

TEST(TproxyTest, RefusesToStartWhereBrNetfilterWouldMakeItFailSilently) {
  auto s = tproxyScenario("1", "block");
  auto run = s->inHost({TOLLGATE_BINARY, "run", "--config", s->configPath()}, 15s);
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_NE(run.err.find("net.bridge.bridge-nf-call-iptables"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(s->topo().bridge()), std::string::npos) << run.err;
  EXPECT_NE(s->inHost({"nft", "list", "table", "inet", "tollgate"}).exit_code, 0)
      << "a refused start installs nothing";
}

}  // namespace
}  // namespace tollgate::e2e
