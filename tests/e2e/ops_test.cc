// End-to-end: what operators see: Prometheus metrics, reload.
#include <gtest/gtest.h>
#include <signal.h>

#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

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

TEST(OpsTest, StatusAndReloadOverTheRootOnlyControlSocket) {
  Scenario s(Scenario::Options{});
  std::string sock = s.tmpDir() + "/control.sock";
  auto mode = s.inHost({"stat", "-c", "%a %U", sock});
  EXPECT_EQ(mode.out, "600 root\n") << mode.err;
  ASSERT_EQ(s.curl({"https://api.example.test/"}).exit_code, 0);
  ASSERT_FALSE(s.auditWhere("sni", "api.example.test").is_null());  // the flow has ended
  auto st = harness::runCommand("", {TOLLGATE_BINARY, "status", "--config", s.configPath()}, 10s);
  ASSERT_EQ(st.exit_code, 0) << st.err;
  auto j = nlohmann::json::parse(st.out);
  EXPECT_EQ(j["config"]["path"], s.configPath());
  EXPECT_EQ(j["config"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["capture"]["mode"], "redirect");
  EXPECT_TRUE(j["capture"]["queue"] == "native" || j["capture"]["queue"] == "compat") << j.dump(2);
  EXPECT_EQ(j["capture"]["interfaces"][0], s.topo().bridge());
  EXPECT_GE(j["counters"]["decision_passthrough"].get<int>(), 1);
  EXPECT_EQ(j["per_sandbox"]["agents"]["passthrough"], 1) << j.dump(2);
  EXPECT_GT(j["per_sandbox"]["agents"]["bytes_down"].get<int>(), 100) << j.dump(2);
  EXPECT_TRUE(j["ca"].is_null());
  // Policy change through `tollgate reload`: the denied host becomes allowed.
  ASSERT_NE(s.curl({"https://denied.example.test/"}).exit_code, 0);
  ASSERT_EQ(s.inHost({"sed", "-i",
                      "s/action: deny/action: passthrough/; "
                      "s/^    slow.example.test:/    denied.example.test: [198.51.100.10]\\n&/",
                      s.configPath()})
                .exit_code,
            0);
  auto rl = harness::runCommand("", {TOLLGATE_BINARY, "reload", "--control", sock}, 10s);
  EXPECT_EQ(rl.exit_code, 0) << rl.out << rl.err;
  auto now_allowed = s.curl({"https://denied.example.test/"});
  EXPECT_EQ(now_allowed.exit_code, 0) << now_allowed.err << rl.out << s.gatewayStderr()
                                       << s.inHost({"cat", s.configPath()}).out;
  auto after = nlohmann::json::parse(
      harness::runCommand("", {TOLLGATE_BINARY, "status", "--control", sock}, 10s).out);
  EXPECT_EQ(after["last_reload"]["ok"], true);
  EXPECT_NE(after["config"]["sha256"], j["config"]["sha256"]);
  // A reload that needs a restart is refused with the reason; exit 1.
  ASSERT_EQ(s.inHost({"sed", "-i", "s/listen_port: 15001/listen_port: 15002/", s.configPath()})
                .exit_code,
            0);
  auto bad = harness::runCommand("", {TOLLGATE_BINARY, "reload", "--control", sock}, 10s);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("need a restart"), std::string::npos) << bad.out;
  // Nothing listening: a clear error naming the socket.
  auto none = harness::runCommand(
      "", {TOLLGATE_BINARY, "status", "--control", s.tmpDir() + "/nope.sock"}, 10s);
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("nope.sock"), std::string::npos) << none.err;
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

TEST(OpsTest, ReloadUnderLoadFailsNoRequestAndKeepsOpenFlows) {
  Scenario s(Scenario::Options{});
  const TestPki& pki = testPki();
  // A client loops new HTTPS requests to an allowed host for 4 s while the
  // policy changes under it; a second client holds one slow download open
  // across the reload that denies its host.
  std::string loop = R"(
import ssl, socket, time, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
ok = fail = 0
end = time.time() + 4
while time.time() < end:
    try:
        s = ctx.wrap_socket(socket.create_connection(("api.example.test", 443), timeout=5), server_hostname="api.example.test")
        s.sendall(b"GET / HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
        if data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200"): ok += 1
        else: fail += 1
    except Exception as e:
        fail += 1
print(ok, fail)
)";
  std::string slow = R"(
import ssl, socket, time, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
s = ctx.wrap_socket(socket.create_connection(("slow.example.test", 443), timeout=10), server_hostname="slow.example.test")
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.sendall(b"GET /big/40000000 HTTP/1.1\r\nHost: slow.example.test\r\nConnection: close\r\n\r\n")
n = 0
while True:
    d = s.recv(65536)
    if not d: break
    if n == 0: print("receiving", flush=True)
    n += len(d)
    time.sleep(0.003)
print(n)
)";
  auto looping = s.topo().spawn(s.sandbox(), {"python3", "-c", loop, pki.ca_cert});
  auto holding = s.topo().spawn(s.sandbox(), {"python3", "-c", slow, pki.ca_cert});
  ASSERT_TRUE(looping) << looping.message();
  ASSERT_TRUE(holding) << holding.message();
  // The download must be decided (and flowing) before the reload: a fixed
  // sleep was too short when python's start-up alone took seconds.
  for (int i = 0; i < 400 && (*holding)->stdoutText().find("receiving") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_NE((*holding)->stdoutText().find("receiving"), std::string::npos)
      << (*holding)->stderrText();
  std::this_thread::sleep_for(500ms);  // the looping client is well under way too
  // slow.example.test goes from passthrough to deny; denied.example.test
  // from deny to passthrough.
  ASSERT_EQ(s.inHost({"sed", "-i",
                      "s/ slow.example.test,//; s/action: deny/action: passthrough/; "
                      "s/^    slow.example.test:/    denied.example.test: [198.51.100.10]\\n&/; "
                      "$ a\\      - hosts: [slow.example.test]\\n        action: deny",
                      s.configPath()})
                .exit_code,
            0);
  auto rl = harness::runCommand(
      "", {TOLLGATE_BINARY, "reload", "--control", s.tmpDir() + "/control.sock"}, 10s);
  ASSERT_EQ(rl.exit_code, 0) << rl.out << rl.err << s.inHost({"cat", s.configPath()}).out;
  ASSERT_TRUE((*holding)->running()) << "the download must span the reload";
  ASSERT_TRUE((*looping)->wait(20s));
  ASSERT_TRUE((*holding)->wait(60s));
  int ok = 0, fail = -1;
  ASSERT_EQ(sscanf((*looping)->stdoutText().c_str(), "%d %d", &ok, &fail), 2)
      << (*looping)->stdoutText() << (*looping)->stderrText();
  EXPECT_EQ(fail, 0) << "requests failed across the reload";
  EXPECT_GT(ok, 10);
  // The open flow kept its decision; new flows get the new one.
  long long got = 0;
  const std::string held = (*holding)->stdoutText();
  ASSERT_EQ(sscanf(held.c_str() + held.find('\n') + 1, "%lld", &got), 1)
      << held << (*holding)->stderrText();
  EXPECT_GT(got, 40000000) << "headers + the whole body";
  EXPECT_NE(s.curl({"https://slow.example.test/"}).exit_code, 0);
  EXPECT_EQ(s.curl({"https://denied.example.test/"}).exit_code, 0) << s.gatewayStderr();
}

}  // namespace
}  // namespace tollgate::e2e
