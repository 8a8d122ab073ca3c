// tollgate: internal to nat/
// Internal to nat/ (and its unit tests): nf_tables netlink encoding of the
// ruleset messages (libnftnl) and decoding of the kernel's answers. No
// sockets here: bytes in, bytes out.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "nat/ruleset.h"

namespace tollgate::nat {

// A complete NFNL_MSG_BATCH_BEGIN ... NFNL_MSG_BATCH_END datagram.
struct EncodedBatch {
  std::vector<uint8_t> bytes;
  uint32_t begin_seq = 0;      // sequence number of BATCH_BEGIN
  std::vector<uint32_t> seqs;  // sequence number of messages[i]; each asks for an ACK
  uint32_t end_seq = 0;        // sequence number of BATCH_END
};

// Encodes `messages` (in order) with consecutive sequence numbers starting at
// first_seq. Fails only on allocation failure inside libnftnl.
Result<EncodedBatch> encodeBatch(const std::vector<Message>& messages, uint32_t first_seq);

// A single NFT_MSG_GETTABLE request for `<family> tollgate` with NLM_F_ACK.
Result<std::vector<uint8_t>> encodeGetTable(uint32_t seq, uint32_t family = kFamilyInet);

// A NFT_MSG_GETRULE dump request for every rule of table `<family>
// tollgate` (the kernel filters by table; answers end with NLMSG_DONE).
Result<std::vector<uint8_t>> encodeGetRules(uint32_t seq, uint32_t family);

// What a rule dump tells about one rule, as much as the binding counters
// need: where it is, its counter (the first counter expression's packets)
// and whether its verdict is drop.
struct DumpedRule {
  uint32_t family = 0;
  std::string table;
  std::string chain;
  std::optional<uint64_t> packets;  // absent: no counter expression
  bool drops = false;               // an `immediate` drop verdict
  bool operator==(const DumpedRule&) const = default;
};

// One netlink message from the kernel.
struct Reply {
  uint16_t type = 0;  // nlmsg_type (NLMSG_ERROR for acks and errors)
  uint32_t seq = 0;
  int error = 0;       // for NLMSG_ERROR: 0 = ACK, otherwise a positive errno
  std::string detail;  // extended-ACK message (NLMSGERR_ATTR_MSG), if any
  uint16_t flags = 0;  // nlmsg_flags (NLM_F_DUMP_INTR: a dump raced a change)
  std::optional<DumpedRule> rule = std::nullopt;  // for NFT_MSG_NEWRULE (dump answers)
};

// Splits one received datagram into messages. `datagram` must be suitably
// aligned for struct nlmsghdr (any heap buffer is). Fails on a truncated
// message, a malformed error payload or a rule libnftnl cannot parse.
Result<std::vector<Reply>> parseReplies(std::span<const uint8_t> datagram);

// nlmsg_type of an nf_tables message (NFNL_SUBSYS_NFTABLES << 8 | msg).
uint16_t nftMessageType(uint16_t nft_msg);

// Collects the answers to one batch and turns them into an outcome.
// `messages` must outlive the collector (it is referenced, not copied).
class BatchAnswers {
 public:
  BatchAnswers(const std::vector<Message>& messages, const EncodedBatch& batch);

  // Records one reply; replies to other requests are ignored.
  void add(const Reply& reply);
  // Every message was answered, or the kernel rejected the batch as a whole.
  bool complete() const;
  bool sawError() const { return !errors_.empty(); }
  // Ok when every message was ACKed with 0. Otherwise the first error (in
  // message order), explained: what failed, the errno text, and a hint.
  Result<void> outcome() const;
  // The first message (in batch order) the kernel refused, and its errno;
  // leaves both untouched when no single message was refused.
  void firstError(const Message** message, int* err) const;

 private:
  const std::vector<Message>& messages_;
  std::map<uint32_t, size_t> index_by_seq_;
  uint32_t begin_seq_;
  uint32_t end_seq_;
  std::vector<bool> answered_;
  std::map<uint32_t, Reply> errors_;  // by seq, so the first in batch order comes first
};

// "nftables: <what> failed: <strerror> (<hint>)" for message `m` and errno `err`.
std::string explainError(const Message& m, int err, const std::string& detail);

}  // namespace tollgate::nat
