// Root tests against the real kernel: the table tollgate installs, read back
// with the nft CLI, in a network namespace owned by each test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "nat/nat.h"
#include "nat/ruleset.h"
#include "tests/component/nat/netns_util.h"

namespace tollgate::nat {
namespace {

using nstest::Netns;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

struct ListedChain {
  std::string type;
  std::string hook;
  int prio = 0;
  std::vector<std::string> rules;     // rule text, normalised (see normalise())
  std::vector<std::string> comments;  // rule comments
};

struct ListedTable {
  std::map<std::string, ListedChain> chains;
  std::map<std::string, std::vector<std::string>> set_elements;
  std::string comment;
};

// `nft list` prints counter values and comments; our rule texts omit both.
std::string normalise(std::string line) {
  static const std::regex kComment(R"( comment ".*"$)");
  static const std::regex kCounter(R"(counter packets \d+ bytes \d+)");
  line = std::regex_replace(line, kComment, "");
  line = std::regex_replace(line, kCounter, "counter");
  size_t start = line.find_first_not_of(" \t");
  return start == std::string::npos ? "" : line.substr(start);
}

// The expressions of each rule of `chain` as the kernel holds them, as
// `nft --debug=netlink list chain` prints them ("[ reject type 2 code 1 ]").
std::vector<std::vector<std::string>> kernelRuleExprs(const Netns& ns, const std::string& table,
                                                      const std::string& chain,
                                                      const std::string& family = "inet") {
  // stderr dropped: nft warns that a table holding xt (compat) expressions
  // "is managed by iptables-nft", in the middle of the listing.
  auto res = ns.exec("nft --debug=netlink list chain " + family + " " + table + " '" + chain +
                     "' 2>/dev/null");
  EXPECT_EQ(res.status, 0) << res.out;
  std::vector<std::vector<std::string>> out;
  size_t pos = 0;
  while (pos < res.out.size()) {
    size_t eol = res.out.find('\n', pos);
    std::string line =
        res.out.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    pos = eol == std::string::npos ? res.out.size() : eol + 1;
    if (line.rfind(family + " " + table + " " + chain + " ", 0) == 0) {
      out.emplace_back();  // a new rule: "inet TABLE CHAIN HANDLE [PREV]"
    } else if (line.rfind("  [ ", 0) == 0 && !out.empty()) {
      static const std::regex kCounter(R"(counter pkts \d+ bytes \d+)");
      out.back().push_back(std::regex_replace(line.substr(2), kCounter, "counter"));
    }
  }
  return out;
}

class NatTableTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(ns_.ok()) << ns_.error(); }

  CaptureSpec spec(std::vector<std::string> ifaces, uint16_t port = 15001, bool ipv6 = true) {
    CaptureSpec s;
    s.interfaces = std::move(ifaces);
    s.listen_port = port;
    s.ipv6_capture = ipv6;
    return s;
  }

  Result<QueueBackend> install(const CaptureSpec& s) {
    return ns_.in([&] { return installCapture(s); });
  }
  Result<void> block(const std::vector<std::string>& ifaces) {
    return ns_.in([&] { return installBlock(ifaces); });
  }
  Result<void> remove() {
    return ns_.in([] { return removeTable(); });
  }
  Result<bool> exists() {
    return ns_.in([] { return tableExists(); });
  }

  // nft's own encoding of one rule: `rule` added by nft from its text to
  // chain c of a scratch table `ref` (with the interface set), as the
  // kernel holds it.
  std::vector<std::string> nftReference(const std::string& ref, const std::string& rule) {
    auto res = ns_.exec("nft add table inet " + ref + " && nft add set inet " + ref +
                        " sandbox_ifaces { type ifname\\; } && nft add chain inet " + ref +
                        " c && nft add rule inet " + ref + " c " + rule);
    EXPECT_EQ(res.status, 0) << res.out;
    auto exprs = kernelRuleExprs(ns_, ref, "c");
    EXPECT_EQ(exprs.size(), 1u);
    return exprs.empty() ? std::vector<std::string>{} : exprs[0];
  }

  // Number of `inet tollgate` tables the kernel lists.
  int tollgateTables() {
    auto res = ns_.exec("nft -j list tables");
    EXPECT_EQ(res.status, 0) << res.out;
    int n = 0;
    auto doc = nlohmann::json::parse(res.out, nullptr, false);
    if (doc.is_discarded()) {
      ADD_FAILURE() << "bad JSON: " << res.out;
      return -1;
    }
    for (const auto& item : doc["nftables"]) {
      if (item.contains("table") && item["table"]["name"] == "tollgate" &&
          item["table"]["family"] == "inet") {
        ++n;
      }
    }
    return n;
  }

  // The table as nft lists it: chain properties and set elements from the
  // JSON output, rule texts from the plain output (what operators read).
  ListedTable listed(const std::string& family = "inet") {
    ListedTable t;
    auto json = ns_.exec("nft -j list table " + family + " tollgate");
    EXPECT_EQ(json.status, 0) << json.out;
    auto doc = nlohmann::json::parse(json.out, nullptr, false);
    if (doc.is_discarded()) {
      ADD_FAILURE() << "bad JSON: " << json.out;
      return t;
    }
    for (const auto& item : doc["nftables"]) {
      if (item.contains("chain")) {
        const auto& c = item["chain"];
        ListedChain& lc = t.chains[c["name"].get<std::string>()];
        lc.type = c.value("type", "");
        lc.hook = c.value("hook", "");
        lc.prio = c.value("prio", 0);
      } else if (item.contains("set")) {
        const auto& s = item["set"];
        auto& elems = t.set_elements[s["name"].get<std::string>()];
        if (s.contains("elem")) {
          if (s["elem"].is_array()) {
            for (const auto& e : s["elem"]) {
              elems.push_back(e.get<std::string>());
            }
          } else {
            elems.push_back(s["elem"].get<std::string>());
          }
        }
      } else if (item.contains("rule")) {
        const auto& r = item["rule"];
        t.chains[r["chain"].get<std::string>()].comments.push_back(r.value("comment", ""));
      }
    }
    // stderr dropped: nft 1.0.6 translates the compat NFQUEUE target back to
    // `queue num N` but libxtables complains on stderr that it does not know
    // the inet family ("unhandled NFPROTO in xtables_set_nfproto").
    auto text = ns_.exec("nft list table " + family + " tollgate 2>/dev/null");
    EXPECT_EQ(text.status, 0) << text.out;
    std::string chain;
    bool in_rules = false;
    size_t pos = 0;
    while (pos < text.out.size()) {
      size_t eol = text.out.find('\n', pos);
      std::string line =
          normalise(text.out.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos));
      pos = eol == std::string::npos ? text.out.size() : eol + 1;
      std::smatch m;
      if (std::regex_match(line, m, std::regex(R"(chain (\S+) \{)"))) {
        chain = m[1];
        in_rules = true;  // a base chain's `type ...` line and its comment are skipped below
      } else if (!chain.empty() &&
                 (line.rfind("type ", 0) == 0 || line.rfind("comment \"", 0) == 0)) {
        // the chain's header
      } else if (line == "}") {
        chain.clear();
        in_rules = false;
      } else if (in_rules && !line.empty()) {
        t.chains[chain].rules.push_back(line);
      } else if (chain.empty() && line.rfind("comment \"", 0) == 0 && t.comment.empty()) {
        t.comment = line;
      }
    }
    return t;
  }

  static std::vector<std::string> expectedRules(const Ruleset& rs, const std::string& chain) {
    std::vector<std::string> out;
    for (const Rule& r : rs.rules) {
      if (r.chain == chain) {
        out.push_back(r.text);
      }
    }
    return out;
  }

  static std::vector<std::string> expectedComments(const Ruleset& rs, const std::string& chain) {
    std::vector<std::string> out;
    for (const Rule& r : rs.rules) {
      if (r.chain == chain) {
        out.push_back(r.comment);
      }
    }
    return out;
  }

  // Everything listed matches the ruleset built for `rs`, rule for rule.
  void expectListedMatches(const Ruleset& rs) {
    ListedTable t = listed(rs.family == kFamilyBridge ? "bridge" : "inet");
    std::vector<std::string> want_chains;
    for (const Chain& c : rs.chains) {
      want_chains.push_back(c.name);
    }
    std::vector<std::string> got_chains;
    for (const auto& [name, chain] : t.chains) {
      got_chains.push_back(name);
    }
    EXPECT_THAT(got_chains, ::testing::UnorderedElementsAreArray(want_chains));
    for (const Chain& c : rs.chains) {
      const ListedChain& lc = t.chains[c.name];
      EXPECT_EQ(lc.type, c.type) << c.name;
      EXPECT_EQ(lc.prio, c.priority) << c.name;
      EXPECT_THAT(lc.rules, ElementsAreArray(expectedRules(rs, c.name))) << c.name;
      EXPECT_THAT(lc.comments, ElementsAreArray(expectedComments(rs, c.name))) << c.name;
    }
  }

  Netns ns_;
};

TEST_F(NatTableTest, NoTableAtFirst) {
  auto e = exists();
  ASSERT_TRUE(e.ok()) << e.message();
  EXPECT_FALSE(*e);
}

TEST_F(NatTableTest, InstallCreatesExactlyTheChainsAndRules) {
  auto s = spec({"tgsb0"});
  auto r = install(s);
  ASSERT_TRUE(r.ok()) << r.message();
  auto e = exists();
  ASSERT_TRUE(e.ok()) << e.message();
  EXPECT_TRUE(*e);
  EXPECT_EQ(tollgateTables(), 1);

  auto rs = buildCaptureRuleset(s);
  ASSERT_TRUE(rs.ok());
  expectListedMatches(*rs);
  ListedTable t = listed();
  EXPECT_EQ(t.chains["prerouting"].hook, "prerouting");
  EXPECT_EQ(t.chains["input"].hook, "input");
  EXPECT_EQ(t.chains["forward"].hook, "forward");
  EXPECT_THAT(t.set_elements["sandbox_ifaces"], ElementsAre("tgsb0"));
  EXPECT_THAT(t.set_elements["nd_types"],
              ElementsAre("nd-router-solicit", "nd-neighbor-solicit", "nd-neighbor-advert"));
  EXPECT_THAT(t.comment, HasSubstr("managed by tollgate"));
}

TEST_F(NatTableTest, InstallTwiceReplacesInsteadOfDuplicating) {
  ASSERT_TRUE(install(spec({"tgsb0"})).ok());
  auto second = spec({"tgsb1", "tgsb2"}, 15002);
  auto r = install(second);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(tollgateTables(), 1);
  auto rs = buildCaptureRuleset(second);
  ASSERT_TRUE(rs.ok());
  expectListedMatches(*rs);
  EXPECT_THAT(listed().set_elements["sandbox_ifaces"], ElementsAre("tgsb1", "tgsb2"));
}

TEST_F(NatTableTest, InstallReplacesAStaleTableFromACrash) {
  // Whatever a previous run (or an operator) left in the table goes away.
  auto stale = ns_.exec(
      "nft add table inet tollgate && nft add chain inet tollgate junk && "
      "nft add rule inet tollgate junk counter accept && "
      "nft add set inet tollgate sandbox_ifaces { type ifname\\; } && "
      "nft add element inet tollgate sandbox_ifaces { old0 }");
  ASSERT_EQ(stale.status, 0) << stale.out;
  auto s = spec({"tgsb0"});
  auto r = install(s);
  ASSERT_TRUE(r.ok()) << r.message();
  auto rs = buildCaptureRuleset(s);
  ASSERT_TRUE(rs.ok());
  expectListedMatches(*rs);
  EXPECT_THAT(listed().set_elements["sandbox_ifaces"], ElementsAre("tgsb0"));
}

TEST_F(NatTableTest, Ipv6BlockAddsEarlyIpv6Drop) {
  auto s = spec({"tgsb0"}, 15001, false);
  auto r = install(s);
  ASSERT_TRUE(r.ok()) << r.message();
  auto rs = buildCaptureRuleset(s);
  ASSERT_TRUE(rs.ok());
  expectListedMatches(*rs);
  ListedTable t = listed();
  EXPECT_EQ(t.chains["prerouting_filter"].type, "filter");
  EXPECT_EQ(t.chains["prerouting_filter"].hook, "prerouting");
  EXPECT_EQ(t.chains["prerouting_filter"].prio, -160);
  EXPECT_THAT(t.chains["prerouting_filter"].rules,
              ElementsAre("iifname @sandbox_ifaces icmpv6 type @nd_types counter accept",
                          "iifname @sandbox_ifaces meta nfproto ipv6 counter drop",
                          "iifname @sandbox_ifaces fib saddr . iif oif missing counter drop"));
  EXPECT_THAT(
      t.chains["prerouting"].rules,
      ElementsAre(
          "iifname @sandbox_ifaces meta nfproto ipv4 meta l4proto tcp counter redirect to :15001"));
}

TEST_F(NatTableTest, DnsCaptureAddsRedirectsAndAcceptsInTheSameTable) {
  auto s = spec({"tgsb0"});
  s.dns_port = 15053;
  auto r = install(s);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(tollgateTables(), 1);
  auto rs = buildCaptureRuleset(s);
  ASSERT_TRUE(rs.ok());
  expectListedMatches(*rs);  // rule for rule, comments included
  ListedTable t = listed();
  // TCP/53 before the catch-all TCP redirect, as nft itself reads them back.
  EXPECT_THAT(t.chains["prerouting"].rules,
              ElementsAre("iifname @sandbox_ifaces udp dport 53 counter redirect to :15053",
                          "iifname @sandbox_ifaces tcp dport 53 counter redirect to :15053",
                          "iifname @sandbox_ifaces meta l4proto tcp counter redirect to :15001"));
  EXPECT_THAT(t.chains["input"].rules,
              ElementsAre("iifname @sandbox_ifaces ct state established,related counter accept",
                          "iifname @sandbox_ifaces ct status dnat tcp dport 15001 counter accept",
                          "iifname @sandbox_ifaces ct status dnat udp dport 15053 counter accept",
                          "iifname @sandbox_ifaces ct status dnat tcp dport 15053 counter accept",
                          "iifname @sandbox_ifaces icmpv6 type @nd_types counter accept",
                          "iifname @sandbox_ifaces udp dport 443 counter reject",
                          "iifname @sandbox_ifaces meta l4proto tcp counter reject with tcp reset",
                          "iifname @sandbox_ifaces counter drop"));
  for (const auto& [name, chain] : t.chains) {
    for (const std::string& comment : chain.comments) {
      EXPECT_FALSE(comment.empty()) << name;
    }
  }

  // Reinstalling without dns_port takes the DNS rules out again.
  auto plain = spec({"tgsb0"});
  ASSERT_TRUE(install(plain).ok());
  auto plain_rs = buildCaptureRuleset(plain);
  ASSERT_TRUE(plain_rs.ok());
  expectListedMatches(*plain_rs);
}

TEST_F(NatTableTest, TproxyCaptureIsWhatNftInstalls) {
  auto s = spec({"tgsb0"});
  s.dns_port = 15053;
  s.tproxy = true;
  auto r = install(s);
  ASSERT_TRUE(r.ok()) << r.message();
  auto rs = buildCaptureRuleset(s);
  ASSERT_TRUE(rs.ok());
  expectListedMatches(*rs);  // rule for rule, comments included
  ListedTable t = listed();
  EXPECT_THAT(t.chains["tproxy"].rules,
              ElementsAre("iifname @sandbox_ifaces meta nfproto ipv4 tcp dport "
                          "!= 53 counter tproxy ip to :15001 meta mark set 0x74670003 accept",
                          "iifname @sandbox_ifaces meta nfproto ipv6 tcp dport "
                          "!= 53 counter tproxy ip6 to :15001 meta mark set 0x74670003 accept"));
  // DNS is still redirected; TCP is no longer.
  EXPECT_THAT(t.chains["prerouting"].rules,
              ElementsAre("iifname @sandbox_ifaces udp dport 53 counter redirect to :15053",
                          "iifname @sandbox_ifaces tcp dport 53 counter redirect to :15053"));
  EXPECT_EQ(t.chains["input"].rules[1],
            "iifname @sandbox_ifaces meta mark 0x74670003 counter accept");
}

TEST_F(NatTableTest, DnsCaptureWithIpv6BlockMatchesIpv4Only) {
  auto s = spec({"tgsb0"}, 15001, false);
  s.dns_port = 15053;
  auto r = install(s);
  ASSERT_TRUE(r.ok()) << r.message();
  auto rs = buildCaptureRuleset(s);
  ASSERT_TRUE(rs.ok());
  expectListedMatches(*rs);
  EXPECT_THAT(
      listed().chains["prerouting"].rules,
      ElementsAre(
          "iifname @sandbox_ifaces meta nfproto ipv4 udp dport 53 counter redirect to :15053",
          "iifname @sandbox_ifaces meta nfproto ipv4 tcp dport 53 counter redirect to :15053",
          "iifname @sandbox_ifaces meta nfproto ipv4 meta l4proto tcp counter redirect to :15001"));
}

// QUIC/HTTP3 refusal as the kernel and nft read it back: in input and
// forward, right before the drop, `reject with icmpx type port-unreachable`
// (which nft abbreviates to `reject` in the inet family), and byte for byte
// what nft itself installs for that rule.
TEST_F(NatTableTest, QuicRefusalIsWhatNftInstallsForRejectIcmpxPortUnreachable) {
  auto s = spec({"tgsb0"});
  ASSERT_TRUE(install(s).ok());
  const std::string quic = "iifname @sandbox_ifaces udp dport 443 counter reject";
  const std::string comment = "QUIC/HTTP3: refuse at once so clients fall back to TCP (governed)";
  ListedTable t = listed();
  const auto& in = t.chains["input"].rules;
  const auto& fwd = t.chains["forward"].rules;
  ASSERT_GE(in.size(), 3u);
  EXPECT_EQ(in[in.size() - 3], quic);
  EXPECT_EQ(in[in.size() - 2],
            "iifname @sandbox_ifaces meta l4proto tcp counter reject with tcp reset");
  EXPECT_EQ(in.back(), "iifname @sandbox_ifaces counter drop");
  EXPECT_EQ(t.chains["input"].comments[in.size() - 3], comment);
  ASSERT_GE(fwd.size(), 3u);
  EXPECT_EQ(fwd.front(), quic);
  EXPECT_EQ(fwd[fwd.size() - 2], "iifname @sandbox_ifaces counter drop");
  EXPECT_EQ(fwd.back(), "oifname @sandbox_ifaces ct state ! established,related counter drop");
  EXPECT_EQ(t.chains["forward"].comments[0], comment);

  // JSON spells the reject out.
  auto json = ns_.exec("nft -j list chain inet tollgate forward");
  ASSERT_EQ(json.status, 0) << json.out;
  auto doc = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << json.out;
  std::vector<nlohmann::json> rejects;
  for (const auto& item : doc["nftables"]) {
    if (item.contains("rule")) {
      for (const auto& e : item["rule"]["expr"]) {
        if (e.contains("reject")) {
          rejects.push_back(e["reject"]);
        }
      }
    }
  }
  ASSERT_EQ(rejects.size(), 1u) << json.out;
  EXPECT_EQ(rejects[0].value("type", ""), "icmpx");
  EXPECT_EQ(rejects[0].value("expr", ""), "port-unreachable");

  auto want = nftReference("natquic_ref",
                           "iifname @sandbox_ifaces udp dport 443 counter "
                           "reject with icmpx type port-unreachable");
  EXPECT_THAT(want, ::testing::Contains("[ reject type 2 code 1 ]"));
  auto forward = kernelRuleExprs(ns_, "tollgate", "forward");
  ASSERT_EQ(forward.size(), fwd.size());
  EXPECT_EQ(forward[0], want);
  auto input = kernelRuleExprs(ns_, "tollgate", "input");
  ASSERT_GE(input.size(), 3u);
  EXPECT_EQ(input[input.size() - 3], want);
}

// Sandbox TCP to the host that was not redirected (e.g. dialled straight at
// the listener's address and port) gets a reset, byte for byte what nft
// installs for `reject with tcp reset`.
TEST_F(NatTableTest, HostTcpResetIsWhatNftInstalls) {
  ASSERT_TRUE(install(spec({"tgsb0"})).ok());
  auto want = nftReference(
      "natrst_ref", "iifname @sandbox_ifaces meta l4proto tcp counter reject with tcp reset");
  EXPECT_THAT(want, ::testing::Contains(::testing::HasSubstr("reject type 1")));
  auto input = kernelRuleExprs(ns_, "tollgate", "input");
  ASSERT_GE(input.size(), 2u);
  EXPECT_EQ(input[input.size() - 2], want);
}

TEST_F(NatTableTest, BadDnsPortChangesNothing) {
  ASSERT_TRUE(install(spec({"tgsb0"})).ok());
  for (uint16_t bad : {uint16_t{15001}, uint16_t{53}}) {
    auto s = spec({"tgsb0"});
    s.dns_port = bad;
    auto r = install(s);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.message(), HasSubstr("gateway.dns_port")) << bad;
  }
  auto rs = buildCaptureRuleset(spec({"tgsb0"}));
  ASSERT_TRUE(rs.ok());
  expectListedMatches(*rs);
}

TEST_F(NatTableTest, InstallBlockReplacesCapture) {
  ASSERT_TRUE(install(spec({"tgsb0"})).ok());
  auto r = block({"tgsb0"});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(tollgateTables(), 1);
  auto rs = buildBlockRuleset({"tgsb0"});
  ASSERT_TRUE(rs.ok());
  expectListedMatches(*rs);
  ListedTable t = listed();
  EXPECT_EQ(t.chains.count("prerouting"), 0u);
  EXPECT_THAT(t.comment, HasSubstr("block"));
  // The block stays silent: the capture's QUIC refusal is gone.
  auto text = ns_.exec("nft list table inet tollgate");
  EXPECT_EQ(text.out.find("reject"), std::string::npos) << text.out;
}

TEST_F(NatTableTest, InstallBlockWithoutPriorTable) {
  auto r = block({"tgsb0", "tgsb1"});
  ASSERT_TRUE(r.ok()) << r.message();
  auto rs = buildBlockRuleset({"tgsb0", "tgsb1"});
  ASSERT_TRUE(rs.ok());
  expectListedMatches(*rs);
}

TEST_F(NatTableTest, RemoveTableRemoves) {
  ASSERT_TRUE(install(spec({"tgsb0"})).ok());
  auto r = remove();
  ASSERT_TRUE(r.ok()) << r.message();
  auto e = exists();
  ASSERT_TRUE(e.ok()) << e.message();
  EXPECT_FALSE(*e);
  EXPECT_EQ(tollgateTables(), 0);
}

TEST_F(NatTableTest, RemoveTableWhenAbsentIsOk) {
  auto r = remove();
  ASSERT_TRUE(r.ok()) << r.message();
  auto again = remove();
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(tollgateTables(), 0);
}

// Interfaces are matched by name (iifname), so a name that does not exist
// (yet) is accepted by the kernel: a sandbox bridge created after tollgate
// started is captured the moment it appears. Typos are therefore not caught
// here; `tollgate doctor` / config validation should warn about them.
TEST_F(NatTableTest, UnknownInterfaceNamesAreAccepted) {
  ASSERT_EQ(ns_.exec("ip link show tgnoexist0").status == 0, false);
  auto r = install(spec({"tgnoexist0"}));
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_THAT(listed().set_elements["sandbox_ifaces"], ElementsAre("tgnoexist0"));
  auto b = block({"tgnoexist0"});
  ASSERT_TRUE(b.ok()) << b.message();
}

TEST_F(NatTableTest, InvalidSpecChangesNothing) {
  ASSERT_TRUE(install(spec({"tgsb0"})).ok());
  auto bad = install(spec({"tgsb0", "no/slash"}));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.message(), HasSubstr("interface 'no/slash'"));
  auto bad_block = block({});
  ASSERT_FALSE(bad_block.ok());
  auto rs = buildCaptureRuleset(spec({"tgsb0"}));
  ASSERT_TRUE(rs.ok());
  expectListedMatches(*rs);
}

TEST_F(NatTableTest, LeavesOtherTablesAlone) {
  auto other = ns_.exec(
      "nft add table inet other && nft add chain inet other c && nft add table ip tollgate");
  ASSERT_EQ(other.status, 0) << other.out;
  ASSERT_TRUE(install(spec({"tgsb0"})).ok());
  ASSERT_TRUE(block({"tgsb0"}).ok());
  ASSERT_TRUE(remove().ok());
  auto tables = ns_.exec("nft list tables");
  EXPECT_THAT(tables.out, HasSubstr("table inet other"));
  EXPECT_THAT(tables.out, HasSubstr("table ip tollgate"));  // same name, other family
  EXPECT_EQ(tables.out.find("table inet tollgate"), std::string::npos);
}

TEST_F(NatTableTest, ManyInterfacesFitOneBatch) {
  std::vector<std::string> ifaces;
  for (size_t i = 0; i < kMaxInterfaces; ++i) {
    ifaces.push_back("tgveth" + std::to_string(i));
  }
  auto r = install(spec(ifaces));
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(listed().set_elements["sandbox_ifaces"].size(), kMaxInterfaces);
}

// UDP / ICMP admission and anti-spoofing rules as the kernel holds them,
// compared rule for rule with what nft itself installs for the same text
// (the queue rules without their last expression: nft 1.0.6 can only write
// the native queue, which this kernel may lack; the compat target is
// compared with iptables-nft's below).
TEST_F(NatTableTest, AdmissionRulesAreWhatNftInstalls) {
  auto s = spec({"tgsb0"});
  ASSERT_TRUE(install(s).ok());
  auto ref = ns_.exec(
      "nft add table inet natadm_ref && "
      "nft add set inet natadm_ref sandbox_ifaces { type ifname\\; } && "
      "nft add set inet natadm_ref nd_types { type icmpv6_type\\; } && "
      "nft add chain inet natadm_ref f && nft add chain inet natadm_ref p && "
      "nft add rule inet natadm_ref f iifname @sandbox_ifaces udp dport 443 counter reject && "
      "nft add rule inet natadm_ref f iifname @sandbox_ifaces meta mark 0x74670001 ct mark set "
      "0x74670001 counter accept && "
      "nft add rule inet natadm_ref f iifname @sandbox_ifaces meta mark 0x74670002 counter drop && "
      "nft add rule inet natadm_ref f iifname @sandbox_ifaces icmp type echo-request ip length "
      "\\> 92 counter drop && "
      "nft add rule inet natadm_ref f iifname @sandbox_ifaces icmp type echo-request limit rate "
      "over 20/second counter drop && "
      "nft add rule inet natadm_ref f iifname @sandbox_ifaces icmpv6 type echo-request ip6 "
      "length \\> 72 counter drop && "
      "nft add rule inet natadm_ref f iifname @sandbox_ifaces icmpv6 type echo-request limit "
      "rate over 20/second counter drop && "
      "nft add rule inet natadm_ref f iifname @sandbox_ifaces ct mark 0x74670001 counter accept && "
      "nft add rule inet natadm_ref f iifname @sandbox_ifaces meta l4proto udp ct state new "
      "counter && "
      "nft add rule inet natadm_ref f iifname @sandbox_ifaces icmp type echo-request ct state new "
      "counter && "
      "nft add rule inet natadm_ref f iifname @sandbox_ifaces icmpv6 type echo-request ct state "
      "new counter && "
      "nft add rule inet natadm_ref p iifname @sandbox_ifaces icmpv6 type @nd_types counter "
      "accept && "
      "nft add rule inet natadm_ref p iifname @sandbox_ifaces fib saddr . iif oif missing counter "
      "drop");
  ASSERT_EQ(ref.status, 0) << ref.out;
  auto want = kernelRuleExprs(ns_, "natadm_ref", "f");
  auto forward = kernelRuleExprs(ns_, "tollgate", "forward");
  ASSERT_EQ(want.size(), 11u);
  ASSERT_EQ(forward.size(), 13u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(forward[i], want[i]) << i;
  }
  for (size_t i = 8; i < 11; ++i) {
    ASSERT_FALSE(forward[i].empty());
    std::vector<std::string> without_queue(forward[i].begin(), forward[i].end() - 1);
    EXPECT_EQ(without_queue, want[i]) << i;
    EXPECT_THAT(forward[i].back(),
                ::testing::AnyOf("[ queue num 7467 ]", "[ target name NFQUEUE rev 3 ]"));
  }
  EXPECT_EQ(kernelRuleExprs(ns_, "tollgate", "prerouting_filter"),
            kernelRuleExprs(ns_, "natadm_ref", "p"));
}

// The compat queue target is exactly what iptables-nft installs for
// `-j NFQUEUE --queue-num 7467` (no --queue-bypass): nft lists both the
// same, and `nft -j` shows no bypass flag on either.
TEST_F(NatTableTest, CompatQueueIsWhatIptablesNftInstalls) {
  if (ns_.exec("command -v iptables-nft").status != 0) {
    GTEST_SKIP() << "iptables-nft not installed (scripts/install-deps installs it)";
  }
  auto s = spec({"tgsb0"});
  s.queue_backend = QueueBackend::Compat;
  auto r = install(s);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(*r, QueueBackend::Compat);
  auto ipt = ns_.exec("iptables-nft -A FORWARD -p udp -j NFQUEUE --queue-num 7467");
  ASSERT_EQ(ipt.status, 0) << ipt.out;
  auto theirs = ns_.exec("nft --debug=netlink list chain ip filter FORWARD");
  EXPECT_THAT(theirs.out, HasSubstr("[ target name NFQUEUE rev 3 ]"));
  EXPECT_THAT(theirs.out, HasSubstr("queue num 7467\n"));  // no "bypass"
  auto ours = ns_.exec("nft list chain inet tollgate forward 2>/dev/null");
  EXPECT_THAT(ours.out, HasSubstr("ct state new counter packets 0 bytes 0 queue num 7467 comment"));
  EXPECT_EQ(ours.out.find("queue num 7467 bypass"), std::string::npos) << ours.out;
}

// Probing: with no backend forced, the native queue is tried first and the
// compat target used when the kernel refuses it; forcing the native one on
// a kernel without it fails naming the missing feature and changes nothing.
TEST_F(NatTableTest, QueueBackendIsProbed) {
  auto r = install(spec({"tgsb0"}));
  ASSERT_TRUE(r.ok()) << r.message();
  auto native = spec({"tgsb0"});
  native.queue_backend = QueueBackend::Native;
  auto forced = install(native);
  if (*r == QueueBackend::Native) {
    EXPECT_TRUE(forced.ok()) << forced.message();
    return;
  }
  ASSERT_FALSE(forced.ok());
  EXPECT_THAT(forced.message(), HasSubstr("CONFIG_NFT_QUEUE"));
  auto text = ns_.exec("nft --debug=netlink list chain inet tollgate forward 2>/dev/null");
  EXPECT_THAT(text.out, HasSubstr("[ target name NFQUEUE rev 3 ]"));  // the compat table stays
}

}  // namespace
}  // namespace tollgate::nat

namespace tollgate::nat {
namespace {

Prefix v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, unsigned len) {
  Prefix p;
  p.bytes[0] = a;
  p.bytes[1] = b;
  p.bytes[2] = c;
  p.bytes[3] = d;
  p.len = len;
  return p;
}

Prefix v6(std::initializer_list<uint8_t> head, uint8_t last, unsigned len) {
  Prefix p;
  p.v6 = true;
  size_t i = 0;
  for (uint8_t b : head) {
    p.bytes[i++] = b;
  }
  p.bytes[15] = last;
  p.len = len;
  return p;
}

// Two bound sandboxes: exact and wildcard ports, IPv4 /32 and /22 (not on a
// byte boundary), IPv6 /128, /64 and /60.
std::vector<PortBinding> twoBindings() {
  return {
      PortBinding{"agents",
                  {"tgport0", "tap-a*"},
                  {v4(10, 77, 0, 10, 32), v4(10, 78, 4, 0, 22), v6({0xfd, 0x77}, 0x10, 128)}},
      PortBinding{"ci.build-2",
                  {"tgport1"},
                  {v4(10, 79, 0, 0, 24), v6({0xfd, 0x79}, 0, 64), v6({0xfd, 0x7a}, 0, 60)}},
  };
}

class BindingTableTest : public NatTableTest {
 protected:
  // Writes every rule of `rs` with nft itself, from its text, into a table
  // `<family> REF`, so the kernel's copies of both can be compared
  // expression by expression.
  void replayWithNft(const Ruleset& rs, const std::string& ref) {
    const std::string family = rs.family == kFamilyBridge ? "bridge" : "inet";
    std::string script = "table " + family + " " + ref + " {\n";
    for (const Set& set : rs.sets) {
      script += "  set " + set.name + " { type " +
                (set.key_type == kNftTypeIfname ? "ifname" : "icmpv6_type") + "; }\n";
    }
    for (const Chain& c : rs.chains) {
      script += "  chain " + c.name + " {\n";
      if (!c.type.empty()) {
        const std::string hook = c.hook == kBridgeHookForward ? "forward" : "prerouting";
        script += "    type " + c.type + " hook " + hook + " priority " +
                  std::to_string(c.priority) + "; policy accept;\n";
      }
      script += "  }\n";
    }
    script += "}\n";
    for (const Rule& r : rs.rules) {
      script += "add rule " + family + " " + ref + " " + r.chain + " " + r.text + "\n";
    }
    auto res = ns_.exec("nft -f - <<'EOF'\n" + script + "EOF");
    ASSERT_EQ(res.status, 0) << res.out << "\n" << script;
  }
};

// The binding table as nft lists it, and as the kernel holds it compared
// with what nft itself installs for the same rule texts.
TEST_F(BindingTableTest, IsWhatNftInstallsForTheSameText) {
  auto s = spec({"tgsb0"});
  s.bindings = twoBindings();
  auto r = install(s);
  ASSERT_TRUE(r.ok()) << r.message();
  auto bridge = buildBindingRuleset(s.bindings);
  ASSERT_TRUE(bridge.ok()) << bridge.message();
  expectListedMatches(*bridge);
  auto inet = buildCaptureRuleset(s, *r);
  ASSERT_TRUE(inet.ok()) << inet.message();
  expectListedMatches(*inet);

  replayWithNft(*bridge, "bind_ref");
  for (const Chain& c : bridge->chains) {
    auto ours = kernelRuleExprs(ns_, "tollgate", c.name, "bridge");
    EXPECT_FALSE(ours.empty()) << c.name;
    EXPECT_EQ(ours, kernelRuleExprs(ns_, "bind_ref", c.name, "bridge")) << c.name;
  }
  Ruleset inet_binding;
  for (const Chain& c : inet->chains) {
    if (c.type.empty()) {
      inet_binding.chains.push_back(c);
    }
  }
  for (const Rule& rule : inet->rules) {
    for (const Chain& c : inet_binding.chains) {
      if (rule.chain == c.name) {
        inet_binding.rules.push_back(rule);
      }
    }
  }
  ASSERT_EQ(inet_binding.chains.size(), 5u);  // bind, own_ and from_ of each
  replayWithNft(inet_binding, "bind_ref");
  for (const Chain& c : inet_binding.chains) {
    auto ours = kernelRuleExprs(ns_, "tollgate", c.name);
    EXPECT_FALSE(ours.empty()) << c.name;
    EXPECT_EQ(ours, kernelRuleExprs(ns_, "bind_ref", c.name)) << c.name;
  }
  auto pre = listed().chains["prerouting_filter"].rules;
  ASSERT_FALSE(pre.empty());
  EXPECT_EQ(pre.back(), "iifname @sandbox_ifaces jump bind");
}

TEST_F(BindingTableTest, FollowsTheConfigurationAndLeavesWithTheTable) {
  auto with = spec({"tgsb0"});
  with.bindings = twoBindings();
  ASSERT_TRUE(install(with).ok());
  auto exists = ns_.in([] { return bindingTableExists(); });
  ASSERT_TRUE(exists.ok()) << exists.message();
  EXPECT_TRUE(*exists);
  // Reinstalling replaces, never duplicates.
  with.bindings.pop_back();
  ASSERT_TRUE(install(with).ok());
  auto tables = ns_.exec("nft list tables");
  EXPECT_EQ(tables.out.find("table bridge tollgate"), tables.out.rfind("table bridge tollgate"));
  EXPECT_EQ(listed("bridge").chains.count("port_ci.build-2"), 0u);
  EXPECT_EQ(listed("bridge").chains.count("port_agents"), 1u);
  // A configuration without ports removes it in the same batch.
  ASSERT_TRUE(install(spec({"tgsb0"})).ok());
  exists = ns_.in([] { return bindingTableExists(); });
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
  EXPECT_EQ(listed().chains.count("bind"), 0u);
  // Block and remove take it away too (the block drops everything anyway).
  ASSERT_TRUE(install(with).ok());
  ASSERT_TRUE(block({"tgsb0"}).ok());
  exists = ns_.in([] { return bindingTableExists(); });
  EXPECT_FALSE(*exists);
  ASSERT_TRUE(install(with).ok());
  ASSERT_TRUE(remove().ok());
  exists = ns_.in([] { return bindingTableExists(); });
  EXPECT_FALSE(*exists);
  EXPECT_EQ(tollgateTables(), 0);
}

TEST_F(BindingTableTest, BadBindingsChangeNothing) {
  ASSERT_TRUE(install(spec({"tgsb0"})).ok());
  auto bad = spec({"tgsb0"});
  bad.bindings = twoBindings();
  bad.bindings[1].ports = {"*"};
  auto r = install(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.message(), HasSubstr("every interface"));
  bad.bindings[1].ports = {"tg*port"};
  r = install(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.message(), HasSubstr("may only end in '*'"));
  auto exists = ns_.in([] { return bindingTableExists(); });
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
}

}  // namespace
}  // namespace tollgate::nat
