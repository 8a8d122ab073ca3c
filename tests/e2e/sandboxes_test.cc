// End-to-end: several sandboxes on one bridge get their own policy — TCP
// rules and DNS answers — chosen by source address. (Forged sources:
// AntiSpoofTest / BypassTest; the ARP-takeover limit is in the README.)
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "scenario.h"

namespace tollgate::e2e {
namespace {
using namespace std::chrono_literals;

const char* kDnsQuery = R"(
import socket, struct, sys
name = sys.argv[1]
q = b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\0'
msg = struct.pack('!HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0) + q + struct.pack('!HH', 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(msg, ('192.0.2.99', 53)); r, _ = s.recvfrom(4096)
print('rcode', r[3] & 15)
)";

TEST(SandboxesTest, EachSandboxGetsItsOwnRulesAndDnsAnswers) {
  Scenario::Options o;
  o.sandboxes = 2;
  // Sandbox 1 (10.77.0.11) is "restricted": only slow.example.test.
  o.agents_sources = "[10.77.0.10/32]";
  o.extra_sandboxes_yaml =
      "  - name: restricted\n"
      "    sources: [10.77.0.11/32]\n"
      "    default: deny\n"
      "    rules:\n"
      "      - hosts: [slow.example.test]\n"
      "        action: passthrough\n";
  Scenario s(o);
  ASSERT_EQ(s.topo().sandboxIp4(1), "10.77.0.11");
  // TCP policy.
  EXPECT_EQ(s.curl({"https://api.example.test/"}, 0).exit_code, 0);
  EXPECT_NE(s.curl({"https://api.example.test/"}, 1).exit_code, 0);
  EXPECT_EQ(s.curl({"https://slow.example.test/"}, 1).exit_code, 0);
  bool saw_agents = false, saw_restricted_deny = false;
  for (const auto& r : s.audit(3)) {
    if (r["event"] != "flow" || r["sni"] != "api.example.test") {
      continue;
    }
    if (r["sandbox"] == "agents" && r["action"] == "passthrough") {
      saw_agents = true;
    }
    if (r["sandbox"] == "restricted" && r["action"] == "deny") {
      saw_restricted_deny = true;
    }
  }
  EXPECT_TRUE(saw_agents);
  EXPECT_TRUE(saw_restricted_deny);
  // DNS policy follows the sandbox too.
  auto a = s.inSandbox({"python3", "-c", kDnsQuery, "static.example.test"}, 10s, 0);
  auto b = s.inSandbox({"python3", "-c", kDnsQuery, "static.example.test"}, 10s, 1);
  EXPECT_EQ(a.out, "rcode 0\n") << a.err;
  EXPECT_EQ(b.out, "rcode 5\n") << b.err;  // REFUSED: no rule of `restricted` names it
}

}  // namespace
}  // namespace tollgate::e2e
