// tollgate: internal to nat/
// Internal to nat/: a NETLINK_NETFILTER socket in the calling thread's
// network namespace (opened per call, see nat.h), sending requests and
// reading the kernel's answers with a deadline.
#pragma once

#include <libmnl/libmnl.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/handles.h"
#include "base/result.h"
#include "nat/nft_batch.h"

namespace tollgate::nat {

using NfClock = std::chrono::steady_clock;

// nf_tables answers a batch synchronously while processing the send, so the
// replies are queued before sendto() returns; the deadline only guards
// against a kernel that never answers.
inline constexpr std::chrono::milliseconds kAnswerDeadline{5000};

// A sequence number for a request (the time: distinct across calls).
uint32_t initialSeq();

class NfSocket {
 public:
  static Result<NfSocket> open();

  Result<void> send(const std::vector<uint8_t>& bytes);

  // One datagram's messages, or nullopt when `deadline` passed first.
  Result<std::optional<std::vector<Reply>>> receive(NfClock::time_point deadline);

 private:
  explicit NfSocket(MnlSocket nl);

  MnlSocket nl_;
  std::vector<uint8_t> buffer_;
};

}  // namespace tollgate::nat
