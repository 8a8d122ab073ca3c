// The NFQUEUE packet parser: what UDP / ICMP echo admission needs from the
// first bytes of a packet the kernel queued (network header first). Pure:
// no I/O; every byte is read through base/reader.h's Reader. Public header
// of nat/ (the queue itself is served by the gateway).
#pragma once

#include <cstdint>
#include <span>

#include "base/result.h"
#include "base/sockaddr.h"

namespace tollgate::nat {

// What admission needs from a queued packet. Ports are 0 for ICMP.
struct QueuedPacket {
  SockAddr src;
  SockAddr dst;
  uint8_t proto = 0;  // IPPROTO_UDP, IPPROTO_ICMP or IPPROTO_ICMPV6
  uint8_t icmp_type = 0;
};

// Parses the start of a queued IPv4/IPv6 packet. IPv6 extension headers
// (hop-by-hop, routing, destination options; a fragment header only when it
// is the first fragment) are walked. Fails, naming why, on anything truncated
// or not UDP / ICMP echo request.
Result<QueuedPacket> parseQueuedPacket(std::span<const uint8_t> packet);

}  // namespace tollgate::nat
