#include "nat/queued_packet.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "base/reader.h"

namespace tollgate::nat {
namespace {

constexpr size_t kIpv4MinHeader = 20;
constexpr size_t kIpv6Header = 40;
// UDP header; for ICMP(v6) echo: type, code, checksum, identifier, sequence.
constexpr size_t kTransportHeader = 8;
// Every IPv6 extension header is a multiple of 8 octets (RFC 8200 4.3).
constexpr size_t kExtensionUnit = 8;

// IPv6 extension headers walked to find the transport header (RFC 8200 4.1).
constexpr uint8_t kHopByHop = 0;
constexpr uint8_t kRouting = 43;
constexpr uint8_t kFragment = 44;
constexpr uint8_t kDestOpts = 60;
constexpr int kMaxExtensionHeaders = 8;

constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kIcmpv6EchoRequest = 128;

SockAddr addrFrom(int family, std::span<const uint8_t> bytes, uint16_t port) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, bytes.data(), text, sizeof(text));
  return *SockAddr::parseIp(text, port);
}

// The transport header `r` starts at: ports for UDP, the type for ICMP.
Result<QueuedPacket> transport(Reader r, uint8_t proto, int family, std::span<const uint8_t> src,
                               std::span<const uint8_t> dst) {
  QueuedPacket out;
  out.proto = proto;
  if (proto == IPPROTO_UDP) {
    uint16_t sport = 0;
    uint16_t dport = 0;
    if (r.remaining() < kTransportHeader || !r.u16(sport) || !r.u16(dport)) {
      return makeError("truncated UDP header");
    }
    out.src = addrFrom(family, src, sport);
    out.dst = addrFrom(family, dst, dport);
    return out;
  }
  const bool icmp4 = proto == IPPROTO_ICMP && family == AF_INET;
  const bool icmp6 = proto == IPPROTO_ICMPV6 && family == AF_INET6;
  if (!icmp4 && !icmp6) {
    return makeError("not UDP or ICMP (protocol " + std::to_string(proto) + ")");
  }
  if (r.remaining() < kTransportHeader || !r.u8(out.icmp_type)) {
    return makeError("truncated ICMP header");
  }
  if (out.icmp_type != (icmp4 ? kIcmpEchoRequest : kIcmpv6EchoRequest)) {
    return makeError("ICMP type " + std::to_string(out.icmp_type) + " is not an echo request");
  }
  out.src = addrFrom(family, src, 0);
  out.dst = addrFrom(family, dst, 0);
  return out;
}

// RFC 791. `r` is at the start of the packet.
Result<QueuedPacket> ipv4(Reader r) {
  std::span<const uint8_t> fixed;
  if (!r.bytes(kIpv4MinHeader, fixed)) {
    return makeError("truncated IPv4 header");
  }
  Reader h(fixed);
  uint8_t version_ihl = 0;
  uint16_t flags_fragment = 0;
  uint8_t proto = 0;
  std::span<const uint8_t> src;
  std::span<const uint8_t> dst;
  // Cannot fail: `fixed` holds all 20 bytes these read.
  (void)(h.u8(version_ihl) && h.skip(5) && h.u16(flags_fragment) && h.skip(1) && h.u8(proto) &&
         h.skip(2) && h.bytes(4, src) && h.bytes(4, dst));
  // IHL in 32-bit words, at least 5; options are skipped.
  const size_t ihl = static_cast<size_t>(version_ihl & 0x0f) * 4;
  if (ihl < kIpv4MinHeader || !r.skip(ihl - kIpv4MinHeader)) {
    return makeError("bad IPv4 header length");
  }
  // Conntrack reassembles before the forward hook; a fragment here would
  // be a non-first one, with no transport header to judge.
  if ((flags_fragment & 0x1fff) != 0) {
    return makeError("IPv4 fragment");
  }
  return transport(r, proto, AF_INET, src, dst);
}

// RFC 8200. `r` is at the start of the packet.
Result<QueuedPacket> ipv6(Reader r) {
  std::span<const uint8_t> fixed;
  if (!r.bytes(kIpv6Header, fixed)) {
    return makeError("truncated IPv6 header");
  }
  Reader h(fixed);
  uint8_t next = 0;
  std::span<const uint8_t> src;
  std::span<const uint8_t> dst;
  // Cannot fail: `fixed` holds all 40 bytes these read.
  (void)(h.skip(6) && h.u8(next) && h.skip(1) && h.bytes(16, src) && h.bytes(16, dst));
  for (int i = 0; i < kMaxExtensionHeaders; ++i) {
    if (next == kHopByHop || next == kRouting || next == kDestOpts) {
      uint8_t units = 0;  // length in 8-octet units, not counting the first
      if (r.remaining() < kExtensionUnit || !r.u8(next) || !r.u8(units)) {
        return makeError("truncated IPv6 extension header");
      }
      if (!r.skip(kExtensionUnit - 2 + static_cast<size_t>(units) * kExtensionUnit)) {
        r = Reader();  // a header past the end: whatever comes next is truncated
      }
      continue;
    }
    if (next == kFragment) {
      uint16_t offset_flags = 0;
      if (r.remaining() < kExtensionUnit || !r.u8(next) || !r.skip(1) || !r.u16(offset_flags)) {
        return makeError("truncated IPv6 fragment header");
      }
      if ((offset_flags & 0xfff8) != 0) {
        return makeError("IPv6 fragment");
      }
      (void)r.skip(kExtensionUnit - 4);  // identification; present (checked above)
      continue;
    }
    return transport(r, next, AF_INET6, src, dst);
  }
  return makeError("too many IPv6 extension headers");
}

}  // namespace

Result<QueuedPacket> parseQueuedPacket(std::span<const uint8_t> packet) {
  Reader r(packet);
  uint8_t first = 0;
  if (!Reader(r).u8(first)) {
    return makeError("empty packet");
  }
  switch (first >> 4) {
    case 4:
      return ipv4(r);
    case 6:
      return ipv6(r);
    default:
      return makeError("not IPv4 or IPv6");
  }
}

}  // namespace tollgate::nat
