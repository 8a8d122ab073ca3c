// tollgate: internal to nat/
// Internal to nat/ (and its unit tests): tollgate's nftables ruleset as plain
// data, built by pure functions. Which expressions, which registers, which
// bytes: everything that decides what the kernel enforces is here and is
// table-tested without a kernel. nft_batch.h turns it into netlink messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "nat/nat.h"

namespace tollgate::nat {

using Bytes = std::vector<uint8_t>;

inline constexpr size_t kIfnameLen = 16;       // IFNAMSIZ: set key length of type ifname
inline constexpr size_t kMaxInterfaces = 512;  // keeps the set-element message far below 64 KiB
inline constexpr size_t kMaxCommentLen = 127;  // NFTNL_UDATA_COMMENT_MAXLEN minus the NUL
inline constexpr const char* kIfaceSet = "sandbox_ifaces";
inline constexpr const char* kNdSet = "nd_types";
inline constexpr uint32_t kIfaceSetId = 1;
inline constexpr uint32_t kNdSetId = 2;
inline constexpr uint16_t kDnsPort = 53;  // sandbox DNS (UDP and TCP) captured when dns_port != 0
// QUIC / HTTP/3 (UDP 443) from sandboxes is refused with an ICMP(v6) port
// unreachable, so clients fall back to TCP (which is captured) at once
// instead of waiting for their QUIC handshake to time out.
inline constexpr uint16_t kQuicPort = 443;
// nft's datatype numbers (nftables include/datatype.h), stored as set key type
// so that `nft list` prints the set as `type ifname` / `type icmpv6_type`.
inline constexpr uint32_t kNftTypeIfname = 41;
inline constexpr uint32_t kNftTypeIcmpv6Type = 29;
// nft's `enum byteorder`, stored in set userdata so nft prints elements right.
inline constexpr uint32_t kNftByteorderHost = 1;
inline constexpr uint32_t kNftByteorderBig = 2;

// Table families (NFPROTO_INET, NFPROTO_BRIDGE; <linux/netfilter.h> clashes
// with <netinet/in.h> in headers).
inline constexpr uint32_t kFamilyInet = 1;
inline constexpr uint32_t kFamilyBridge = 7;

// Chain priorities (the lower, the earlier).
inline constexpr int32_t kPriorityPreroutingFilter = -160;  // mangle - 10: before any NAT
inline constexpr int32_t kPriorityTproxy = -150;            // mangle: TPROXY (capture: tproxy)
inline constexpr int32_t kPriorityNat = -110;               // dstnat - 10: before Docker's -100
inline constexpr int32_t kPriorityFilter = -10;             // filter - 10
// Bridge family (table bridge tollgate, sandboxes[].ports): NF_BR_PRI_FILTER_BRIDGED,
// before br_netfilter (0) hands bridged IP to the inet hooks.
inline constexpr int32_t kPriorityBridgeFilter = -200;
inline constexpr uint32_t kBridgeHookPrerouting = 0;  // NF_BR_PRE_ROUTING
inline constexpr uint32_t kBridgeHookForward = 2;     // NF_BR_FORWARD

// One struct per libnftnl expression, registers explicit.
namespace expr {
struct Meta {  // meta load KEY => reg DREG
  uint32_t key;
  uint32_t dreg;
  bool operator==(const Meta&) const = default;
};
struct Ct {  // ct load KEY => reg DREG
  uint32_t key;
  uint32_t dreg;
  bool operator==(const Ct&) const = default;
};
struct Payload {  // payload load LEN b @ BASE + OFFSET => reg DREG
  uint32_t base;
  uint32_t offset;
  uint32_t len;
  uint32_t dreg;
  bool operator==(const Payload&) const = default;
};
struct Cmp {  // cmp OP reg SREG DATA
  uint32_t sreg;
  uint32_t op;
  Bytes data;
  bool operator==(const Cmp&) const = default;
};
struct Bitwise {  // reg DREG = (reg SREG & MASK) ^ XOR
  uint32_t sreg;
  uint32_t dreg;
  Bytes mask;
  Bytes xor_bits;
  bool operator==(const Bitwise&) const = default;
};
struct Lookup {  // lookup reg SREG set SET (by name, and by id within the batch)
  uint32_t sreg;
  std::string set;
  uint32_t set_id;
  bool inverted;
  bool operator==(const Lookup&) const = default;
};
struct Immediate {  // immediate reg DREG DATA
  uint32_t dreg;
  Bytes data;
  bool operator==(const Immediate&) const = default;
};
struct Verdict {  // immediate reg 0 accept|drop|return
  int32_t code;
  bool operator==(const Verdict&) const = default;
};
struct Jump {  // immediate reg 0 jump CHAIN
  std::string chain;
  bool operator==(const Jump&) const = default;
};
struct Redirect {  // redir proto_min reg REG flags FLAGS
  uint32_t proto_min_reg;
  uint32_t flags;
  bool operator==(const Redirect&) const = default;
};
struct Counter {
  bool operator==(const Counter&) const = default;
};
struct CtSet {  // ct set KEY with reg SREG
  uint32_t key;
  uint32_t sreg;
  bool operator==(const CtSet&) const = default;
};
struct Limit {  // limit rate [over] RATE/UNIT burst BURST type packets
  uint64_t rate;
  uint64_t unit_seconds;
  uint32_t burst;
  uint32_t flags;  // NFT_LIMIT_F_INV: match when *over* the rate
  bool operator==(const Limit&) const = default;
};
struct Fib {        // fib FLAGS RESULT => reg DREG
  uint32_t flags;   // NFTA_FIB_F_*
  uint32_t result;  // enum nft_fib_result
  uint32_t dreg;
  bool operator==(const Fib&) const = default;
};
struct Queue {  // native nft `queue num NUM` (nft_queue)
  uint16_t num;
  uint16_t total;
  uint16_t flags;  // NFT_QUEUE_FLAG_*; never BYPASS (fail closed)
  bool operator==(const Queue&) const = default;
};
struct XtTarget {  // xtables target through nft_compat, e.g. NFQUEUE rev 3
  std::string name;
  uint32_t rev;
  Bytes info;  // the target's info struct, host byte order, XT_ALIGNed
  bool operator==(const XtTarget&) const = default;
};
struct Reject {   // reject type TYPE code CODE (terminal: the packet is dropped after the reply)
  uint32_t type;  // enum nft_reject_types, e.g. NFT_REJECT_ICMPX_UNREACH
  uint8_t code;   // for ICMPX: enum nft_reject_inet_code, e.g. NFT_REJECT_ICMPX_PORT_UNREACH
  bool operator==(const Reject&) const = default;
};
struct Tproxy {     // tproxy FAMILY to :reg PORT_REG (no address: the interface's)
  uint32_t family;  // NFPROTO_IPV4 / NFPROTO_IPV6
  uint32_t port_reg;
  bool operator==(const Tproxy&) const = default;
};
struct MetaSet {  // meta set KEY with reg SREG
  uint32_t key;
  uint32_t sreg;
  bool operator==(const MetaSet&) const = default;
};
}  // namespace expr

using Expr = std::variant<expr::Meta, expr::Ct, expr::Payload, expr::Cmp, expr::Bitwise,
                          expr::Lookup, expr::Immediate, expr::Verdict, expr::Redirect,
                          expr::Counter, expr::Reject, expr::CtSet, expr::Limit, expr::Fib,
                          expr::Queue, expr::XtTarget, expr::Tproxy, expr::MetaSet, expr::Jump>;

struct Rule {
  std::string chain;
  std::vector<Expr> exprs;
  // The rule in nft syntax, as `nft list` prints it minus counter values and
  // the comment. For operators, error messages and the namespace tests.
  std::string text;
  std::string comment;  // stored as NFTNL_UDATA_RULE_COMMENT
};

struct Chain {
  std::string name;
  std::string type;  // "filter" | "nat"; empty: a regular chain (no hook), reached by jumps
  uint32_t hook;     // NF_INET_* (NF_BR_* in the bridge family)
  int32_t priority;
  std::string comment;
};

struct SetElement {
  Bytes key;
  std::string text;  // how nft prints it, for messages
};

struct Set {
  std::string name;
  uint32_t id;  // NFTA_SET_ID: lets rules in the same batch refer to it
  uint32_t key_type;
  uint32_t key_len;
  uint32_t key_byteorder;
  uint32_t flags;  // NFT_SET_*
  std::vector<SetElement> elements;
  std::string comment;
};

struct Ruleset {
  uint32_t family = kFamilyInet;  // table <family> tollgate
  std::string comment;            // table comment
  std::vector<Set> sets;
  std::vector<Chain> chains;  // in creation order
  std::vector<Rule> rules;    // in append order
};

// Checks one interface name the way the kernel's dev_valid_name() does
// (1-15 bytes, not "." or "..", no '/', ':', whitespace or NUL), and refuses
// '*' (an nft wildcard elsewhere; in a set it would only match literally).
Result<void> validateInterfaceName(std::string_view name);
// Validates the list (non-empty, each name valid, at most kMaxInterfaces) and
// returns it with duplicates removed, order kept.
Result<std::vector<std::string>> normalizeInterfaces(const std::vector<std::string>& interfaces);
// The 16-byte, zero-padded key nft uses for an ifname. Precondition: valid name.
Bytes encodeIfname(std::string_view name);

// Full capture ruleset (see DESIGN.md "Data flow" and installCapture() in
// nat.h) with the queue rules written for `backend` (spec.queue_backend is
// ignored here); errors name the bad field (listen_port, gateway.dns_port,
// gateway.interfaces, the interface).
Result<Ruleset> buildCaptureRuleset(const CaptureSpec& spec,
                                    QueueBackend backend = QueueBackend::Native);

// The expression that sends a packet to NFQUEUE `num` (no bypass: fail
// closed), for either backend. Compat: xt NFQUEUE revision 3 with
// xt_NFQ_info_v3 {queuenum, queues_total = 1, flags = 0}, padded to 8 bytes.
Expr queueExpr(QueueBackend backend, uint16_t num);
// True when the rule holds a queue expression of either kind.
bool usesQueue(const Rule& rule);
// Fail-closed ruleset for `on_exit: block`.
Result<Ruleset> buildBlockRuleset(const std::vector<std::string>& interfaces);

// `sandboxes[].ports` entries: an interface name, or a name prefix ending in
// '*' (nft's wildcard: "tap-a*" matches "tap-a1"). Not "*" alone, which
// would claim every bridge port of the host.
Result<void> validatePortPattern(std::string_view pattern);
// The `table bridge tollgate` that binds each sandbox with ports to them
// (see PortBinding in nat.h); an error names the bad binding. Empty
// `bindings` is an error: there is no table to build.
Result<Ruleset> buildBindingRuleset(const std::vector<PortBinding>& bindings);
// Messages of one nf_tables batch, each about table `<family> tollgate`.
namespace msg {
struct EnsureTable {  // NEWTABLE without EXCL: no-op when the table exists
  uint32_t family = kFamilyInet;
};
struct DeleteTable {  // DELTABLE: removes the table and everything in it
  uint32_t family = kFamilyInet;
};
struct CreateTable {  // NEWTABLE with EXCL
  std::string comment;
  uint32_t family = kFamilyInet;
};
struct AddSet {
  Set set;
  uint32_t family = kFamilyInet;
};
struct AddSetElements {
  Set set;
  uint32_t family = kFamilyInet;
};
struct AddChain {
  Chain chain;
  uint32_t family = kFamilyInet;
};
struct AddRule {
  Rule rule;
  uint32_t family = kFamilyInet;
};
}  // namespace msg

using Message = std::variant<msg::EnsureTable, msg::DeleteTable, msg::CreateTable, msg::AddSet,
                             msg::AddSetElements, msg::AddChain, msg::AddRule>;

// Replace whatever `inet tollgate` exists (or nothing) with `ruleset`:
// EnsureTable, DeleteTable, CreateTable, sets (+ elements), chains, rules.
// Adding before deleting makes the delete valid when no table exists, so the
// whole replacement is one transaction that cannot fail on a missing table.
std::vector<Message> planReplace(const Ruleset& ruleset);
// Remove the table if present: EnsureTable, DeleteTable.
std::vector<Message> planRemove(uint32_t family = kFamilyInet);

// The table family a message is about (NFPROTO_INET or NFPROTO_BRIDGE).
uint32_t messageFamily(const Message& message);
// "table inet tollgate" / "table bridge tollgate".
std::string tableLabel(uint32_t family);

// "add rule to chain input: `iifname @sandbox_ifaces counter drop`", etc.
std::string describe(const Message& message);

}  // namespace tollgate::nat
