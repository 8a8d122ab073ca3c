// The NFQUEUE packet parser: packets built from parameters, every
// truncation refused, every byte of a valid packet set to every value
// without a crash, and the reason for each refusal pinned.
#include "nat/queued_packet.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <array>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace tollgate::nat {
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

std::vector<Bytes> validPackets() {
  return {ipv4(IPPROTO_UDP, udp(1, 2)),
          ipv4(IPPROTO_ICMP, icmp(8)),
          ipv4(IPPROTO_UDP, udp(1, 9), {10, 77, 0, 10}, {203, 0, 113, 5}, 0, 8),
          ipv6(IPPROTO_UDP, udp(1, 2)),
          ipv6(IPPROTO_ICMPV6, icmp(128)),
          ipv6(IPPROTO_UDP, udp(7, 53), {{0, Bytes(6, 0)}, {60, Bytes(14, 0)}, {44, Bytes(6, 0)}})};
}

// Every byte (the length and next-header bytes among them) set to every
// value: never a crash or an out-of-bounds read (ASan in CI), and whatever is
// accepted is UDP or ICMP(v6) echo with addresses of the packet's family.
TEST(ParseQueuedPacket, EveryByteSetToEveryValue) {
  for (const Bytes& full : validPackets()) {
    ASSERT_TRUE(parseQueuedPacket(full).ok());
    for (size_t i = 0; i < full.size(); ++i) {
      Bytes b = full;
      for (int v = 0; v < 256; ++v) {
        b[i] = static_cast<uint8_t>(v);
        auto p = parseQueuedPacket(b);
        if (!p) {
          EXPECT_FALSE(p.message().empty());
          continue;
        }
        const bool v4 = (b[0] >> 4) == 4;
        EXPECT_EQ(p->src.isV4(), v4) << i << "=" << v;
        EXPECT_EQ(p->dst.isV4(), v4) << i << "=" << v;
        EXPECT_TRUE(p->proto == IPPROTO_UDP || p->proto == IPPROTO_ICMP ||
                    p->proto == IPPROTO_ICMPV6)
            << i << "=" << v;
      }
    }
  }
}

// The refusal reasons are part of the debug log; they stay what they were.
TEST(ParseQueuedPacket, RefusalsNameWhy) {
  auto reason = [](const Bytes& b) {
    auto p = parseQueuedPacket(b);
    return p ? std::string("ok") : p.message();
  };
  EXPECT_EQ(reason(Bytes{}), "empty packet");
  EXPECT_EQ(reason(Bytes(60, 0x55)), "not IPv4 or IPv6");
  EXPECT_EQ(reason(Bytes(19, 0x45)), "truncated IPv4 header");
  Bytes v4 = ipv4(IPPROTO_UDP, udp(1, 2));
  v4[0] = 0x44;
  EXPECT_EQ(reason(v4), "bad IPv4 header length");
  v4[0] = 0x4f;
  EXPECT_EQ(reason(v4), "bad IPv4 header length");
  EXPECT_EQ(reason(ipv4(IPPROTO_UDP, udp(1, 2), {10, 77, 0, 10}, {1, 2, 3, 4}, 0x0010)),
            "IPv4 fragment");
  EXPECT_EQ(reason(ipv4(IPPROTO_TCP, udp(1, 2))), "not UDP or ICMP (protocol 6)");
  Bytes short_udp = ipv4(IPPROTO_UDP, udp(1, 2));
  short_udp.resize(27);
  EXPECT_EQ(reason(short_udp), "truncated UDP header");
  Bytes short_icmp = ipv4(IPPROTO_ICMP, icmp(8));
  short_icmp.resize(27);
  EXPECT_EQ(reason(short_icmp), "truncated ICMP header");
  EXPECT_EQ(reason(ipv4(IPPROTO_ICMP, icmp(0))), "ICMP type 0 is not an echo request");
  EXPECT_EQ(reason(Bytes(39, 0x60)), "truncated IPv6 header");
  Bytes hbh = ipv6(IPPROTO_UDP, udp(1, 2), {{0, Bytes(6, 0)}});
  hbh.resize(47);
  EXPECT_EQ(reason(hbh), "truncated IPv6 extension header");
  Bytes frag_short = ipv6(IPPROTO_UDP, udp(1, 2), {{44, Bytes(6, 0)}});
  frag_short.resize(47);
  EXPECT_EQ(reason(frag_short), "truncated IPv6 fragment header");
  Bytes frag(6, 0);
  frag[1] = 0x08;
  EXPECT_EQ(reason(ipv6(IPPROTO_UDP, udp(1, 2), {{44, frag}})), "IPv6 fragment");
  // An extension header whose length runs past the end of the packet.
  Bytes past = ipv6(IPPROTO_UDP, udp(1, 2), {{60, Bytes(6, 0)}});
  past[41] = 200;
  EXPECT_EQ(reason(past), "truncated UDP header");
  std::vector<std::pair<uint8_t, Bytes>> many(9, {60, Bytes(6, 0)});
  EXPECT_EQ(reason(ipv6(IPPROTO_UDP, udp(7, 53), many)), "too many IPv6 extension headers");
}

}  // namespace
}  // namespace tollgate::nat
