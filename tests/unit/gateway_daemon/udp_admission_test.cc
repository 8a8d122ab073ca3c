// Pure parts of UDP / ICMP echo admission: parsing queued packets (built from
// parameters, every truncation refused), the decision (policy + upstream
// checks) and the audit record.
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

using Bytes = std::vector<uint8_t>;

Bytes ipv4(uint8_t proto, Bytes l4, std::array<uint8_t, 4> src = {10, 77, 0, 10},
           std::array<uint8_t, 4> dst = {198, 51, 100, 10}, uint16_t frag = 0, size_t options = 0) {
  const size_t ihl = 20 + options;
  const size_t total = ihl + l4.size();
  Bytes p(ihl, 0);
  p[0] = static_cast<uint8_t>(0x40 | (ihl / 4));
  p[2] = static_cast<uint8_t>(total >> 8);
  p[3] = static_cast<uint8_t>(total);
  p[6] = static_cast<uint8_t>(frag >> 8);
  p[7] = static_cast<uint8_t>(frag);
  p[8] = 64;
  p[9] = proto;
  std::memcpy(&p[12], src.data(), 4);
  std::memcpy(&p[16], dst.data(), 4);
  p.insert(p.end(), l4.begin(), l4.end());
  return p;
}

// IPv6 from fd77::10 to 2001:db8:100::10, with optional extension headers
// given as (type, body of 6 + 8k bytes).
Bytes ipv6(uint8_t proto, Bytes l4, std::vector<std::pair<uint8_t, Bytes>> ext = {}) {
  Bytes p(40, 0);
  p[0] = 0x60;
  const uint8_t src[16] = {0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
  const uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
  std::memcpy(&p[8], src, 16);
  std::memcpy(&p[24], dst, 16);
  uint8_t* next = &p[6];
  Bytes tail;
  std::vector<size_t> next_at;
  for (auto& [type, body] : ext) {
    *next = type;
    Bytes h = {0, static_cast<uint8_t>((body.size() + 2) / 8 - 1)};
    h.insert(h.end(), body.begin(), body.end());
    const size_t at = p.size();
    p.insert(p.end(), h.begin(), h.end());
    next = &p[at];
  }
  *next = proto;
  p.insert(p.end(), l4.begin(), l4.end());
  return p;
}

Bytes udp(uint16_t sport, uint16_t dport) {
  return {static_cast<uint8_t>(sport >> 8),
          static_cast<uint8_t>(sport),
          static_cast<uint8_t>(dport >> 8),
          static_cast<uint8_t>(dport),
          0,
          12,
          0,
          0,
          'a',
          'b',
          'c',
          'd'};
}

Bytes icmp(uint8_t type) { return {type, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'}; }

TEST(ParseQueuedPacket, Ipv4Udp) {
  auto p = parseQueuedPacket(ipv4(IPPROTO_UDP, udp(40000, 5353)));
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ(p->proto, IPPROTO_UDP);
  EXPECT_EQ(p->src.toString(), "10.77.0.10:40000");
  EXPECT_EQ(p->dst.toString(), "198.51.100.10:5353");
}

TEST(ParseQueuedPacket, Ipv4WithOptions) {
  auto p = parseQueuedPacket(ipv4(IPPROTO_UDP, udp(1, 9), {10, 77, 0, 10}, {203, 0, 113, 5}, 0, 8));
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ(p->dst.toString(), "203.0.113.5:9");
}

TEST(ParseQueuedPacket, Ipv4EchoRequestOnly) {
  auto p = parseQueuedPacket(ipv4(IPPROTO_ICMP, icmp(8)));
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ(p->proto, IPPROTO_ICMP);
  EXPECT_EQ(p->dst.ip(), "198.51.100.10");
  EXPECT_EQ(p->dst.port(), 0);
  for (uint8_t type : {0, 3, 5, 11, 13, 17}) {
    EXPECT_FALSE(parseQueuedPacket(ipv4(IPPROTO_ICMP, icmp(type))).ok()) << int(type);
  }
}

TEST(ParseQueuedPacket, Ipv6UdpAndEcho) {
  auto u = parseQueuedPacket(ipv6(IPPROTO_UDP, udp(5000, 443)));
  ASSERT_TRUE(u.ok()) << u.message();
  EXPECT_EQ(u->src.toString(), "[fd77::10]:5000");
  EXPECT_EQ(u->dst.toString(), "[2001:db8:100::10]:443");
  auto e = parseQueuedPacket(ipv6(IPPROTO_ICMPV6, icmp(128)));
  ASSERT_TRUE(e.ok()) << e.message();
  EXPECT_EQ(e->proto, IPPROTO_ICMPV6);
  EXPECT_FALSE(parseQueuedPacket(ipv6(IPPROTO_ICMPV6, icmp(135))).ok());  // ND is not queued
  // ICMPv4 inside IPv6 (and the reverse) is refused.
  EXPECT_FALSE(parseQueuedPacket(ipv6(IPPROTO_ICMP, icmp(8))).ok());
  EXPECT_FALSE(parseQueuedPacket(ipv4(IPPROTO_ICMPV6, icmp(128))).ok());
}

TEST(ParseQueuedPacket, Ipv6ExtensionHeadersAreWalked) {
  auto p = parseQueuedPacket(
      ipv6(IPPROTO_UDP, udp(7, 53), {{0, Bytes(6, 0)}, {60, Bytes(14, 0)}, {44, Bytes(6, 0)}}));
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ(p->dst.port(), 53);
  // A non-first fragment has no transport header to judge.
  Bytes frag(6, 0);
  frag[1] = 0x08;  // offset 1 (8 bytes)
  EXPECT_FALSE(parseQueuedPacket(ipv6(IPPROTO_UDP, udp(7, 53), {{44, frag}})).ok());
  std::vector<std::pair<uint8_t, Bytes>> many(9, {60, Bytes(6, 0)});
  EXPECT_FALSE(parseQueuedPacket(ipv6(IPPROTO_UDP, udp(7, 53), many)).ok());
}

TEST(ParseQueuedPacket, EveryTruncationIsRefused) {
  for (const Bytes& full :
       {ipv4(IPPROTO_UDP, udp(1, 2)), ipv4(IPPROTO_ICMP, icmp(8)), ipv6(IPPROTO_UDP, udp(1, 2)),
        ipv6(IPPROTO_UDP, udp(1, 2), {{0, Bytes(14, 0)}})}) {
    ASSERT_TRUE(parseQueuedPacket(full).ok());
    // Up to the transport header's 8 bytes, every prefix is too short.
    for (size_t n = 0; n + 4 < full.size(); ++n) {
      auto r = parseQueuedPacket(std::span<const uint8_t>(full.data(), n));
      EXPECT_FALSE(r.ok()) << n;
    }
  }
}

TEST(ParseQueuedPacket, GarbageIsRefused) {
  EXPECT_FALSE(parseQueuedPacket(Bytes{}).ok());
  EXPECT_FALSE(parseQueuedPacket(Bytes(60, 0x55)).ok());  // version 5
  EXPECT_FALSE(parseQueuedPacket(ipv4(IPPROTO_TCP, udp(1, 2))).ok());
  EXPECT_FALSE(
      parseQueuedPacket(ipv4(IPPROTO_UDP, udp(1, 2), {10, 77, 0, 10}, {1, 2, 3, 4}, 0x0010)).ok());
  Bytes bad_ihl = ipv4(IPPROTO_UDP, udp(1, 2));
  bad_ihl[0] = 0x44;  // IHL 16 bytes < 20
  EXPECT_FALSE(parseQueuedPacket(bad_ihl).ok());
  bad_ihl[0] = 0x4f;  // IHL 60 bytes > packet
  EXPECT_FALSE(parseQueuedPacket(bad_ihl).ok());
  for (size_t i = 0; i < 4096; ++i) {  // never crashes on noise
    Bytes noise(i % 97);
    for (size_t j = 0; j < noise.size(); ++j) {
      noise[j] = static_cast<uint8_t>((i * 131 + j * 17) ^ (j << 3));
    }
    (void)parseQueuedPacket(noise);
  }
}

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

QueuedPacket packet(uint8_t proto, const std::string& src, const std::string& dst) {
  QueuedPacket p;
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
