// Pure tests of the ruleset builders: which chains, which rules, which
// expressions and bytes. No kernel, no privileges.
#include "nat/ruleset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>

#include <string>
#include <vector>

namespace tollgate::nat {
namespace {

// The forward chain of every capture ruleset with `ipv6: capture`.
const std::vector<std::string> kForwardCapture = {
    "iifname @sandbox_ifaces udp dport 443 counter reject",
    "iifname @sandbox_ifaces meta mark 0x74670001 ct mark set 0x74670001 counter accept",
    "iifname @sandbox_ifaces meta mark 0x74670002 counter drop",
    "iifname @sandbox_ifaces icmp type echo-request ip length > 92 counter drop",
    "iifname @sandbox_ifaces icmp type echo-request limit rate over 20/second counter drop",
    "iifname @sandbox_ifaces icmpv6 type echo-request ip6 length > 72 counter drop",
    "iifname @sandbox_ifaces icmpv6 type echo-request limit rate over 20/second counter drop",
    "iifname @sandbox_ifaces ct mark 0x74670001 counter accept",
    "iifname @sandbox_ifaces meta l4proto udp ct state new counter queue num 7467",
    "iifname @sandbox_ifaces icmp type echo-request ct state new counter queue num 7467",
    "iifname @sandbox_ifaces icmpv6 type echo-request ct state new counter queue num 7467",
    "iifname @sandbox_ifaces counter drop",
    "oifname @sandbox_ifaces ct state ! established,related counter drop"};

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

CaptureSpec spec(std::vector<std::string> ifaces, uint16_t port = 15001, bool ipv6 = true) {
  CaptureSpec s;
  s.interfaces = std::move(ifaces);
  s.listen_port = port;
  s.ipv6_capture = ipv6;
  return s;
}

CaptureSpec dnsSpec(uint16_t dns_port = 15053, bool ipv6 = true) {
  CaptureSpec s = spec({"br0"}, 15001, ipv6);
  s.dns_port = dns_port;
  return s;
}

std::vector<std::string> ruleTexts(const Ruleset& rs, const std::string& chain) {
  std::vector<std::string> out;
  for (const Rule& r : rs.rules) {
    if (r.chain == chain) {
      out.push_back(r.text);
    }
  }
  return out;
}

std::vector<std::string> chainNames(const Ruleset& rs) {
  std::vector<std::string> out;
  for (const Chain& c : rs.chains) {
    out.push_back(c.name);
  }
  return out;
}

const Chain& chainNamed(const Ruleset& rs, const std::string& name) {
  for (const Chain& c : rs.chains) {
    if (c.name == name) {
      return c;
    }
  }
  static const Chain kNone{};
  ADD_FAILURE() << "no chain " << name;
  return kNone;
}

// ---- interface names ------------------------------------------------------

struct NameCase {
  std::string name;
  bool valid;
};

class InterfaceNameTest : public ::testing::TestWithParam<NameCase> {};

TEST_P(InterfaceNameTest, ValidatesLikeTheKernel) {
  const NameCase& c = GetParam();
  auto r = validateInterfaceName(c.name);
  EXPECT_EQ(r.ok(), c.valid) << "'" << c.name << "': " << (r ? "ok" : r.message());
  if (!r.ok() && !c.name.empty()) {
    EXPECT_THAT(r.message(), HasSubstr("interface '" + c.name + "'"));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Names, InterfaceNameTest,
    ::testing::Values(NameCase{"br0", true}, NameCase{"veth-sb.12", true}, NameCase{"a", true},
                      NameCase{"fifteen-bytes15", true},    // 15 bytes: the maximum
                      NameCase{"sixteen-bytes-16", false},  // 16 bytes: no room for the NUL
                      NameCase{"", false}, NameCase{".", false}, NameCase{"..", false},
                      NameCase{"br/0", false}, NameCase{"br:0", false}, NameCase{"br 0", false},
                      NameCase{"br\t0", false}, NameCase{std::string("br\0x", 4), false},
                      NameCase{"br*", false}, NameCase{"tap+", true}));

TEST(NormalizeInterfaces, RejectsEmptyList) {
  auto r = normalizeInterfaces({});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.message(), HasSubstr("no sandbox interfaces"));
}

TEST(NormalizeInterfaces, DropsDuplicatesKeepingOrder) {
  auto r = normalizeInterfaces({"br1", "br0", "br1", "br0"});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_THAT(*r, ElementsAre("br1", "br0"));
}

TEST(NormalizeInterfaces, NamesTheBadInterface) {
  auto r = normalizeInterfaces({"br0", "bad/name"});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.message(), HasSubstr("interface 'bad/name'"));
}

TEST(NormalizeInterfaces, CapsTheCount) {
  std::vector<std::string> many;
  for (size_t i = 0; i <= kMaxInterfaces; ++i) {
    many.push_back("veth" + std::to_string(i));
  }
  auto r = normalizeInterfaces(many);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.message(), HasSubstr("too many"));
  many.pop_back();
  EXPECT_TRUE(normalizeInterfaces(many).ok());
}

TEST(EncodeIfname, ZeroPadsToIfnamsiz) {
  Bytes key = encodeIfname("br0");
  ASSERT_EQ(key.size(), 16u);
  EXPECT_EQ(key[0], 'b');
  EXPECT_EQ(key[1], 'r');
  EXPECT_EQ(key[2], '0');
  for (size_t i = 3; i < key.size(); ++i) {
    EXPECT_EQ(key[i], 0) << i;
  }
  Bytes longest = encodeIfname("fifteen-bytes15");
  ASSERT_EQ(longest.size(), 16u);
  EXPECT_EQ(longest[14], '5');
  EXPECT_EQ(longest[15], 0);  // always NUL-terminated
}

// ---- capture ruleset ------------------------------------------------------

TEST(CaptureRuleset, ChainsHookBeforeDockerAndFilter) {
  auto rs = buildCaptureRuleset(spec({"br0"}));
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_THAT(chainNames(*rs), ElementsAre("prerouting", "input", "forward", "prerouting_filter"));
  const Chain& pre = chainNamed(*rs, "prerouting");
  EXPECT_EQ(pre.type, "nat");
  EXPECT_EQ(pre.hook, static_cast<uint32_t>(NF_INET_PRE_ROUTING));
  EXPECT_EQ(pre.priority, -110);
  EXPECT_LT(pre.priority, -100);  // Docker's dstnat
  const Chain& in = chainNamed(*rs, "input");
  EXPECT_EQ(in.type, "filter");
  EXPECT_EQ(in.hook, static_cast<uint32_t>(NF_INET_LOCAL_IN));
  EXPECT_EQ(in.priority, -10);
  const Chain& fwd = chainNamed(*rs, "forward");
  EXPECT_EQ(fwd.type, "filter");
  EXPECT_EQ(fwd.hook, static_cast<uint32_t>(NF_INET_FORWARD));
  EXPECT_EQ(fwd.priority, -10);
}

TEST(CaptureRuleset, RulesReadAsIntended) {
  auto rs = buildCaptureRuleset(spec({"br0"}, 15001));
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_THAT(ruleTexts(*rs, "prerouting"),
              ElementsAre("iifname @sandbox_ifaces meta l4proto tcp counter redirect to :15001"));
  EXPECT_THAT(ruleTexts(*rs, "input"),
              ElementsAre("iifname @sandbox_ifaces ct state established,related counter accept",
                          "iifname @sandbox_ifaces ct status dnat tcp dport 15001 counter accept",
                          "iifname @sandbox_ifaces icmpv6 type @nd_types counter accept",
                          "iifname @sandbox_ifaces udp dport 443 counter reject",
                          "iifname @sandbox_ifaces meta l4proto tcp counter reject with tcp reset",
                          "iifname @sandbox_ifaces counter drop"));
  EXPECT_THAT(ruleTexts(*rs, "forward"), ElementsAreArray(kForwardCapture));
}

TEST(CaptureRuleset, Ipv6BlockDropsIpv6BeforeNatAndRedirectsOnlyIpv4) {
  auto rs = buildCaptureRuleset(spec({"br0"}, 15001, false));
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_THAT(chainNames(*rs), ElementsAre("prerouting_filter", "prerouting", "input", "forward"));
  const Chain& raw = chainNamed(*rs, "prerouting_filter");
  EXPECT_EQ(raw.type, "filter");
  EXPECT_EQ(raw.hook, static_cast<uint32_t>(NF_INET_PRE_ROUTING));
  EXPECT_EQ(raw.priority, -160);
  EXPECT_LT(raw.priority, chainNamed(*rs, "prerouting").priority);
  EXPECT_THAT(ruleTexts(*rs, "prerouting_filter"),
              ElementsAre("iifname @sandbox_ifaces icmpv6 type @nd_types counter accept",
                          "iifname @sandbox_ifaces meta nfproto ipv6 counter drop",
                          "iifname @sandbox_ifaces fib saddr . iif oif missing counter drop"));
  EXPECT_THAT(
      ruleTexts(*rs, "prerouting"),
      ElementsAre(
          "iifname @sandbox_ifaces meta nfproto ipv4 meta l4proto tcp counter redirect to :15001"));
}

TEST(CaptureRuleset, ListenPortAppearsInRedirectAndInputRule) {
  auto rs = buildCaptureRuleset(spec({"br0"}, 8443));
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_THAT(ruleTexts(*rs, "prerouting"), ElementsAre(HasSubstr("redirect to :8443")));
  EXPECT_THAT(ruleTexts(*rs, "input")[1], HasSubstr("tcp dport 8443"));
}

TEST(CaptureRuleset, RedirectEncodesPortInNetworkOrderInRegister1) {
  auto rs = buildCaptureRuleset(spec({"br0"}, 15001));
  ASSERT_TRUE(rs.ok()) << rs.message();
  const Rule& redirect = rs->rules.front();
  ASSERT_EQ(redirect.chain, "prerouting");
  ASSERT_GE(redirect.exprs.size(), 2u);
  const auto* imm = std::get_if<expr::Immediate>(&redirect.exprs[redirect.exprs.size() - 2]);
  const auto* redir = std::get_if<expr::Redirect>(&redirect.exprs.back());
  ASSERT_NE(imm, nullptr);
  ASSERT_NE(redir, nullptr);
  EXPECT_EQ(imm->dreg, static_cast<uint32_t>(NFT_REG_1));
  EXPECT_EQ(imm->data, (Bytes{0x3a, 0x99}));  // 15001 = 0x3a99, big-endian
  EXPECT_EQ(redir->proto_min_reg, static_cast<uint32_t>(NFT_REG_1));
  EXPECT_EQ(redir->flags, static_cast<uint32_t>(NF_NAT_RANGE_PROTO_SPECIFIED));
}

TEST(CaptureRuleset, InputAcceptsOnlyRedirectedTcpToTheListenerPort) {
  auto rs = buildCaptureRuleset(spec({"br0"}, 15001));
  ASSERT_TRUE(rs.ok()) << rs.message();
  const Rule& listener = rs->rules[2];
  ASSERT_EQ(listener.chain, "input");
  ASSERT_THAT(listener.text, HasSubstr("ct status dnat"));
  EXPECT_THAT(listener.exprs,
              ElementsAre(Expr(expr::Meta{NFT_META_IIFNAME, NFT_REG_1}),
                          Expr(expr::Lookup{NFT_REG_1, "sandbox_ifaces", kIfaceSetId, false}),
                          Expr(expr::Ct{NFT_CT_STATUS, NFT_REG_1}), ::testing::_,
                          Expr(expr::Cmp{NFT_REG_1, NFT_CMP_NEQ, Bytes{0, 0, 0, 0}}),
                          Expr(expr::Meta{NFT_META_L4PROTO, NFT_REG_1}),
                          Expr(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, Bytes{IPPROTO_TCP}}),
                          Expr(expr::Payload{NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1}),
                          Expr(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, Bytes{0x3a, 0x99}}),
                          Expr(expr::Counter{}), Expr(expr::Verdict{NF_ACCEPT})));
}

// The table must never touch traffic of other interfaces: every rule starts
// by matching the sandbox interface set, and every rule is counted and ends
// in a verdict or the redirect.
class EveryRuleTest : public ::testing::TestWithParam<int> {
 protected:
  Ruleset build() const {
    CaptureSpec s = spec({"br0", "tap1"}, 15001, GetParam() != 1 && GetParam() != 4);
    if (GetParam() >= 3) {
      s.dns_port = 15053;
    }
    Result<Ruleset> rs =
        GetParam() == 2 ? buildBlockRuleset({"br0", "tap1"}) : buildCaptureRuleset(s);
    EXPECT_TRUE(rs.ok());
    return rs.ok() ? *rs : Ruleset{};
  }
};

TEST_P(EveryRuleTest, StartsWithTheSandboxInterfaceSet) {
  Ruleset rs = build();
  ASSERT_FALSE(rs.rules.empty());
  for (const Rule& r : rs.rules) {
    ASSERT_GE(r.exprs.size(), 3u) << r.text;
    const auto* meta = std::get_if<expr::Meta>(&r.exprs[0]);
    const auto* lookup = std::get_if<expr::Lookup>(&r.exprs[1]);
    ASSERT_NE(meta, nullptr) << r.text;
    ASSERT_NE(lookup, nullptr) << r.text;
    EXPECT_TRUE(meta->key == NFT_META_IIFNAME || meta->key == NFT_META_OIFNAME) << r.text;
    EXPECT_EQ(lookup->set, kIfaceSet) << r.text;
    EXPECT_FALSE(lookup->inverted) << r.text;
    EXPECT_EQ(meta->dreg, lookup->sreg) << r.text;
  }
}

TEST_P(EveryRuleTest, IsCountedCommentedAndTerminal) {
  Ruleset rs = build();
  for (const Rule& r : rs.rules) {
    bool counted = false;
    for (const Expr& e : r.exprs) {
      counted = counted || std::holds_alternative<expr::Counter>(e);
    }
    EXPECT_TRUE(counted) << r.text;
    // A queue is terminal too: the packet leaves the chain for NFQUEUE.
    EXPECT_TRUE(std::holds_alternative<expr::Verdict>(r.exprs.back()) ||
                std::holds_alternative<expr::Redirect>(r.exprs.back()) ||
                std::holds_alternative<expr::Reject>(r.exprs.back()) || usesQueue(r))
        << r.text;
    EXPECT_FALSE(r.comment.empty()) << r.text;
    EXPECT_LE(r.comment.size(), kMaxCommentLen) << r.comment;
  }
  for (const Chain& c : rs.chains) {
    EXPECT_FALSE(c.comment.empty()) << c.name;
    EXPECT_LE(c.comment.size(), kMaxCommentLen) << c.comment;
  }
  for (const Set& s : rs.sets) {
    EXPECT_LE(s.comment.size(), kMaxCommentLen) << s.comment;
  }
  EXPECT_LE(rs.comment.size(), kMaxCommentLen);
}

TEST_P(EveryRuleTest, RefersOnlyToSetsItDefinesWithTheirIds) {
  Ruleset rs = build();
  for (const Rule& r : rs.rules) {
    for (const Expr& e : r.exprs) {
      if (const auto* lookup = std::get_if<expr::Lookup>(&e)) {
        bool defined = false;
        for (const Set& s : rs.sets) {
          defined = defined || (s.name == lookup->set && s.id == lookup->set_id);
        }
        EXPECT_TRUE(defined) << r.text;
      }
    }
    bool chain_defined = false;
    for (const Chain& c : rs.chains) {
      chain_defined = chain_defined || c.name == r.chain;
    }
    EXPECT_TRUE(chain_defined) << r.chain;
  }
}

INSTANTIATE_TEST_SUITE_P(Rulesets, EveryRuleTest, ::testing::Values(0, 1, 2, 3, 4),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(info.param == 0   ? "Capture"
                                              : info.param == 1 ? "CaptureIpv6Block"
                                              : info.param == 2 ? "Block"
                                              : info.param == 3 ? "CaptureDns"
                                                                : "CaptureDnsIpv6Block");
                         });

TEST(CaptureRuleset, SetsHoldInterfacesAndNeighbourDiscoveryOnly) {
  auto rs = buildCaptureRuleset(spec({"br0", "tap1", "br0"}));
  ASSERT_TRUE(rs.ok()) << rs.message();
  ASSERT_EQ(rs->sets.size(), 2u);
  const Set& ifaces = rs->sets[0];
  EXPECT_EQ(ifaces.name, "sandbox_ifaces");
  EXPECT_EQ(ifaces.key_type, kNftTypeIfname);
  EXPECT_EQ(ifaces.key_len, 16u);
  EXPECT_EQ(ifaces.key_byteorder, kNftByteorderHost);
  ASSERT_EQ(ifaces.elements.size(), 2u);  // duplicate dropped
  EXPECT_EQ(ifaces.elements[0].key, encodeIfname("br0"));
  EXPECT_EQ(ifaces.elements[1].key, encodeIfname("tap1"));
  EXPECT_EQ(ifaces.elements[1].text, "\"tap1\"");

  const Set& nd = rs->sets[1];
  EXPECT_EQ(nd.name, "nd_types");
  EXPECT_EQ(nd.key_type, kNftTypeIcmpv6Type);
  EXPECT_EQ(nd.key_len, 1u);
  EXPECT_EQ(nd.flags, static_cast<uint32_t>(NFT_SET_CONSTANT));
  std::vector<uint8_t> types;
  for (const SetElement& e : nd.elements) {
    ASSERT_EQ(e.key.size(), 1u);
    types.push_back(e.key[0]);
  }
  // RS, NS, NA. Never router advertisements (134) or redirects (137): a
  // sandbox must not reconfigure the host's routing.
  EXPECT_THAT(types, ElementsAre(133, 135, 136));
}

TEST(CaptureRuleset, RejectsBadSpecNamingTheField) {
  auto no_port = buildCaptureRuleset(spec({"br0"}, 0));
  ASSERT_FALSE(no_port.ok());
  EXPECT_THAT(no_port.message(), HasSubstr("listen_port"));
  auto no_iface = buildCaptureRuleset(spec({}));
  ASSERT_FALSE(no_iface.ok());
  EXPECT_THAT(no_iface.message(), HasSubstr("interfaces"));
  auto bad_iface = buildCaptureRuleset(spec({"br0", "way-too-long-ifname"}));
  ASSERT_FALSE(bad_iface.ok());
  EXPECT_THAT(bad_iface.message(), HasSubstr("'way-too-long-ifname'"));
}

// ---- DNS capture (dns_port) -----------------------------------------------

TEST(DnsCapture, OffByDefaultAndWhenZero) {
  EXPECT_EQ(CaptureSpec{}.dns_port, 0);
  auto rs = buildCaptureRuleset(dnsSpec(0));
  ASSERT_TRUE(rs.ok()) << rs.message();
  auto plain = buildCaptureRuleset(spec({"br0"}));
  ASSERT_TRUE(plain.ok()) << plain.message();
  EXPECT_EQ(ruleTexts(*rs, "prerouting"), ruleTexts(*plain, "prerouting"));
  EXPECT_EQ(ruleTexts(*rs, "input"), ruleTexts(*plain, "input"));
  for (const Rule& r : rs->rules) {
    EXPECT_THAT(r.text, ::testing::Not(HasSubstr("dport 53")));
    if (r.text.find("udp dport 443 counter reject") == std::string::npos &&
        r.text.find("meta l4proto udp ct state new") == std::string::npos) {
      // QUIC refusal and the admission queue are the only UDP rules.
      EXPECT_THAT(r.text, ::testing::Not(HasSubstr("udp")));
    }
    EXPECT_THAT(r.comment, ::testing::Not(HasSubstr("DNS")));
  }
  for (const Chain& c : rs->chains) {
    EXPECT_THAT(c.comment, ::testing::Not(HasSubstr("DNS"))) << c.name;
  }
}

TEST(DnsCapture, RulesReadAsIntended) {
  auto rs = buildCaptureRuleset(dnsSpec(15053));
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_THAT(chainNames(*rs), ElementsAre("prerouting", "input", "forward", "prerouting_filter"));
  EXPECT_THAT(ruleTexts(*rs, "prerouting"),
              ElementsAre("iifname @sandbox_ifaces udp dport 53 counter redirect to :15053",
                          "iifname @sandbox_ifaces tcp dport 53 counter redirect to :15053",
                          "iifname @sandbox_ifaces meta l4proto tcp counter redirect to :15001"));
  EXPECT_THAT(ruleTexts(*rs, "input"),
              ElementsAre("iifname @sandbox_ifaces ct state established,related counter accept",
                          "iifname @sandbox_ifaces ct status dnat tcp dport 15001 counter accept",
                          "iifname @sandbox_ifaces ct status dnat udp dport 15053 counter accept",
                          "iifname @sandbox_ifaces ct status dnat tcp dport 15053 counter accept",
                          "iifname @sandbox_ifaces icmpv6 type @nd_types counter accept",
                          "iifname @sandbox_ifaces udp dport 443 counter reject",
                          "iifname @sandbox_ifaces meta l4proto tcp counter reject with tcp reset",
                          "iifname @sandbox_ifaces counter drop"));
  EXPECT_THAT(ruleTexts(*rs, "forward"), ElementsAreArray(kForwardCapture));
  EXPECT_THAT(chainNamed(*rs, "prerouting").comment, HasSubstr("DNS service"));
  EXPECT_THAT(chainNamed(*rs, "input").comment, HasSubstr("DNS service"));
}

// `redirect` ends the chain: were the catch-all TCP redirect first, DNS over
// TCP would land on the TLS/HTTP listener.
TEST(DnsCapture, TcpDnsRedirectComesBeforeTheGenericTcpRedirect) {
  for (bool ipv6 : {true, false}) {
    auto rs = buildCaptureRuleset(dnsSpec(15053, ipv6));
    ASSERT_TRUE(rs.ok()) << rs.message();
    std::vector<std::string> pre = ruleTexts(*rs, "prerouting");
    auto find = [&](const std::string& what) {
      for (size_t i = 0; i < pre.size(); ++i) {
        if (pre[i].find(what) != std::string::npos) {
          return static_cast<int>(i);
        }
      }
      return -1;
    };
    const int tcp_dns = find("tcp dport 53 counter redirect to :15053");
    const int udp_dns = find("udp dport 53 counter redirect to :15053");
    const int generic = find("meta l4proto tcp counter redirect to :15001");
    ASSERT_GE(tcp_dns, 0) << ipv6;
    ASSERT_GE(udp_dns, 0) << ipv6;
    ASSERT_GE(generic, 0) << ipv6;
    EXPECT_LT(tcp_dns, generic) << ipv6;
    EXPECT_EQ(generic, static_cast<int>(pre.size()) - 1) << ipv6;
  }
}

TEST(DnsCapture, Ipv6BlockRedirectsOnlyIpv4Dns) {
  auto rs = buildCaptureRuleset(dnsSpec(15053, false));
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_THAT(chainNames(*rs), ElementsAre("prerouting_filter", "prerouting", "input", "forward"));
  EXPECT_THAT(ruleTexts(*rs, "prerouting_filter"),
              ElementsAre("iifname @sandbox_ifaces icmpv6 type @nd_types counter accept",
                          "iifname @sandbox_ifaces meta nfproto ipv6 counter drop",
                          "iifname @sandbox_ifaces fib saddr . iif oif missing counter drop"));
  EXPECT_THAT(
      ruleTexts(*rs, "prerouting"),
      ElementsAre(
          "iifname @sandbox_ifaces meta nfproto ipv4 udp dport 53 counter redirect to :15053",
          "iifname @sandbox_ifaces meta nfproto ipv4 tcp dport 53 counter redirect to :15053",
          "iifname @sandbox_ifaces meta nfproto ipv4 meta l4proto tcp counter redirect to :15001"));
}

TEST(DnsCapture, RedirectExpressions) {
  auto rs = buildCaptureRuleset(dnsSpec(15053));
  ASSERT_TRUE(rs.ok()) << rs.message();
  ASSERT_GE(rs->rules.size(), 3u);
  const Bytes k53{0x00, 0x35};
  const Bytes k15053{0x3a, 0xcd};  // big-endian
  for (auto [i, proto] : {std::pair{0, IPPROTO_UDP}, std::pair{1, IPPROTO_TCP}}) {
    const Rule& r = rs->rules[static_cast<size_t>(i)];
    ASSERT_EQ(r.chain, "prerouting");
    EXPECT_THAT(r.exprs,
                ElementsAre(Expr(expr::Meta{NFT_META_IIFNAME, NFT_REG_1}),
                            Expr(expr::Lookup{NFT_REG_1, "sandbox_ifaces", kIfaceSetId, false}),
                            Expr(expr::Meta{NFT_META_L4PROTO, NFT_REG_1}),
                            Expr(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, Bytes{uint8_t(proto)}}),
                            Expr(expr::Payload{NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1}),
                            Expr(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, k53}), Expr(expr::Counter{}),
                            Expr(expr::Immediate{NFT_REG_1, k15053}),
                            Expr(expr::Redirect{NFT_REG_1, NF_NAT_RANGE_PROTO_SPECIFIED})))
        << r.text;
  }
}

TEST(DnsCapture, InputAcceptsOnlyRedirectedDnsToTheDnsPort) {
  auto rs = buildCaptureRuleset(dnsSpec(15053));
  ASSERT_TRUE(rs.ok()) << rs.message();
  std::vector<const Rule*> dns;
  for (const Rule& r : rs->rules) {
    if (r.chain == "input" && r.text.find("dport 15053") != std::string::npos) {
      dns.push_back(&r);
    }
  }
  ASSERT_EQ(dns.size(), 2u);
  for (auto [i, proto] : {std::pair{0, IPPROTO_UDP}, std::pair{1, IPPROTO_TCP}}) {
    const Rule& r = *dns[static_cast<size_t>(i)];
    EXPECT_THAT(r.exprs,
                ElementsAre(Expr(expr::Meta{NFT_META_IIFNAME, NFT_REG_1}),
                            Expr(expr::Lookup{NFT_REG_1, "sandbox_ifaces", kIfaceSetId, false}),
                            Expr(expr::Ct{NFT_CT_STATUS, NFT_REG_1}),
                            ::testing::_,  // & IPS_DST_NAT (host order)
                            Expr(expr::Cmp{NFT_REG_1, NFT_CMP_NEQ, Bytes{0, 0, 0, 0}}),
                            Expr(expr::Meta{NFT_META_L4PROTO, NFT_REG_1}),
                            Expr(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, Bytes{uint8_t(proto)}}),
                            Expr(expr::Payload{NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1}),
                            Expr(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, Bytes{0x3a, 0xcd}}),
                            Expr(expr::Counter{}), Expr(expr::Verdict{NF_ACCEPT})))
        << r.text;
    EXPECT_THAT(r.comment, HasSubstr("DNS"));
  }
  // The DNS accepts sit next to the listener accept, before the final drop.
  std::vector<std::string> input = ruleTexts(*rs, "input");
  ASSERT_EQ(input.size(), 8u);
  EXPECT_THAT(input[1], HasSubstr("tcp dport 15001"));
  EXPECT_THAT(input[2], HasSubstr("udp dport 15053"));
  EXPECT_THAT(input[3], HasSubstr("tcp dport 15053"));
  EXPECT_EQ(input.back(), "iifname @sandbox_ifaces counter drop");
}

TEST(DnsCapture, RejectsBadDnsPortNamingTheField) {
  auto same = buildCaptureRuleset(dnsSpec(15001));
  ASSERT_FALSE(same.ok());
  EXPECT_THAT(same.message(), HasSubstr("gateway.dns_port"));
  EXPECT_THAT(same.message(), HasSubstr("listen_port"));
  auto fifty_three = buildCaptureRuleset(dnsSpec(53));
  ASSERT_FALSE(fifty_three.ok());
  EXPECT_THAT(fifty_three.message(), HasSubstr("gateway.dns_port"));
  EXPECT_THAT(fifty_three.message(), HasSubstr("53"));
  // Neighbouring ports are fine.
  EXPECT_TRUE(buildCaptureRuleset(dnsSpec(54)).ok());
  EXPECT_TRUE(buildCaptureRuleset(dnsSpec(15002)).ok());
  EXPECT_TRUE(buildCaptureRuleset(dnsSpec(65535)).ok());
}

TEST(DnsCapture, PlanAddsFourRulesToTheSameBatch) {
  auto rs = buildCaptureRuleset(dnsSpec(15053));
  ASSERT_TRUE(rs.ok()) << rs.message();
  auto plan = planReplace(*rs);
  size_t rules = 0;
  for (const Message& m : plan) {
    rules += std::holds_alternative<msg::AddRule>(m) ? 1 : 0;
  }
  EXPECT_EQ(rules, 22u + 4u);
  EXPECT_EQ(describe(plan[11]),
            "add rule to chain prerouting: `iifname @sandbox_ifaces udp dport 53 counter redirect "
            "to :15053`");
  EXPECT_EQ(describe(plan[12]),
            "add rule to chain prerouting: `iifname @sandbox_ifaces tcp dport 53 counter redirect "
            "to :15053`");
}

// ---- QUIC / HTTP3 refusal -------------------------------------------------

// Every capture variant: the four combinations of DNS capture and ipv6 mode.
std::vector<CaptureSpec> allCaptureSpecs() {
  return {spec({"br0"}, 15001, true), spec({"br0"}, 15001, false), dnsSpec(15053, true),
          dnsSpec(15053, false)};
}

const char* const kQuicText = "iifname @sandbox_ifaces udp dport 443 counter reject";
const char* const kQuicComment =
    "QUIC/HTTP3: refuse at once so clients fall back to TCP (governed)";

// Rules answering with ICMP port unreachable (the QUIC refusals).
std::vector<const Rule*> quicRules(const Ruleset& rs) {
  std::vector<const Rule*> out;
  for (const Rule& r : rs.rules) {
    for (const Expr& e : r.exprs) {
      const auto* reject = std::get_if<expr::Reject>(&e);
      if (reject != nullptr && reject->type == NFT_REJECT_ICMPX_UNREACH) {
        out.push_back(&r);
        break;
      }
    }
  }
  return out;
}

const std::string kHostResetText =
    "iifname @sandbox_ifaces meta l4proto tcp counter reject with tcp reset";

// Index of the first rule in `chain` whose text is `text`, -1 if none.
int indexIn(const Ruleset& rs, const std::string& chain, const std::string& text) {
  std::vector<std::string> texts = ruleTexts(rs, chain);
  for (size_t i = 0; i < texts.size(); ++i) {
    if (texts[i] == text) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// `iifname @sandbox_ifaces udp dport 443 counter reject with icmpx type
// port-unreachable`, expression for expression (nft --debug=netlink, 1.0.6):
// [ meta load iifname => reg 1 ] [ lookup reg 1 set sandbox_ifaces ]
// [ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000011 ]
// [ payload load 2b @ transport header + 2 => reg 1 ] [ cmp eq reg 1 0x0000bb01 ]
// [ counter ] [ reject type 2 code 1 ]
TEST(QuicRefusal, ExpressionsAreIcmpxPortUnreachableForUdp443) {
  for (const CaptureSpec& s : allCaptureSpecs()) {
    auto rs = buildCaptureRuleset(s);
    ASSERT_TRUE(rs.ok()) << rs.message();
    std::vector<const Rule*> quic = quicRules(*rs);
    ASSERT_EQ(quic.size(), 2u);
    EXPECT_EQ(quic[0]->chain, "input");
    EXPECT_EQ(quic[1]->chain, "forward");
    for (const Rule* r : quic) {
      EXPECT_EQ(r->text, kQuicText);
      EXPECT_EQ(r->comment, kQuicComment);
      EXPECT_THAT(
          r->exprs,
          ElementsAre(Expr(expr::Meta{NFT_META_IIFNAME, NFT_REG_1}),
                      Expr(expr::Lookup{NFT_REG_1, "sandbox_ifaces", kIfaceSetId, false}),
                      Expr(expr::Meta{NFT_META_L4PROTO, NFT_REG_1}),
                      Expr(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, Bytes{IPPROTO_UDP}}),
                      Expr(expr::Payload{NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1}),
                      Expr(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, Bytes{0x01, 0xbb}}),
                      Expr(expr::Counter{}),
                      Expr(expr::Reject{NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH})))
          << r->chain;
    }
  }
  EXPECT_EQ(NFT_REJECT_ICMPX_UNREACH, 2);       // nft's "type 2"
  EXPECT_EQ(NFT_REJECT_ICMPX_PORT_UNREACH, 1);  // nft's "code 1"
}

// After the drop the refusal would never be reached (QUIC silently dropped,
// clients wait for a timeout); it sits right before it, after every accept.
TEST(QuicRefusal, ComesRightBeforeTheDropInInputAndForward) {
  for (const CaptureSpec& s : allCaptureSpecs()) {
    auto rs = buildCaptureRuleset(s);
    ASSERT_TRUE(rs.ok()) << rs.message();
    const std::string ctx = std::string("dns_port=") + std::to_string(s.dns_port) +
                            " ipv6=" + (s.ipv6_capture ? "capture" : "block");

    std::vector<std::string> input = ruleTexts(*rs, "input");
    const int in_reject = indexIn(*rs, "input", kQuicText);
    const int in_drop = indexIn(*rs, "input", "iifname @sandbox_ifaces counter drop");
    ASSERT_GE(in_reject, 0) << ctx;
    EXPECT_EQ(in_drop, static_cast<int>(input.size()) - 1) << ctx;
    EXPECT_EQ(in_reject, in_drop - 2) << ctx;
    // Between them: TCP to the host that was not admitted gets a reset.
    EXPECT_EQ(indexIn(*rs, "input", kHostResetText), in_drop - 1) << ctx;
    // Every accept (flows admitted, listener, DNS, neighbour discovery) stays before it.
    for (int i = 0; i < in_reject; ++i) {
      EXPECT_THAT(input[static_cast<size_t>(i)], ::testing::EndsWith("accept")) << ctx;
    }

    std::vector<std::string> forward = ruleTexts(*rs, "forward");
    ASSERT_GE(forward.size(), 3u) << ctx;
    EXPECT_EQ(forward[0], kQuicText) << ctx;
    EXPECT_EQ(forward[forward.size() - 2], "iifname @sandbox_ifaces counter drop") << ctx;
    EXPECT_EQ(forward.back(), "oifname @sandbox_ifaces ct state ! established,related counter drop")
        << ctx;
  }
}

// Only UDP port 443 is refused (and TCP to the host reset, in input only,
// after every accept): the refusals never widen what is admitted, and other
// UDP still meets the silent drop.
TEST(QuicRefusal, RefusesNothingElse) {
  auto rs = buildCaptureRuleset(dnsSpec(15053));
  ASSERT_TRUE(rs.ok()) << rs.message();
  int resets = 0;
  for (const Rule& r : rs->rules) {
    const bool is_reject = std::holds_alternative<expr::Reject>(r.exprs.back());
    if (r.text == kHostResetText) {
      ++resets;
      EXPECT_EQ(r.chain, "input");
      EXPECT_EQ(r.exprs.back(), Expr(expr::Reject{NFT_REJECT_TCP_RST, 0}));
      continue;
    }
    EXPECT_EQ(is_reject, r.text == kQuicText) << r.text;
    EXPECT_EQ(is_reject, r.comment == kQuicComment) << r.text;
    for (size_t i = 0; i + 1 < r.exprs.size(); ++i) {
      EXPECT_FALSE(std::holds_alternative<expr::Reject>(r.exprs[i])) << "reject mid-rule";
    }
  }
  EXPECT_EQ(resets, 1);
}

// With `ipv6: block` IPv6 is still dropped before NAT: IPv6 QUIC never gets
// as far as the refusal.
TEST(QuicRefusal, Ipv6BlockStillDropsIpv6First) {
  auto rs = buildCaptureRuleset(spec({"br0"}, 15001, false));
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_THAT(ruleTexts(*rs, "prerouting_filter"),
              ElementsAre("iifname @sandbox_ifaces icmpv6 type @nd_types counter accept",
                          "iifname @sandbox_ifaces meta nfproto ipv6 counter drop",
                          "iifname @sandbox_ifaces fib saddr . iif oif missing counter drop"));
  EXPECT_LT(chainNamed(*rs, "prerouting_filter").priority, chainNamed(*rs, "input").priority);
  EXPECT_EQ(quicRules(*rs).size(), 2u);
}

// ---- block ruleset --------------------------------------------------------

TEST(BlockRuleset, DropsEverythingButNeighbourDiscovery) {
  auto rs = buildBlockRuleset({"br0"});
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_THAT(chainNames(*rs), ElementsAre("input", "forward"));
  EXPECT_THAT(ruleTexts(*rs, "input"),
              ElementsAre("iifname @sandbox_ifaces icmpv6 type @nd_types counter accept",
                          "iifname @sandbox_ifaces counter drop"));
  EXPECT_THAT(ruleTexts(*rs, "forward"), ElementsAre("iifname @sandbox_ifaces counter drop",
                                                     "oifname @sandbox_ifaces counter drop"));
  for (const Rule& r : rs->rules) {
    for (const Expr& e : r.exprs) {
      EXPECT_FALSE(std::holds_alternative<expr::Redirect>(e)) << r.text;
      // The block stays silent: no QUIC refusal, nothing answers a sandbox.
      EXPECT_FALSE(std::holds_alternative<expr::Reject>(e)) << r.text;
    }
  }
}

TEST(BlockRuleset, RejectsEmptyInterfaces) { EXPECT_FALSE(buildBlockRuleset({}).ok()); }

// ---- batch plans ----------------------------------------------------------

std::vector<std::string> kinds(const std::vector<Message>& plan) {
  std::vector<std::string> out;
  for (const Message& m : plan) {
    out.push_back(std::visit(
        [](const auto& v) -> std::string {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, msg::EnsureTable>) {
            return "ensure-table";
          } else if constexpr (std::is_same_v<T, msg::DeleteTable>) {
            return "delete-table";
          } else if constexpr (std::is_same_v<T, msg::CreateTable>) {
            return "create-table";
          } else if constexpr (std::is_same_v<T, msg::AddSet>) {
            return "set " + v.set.name;
          } else if constexpr (std::is_same_v<T, msg::AddSetElements>) {
            return "elements " + v.set.name;
          } else if constexpr (std::is_same_v<T, msg::AddChain>) {
            return "chain " + v.chain.name;
          } else {
            return "rule " + v.rule.chain;
          }
        },
        m));
  }
  return out;
}

TEST(PlanReplace, DeletesAnyStaleTableThenBuildsInDependencyOrder) {
  auto rs = buildCaptureRuleset(spec({"br0"}));
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_THAT(
      kinds(planReplace(*rs)),
      ElementsAre("ensure-table", "delete-table", "create-table", "set sandbox_ifaces",
                  "elements sandbox_ifaces", "set nd_types", "elements nd_types",
                  "chain prerouting", "chain input", "chain forward", "chain prerouting_filter",
                  "rule prerouting", "rule input", "rule input", "rule input", "rule input",
                  "rule input", "rule input", "rule forward", "rule forward", "rule forward",
                  "rule forward", "rule forward", "rule forward", "rule forward", "rule forward",
                  "rule forward", "rule forward", "rule forward", "rule forward", "rule forward",
                  "rule prerouting_filter", "rule prerouting_filter"));
}

TEST(PlanReplace, CarriesTheTableComment) {
  auto rs = buildBlockRuleset({"br0"});
  ASSERT_TRUE(rs.ok()) << rs.message();
  auto plan = planReplace(*rs);
  ASSERT_GE(plan.size(), 3u);
  const auto* create = std::get_if<msg::CreateTable>(&plan[2]);
  ASSERT_NE(create, nullptr);
  EXPECT_THAT(create->comment, HasSubstr("block"));
}

TEST(PlanRemove, EnsuresThenDeletesSoAMissingTableIsNotAnError) {
  EXPECT_THAT(kinds(planRemove()), ElementsAre("ensure-table", "delete-table"));
}

TEST(Describe, NamesTheObject) {
  auto rs = buildCaptureRuleset(spec({"br0", "br9"}));
  ASSERT_TRUE(rs.ok()) << rs.message();
  auto plan = planReplace(*rs);
  EXPECT_EQ(describe(plan[1]), "delete existing table inet tollgate");
  EXPECT_EQ(describe(plan[4]), "add elements to set sandbox_ifaces { \"br0\", \"br9\" }");
  EXPECT_EQ(describe(plan[7]), "create chain prerouting (type nat, priority -110)");
  EXPECT_EQ(describe(plan[11]),
            "add rule to chain prerouting: `iifname @sandbox_ifaces meta l4proto tcp counter "
            "redirect to :15001`");
}

TEST(PortPattern, NamesAndPrefixesOnly) {
  EXPECT_TRUE(validatePortPattern("tap0").ok());
  EXPECT_TRUE(validatePortPattern("tap-a*").ok());
  EXPECT_TRUE(validatePortPattern("vnet*").ok());
  EXPECT_THAT(validatePortPattern("*").message(), HasSubstr("every interface"));
  EXPECT_THAT(validatePortPattern("ta*p").message(), HasSubstr("may only end in '*'"));
  EXPECT_THAT(validatePortPattern("a**").message(), HasSubstr("may only end in '*'"));
  EXPECT_FALSE(validatePortPattern("").ok());
  EXPECT_FALSE(validatePortPattern("sixteen-chars-xx").ok());
  EXPECT_FALSE(validatePortPattern("bad/name").ok());
}

Prefix prefix4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, unsigned len) {
  Prefix p;
  p.bytes = {a, b, c, d};
  p.len = len;
  return p;
}

TEST(BindingRuleset, OneMarkPerSandboxAndTheBridgeFamily) {
  std::vector<PortBinding> b = {{"a", {"tapa*"}, {prefix4(10, 0, 0, 0, 24)}},
                                {"b", {"tapb0"}, {prefix4(10, 0, 1, 0, 24)}}};
  auto rs = buildBindingRuleset(b);
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_EQ(rs->family, kFamilyBridge);
  std::vector<std::string> texts;
  for (const Rule& r : rs->rules) {
    texts.push_back(r.chain + ": " + r.text);
  }
  EXPECT_THAT(texts, ::testing::Contains("prerouting: iifname \"tapa*\" counter jump port_a"));
  EXPECT_THAT(texts,
              ::testing::Contains("port_a: ip saddr 10.0.0.0/24 meta mark set 0x74670100 accept"));
  EXPECT_THAT(texts,
              ::testing::Contains("port_b: ip saddr 10.0.1.0/24 meta mark set 0x74670101 accept"));
  EXPECT_THAT(texts, ::testing::Contains("port_b: counter drop"));
  EXPECT_THAT(texts, ::testing::Contains("forward: iifname \"tapa*\" counter drop"));
  EXPECT_THAT(texts, ::testing::Contains("forward: oifname \"tapb0\" counter drop"));
  // The last rule of every port chain drops; nothing after it.
  for (const Chain& c : rs->chains) {
    std::string last;
    for (const Rule& r : rs->rules) {
      if (r.chain == c.name) {
        last = r.text;
      }
    }
    if (c.name != "prerouting" && c.name != "forward") {
      EXPECT_EQ(last, "counter drop") << c.name;
    }
  }
  auto plan = planReplace(*rs);
  for (const Message& m : plan) {
    EXPECT_EQ(messageFamily(m), kFamilyBridge);
  }
  EXPECT_EQ(describe(plan[1]), "delete existing table bridge tollgate");
  EXPECT_EQ(describe(plan[5]), "create chain port_a");
  EXPECT_EQ(messageFamily(planRemove(kFamilyBridge)[1]), kFamilyBridge);
}

TEST(BindingRuleset, RefusesWhatItCannotBind) {
  EXPECT_FALSE(buildBindingRuleset({}).ok());
  EXPECT_FALSE(buildBindingRuleset({{"a", {}, {prefix4(10, 0, 0, 0, 24)}}}).ok());
  EXPECT_FALSE(buildBindingRuleset({{"a", {"tap0"}, {}}}).ok());
  EXPECT_FALSE(buildBindingRuleset({{"a", {"tap0"}, {prefix4(10, 0, 0, 0, 33)}}}).ok());
  std::vector<PortBinding> many;
  for (size_t i = 0; i <= kMaxBindings; ++i) {
    many.push_back(
        {"s" + std::to_string(i), {"t" + std::to_string(i)}, {prefix4(10, 1, 0, 0, 16)}});
  }
  EXPECT_THAT(buildBindingRuleset(many).message(), HasSubstr("more than 255"));
  many.pop_back();
  EXPECT_TRUE(buildBindingRuleset(many).ok());
}

TEST(BindingRuleset, CaptureRulesetJumpsToBindOnlyWithBindings) {
  auto plain = buildCaptureRuleset(spec({"br0"}));
  ASSERT_TRUE(plain.ok());
  for (const Chain& c : plain->chains) {
    EXPECT_NE(c.name, "bind");
  }
  auto s = spec({"br0"});
  s.bindings = {{"a", {"tapa*"}, {prefix4(10, 0, 0, 0, 24), prefix4(0, 0, 0, 0, 0)}}};
  auto bound = buildCaptureRuleset(s);
  ASSERT_TRUE(bound.ok()) << bound.message();
  std::vector<std::string> texts;
  for (const Rule& r : bound->rules) {
    texts.push_back(r.chain + ": " + r.text);
  }
  EXPECT_EQ(texts.back(), "prerouting_filter: iifname @sandbox_ifaces jump bind");
  EXPECT_THAT(texts, ::testing::Contains("bind: iifname \"tapa*\" jump own_a"));
  EXPECT_THAT(texts, ::testing::Contains("bind: ip saddr 10.0.0.0/24 jump from_a"));
  EXPECT_THAT(texts, ::testing::Contains("bind: meta nfproto ipv4 jump from_a"));  // the /0
  EXPECT_THAT(texts,
              ::testing::Contains("from_a: meta mark 0x74670100 meta mark set 0x00000000 return"));
}

}  // namespace
}  // namespace tollgate::nat
