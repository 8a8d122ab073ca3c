// Pure tests of the binding counters: which chains count which check, the
// decoding of a rule dump, the tally of the last rules, and totals kept
// across table replacements.
#include "nat/binding_counters.h"

#include <arpa/inet.h>  // <netinet/in.h> before <linux/netfilter.h>, or they clash
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include <ostream>
#include <string>
#include <vector>

#include "base/handles.h"
#include "nat/nft_batch.h"
#include "nat/ruleset.h"

namespace tollgate::nat {

// gtest prints BindingCounts (found by ADL, so outside the anonymous namespace).
void PrintTo(const BindingCounts& c, std::ostream* os) {
  *os << "{source " << c[BindingCheck::kSource] << ", neighbour " << c[BindingCheck::kNeighbour]
      << ", routed_source " << c[BindingCheck::kRoutedSource] << ", foreign_port "
      << c[BindingCheck::kForeignPort] << "}";
}

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::Pair;

TEST(BindingChainOf, NamesTheSandboxAndCheckOfEachBindingChain) {
  EXPECT_THAT(bindingChainOf(kFamilyBridge, "port_agents"),
              Optional(Pair("agents", BindingCheck::kSource)));
  EXPECT_THAT(bindingChainOf(kFamilyBridge, "nd_ci.build-2"),
              Optional(Pair("ci.build-2", BindingCheck::kNeighbour)));
  EXPECT_THAT(bindingChainOf(kFamilyInet, "own_a_b"),
              Optional(Pair("a_b", BindingCheck::kRoutedSource)));
  EXPECT_THAT(bindingChainOf(kFamilyInet, "from_port_x"),
              Optional(Pair("port_x", BindingCheck::kForeignPort)));
  // The same names in the other family, tollgate's other chains, and a
  // prefix without a sandbox count nothing.
  EXPECT_EQ(bindingChainOf(kFamilyInet, "port_agents"), std::nullopt);
  EXPECT_EQ(bindingChainOf(kFamilyBridge, "own_agents"), std::nullopt);
  for (const char* chain : {"prerouting", "forward", "bind", "input", "port_", "nd", "from"}) {
    EXPECT_EQ(bindingChainOf(kFamilyBridge, chain), std::nullopt) << chain;
    EXPECT_EQ(bindingChainOf(kFamilyInet, chain), std::nullopt) << chain;
  }
}

TEST(BindingChainOf, CoversEveryChainTheBindingRulesetsDropIn) {
  std::vector<PortBinding> bindings = {
      PortBinding{"agents", {"tap-a*"}, {Prefix{false, {10, 77, 0, 10}, 32}}},
      PortBinding{"ci.build-2", {"tgport1"}, {Prefix{false, {10, 79, 0, 0}, 24}}}};
  auto bridge = buildBindingRuleset(bindings);
  ASSERT_TRUE(bridge.ok()) << bridge.message();
  CaptureSpec spec;
  spec.interfaces = {"br0"};
  spec.bindings = bindings;
  auto inet = buildCaptureRuleset(spec);
  ASSERT_TRUE(inet.ok()) << inet.message();
  std::map<std::pair<std::string, BindingCheck>, std::string> last_rule;
  for (const Ruleset* rs : {&*bridge, &*inet}) {
    for (const Rule& r : rs->rules) {
      if (auto which = bindingChainOf(rs->family, r.chain)) {
        last_rule[*which] = r.text;
      }
    }
  }
  ASSERT_EQ(last_rule.size(), 8u);  // 2 sandboxes x 4 checks
  for (const auto& [which, text] : last_rule) {
    EXPECT_EQ(text, "counter drop") << which.first << " " << bindingCheckName(which.second);
  }
}

// A NEWRULE message as the kernel dumps it: table, chain, expressions with
// the counter's values.
std::vector<uint8_t> dumpedRule(uint32_t family, const std::string& chain,
                                std::optional<uint64_t> packets, int32_t verdict,
                                uint16_t flags = NLM_F_MULTI) {
  NftRule r(nftnl_rule_alloc());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, kTableName);
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, family);
  if (packets) {
    nftnl_expr* ctr = nftnl_expr_alloc("counter");
    nftnl_expr_set_u64(ctr, NFTNL_EXPR_CTR_PACKETS, *packets);
    nftnl_expr_set_u64(ctr, NFTNL_EXPR_CTR_BYTES, *packets * 60);
    nftnl_rule_add_expr(r.get(), ctr);  // the rule owns it
  }
  nftnl_expr* imm = nftnl_expr_alloc("immediate");
  nftnl_expr_set_u32(imm, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32(imm, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(verdict));
  nftnl_rule_add_expr(r.get(), imm);
  std::vector<uint8_t> buf(MNL_SOCKET_BUFFER_SIZE, 0);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(reinterpret_cast<char*>(buf.data()), NFT_MSG_NEWRULE,
                                        static_cast<uint16_t>(family), flags, 77);
  nftnl_rule_nlmsg_build_payload(nlh, r.get());
  buf.resize(nlh->nlmsg_len);
  return buf;
}

TEST(ParseReplies, DecodesDumpedRulesWithTheirCounterAndVerdict) {
  std::vector<uint8_t> dgram = dumpedRule(kFamilyBridge, "port_agents", 42, NF_DROP);
  auto second =
      dumpedRule(kFamilyInet, "bind", std::nullopt, NF_ACCEPT, NLM_F_MULTI | NLM_F_DUMP_INTR);
  dgram.insert(dgram.end(), second.begin(), second.end());
  auto replies = parseReplies(dgram);
  ASSERT_TRUE(replies.ok()) << replies.message();
  ASSERT_EQ(replies->size(), 2u);
  const Reply& a = (*replies)[0];
  EXPECT_EQ(a.seq, 77u);
  ASSERT_TRUE(a.rule.has_value());
  EXPECT_EQ(*a.rule, (DumpedRule{kFamilyBridge, "tollgate", "port_agents", 42, true}));
  const Reply& b = (*replies)[1];
  ASSERT_TRUE(b.rule.has_value());
  EXPECT_EQ(*b.rule, (DumpedRule{kFamilyInet, "tollgate", "bind", std::nullopt, false}));
  EXPECT_NE(b.flags & NLM_F_DUMP_INTR, 0);
}

TEST(EncodeGetRules, AsksForADumpOfTheTollgateTable) {
  auto req = encodeGetRules(9, kFamilyBridge);
  ASSERT_TRUE(req.ok()) << req.message();
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(req->data());
  ASSERT_EQ(nlh->nlmsg_len, req->size());
  EXPECT_EQ(nlh->nlmsg_type, nftMessageType(NFT_MSG_GETRULE));
  EXPECT_EQ(nlh->nlmsg_flags & NLM_F_DUMP, NLM_F_DUMP);
  EXPECT_EQ(nlh->nlmsg_seq, 9u);
  NftRule r(nftnl_rule_alloc());
  ASSERT_GE(nftnl_rule_nlmsg_parse(nlh, r.get()), 0);
  EXPECT_STREQ(nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE), "tollgate");
  EXPECT_EQ(nftnl_rule_get_u32(r.get(), NFTNL_RULE_FAMILY), kFamilyBridge);
  EXPECT_FALSE(nftnl_rule_is_set(r.get(), NFTNL_RULE_CHAIN));  // every chain
}

DumpedRule rule(uint32_t family, const std::string& chain, std::optional<uint64_t> packets,
                bool drops, const std::string& table = "tollgate") {
  return DumpedRule{family, table, chain, packets, drops};
}

TEST(TallyBindingDrops, TakesTheLastRuleOfEachBindingChain) {
  auto drops = tallyBindingDrops({
      rule(kFamilyBridge, "prerouting", 500, false),  // counter jump port_agents: not a drop count
      rule(kFamilyBridge, "port_agents", std::nullopt, false),
      rule(kFamilyBridge, "port_agents", 3, true),
      rule(kFamilyBridge, "nd_agents", 1, true),
      rule(kFamilyInet, "own_agents", 0, true),
      rule(kFamilyInet, "from_agents", 7, true),
      rule(kFamilyInet, "from_ci", 2, true),
      rule(kFamilyInet, "from_other", 99, true, "other_table"),
  });
  ASSERT_TRUE(drops.ok()) << drops.message();
  ASSERT_EQ(drops->size(), 2u);
  const BindingCounts& a = drops->at("agents");
  EXPECT_EQ(a[BindingCheck::kSource], 3u);
  EXPECT_EQ(a[BindingCheck::kNeighbour], 1u);
  EXPECT_EQ(a[BindingCheck::kRoutedSource], 0u);
  EXPECT_EQ(a[BindingCheck::kForeignPort], 7u);
  EXPECT_EQ(drops->at("ci")[BindingCheck::kForeignPort], 2u);
  EXPECT_EQ(drops->at("ci")[BindingCheck::kSource], 0u);
}

TEST(TallyBindingDrops, RefusesAChainThatDoesNotEndInCounterDrop) {
  auto no_counter = tallyBindingDrops({rule(kFamilyBridge, "nd_agents", std::nullopt, true)});
  ASSERT_FALSE(no_counter.ok());
  EXPECT_THAT(no_counter.message(), HasSubstr("chain nd_agents in table bridge tollgate"));
  auto accepts = tallyBindingDrops({rule(kFamilyInet, "own_agents", 5, false)});
  ASSERT_FALSE(accepts.ok());
  EXPECT_THAT(accepts.message(), HasSubstr("not `counter drop`"));
  auto none = tallyBindingDrops({});
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(*none, IsEmpty());
}

BindingCounts counts(uint64_t source, uint64_t neighbour, uint64_t routed, uint64_t foreign) {
  return BindingCounts{{source, neighbour, routed, foreign}};
}

TEST(BindingDropIncreases, ListsWhatGrewInOrderAndDescribesIt) {
  BindingDrops before{{"agents", counts(1, 0, 0, 0)}};
  BindingDrops after{{"agents", counts(4, 0, 0, 2)}, {"trusted", counts(0, 1, 0, 0)}};
  auto inc = bindingDropIncreases(before, after);
  EXPECT_THAT(inc, ElementsAre(BindingDropIncrease{"agents", BindingCheck::kSource, 3},
                               BindingDropIncrease{"agents", BindingCheck::kForeignPort, 2},
                               BindingDropIncrease{"trusted", BindingCheck::kNeighbour, 1}));
  EXPECT_EQ(describeIncreases(inc), "agents: source +3, foreign_port +2; trusted: neighbour +1");
  EXPECT_THAT(bindingDropIncreases(after, after), IsEmpty());
  EXPECT_EQ(describeIncreases({}), "");
}

TEST(BindingDropTotals, KeepsWhatReplacedTablesCounted) {
  BindingDropTotals t;
  EXPECT_THAT(t.totals(), IsEmpty());
  t.observe({{"agents", counts(2, 1, 0, 0)}});
  t.observe({{"agents", counts(5, 1, 0, 0)}});
  EXPECT_EQ(t.totals().at("agents"), counts(5, 1, 0, 0));
  // A reload replaces the tables: read right before, then the counters
  // start from zero in the new ones; a sandbox bound by the reload joins.
  t.observe({{"agents", counts(6, 1, 0, 0)}});
  t.tablesReplaced();
  EXPECT_EQ(t.totals().at("agents"), counts(6, 1, 0, 0));
  t.observe({{"agents", counts(0, 0, 0, 0)}, {"ci", counts(0, 0, 0, 0)}});
  t.observe({{"agents", counts(1, 0, 0, 3)}, {"ci", counts(0, 0, 4, 0)}});
  EXPECT_EQ(t.totals().at("agents"), counts(7, 1, 0, 3));
  EXPECT_EQ(t.totals().at("ci"), counts(0, 0, 4, 0));
}

TEST(BindingDropTotals, ACounterThatWentBackStartedAgainFromZero) {
  BindingDropTotals t;
  t.observe({{"agents", counts(5, 2, 0, 0)}, {"ci", counts(0, 0, 1, 0)}});
  // Replaced behind our back (or `nft reset counters`), and ci lost its
  // ports: nothing counted so far is lost, nothing is counted twice.
  t.observe({{"agents", counts(1, 2, 0, 0)}});
  EXPECT_EQ(t.totals().at("agents"), counts(6, 2, 0, 0));
  EXPECT_EQ(t.totals().at("ci"), counts(0, 0, 1, 0));
  t.observe({{"agents", counts(1, 2, 0, 0)}, {"ci", counts(0, 0, 2, 0)}});
  EXPECT_EQ(t.totals().at("ci"), counts(0, 0, 3, 0));
}

}  // namespace
}  // namespace tollgate::nat
