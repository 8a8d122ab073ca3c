// End-to-end: what operators see: Prometheus metrics, reload.
#include <gtest/gtest.h>
#include <signal.h>

#include <sstream>
#include <thread>

#include "scenario.h"

namespace tollgate::e2e {
namespace {
using namespace std::chrono_literals;

double metric(const std::string& text, const std::string& series) {
  auto p = text.find("\n" + series + " ");
  if (p == std::string::npos) {
    return -1;
  }
  return std::stod(text.substr(p + series.size() + 2));
}

TEST(OpsTest, MetricsOnLoopbackCountFlowsAndReloadsAndSandboxesCannotReachThem) {
  Scenario::Options o;
  o.extra_gateway_yaml = "  metrics: 127.0.0.1:19464\n";
  Scenario s(o);
  ASSERT_EQ(s.curl({"https://api.example.test/"}).exit_code, 0);
  EXPECT_NE(s.curl({"https://denied.example.test/"}).exit_code, 0);
  s.auditWhere("sni", "denied.example.test");
  s.gateway()->signal(SIGHUP);
  std::this_thread::sleep_for(300ms);
  auto m = s.inHost({"curl", "-sS", "--max-time", "5", "http://127.0.0.1:19464/metrics"});
  ASSERT_EQ(m.exit_code, 0) << m.err << s.gatewayStderr();
  EXPECT_GE(metric(m.out, "tollgate_flows_total"), 2) << m.out;
  EXPECT_GE(metric(m.out, "tollgate_decisions_total{action=\"passthrough\"}"), 1) << m.out;
  EXPECT_GE(metric(m.out, "tollgate_decisions_total{action=\"deny\"}"), 1) << m.out;
  EXPECT_GT(metric(m.out, "tollgate_bytes_total{direction=\"down\"}"), 500) << m.out;
  EXPECT_EQ(metric(m.out, "tollgate_reloads_total{result=\"ok\"}"), 1) << m.out;
  // From the sandbox, the metrics port on any gateway address is not a service.
  auto sb = s.inSandbox({"curl", "-sS", "--max-time", "3",
                         "http://" + s.topo().bridgeIp4() + ":19464/metrics"});
  EXPECT_EQ(sb.out.find("tollgate_flows_total"), std::string::npos) << sb.out;
}

TEST(OpsTest, MetricsOnANonLoopbackAddressRefusesToStart) {
  Scenario::Options o;
  o.start_gateway = false;
  o.extra_gateway_yaml = "  metrics: 10.77.0.1:19464\n";
  Scenario s(o);
  auto run = s.inHost({TOLLGATE_BINARY, "run", "--config", s.configPath()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("loopback"), std::string::npos) << run.err;
  EXPECT_NE(s.inHost({"nft", "list", "table", "inet", "tollgate"}).exit_code, 0)
      << "a refused start must not install anything";
}

TEST(OpsTest, TheDaemonCannotDumpCore) {
  Scenario s(Scenario::Options{});
  // The harness runs tollgate through `ip netns exec`-like setns in the
  // child itself, so the Process pid is tollgate's.
  auto limits = s.inHost({"cat", "/proc/" + std::to_string(s.gateway()->pid()) + "/limits"});
  ASSERT_EQ(limits.exit_code, 0) << limits.err;
  auto line = limits.out.substr(limits.out.find("Max core file size") + 18);
  line = line.substr(0, line.find('\n'));
  std::istringstream fields(line);
  std::string soft, hard;
  fields >> soft >> hard;
  // The hard limit too: nothing in the process can raise it again.
  EXPECT_EQ(soft, "0") << line;
  EXPECT_EQ(hard, "0") << line;
}

TEST(OpsTest, InvalidReloadKeepsTheRunningPolicy) {
  Scenario s(Scenario::Options{});
  // Break the file, reload: the running policy stays and keeps serving.
  ASSERT_EQ(s.inHost({"sh", "-c", "echo 'gateway: [' >> " + s.configPath()}).exit_code, 0);
  s.gateway()->signal(SIGHUP);
  std::this_thread::sleep_for(300ms);
  EXPECT_NE(s.gatewayStderr().find("reload refused"), std::string::npos) << s.gatewayStderr();
  EXPECT_EQ(s.curl({"https://api.example.test/"}).exit_code, 0);
  EXPECT_NE(s.curl({"https://denied.example.test/"}).exit_code, 0);
}

}  // namespace
}  // namespace tollgate::e2e
