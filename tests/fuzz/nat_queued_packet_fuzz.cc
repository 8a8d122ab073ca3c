// libFuzzer target for the NFQUEUE packet parser (nat/queued_packet.h):
// every input is a packet the kernel could queue from a sandbox. The parser
// must never read out of bounds, and what it accepts must be consistent:
// UDP or ICMP(v6) echo, both addresses of the packet's family.
//
//   build: cmake -DTOLLGATE_FUZZ=ON (clang); seeds: tests/fuzz/corpus/nat_queued_packet/
//   run:   ./nat_queued_packet_fuzz -max_len=256 NEW_CORPUS_DIR tests/fuzz/corpus/nat_queued_packet
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "nat/queued_packet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto p = tollgate::nat::parseQueuedPacket(std::span<const uint8_t>(data, size));
  if (p) {
    const bool v4 = size > 0 && (data[0] >> 4) == 4;
    if (p->src.isV4() != v4 || p->dst.isV4() != v4) {
      std::abort();  // addresses of another family than the packet's
    }
    if (p->proto != IPPROTO_UDP && p->proto != IPPROTO_ICMP && p->proto != IPPROTO_ICMPV6) {
      std::abort();
    }
  } else if (p.message().empty()) {
    std::abort();  // every refusal names why
  }
  return 0;
}
