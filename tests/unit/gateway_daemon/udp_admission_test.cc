// Pure parts of UDP / ICMP echo admission: the decision (policy + upstream
// checks) and the audit record. Parsing queued packets is tested in
// tests/unit/nat/queued_packet_test.cc.
#include "gateway/udp_admission.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>
#include <vector>

#include "gateway/audit.h"
#include "gateway/config.h"

namespace tollgate::gateway {
namespace {

const char* const kYaml = R"(gateway:
  interfaces: [br0]
sandboxes:
  - name: agents
    sources: [10.77.0.0/24, "fd77::/64"]
    default: passthrough
    rules:
      - name: ssh
        cidrs: [203.0.113.0/24]
        ports: [22]
        action: passthrough
      - name: no-attacker
        cidrs: [203.0.113.66/32]
        action: deny
      - hosts: [api.example.test]
        action: passthrough
    udp:
      - cidrs: [198.51.100.10/32]
        ports: [5353]
      - cidrs: ["2001:db8:100::/64", 169.254.169.254/32]
)";

Runtime runtime() {
  auto parsed = parseConfig(kYaml, "test.yaml");
  EXPECT_TRUE(std::holds_alternative<Config>(parsed));
  Runtime rt;
  rt.config = std::make_shared<const Config>(std::get<Config>(std::move(parsed)));
  rt.never_upstream = {*Cidr::parse("10.77.0.0/24")};
  return rt;
}

nat::QueuedPacket packet(uint8_t proto, const std::string& src, const std::string& dst) {
  nat::QueuedPacket p;
  p.proto = proto;
  p.src = *SockAddr::parseIpPort(src);
  p.dst = *SockAddr::parseIpPort(dst);
  return p;
}

TEST(DecideAdmission, UdpByEntries) {
  Runtime rt = runtime();
  auto d = decideAdmission(rt, packet(IPPROTO_UDP, "10.77.0.10:4000", "198.51.100.10:5353"));
  EXPECT_TRUE(d.admit);
  EXPECT_EQ(d.sandbox, "agents");
  EXPECT_EQ(d.reason, "rule");
  EXPECT_EQ(d.rule, "udp[0]");
  d = decideAdmission(rt, packet(IPPROTO_UDP, "10.77.0.10:4000", "198.51.100.10:5354"));
  EXPECT_FALSE(d.admit);
  EXPECT_EQ(d.reason, "default");  // the sandbox's passthrough default does not apply to UDP
  EXPECT_EQ(d.rule, "");
  d = decideAdmission(rt, packet(IPPROTO_UDP, "[fd77::10]:4000", "[2001:db8:100::99]:9"));
  EXPECT_TRUE(d.admit);
  EXPECT_EQ(d.rule, "udp[1]");
}

TEST(DecideAdmission, UpstreamChecksWinOverEntries) {
  Runtime rt = runtime();
  auto d = decideAdmission(rt, packet(IPPROTO_UDP, "10.77.0.10:4000", "169.254.169.254:123"));
  EXPECT_FALSE(d.admit);
  EXPECT_EQ(d.reason, "deny_cidr:169.254.0.0/16");
  EXPECT_EQ(d.rule, "udp[1]");
  d = decideAdmission(rt, packet(IPPROTO_ICMP, "10.77.0.10:0", "169.254.169.254:0"));
  EXPECT_FALSE(d.admit);
}

// The host itself is never admitted, even with deny_cidrs emptied and
// entries admitting everything.
TEST(DecideAdmission, HostItselfWhateverDenyCidrsSays) {
  auto parsed = parseConfig(R"(gateway:
  interfaces: [br0]
deny_cidrs: []
sandboxes:
  - name: agents
    sources: [10.77.0.0/24, "fd77::/64"]
    rules:
      - cidrs: [0.0.0.0/0, "::/0"]
        action: passthrough
    udp:
      - cidrs: [0.0.0.0/0, "::/0"]
)",
                            "test.yaml");
  ASSERT_TRUE(std::holds_alternative<Config>(parsed));
  Runtime rt;
  rt.config = std::make_shared<const Config>(std::get<Config>(std::move(parsed)));
  EXPECT_TRUE(decideAdmission(rt, packet(IPPROTO_UDP, "10.77.0.10:4000", "192.0.2.1:53")).admit);
  for (const char* dst : {"127.0.0.2:53", "0.0.0.0:53", "[::1]:53", "[::]:53",
                          "[::ffff:127.0.0.2]:53", "[64:ff9b::7f00:2]:53"}) {
    const uint8_t proto = dst[0] == '[' ? uint8_t{IPPROTO_ICMPV6} : uint8_t{IPPROTO_ICMP};
    for (uint8_t p : {uint8_t{IPPROTO_UDP}, proto}) {
      auto d = decideAdmission(rt, packet(p, "10.77.0.10:4000", dst));
      EXPECT_FALSE(d.admit) << dst << " " << int(p);
      EXPECT_EQ(d.reason.rfind("deny_cidr:", 0), 0u) << dst << " " << d.reason;
    }
  }
}

TEST(DecideAdmission, NoSandbox) {
  Runtime rt = runtime();
  auto d = decideAdmission(rt, packet(IPPROTO_UDP, "10.99.0.10:4000", "198.51.100.10:5353"));
  EXPECT_FALSE(d.admit);
  EXPECT_EQ(d.reason, "no_sandbox");
  EXPECT_EQ(d.sandbox, "");
}

TEST(DecideAdmission, EchoOnlyToCidrRules) {
  Runtime rt = runtime();
  auto d = decideAdmission(rt, packet(IPPROTO_ICMP, "10.77.0.10:0", "203.0.113.22:0"));
  EXPECT_TRUE(d.admit);
  EXPECT_EQ(d.rule, "ssh");  // ports do not apply to echo
  // The first cidr rule containing the address decides: 203.0.113.66 is in
  // the ssh rule's /24 first.
  d = decideAdmission(rt, packet(IPPROTO_ICMP, "10.77.0.10:0", "203.0.113.66:0"));
  EXPECT_TRUE(d.admit);
  EXPECT_EQ(d.rule, "ssh");
  // udp entries' cidrs admit echo too.
  d = decideAdmission(rt, packet(IPPROTO_ICMP, "10.77.0.10:0", "198.51.100.10:0"));
  EXPECT_TRUE(d.admit);
  EXPECT_EQ(d.rule, "udp[0]");
  d = decideAdmission(rt, packet(IPPROTO_ICMPV6, "[fd77::10]:0", "[2001:db8:100::1]:0"));
  EXPECT_TRUE(d.admit);
  // No address rule: denied although the sandbox default is passthrough.
  d = decideAdmission(rt, packet(IPPROTO_ICMP, "10.77.0.10:0", "192.0.2.1:0"));
  EXPECT_FALSE(d.admit);
  EXPECT_EQ(d.reason, "default");
  // Sandbox subnets are never a destination.
  d = decideAdmission(rt, packet(IPPROTO_ICMP, "10.77.0.10:0", "10.77.0.11:0"));
  EXPECT_FALSE(d.admit);
}

TEST(DecideAdmission, DenyCidrRuleDeniesEcho) {
  auto parsed = parseConfig(R"(gateway:
  interfaces: [br0]
sandboxes:
  - name: agents
    sources: [10.77.0.0/24]
    rules:
      - name: no-attacker
        cidrs: [203.0.113.66/32]
        action: deny
      - cidrs: [203.0.113.0/24]
        action: passthrough
)",
                            "t.yaml");
  ASSERT_TRUE(std::holds_alternative<Config>(parsed));
  Runtime rt;
  rt.config = std::make_shared<const Config>(std::get<Config>(std::move(parsed)));
  auto d = decideAdmission(rt, packet(IPPROTO_ICMP, "10.77.0.10:0", "203.0.113.66:0"));
  EXPECT_FALSE(d.admit);
  EXPECT_EQ(d.reason, "rule");
  EXPECT_EQ(d.rule, "no-attacker");
  d = decideAdmission(rt, packet(IPPROTO_ICMP, "10.77.0.10:0", "203.0.113.67:0"));
  EXPECT_TRUE(d.admit);
  EXPECT_EQ(d.rule, "1");
}

TEST(AdmissionRecord, IsAnUdpEventWithoutPortsForIcmp) {
  AdmissionDecision d{true, "agents", "rule", "udp[0]"};
  FlowRecord r = admissionRecord(packet(IPPROTO_UDP, "10.77.0.10:4000", "198.51.100.10:5353"), d);
  EXPECT_EQ(r.event, "udp");
  EXPECT_EQ(r.proto, "udp");
  EXPECT_EQ(r.src, "10.77.0.10:4000");
  EXPECT_EQ(r.dst, "198.51.100.10:5353");
  EXPECT_EQ(r.action, "passthrough");
  std::string line = formatRecord(r);
  EXPECT_NE(line.find("\"event\":\"udp\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"rule\":\"udp[0]\""), std::string::npos) << line;
  AdmissionDecision deny{false, "agents", "default", ""};
  FlowRecord e = admissionRecord(packet(IPPROTO_ICMPV6, "[fd77::10]:0", "[2001:db8::1]:0"), deny);
  EXPECT_EQ(e.proto, "icmpv6");
  EXPECT_EQ(e.dst, "2001:db8::1");
  EXPECT_EQ(e.action, "deny");
}

}  // namespace
}  // namespace tollgate::gateway
