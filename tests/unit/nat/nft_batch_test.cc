// Pure tests of the netlink layer: the batch bytes we would send (decoded
// back with libnftnl and compared with what `nft --debug=netlink` generates
// for the same rules), and the decoding of the kernel's answers.
#include "nat/nft_batch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "base/handles.h"
#include "nat/ruleset.h"

namespace tollgate::nat {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Decoded {
  uint16_t type;
  uint16_t flags;
  uint32_t seq;
  uint16_t res_id;  // nfgenmsg.res_id
  const nlmsghdr* nlh;
};

std::vector<Decoded> decode(const std::vector<uint8_t>& bytes) {
  std::vector<Decoded> out;
  int len = static_cast<int>(bytes.size());
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(bytes.data());
  while (mnl_nlmsg_ok(nlh, len)) {
    const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
    out.push_back(
        Decoded{nlh->nlmsg_type, nlh->nlmsg_flags, nlh->nlmsg_seq, ntohs(nfg->res_id), nlh});
    nlh = mnl_nlmsg_next(nlh, &len);
  }
  EXPECT_EQ(len, 0) << "trailing bytes in batch";
  return out;
}

// mnl_attr_for_each* rely on void* arithmetic, which C++ lacks.
template <typename F>
void forEachAttr(const nlattr* attr, int len, F f) {
  while (mnl_attr_ok(attr, len)) {
    f(attr);
    len -= static_cast<int>(MNL_ALIGN(attr->nla_len));
    attr = mnl_attr_next(attr);
  }
}

template <typename F>
void forEachNested(const nlattr* nest, F f) {
  forEachAttr(static_cast<const nlattr*>(mnl_attr_get_payload(nest)),
              static_cast<int>(mnl_attr_get_payload_len(nest)), f);
}

CaptureSpec captureSpec(bool ipv6) {
  CaptureSpec s;
  s.interfaces = {"br0", "veth1"};
  s.listen_port = 15001;
  s.ipv6_capture = ipv6;
  return s;
}

std::vector<Message> capturePlan(bool ipv6 = true) {
  auto rs = buildCaptureRuleset(captureSpec(ipv6));
  EXPECT_TRUE(rs.ok());
  return planReplace(*rs);
}

// Expressions of an encoded NEWRULE message, printed by libnftnl the way
// `nft --debug=netlink` prints them.
std::vector<std::string> ruleExprs(const nlmsghdr* nlh, std::string* chain = nullptr,
                                   std::string* comment = nullptr) {
  NftRule r(nftnl_rule_alloc());
  EXPECT_EQ(nftnl_rule_nlmsg_parse(nlh, r.get()), 0);
  if (chain != nullptr) {
    *chain = nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN);
  }
  if (comment != nullptr) {
    uint32_t len = 0;
    const auto* ud =
        static_cast<const uint8_t*>(nftnl_rule_get_data(r.get(), NFTNL_RULE_USERDATA, &len));
    // One TLV: type NFTNL_UDATA_RULE_COMMENT (0), length, NUL-terminated text.
    if (ud != nullptr && len >= 3 && ud[0] == 0) {
      *comment = std::string(reinterpret_cast<const char*>(ud + 2));
    }
  }
  std::vector<std::string> out;
  nftnl_expr_foreach(
      r.get(),
      [](nftnl_expr* e, void* data) -> int {
        char buf[256];
        nftnl_expr_snprintf(buf, sizeof(buf), e, NFTNL_OUTPUT_DEFAULT, 0);
        std::string text = std::string(nftnl_expr_get_str(e, NFTNL_EXPR_NAME)) + " " + buf;
        while (!text.empty() && text.back() == ' ') {
          text.pop_back();
        }
        static_cast<std::vector<std::string>*>(data)->push_back(text);
        return 0;
      },
      &out);
  return out;
}

std::vector<std::vector<std::string>> allRuleExprs(const EncodedBatch& batch) {
  std::vector<std::vector<std::string>> out;
  for (const Decoded& d : decode(batch.bytes)) {
    if (d.type == nftMessageType(NFT_MSG_NEWRULE)) {
      out.push_back(ruleExprs(d.nlh));
    }
  }
  return out;
}

// ---- batch framing --------------------------------------------------------

TEST(EncodeBatch, IsOneFramedTransactionWithConsecutiveSeqs) {
  auto plan = capturePlan();
  auto batch = encodeBatch(plan, 1000);
  ASSERT_TRUE(batch.ok()) << batch.message();
  auto msgs = decode(batch->bytes);
  ASSERT_EQ(msgs.size(), plan.size() + 2);
  EXPECT_EQ(msgs.front().type, NFNL_MSG_BATCH_BEGIN);
  EXPECT_EQ(msgs.front().res_id, NFNL_SUBSYS_NFTABLES);
  EXPECT_EQ(msgs.back().type, NFNL_MSG_BATCH_END);
  EXPECT_EQ(batch->begin_seq, 1000u);
  EXPECT_EQ(batch->end_seq, 1000u + plan.size() + 1);
  ASSERT_EQ(batch->seqs.size(), plan.size());
  for (size_t i = 0; i < msgs.size(); ++i) {
    EXPECT_EQ(msgs[i].seq, 1000u + i);
  }
  for (size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(batch->seqs[i], msgs[i + 1].seq);
    EXPECT_NE(msgs[i + 1].flags & NLM_F_ACK, 0)
        << "every message is acknowledged: " << describe(plan[i]);
    EXPECT_NE(msgs[i + 1].flags & NLM_F_REQUEST, 0);
  }
}

TEST(EncodeBatch, AddsThenDeletesThenCreatesTheTable) {
  auto batch = encodeBatch(capturePlan(), 1);
  ASSERT_TRUE(batch.ok()) << batch.message();
  auto msgs = decode(batch->bytes);
  std::vector<uint16_t> types;
  for (const Decoded& d : msgs) {
    types.push_back(d.type);
  }
  const uint16_t kNewTable = nftMessageType(NFT_MSG_NEWTABLE);
  const uint16_t kNewSet = nftMessageType(NFT_MSG_NEWSET);
  const uint16_t kNewElem = nftMessageType(NFT_MSG_NEWSETELEM);
  const uint16_t kNewChain = nftMessageType(NFT_MSG_NEWCHAIN);
  const uint16_t kNewRule = nftMessageType(NFT_MSG_NEWRULE);
  EXPECT_THAT(
      types,
      ElementsAre(NFNL_MSG_BATCH_BEGIN, kNewTable, nftMessageType(NFT_MSG_DELTABLE), kNewTable,
                  kNewSet, kNewElem, kNewSet, kNewElem, kNewChain, kNewChain, kNewChain, kNewChain,
                  kNewRule, kNewRule, kNewRule, kNewRule, kNewRule, kNewRule, kNewRule, kNewRule,
                  kNewRule, kNewRule, kNewRule, kNewRule, kNewRule, kNewRule, kNewRule, kNewRule,
                  kNewRule, kNewRule, kNewRule, kNewRule, kNewRule, kNewRule, NFNL_MSG_BATCH_END));
  // The first NEWTABLE must not fail on an existing table; the second must
  // not silently merge into one.
  EXPECT_EQ(msgs[1].flags & NLM_F_EXCL, 0);
  EXPECT_NE(msgs[1].flags & NLM_F_CREATE, 0);
  EXPECT_NE(msgs[3].flags & NLM_F_EXCL, 0);
  // Rules append in order.
  EXPECT_NE(msgs[12].flags & NLM_F_APPEND, 0);
  for (size_t i = 1; i + 1 < msgs.size(); ++i) {
    const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(msgs[i].nlh));
    EXPECT_EQ(nfg->nfgen_family, NFPROTO_INET) << i;
  }
}

TEST(EncodeBatch, TablesNamedTollgateInetWithComment) {
  auto batch = encodeBatch(capturePlan(), 1);
  ASSERT_TRUE(batch.ok()) << batch.message();
  auto msgs = decode(batch->bytes);
  NftTable t(nftnl_table_alloc());
  ASSERT_EQ(nftnl_table_nlmsg_parse(msgs[3].nlh, t.get()), 0);
  EXPECT_STREQ(nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME), "tollgate");
  EXPECT_EQ(nftnl_table_get_u32(t.get(), NFTNL_TABLE_FAMILY), static_cast<uint32_t>(NFPROTO_INET));
  EXPECT_TRUE(nftnl_table_is_set(t.get(), NFTNL_TABLE_USERDATA));
}

TEST(EncodeBatch, SetElementsAreZeroPaddedIfnames) {
  auto batch = encodeBatch(capturePlan(), 1);
  ASSERT_TRUE(batch.ok()) << batch.message();
  auto msgs = decode(batch->bytes);
  NftSet def(nftnl_set_alloc());
  ASSERT_EQ(nftnl_set_nlmsg_parse(msgs[4].nlh, def.get()), 0);
  EXPECT_STREQ(nftnl_set_get_str(def.get(), NFTNL_SET_NAME), "sandbox_ifaces");
  EXPECT_EQ(nftnl_set_get_u32(def.get(), NFTNL_SET_KEY_LEN), 16u);
  EXPECT_EQ(nftnl_set_get_u32(def.get(), NFTNL_SET_KEY_TYPE), kNftTypeIfname);
  EXPECT_EQ(nftnl_set_get_u32(def.get(), NFTNL_SET_ID), kIfaceSetId);

  // Walked by hand: libnftnl numbers the element nests 1, 2, ... when it
  // builds them (the kernel ignores the type) but parses back only type 1.
  std::vector<Bytes> keys;
  const auto* first =
      static_cast<const char*>(mnl_nlmsg_get_payload_offset(msgs[5].nlh, sizeof(nfgenmsg)));
  const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(msgs[5].nlh));
  forEachAttr(reinterpret_cast<const nlattr*>(first), static_cast<int>(tail - first),
              [&](const nlattr* list) {
                if (mnl_attr_get_type(list) != NFTA_SET_ELEM_LIST_ELEMENTS) {
                  return;
                }
                forEachNested(list, [&](const nlattr* elem) {
                  forEachNested(elem, [&](const nlattr* field) {
                    if (mnl_attr_get_type(field) != NFTA_SET_ELEM_KEY) {
                      return;
                    }
                    forEachNested(field, [&](const nlattr* value) {
                      EXPECT_EQ(mnl_attr_get_type(value), NFTA_DATA_VALUE);
                      const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(value));
                      keys.emplace_back(p, p + mnl_attr_get_payload_len(value));
                    });
                  });
                });
              });
  EXPECT_THAT(keys, ElementsAre(encodeIfname("br0"), encodeIfname("veth1")));
}

// ---- rule expressions, compared with nft's own encoding -------------------
//
// Each expectation below is what `nft --debug=netlink` prints for the rule in
// the comment above it (nftables 1.0.6), with our counter added.

TEST(EncodeBatch, CaptureRulesMatchNftEncoding) {
  auto batch = encodeBatch(capturePlan(true), 1);
  ASSERT_TRUE(batch.ok()) << batch.message();
  auto rules = allRuleExprs(*batch);
  ASSERT_EQ(rules.size(), 22u);
  // iifname @sandbox_ifaces meta l4proto tcp counter redirect to :15001
  EXPECT_THAT(rules[0], ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                                    "meta load l4proto => reg 1", "cmp eq reg 1 0x00000006",
                                    "counter pkts 0 bytes 0", "immediate reg 1 0x0000993a",
                                    "redir proto_min reg 1 flags 0x2"));
  // iifname @sandbox_ifaces ct state established,related counter accept
  EXPECT_THAT(
      rules[1],
      ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                  "ct load state => reg 1", "bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000",
                  "cmp neq reg 1 0x00000000", "counter pkts 0 bytes 0", "immediate reg 0 accept"));
  // iifname @sandbox_ifaces ct status dnat tcp dport 15001 counter accept
  EXPECT_THAT(
      rules[2],
      ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                  "ct load status => reg 1", "bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000",
                  "cmp neq reg 1 0x00000000", "meta load l4proto => reg 1",
                  "cmp eq reg 1 0x00000006", "payload load 2b @ transport header + 2 => reg 1",
                  "cmp eq reg 1 0x0000993a", "counter pkts 0 bytes 0", "immediate reg 0 accept"));
  // iifname @sandbox_ifaces meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type @nd_types counter
  // accept
  EXPECT_THAT(rules[3], ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                                    "meta load nfproto => reg 1", "cmp eq reg 1 0x0000000a",
                                    "meta load l4proto => reg 1", "cmp eq reg 1 0x0000003a",
                                    "payload load 1b @ transport header + 0 => reg 1",
                                    "lookup reg 1 set nd_types", "counter pkts 0 bytes 0",
                                    "immediate reg 0 accept"));
  // iifname @sandbox_ifaces udp dport 443 counter reject with icmpx type port-unreachable
  EXPECT_THAT(rules[4], ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                                    "meta load l4proto => reg 1", "cmp eq reg 1 0x00000011",
                                    "payload load 2b @ transport header + 2 => reg 1",
                                    "cmp eq reg 1 0x0000bb01", "counter pkts 0 bytes 0",
                                    "reject type 2 code 1"));
  // iifname @sandbox_ifaces meta l4proto tcp counter reject with tcp reset
  EXPECT_THAT(rules[5], ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                                    "meta load l4proto => reg 1", "cmp eq reg 1 0x00000006",
                                    "counter pkts 0 bytes 0", "reject type 1 code 0"));
  // iifname @sandbox_ifaces counter drop
  EXPECT_THAT(rules[6], ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                                    "counter pkts 0 bytes 0", "immediate reg 0 drop"));
  EXPECT_EQ(rules[7], rules[4]);   // forward: the same refusal...
  EXPECT_EQ(rules[18], rules[6]);  // ...the same final drop
  // iifname @sandbox_ifaces meta mark 0x74670001 ct mark set 0x74670001 counter accept
  EXPECT_THAT(rules[8], ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                                    "meta load mark => reg 1", "cmp eq reg 1 0x74670001",
                                    "immediate reg 1 0x74670001", "ct set mark with reg 1",
                                    "counter pkts 0 bytes 0", "immediate reg 0 accept"));
  // iifname @sandbox_ifaces icmp type echo-request ip length > 92 counter drop
  EXPECT_THAT(
      rules[10],
      ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                  "meta load nfproto => reg 1", "cmp eq reg 1 0x00000002",
                  "meta load l4proto => reg 1", "cmp eq reg 1 0x00000001",
                  "payload load 1b @ transport header + 0 => reg 1", "cmp eq reg 1 0x00000008",
                  "payload load 2b @ network header + 2 => reg 1", "cmp gt reg 1 0x00005c00",
                  "counter pkts 0 bytes 0", "immediate reg 0 drop"));
  // ... icmp type echo-request limit rate over 20/second counter drop
  EXPECT_THAT(rules[11],
              ::testing::Contains("limit rate 20/second burst 5 type packets flags 0x1"));
  // iifname @sandbox_ifaces ct mark 0x74670001 counter accept
  EXPECT_THAT(rules[14],
              ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                          "ct load mark => reg 1", "cmp eq reg 1 0x74670001",
                          "counter pkts 0 bytes 0", "immediate reg 0 accept"));
  // iifname @sandbox_ifaces meta l4proto udp ct state new counter queue num 7467
  // (native backend; `nft --debug=netlink` prints "[ queue num 7467 ]" for
  // it even on a kernel that then refuses it)
  EXPECT_THAT(
      rules[15],
      ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                  "meta load l4proto => reg 1", "cmp eq reg 1 0x00000011", "ct load state => reg 1",
                  "bitwise reg 1 = ( reg 1 & 0x00000008 ) ^ 0x00000000", "cmp neq reg 1 0x00000000",
                  "counter pkts 0 bytes 0", "queue num 7467"));
  // prerouting_filter: iifname @sandbox_ifaces fib saddr . iif oif missing counter drop
  EXPECT_THAT(rules[21],
              ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                          "fib saddr . iif oif present => reg 1", "cmp eq reg 1 0x00000000",
                          "counter pkts 0 bytes 0", "immediate reg 0 drop"));
  // oifname @sandbox_ifaces ct state & (established|related) == 0 counter drop
  EXPECT_THAT(
      rules[19],
      ElementsAre("meta load oifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                  "ct load state => reg 1", "bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000",
                  "cmp eq reg 1 0x00000000", "counter pkts 0 bytes 0", "immediate reg 0 drop"));
}

TEST(EncodeBatch, Ipv6BlockRulesMatchNftEncoding) {
  auto batch = encodeBatch(capturePlan(false), 1);
  ASSERT_TRUE(batch.ok()) << batch.message();
  auto rules = allRuleExprs(*batch);
  ASSERT_EQ(rules.size(), 20u);
  // iifname @sandbox_ifaces meta nfproto ipv6 counter drop
  EXPECT_THAT(rules[1], ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                                    "meta load nfproto => reg 1", "cmp eq reg 1 0x0000000a",
                                    "counter pkts 0 bytes 0", "immediate reg 0 drop"));
  // iifname @sandbox_ifaces meta nfproto ipv4 meta l4proto tcp counter redirect to :15001
  EXPECT_THAT(rules[2], ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                                    "meta load nfproto => reg 1", "cmp eq reg 1 0x00000002",
                                    "meta load l4proto => reg 1", "cmp eq reg 1 0x00000006",
                                    "counter pkts 0 bytes 0", "immediate reg 1 0x0000993a",
                                    "redir proto_min reg 1 flags 0x2"));
}

TEST(EncodeBatch, DnsCaptureRulesMatchNftEncoding) {
  CaptureSpec s = captureSpec(true);
  s.dns_port = 15053;
  auto rs = buildCaptureRuleset(s);
  ASSERT_TRUE(rs.ok()) << rs.message();
  auto batch = encodeBatch(planReplace(*rs), 1);
  ASSERT_TRUE(batch.ok()) << batch.message();
  auto rules = allRuleExprs(*batch);
  ASSERT_EQ(rules.size(), 26u);
  // iifname @sandbox_ifaces udp dport 53 counter redirect to :15053
  EXPECT_THAT(rules[0],
              ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                          "meta load l4proto => reg 1", "cmp eq reg 1 0x00000011",
                          "payload load 2b @ transport header + 2 => reg 1",
                          "cmp eq reg 1 0x00003500", "counter pkts 0 bytes 0",
                          "immediate reg 1 0x0000cd3a", "redir proto_min reg 1 flags 0x2"));
  // iifname @sandbox_ifaces tcp dport 53 counter redirect to :15053
  EXPECT_THAT(rules[1],
              ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                          "meta load l4proto => reg 1", "cmp eq reg 1 0x00000006",
                          "payload load 2b @ transport header + 2 => reg 1",
                          "cmp eq reg 1 0x00003500", "counter pkts 0 bytes 0",
                          "immediate reg 1 0x0000cd3a", "redir proto_min reg 1 flags 0x2"));
  // iifname @sandbox_ifaces meta l4proto tcp counter redirect to :15001
  EXPECT_THAT(rules[2], ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                                    "meta load l4proto => reg 1", "cmp eq reg 1 0x00000006",
                                    "counter pkts 0 bytes 0", "immediate reg 1 0x0000993a",
                                    "redir proto_min reg 1 flags 0x2"));
  // iifname @sandbox_ifaces ct status dnat udp dport 15053 counter accept
  EXPECT_THAT(
      rules[5],
      ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                  "ct load status => reg 1", "bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000",
                  "cmp neq reg 1 0x00000000", "meta load l4proto => reg 1",
                  "cmp eq reg 1 0x00000011", "payload load 2b @ transport header + 2 => reg 1",
                  "cmp eq reg 1 0x0000cd3a", "counter pkts 0 bytes 0", "immediate reg 0 accept"));
  // iifname @sandbox_ifaces ct status dnat tcp dport 15053 counter accept
  EXPECT_THAT(
      rules[6],
      ElementsAre("meta load iifname => reg 1", "lookup reg 1 set sandbox_ifaces",
                  "ct load status => reg 1", "bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000",
                  "cmp neq reg 1 0x00000000", "meta load l4proto => reg 1",
                  "cmp eq reg 1 0x00000006", "payload load 2b @ transport header + 2 => reg 1",
                  "cmp eq reg 1 0x0000cd3a", "counter pkts 0 bytes 0", "immediate reg 0 accept"));
}

// The reject expression on the wire, attribute by attribute: NFTA_REJECT_TYPE
// is a big-endian u32, NFTA_REJECT_ICMP_CODE a single byte (the kernel's
// policy is NLA_U8). nft sends exactly these for `reject with icmpx type
// port-unreachable` in the inet family, and the type alone for `reject with
// tcp reset`.
TEST(EncodeBatch, QuicRejectIsIcmpxPortUnreachableOnTheWire) {
  auto plan = capturePlan(true);
  auto batch = encodeBatch(plan, 1);
  ASSERT_TRUE(batch.ok()) << batch.message();
  auto msgs = decode(batch->bytes);
  int rejects = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto* add = std::get_if<msg::AddRule>(&plan[i]);
    if (add == nullptr) {
      continue;
    }
    const nlmsghdr* nlh = msgs[i + 1].nlh;
    const auto* first =
        static_cast<const char*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
    const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
    forEachAttr(
        reinterpret_cast<const nlattr*>(first), static_cast<int>(tail - first),
        [&](const nlattr* a) {
          if (mnl_attr_get_type(a) != NFTA_RULE_EXPRESSIONS) {
            return;
          }
          forEachNested(a, [&](const nlattr* elem) {
            std::string name;
            const nlattr* data = nullptr;
            forEachNested(elem, [&](const nlattr* f) {
              if (mnl_attr_get_type(f) == NFTA_EXPR_NAME) {
                name = mnl_attr_get_str(f);
              } else if (mnl_attr_get_type(f) == NFTA_EXPR_DATA) {
                data = f;
              }
            });
            if (name != "reject") {
              return;
            }
            ++rejects;
            ASSERT_NE(data, nullptr);
            if (add->rule.text ==
                "iifname @sandbox_ifaces meta l4proto tcp counter reject with tcp reset") {
              // A reset: the type alone, no code (as nft sends it).
              int attrs = 0;
              forEachNested(data, [&](const nlattr* f) {
                ++attrs;
                ASSERT_EQ(mnl_attr_get_type(f), NFTA_REJECT_TYPE);
                EXPECT_EQ(ntohl(mnl_attr_get_u32(f)), static_cast<uint32_t>(NFT_REJECT_TCP_RST));
              });
              EXPECT_EQ(attrs, 1);
              return;
            }
            EXPECT_EQ(add->rule.text, "iifname @sandbox_ifaces udp dport 443 counter reject");
            bool saw_type = false;
            bool saw_code = false;
            forEachNested(data, [&](const nlattr* f) {
              if (mnl_attr_get_type(f) == NFTA_REJECT_TYPE) {
                saw_type = true;
                ASSERT_EQ(mnl_attr_get_payload_len(f), 4u);
                EXPECT_EQ(ntohl(mnl_attr_get_u32(f)),
                          static_cast<uint32_t>(NFT_REJECT_ICMPX_UNREACH));
              } else if (mnl_attr_get_type(f) == NFTA_REJECT_ICMP_CODE) {
                saw_code = true;
                ASSERT_EQ(mnl_attr_get_payload_len(f), 1u);
                EXPECT_EQ(mnl_attr_get_u8(f), NFT_REJECT_ICMPX_PORT_UNREACH);
              } else {
                ADD_FAILURE() << "unexpected reject attribute " << mnl_attr_get_type(f);
              }
            });
            EXPECT_TRUE(saw_type);
            EXPECT_TRUE(saw_code);
          });
        });
  }
  EXPECT_EQ(rejects, 3);  // QUIC in input and forward, TCP to the host in input
}

// Block stays silent: no reject expression at all.
TEST(EncodeBatch, BlockHasNoReject) {
  auto rs = buildBlockRuleset({"br0"});
  ASSERT_TRUE(rs.ok()) << rs.message();
  auto batch = encodeBatch(planReplace(*rs), 1);
  ASSERT_TRUE(batch.ok()) << batch.message();
  for (const auto& rule : allRuleExprs(*batch)) {
    for (const std::string& e : rule) {
      EXPECT_THAT(e, ::testing::Not(::testing::StartsWith("reject"))) << e;
    }
  }
}

TEST(EncodeBatch, RulesCarryTheirCommentAndChain) {
  auto plan = capturePlan();
  auto batch = encodeBatch(plan, 1);
  ASSERT_TRUE(batch.ok()) << batch.message();
  auto msgs = decode(batch->bytes);
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto* add = std::get_if<msg::AddRule>(&plan[i]);
    if (add == nullptr) {
      continue;
    }
    std::string chain;
    std::string comment;
    ruleExprs(msgs[i + 1].nlh, &chain, &comment);
    EXPECT_EQ(chain, add->rule.chain);
    EXPECT_EQ(comment, add->rule.comment);
  }
}

TEST(EncodeBatch, RemovePlanIsEnsureThenDelete) {
  auto batch = encodeBatch(planRemove(), 7);
  ASSERT_TRUE(batch.ok()) << batch.message();
  auto msgs = decode(batch->bytes);
  ASSERT_EQ(msgs.size(), 4u);
  EXPECT_EQ(msgs[1].type, nftMessageType(NFT_MSG_NEWTABLE));
  EXPECT_EQ(msgs[1].flags & NLM_F_EXCL, 0);
  EXPECT_EQ(msgs[2].type, nftMessageType(NFT_MSG_DELTABLE));
}

TEST(EncodeGetTable, AsksForTheTableWithAck) {
  auto req = encodeGetTable(42);
  ASSERT_TRUE(req.ok()) << req.message();
  auto msgs = decode(*req);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, nftMessageType(NFT_MSG_GETTABLE));
  EXPECT_EQ(msgs[0].seq, 42u);
  EXPECT_NE(msgs[0].flags & NLM_F_ACK, 0);
  EXPECT_EQ(msgs[0].flags & NLM_F_DUMP, 0);
}

// ---- kernel answers -------------------------------------------------------

// Builds an NLMSG_ERROR message the way the kernel does with NETLINK_CAP_ACK
// (capped) and NETLINK_EXT_ACK (optional message TLV).
void appendAck(std::vector<uint8_t>& out, uint32_t seq, int error, const std::string& extack = "",
               bool capped = true) {
  std::vector<uint8_t> buf(MNL_SOCKET_BUFFER_SIZE, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = NLMSG_ERROR;
  nlh->nlmsg_seq = seq;
  nlh->nlmsg_flags = capped ? NLM_F_CAPPED : 0;
  auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nlmsgerr)));
  err->error = -error;
  err->msg.nlmsg_len = sizeof(nlmsghdr) + (capped ? 0 : 8);
  err->msg.nlmsg_seq = seq;
  if (!capped) {
    mnl_nlmsg_put_extra_header(nlh, 8);  // echoed request payload
  }
  if (!extack.empty()) {
    nlh->nlmsg_flags |= NLM_F_ACK_TLVS;
    mnl_attr_put_strz(nlh, NLMSGERR_ATTR_MSG, extack.c_str());
  }
  out.insert(out.end(), buf.data(), buf.data() + nlh->nlmsg_len);
}

TEST(ParseReplies, SplitsAcksAndErrors) {
  std::vector<uint8_t> dgram;
  appendAck(dgram, 10, 0);
  appendAck(dgram, 11, ENOENT, "no such thing");
  appendAck(dgram, 12, EINVAL, "uncapped detail", false);
  auto replies = parseReplies(dgram);
  ASSERT_TRUE(replies.ok()) << replies.message();
  ASSERT_EQ(replies->size(), 3u);
  EXPECT_EQ((*replies)[0].seq, 10u);
  EXPECT_EQ((*replies)[0].error, 0);
  EXPECT_EQ((*replies)[1].type, NLMSG_ERROR);
  EXPECT_EQ((*replies)[1].error, ENOENT);
  EXPECT_EQ((*replies)[1].detail, "no such thing");
  EXPECT_EQ((*replies)[2].error, EINVAL);
  EXPECT_EQ((*replies)[2].detail, "uncapped detail");
}

TEST(ParseReplies, RejectsTruncatedInput) {
  std::vector<uint8_t> dgram;
  appendAck(dgram, 10, 0);
  dgram.resize(dgram.size() - 4);
  EXPECT_FALSE(parseReplies(dgram).ok());
  std::vector<uint8_t> short_error(sizeof(nlmsghdr), 0);
  auto* nlh = reinterpret_cast<nlmsghdr*>(short_error.data());
  nlh->nlmsg_len = sizeof(nlmsghdr);
  nlh->nlmsg_type = NLMSG_ERROR;
  EXPECT_FALSE(parseReplies(short_error).ok());
}

class BatchAnswersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plan_ = capturePlan();
    auto b = encodeBatch(plan_, 100);
    ASSERT_TRUE(b.ok());
    batch_ = *b;
  }
  size_t indexOfRedirectRule() const {
    for (size_t i = 0; i < plan_.size(); ++i) {
      if (const auto* r = std::get_if<msg::AddRule>(&plan_[i]);
          r != nullptr && r->rule.chain == "prerouting") {
        return i;
      }
    }
    ADD_FAILURE() << "no redirect rule";
    return 0;
  }
  Reply ack(uint32_t seq, int error = 0) const { return Reply{NLMSG_ERROR, seq, error, ""}; }

  std::vector<Message> plan_;
  EncodedBatch batch_;
};

TEST_F(BatchAnswersTest, AllAckedIsSuccess) {
  BatchAnswers answers(plan_, batch_);
  EXPECT_FALSE(answers.complete());
  for (uint32_t seq : batch_.seqs) {
    answers.add(ack(seq));
  }
  answers.add(ack(9999, EINVAL));  // someone else's answer: ignored
  EXPECT_TRUE(answers.complete());
  EXPECT_TRUE(answers.outcome().ok());
}

TEST_F(BatchAnswersTest, MissingAnswerIsAnError) {
  BatchAnswers answers(plan_, batch_);
  for (size_t i = 0; i + 1 < batch_.seqs.size(); ++i) {
    answers.add(ack(batch_.seqs[i]));
  }
  EXPECT_FALSE(answers.complete());
  auto outcome = answers.outcome();
  ASSERT_FALSE(outcome.ok());
  EXPECT_THAT(outcome.message(), HasSubstr("no answer from the kernel"));
}

TEST_F(BatchAnswersTest, RedirectRuleRejectedNamesMissingFeature) {
  BatchAnswers answers(plan_, batch_);
  const size_t redirect = indexOfRedirectRule();
  for (size_t i = 0; i < batch_.seqs.size(); ++i) {
    // Rules after a failure fail too; the first one is the one to report.
    answers.add(ack(batch_.seqs[i], i < redirect ? 0 : ENOENT));
  }
  EXPECT_TRUE(answers.complete());
  EXPECT_TRUE(answers.sawError());
  auto outcome = answers.outcome();
  ASSERT_FALSE(outcome.ok());
  EXPECT_THAT(outcome.message(), HasSubstr("redirect to :15001"));
  EXPECT_THAT(outcome.message(),
              HasSubstr("kernel lacks nft redirect support (CONFIG_NFT_REDIR, module nft_redir?)"));
  EXPECT_THAT(outcome.message(), HasSubstr("more error(s)"));
}

TEST_F(BatchAnswersTest, BatchLevelPermissionErrorCompletesAndExplains) {
  BatchAnswers answers(plan_, batch_);
  answers.add(Reply{NLMSG_ERROR, batch_.begin_seq, EPERM, ""});
  EXPECT_TRUE(answers.complete());
  auto outcome = answers.outcome();
  ASSERT_FALSE(outcome.ok());
  EXPECT_THAT(outcome.message(), HasSubstr("CAP_NET_ADMIN"));
}

TEST_F(BatchAnswersTest, ExtackDetailIsReported) {
  BatchAnswers answers(plan_, batch_);
  for (size_t i = 0; i < batch_.seqs.size(); ++i) {
    answers.add(Reply{NLMSG_ERROR, batch_.seqs[i], i == 7 ? EINVAL : 0, i == 7 ? "bad hook" : ""});
  }
  auto outcome = answers.outcome();
  ASSERT_FALSE(outcome.ok());
  EXPECT_THAT(outcome.message(), HasSubstr(describe(plan_[7])));
  EXPECT_THAT(outcome.message(), HasSubstr("bad hook"));
  EXPECT_THAT(outcome.message(), HasSubstr("nothing was changed"));
}

TEST(ExplainError, NatChainHint) {
  Message m = msg::AddChain{Chain{"prerouting", "nat", NF_INET_PRE_ROUTING, -110, "c"}};
  EXPECT_THAT(explainError(m, EOPNOTSUPP, ""), HasSubstr("nft_chain_nat"));
}

TEST(ExplainError, RejectRuleHint) {
  auto rs = buildCaptureRuleset(captureSpec(true));
  ASSERT_TRUE(rs.ok());
  const Rule* quic = nullptr;
  for (const Rule& r : rs->rules) {
    if (r.chain == "forward" && r.text.find("reject") != std::string::npos) {
      quic = &r;
    }
  }
  ASSERT_NE(quic, nullptr);
  std::string text = explainError(msg::AddRule{*quic}, ENOENT, "");
  EXPECT_THAT(text, HasSubstr("udp dport 443 counter reject"));
  EXPECT_THAT(text, HasSubstr("nft_reject_inet"));
}

TEST(ExplainError, SetElementsNameTheInterfaces) {
  auto rs = buildCaptureRuleset(captureSpec(true));
  ASSERT_TRUE(rs.ok());
  Message m = msg::AddSetElements{rs->sets[0]};
  std::string text = explainError(m, EINVAL, "");
  EXPECT_THAT(text, HasSubstr("\"veth1\""));
  EXPECT_THAT(text, HasSubstr("Invalid argument"));
}

// The compat backend: what iptables-nft 1.8.9 sends for `-j NFQUEUE
// --queue-num 7467` (`nft --debug=netlink` prints "[ target name NFQUEUE rev
// 3 ]"): revision 3 with xt_NFQ_info_v3 {7467, 1, flags 0 = no bypass},
// host byte order, padded to 8 bytes.
TEST(EncodeBatch, CompatQueueIsXtNfqueueRev3WithoutBypass) {
  auto rs = buildCaptureRuleset(captureSpec(true), QueueBackend::Compat);
  ASSERT_TRUE(rs.ok()) << rs.message();
  auto batch = encodeBatch(planReplace(*rs), 1);
  ASSERT_TRUE(batch.ok()) << batch.message();
  auto rules = allRuleExprs(*batch);
  ASSERT_EQ(rules.size(), 22u);
  for (size_t i : {15u, 16u, 17u}) {
    EXPECT_EQ(rules[i].back(), "target name NFQUEUE rev 3") << i;
  }
  Expr q = queueExpr(QueueBackend::Compat, 7467);
  const auto* xt = std::get_if<expr::XtTarget>(&q);
  ASSERT_NE(xt, nullptr);
  EXPECT_EQ(xt->name, "NFQUEUE");
  EXPECT_EQ(xt->rev, 3u);
  ASSERT_EQ(xt->info.size(), 8u);
  uint16_t fields[3];
  std::memcpy(fields, xt->info.data(), sizeof(fields));
  EXPECT_EQ(fields[0], 7467);
  EXPECT_EQ(fields[1], 1);
  EXPECT_EQ(fields[2], 0);  // no NFQ_FLAG_BYPASS: fail closed
  Expr n = queueExpr(QueueBackend::Native, 7467);
  EXPECT_EQ(n, Expr(expr::Queue{7467, 1, 0}));  // no NFT_QUEUE_FLAG_BYPASS
}

}  // namespace
}  // namespace tollgate::nat
