// nat: revoking UDP / ICMP echo grants. An admitted flow's verdict lives in
// its conntrack entry (ct mark kMarkAdmit, see nat.h) and outlives reloads
// and restarts; deleting tollgate's marked entries makes the next packet of
// every such flow a new one, which the queue decides again under the policy
// in force (still-allowed flows are simply re-admitted). The request is one
// ctnetlink IPCTNL_MSG_CT_DELETE without a tuple and with a mark/mask filter:
// the kernel flushes exactly the entries whose (mark & mask) == mark, of
// every address family.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"

namespace tollgate::nat {

// Every ct mark tollgate sets: 0x746700xx ("tg" and its queue verdicts).
inline constexpr uint32_t kVerdictMarkValue = 0x74670000;
inline constexpr uint32_t kVerdictMarkMask = 0xffffff00;

// The delete-by-mark request (NLM_F_REQUEST | NLM_F_ACK, AF_UNSPEC). Pure.
std::vector<uint8_t> encodeCtDeleteByMark(uint32_t seq, uint32_t mark, uint32_t mask);

// Removes every conntrack entry of the calling thread's network namespace
// whose mark is one of tollgate's verdicts (I/O; needs CAP_NET_ADMIN).
Result<void> deleteVerdictEntries();

}  // namespace tollgate::nat
