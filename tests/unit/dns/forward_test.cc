// questionFor, buildQuery, parseResponse: tollgate's side of forwarding,
// including compression (RFC 1035 §4.1.4) and CNAME chains.
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "dns/dns.h"
#include "wire_util.h"

namespace tollgate::dns {
namespace {

using testwire::Bytes;
using testwire::MessageSpec;
using testwire::name;
using testwire::pointer;
using testwire::RrSpec;

constexpr uint16_t kId = 0x1234;

Result<ForwardedAnswer> parseFor(const MessageSpec& spec, std::string_view host,
                                 uint16_t qtype = kTypeA) {
  return parseResponse(testwire::build(spec), kId, testwire::question(host, qtype));
}

// Offset of the first byte after the question of response(host, ...).
uint16_t afterQuestion(std::string_view host) {
  return static_cast<uint16_t>(kHeaderSize + name(host).size() + 4);
}

TEST(QuestionFor, BuildsWireName) {
  std::optional<Question> q = questionFor("WWW.Example.com.", kTypeAaaa);
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->name, "www.example.com");
  EXPECT_TRUE(q->is_host_name);
  EXPECT_EQ(q->name_wire, name("www.example.com"));
  EXPECT_EQ(q->qtype, kTypeAaaa);
  EXPECT_EQ(q->qclass, kClassIn);
}

TEST(QuestionFor, RejectsWhatIsNotAHostName) {
  for (const char* bad : {"", ".", "192.0.2.1", "[2001:db8::1]", "_dmarc.example.com", "a..b",
                          "exa mple.com", "-a.example"}) {
    EXPECT_FALSE(questionFor(bad, kTypeA).has_value()) << bad;
  }
}

TEST(BuildQuery, RoundTripsThroughParseQuery) {
  Question asked = testwire::question("api.example.test", kTypeAaaa);
  asked.name_wire = name("API.Example.TEST");  // as a sandbox might have sent it
  const Bytes wire = buildQuery(0xabcd, asked, 1232);
  const QueryParse p = parseQuery(wire);
  ASSERT_EQ(p.outcome, QueryParse::Outcome::kOk) << ::testing::PrintToString(p);
  EXPECT_EQ(p.query.id, 0xabcd);
  EXPECT_TRUE(p.query.rd);
  EXPECT_EQ(p.query.question.name_wire, name("api.example.test")) << "lower-cased upstream";
  EXPECT_EQ(p.query.question.qtype, kTypeAaaa);
  EXPECT_TRUE(p.query.edns.present);
  EXPECT_EQ(p.query.edns.udp_size, 1232);
  EXPECT_FALSE(p.query.edns.dnssec_ok);

  const QueryParse plain = parseQuery(buildQuery(1, asked, 0));
  ASSERT_EQ(plain.outcome, QueryParse::Outcome::kOk);
  EXPECT_FALSE(plain.query.edns.present);
}

TEST(ParseResponse, SimpleA) {
  const MessageSpec spec = testwire::response(
      "example.test", kTypeA,
      {testwire::a(pointer(12), "192.0.2.1", 300), testwire::a(pointer(12), "192.0.2.2", 200)});
  Result<ForwardedAnswer> r = parseFor(spec, "example.test");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->rcode, Rcode::kNoError);
  EXPECT_FALSE(r->truncated);
  EXPECT_EQ(testwire::ips(r->addresses), (std::vector<std::string>{"192.0.2.1", "192.0.2.2"}));
  EXPECT_TRUE(r->cname_chain.empty());
  EXPECT_EQ(r->ttl, 200u);
  EXPECT_EQ(r->addresses[0].port(), 0);
}

TEST(ParseResponse, AaaaIgnoresOtherFamilyAndTypes) {
  const MessageSpec spec = testwire::response(
      "example.test", kTypeAaaa,
      {testwire::a(pointer(12), "192.0.2.1"), testwire::txt(pointer(12), "v=spf1 -all"),
       testwire::aaaa(pointer(12), "2001:db8::5", 50)});
  Result<ForwardedAnswer> r = parseFor(spec, "example.test", kTypeAaaa);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(testwire::ips(r->addresses), (std::vector<std::string>{"2001:db8::5"}));
  EXPECT_EQ(r->ttl, 50u);
}

TEST(ParseResponse, UncompressedNamesAndCaseInsensitiveQuestion) {
  // DNS 0x20: the upstream echoes the question in another case.
  MessageSpec spec =
      testwire::response("ExAmPlE.TeSt", kTypeA, {testwire::a(name("EXAMPLE.test"), "192.0.2.9")});
  Result<ForwardedAnswer> r = parseFor(spec, "example.test");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(testwire::ips(r->addresses), (std::vector<std::string>{"192.0.2.9"}));
}

TEST(ParseResponse, RecordsForOtherNamesAreIgnored) {
  // An upstream (or a spoofer) adds addresses for names nobody asked about.
  MessageSpec spec = testwire::response(
      "example.test", kTypeA,
      {testwire::a(name("evil.test"), "203.0.113.66"), testwire::a(pointer(12), "192.0.2.1")});
  spec.additional.push_back(testwire::a(name("example.test"), "203.0.113.67"));
  Result<ForwardedAnswer> r = parseFor(spec, "example.test");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(testwire::ips(r->addresses), (std::vector<std::string>{"192.0.2.1"}));
}

TEST(ParseResponse, CnameChainInOrder) {
  const uint16_t at = afterQuestion("www.example.test");
  // Answer 1: www -> cdn.example.net (owner pointer to the question).
  // Answer 2 owner: pointer to answer 1's target (at + 12).
  const Bytes target1 = name("cdn.example.net");
  const Bytes target2 =
      pointer(static_cast<uint16_t>(at + 12 + 4), name("edge"));  // edge.example.net
  MessageSpec spec = testwire::response(
      "www.example.test", kTypeA,
      {testwire::cname(pointer(12), target1, 600), testwire::cname(pointer(at + 12), target2, 400),
       testwire::a(name("edge.example.net"), "192.0.2.77", 500)});
  Result<ForwardedAnswer> r = parseFor(spec, "www.example.test");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->cname_chain, (std::vector<std::string>{"cdn.example.net", "edge.example.net"}));
  EXPECT_EQ(testwire::ips(r->addresses), (std::vector<std::string>{"192.0.2.77"}));
  EXPECT_EQ(r->ttl, 400u) << "minimum over the chain";
}

TEST(ParseResponse, CnameChainOutOfOrder) {
  MessageSpec spec = testwire::response("a.test", kTypeAaaa,
                                        {testwire::aaaa(name("c.test"), "2001:db8::c"),
                                         testwire::cname(name("b.test"), name("C.test")),
                                         testwire::cname(name("a.test"), name("b.test")),
                                         testwire::aaaa(name("b.test"), "2001:db8::b0")});
  // b.test owns both a CNAME and an address: the address ends the chain
  // there (such data is invalid, RFC 2181 §10.1; addresses win).
  Result<ForwardedAnswer> r = parseFor(spec, "a.test", kTypeAaaa);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->cname_chain, (std::vector<std::string>{"b.test"}));
  EXPECT_EQ(testwire::ips(r->addresses), (std::vector<std::string>{"2001:db8::b0"}));
}

TEST(ParseResponse, CnameToNowhereIsNoData) {
  MessageSpec spec =
      testwire::response("a.test", kTypeA, {testwire::cname(pointer(12), name("gone.test"), 100)});
  Result<ForwardedAnswer> r = parseFor(spec, "a.test");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->cname_chain, (std::vector<std::string>{"gone.test"}));
  EXPECT_TRUE(r->addresses.empty());
  EXPECT_EQ(r->ttl, 0u) << "no SOA: not cached";
}

std::vector<RrSpec> chain(int links) {
  std::vector<RrSpec> out;
  for (int i = 0; i < links; ++i) {
    const std::string from = i == 0 ? "start.test" : "n" + std::to_string(i) + ".test";
    out.push_back(testwire::cname(name(from), name("n" + std::to_string(i + 1) + ".test")));
  }
  out.push_back(testwire::a(name("n" + std::to_string(links) + ".test"), "192.0.2.1"));
  return out;
}

TEST(ParseResponse, CnameChainOfSixteenIsFollowed) {
  Result<ForwardedAnswer> r =
      parseFor(testwire::response("start.test", kTypeA, chain(16)), "start.test");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->cname_chain.size(), 16u);
  EXPECT_EQ(testwire::ips(r->addresses), (std::vector<std::string>{"192.0.2.1"}));
}

TEST(ParseResponse, CnameChainOfSeventeenIsRejected) {
  Result<ForwardedAnswer> r =
      parseFor(testwire::response("start.test", kTypeA, chain(17)), "start.test");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("CNAME chain"), std::string::npos) << r.message();
}

TEST(ParseResponse, CnameLoopsAreRejected) {
  for (const auto& answers :
       std::vector<std::vector<RrSpec>>{{testwire::cname(name("a.test"), name("a.test"))},
                                        {testwire::cname(name("a.test"), name("b.test")),
                                         testwire::cname(name("b.test"), name("A.TEST"))},
                                        {testwire::cname(name("a.test"), name("b.test")),
                                         testwire::cname(name("b.test"), name("c.test")),
                                         testwire::cname(name("c.test"), name("b.test"))}}) {
    Result<ForwardedAnswer> r = parseFor(testwire::response("a.test", kTypeA, answers), "a.test");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.message().find("CNAME loop"), std::string::npos) << r.message();
  }
}

TEST(ParseResponse, TwoCnamesForOneNameAreRejected) {
  MessageSpec spec = testwire::response("a.test", kTypeA,
                                        {testwire::cname(name("a.test"), name("b.test")),
                                         testwire::cname(name("a.test"), name("c.test"))});
  EXPECT_FALSE(parseFor(spec, "a.test").ok());
}

TEST(ParseResponse, NxDomainWithSoaGivesNegativeTtl) {
  MessageSpec spec = testwire::response("nope.test", kTypeA, {}, 3);
  spec.authority.push_back(testwire::soa(name("test"), 900, 300));
  Result<ForwardedAnswer> r = parseFor(spec, "nope.test");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->rcode, Rcode::kNxDomain);
  EXPECT_TRUE(r->addresses.empty());
  EXPECT_EQ(r->ttl, 300u) << "min(SOA TTL, MINIMUM)";

  spec.authority = {testwire::soa(name("test"), 60, 300)};
  r = parseFor(spec, "nope.test");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->ttl, 60u);
}

TEST(ParseResponse, NxDomainIgnoresAddresses) {
  MessageSpec spec =
      testwire::response("nope.test", kTypeA, {testwire::a(pointer(12), "192.0.2.1")}, 3);
  Result<ForwardedAnswer> r = parseFor(spec, "nope.test");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(r->addresses.empty());
}

TEST(ParseResponse, NoDataWithSoaAfterCname) {
  MessageSpec spec =
      testwire::response("a.test", kTypeAaaa, {testwire::cname(pointer(12), name("b.test"), 30)});
  spec.authority.push_back(testwire::soa(name("test"), 900, 300));
  Result<ForwardedAnswer> r = parseFor(spec, "a.test", kTypeAaaa);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(r->addresses.empty());
  EXPECT_EQ(r->ttl, 30u) << "the CNAME's TTL bounds the negative answer";
}

TEST(ParseResponse, TtlWithTopBitCountsAsZero) {
  MessageSpec spec = testwire::response("a.test", kTypeA,
                                        {testwire::a(pointer(12), "192.0.2.1", 0x80000001u),
                                         testwire::a(pointer(12), "192.0.2.2", 100)});
  Result<ForwardedAnswer> r = parseFor(spec, "a.test");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->ttl, 0u);
}

TEST(ParseResponse, ServfailAndRefused) {
  for (uint16_t rc : {2, 4, 5}) {
    Result<ForwardedAnswer> r = parseFor(testwire::response("a.test", kTypeA, {}, rc), "a.test");
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ(static_cast<uint16_t>(r->rcode), rc);
    EXPECT_TRUE(r->addresses.empty());
  }
}

TEST(ParseResponse, ExtendedRcodeFromOpt) {
  MessageSpec spec = testwire::response("a.test", kTypeA, {});
  testwire::OptSpec o;
  o.extended_rcode = 1;
  spec.additional.push_back(testwire::opt(o));
  Result<ForwardedAnswer> r = parseFor(spec, "a.test");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->rcode, Rcode::kBadVers);
}

TEST(ParseResponse, TruncatedResponse) {
  MessageSpec spec = testwire::response("a.test", kTypeA, {testwire::a(pointer(12), "192.0.2.1")});
  spec.flags |= testwire::kTc;
  spec.ancount = 30;  // a cut message: counts need not match
  Result<ForwardedAnswer> r = parseFor(spec, "a.test");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(r->truncated);
  EXPECT_TRUE(r->addresses.empty());
}

// ---- rejections ----

struct BadResponse {
  std::string label;
  std::function<Bytes()> message;
  std::string error;  // substring of the error message
};

void PrintTo(const BadResponse& b, std::ostream* os) { *os << b.label; }

Bytes edit(const std::function<void(MessageSpec&)>& f) {
  MessageSpec spec = testwire::response("a.test", kTypeA, {testwire::a(pointer(12), "192.0.2.1")});
  f(spec);
  return testwire::build(spec);
}

class ResponseRejectionTest : public ::testing::TestWithParam<BadResponse> {};

TEST_P(ResponseRejectionTest, Rejects) {
  const BadResponse& c = GetParam();
  Result<ForwardedAnswer> r = parseResponse(c.message(), kId, testwire::question("a.test"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find(c.error), std::string::npos) << r.message();
}

INSTANTIATE_TEST_SUITE_P(
    Rejections, ResponseRejectionTest,
    ::testing::Values(
        BadResponse{"empty", [] { return Bytes{}; }, "shorter than a header"},
        BadResponse{"wrong_id", [] { return edit([](MessageSpec& m) { m.id = kId + 1; }); },
                    "unexpected id"},
        BadResponse{"query_not_response",
                    [] { return edit([](MessageSpec& m) { m.flags &= ~testwire::kQr; }); },
                    "not a response"},
        BadResponse{"opcode",
                    [] { return edit([](MessageSpec& m) { m.flags |= testwire::opcodeBits(2); }); },
                    "opcode"},
        BadResponse{"no_question",
                    [] {
                      return edit([](MessageSpec& m) {
                        m.questions.clear();
                        m.answers.clear();
                      });
                    },
                    "QDCOUNT"},
        BadResponse{
            "other_name",
            [] { return edit([](MessageSpec& m) { m.questions[0].name = name("b.test"); }); },
            "question does not match"},
        BadResponse{"other_type",
                    [] { return edit([](MessageSpec& m) { m.questions[0].qtype = kTypeAaaa; }); },
                    "question does not match"},
        BadResponse{"other_class",
                    [] { return edit([](MessageSpec& m) { m.questions[0].qclass = kClassCh; }); },
                    "question does not match"},
        BadResponse{"question_pointer",
                    [] { return edit([](MessageSpec& m) { m.questions[0].name = pointer(12); }); },
                    "question: name_bad_pointer"},
        BadResponse{"trailing", [] { return edit([](MessageSpec& m) { m.trailing = {0}; }); },
                    "trailing bytes"},
        BadResponse{"ancount_too_high", [] { return edit([](MessageSpec& m) { m.ancount = 2; }); },
                    "record owner"},
        BadResponse{"rdlength_past_end",
                    [] { return edit([](MessageSpec& m) { m.answers[0].rdlength = 5; }); },
                    "truncated"},
        BadResponse{"a_rdlength_3",
                    [] { return edit([](MessageSpec& m) { m.answers[0].rdata.pop_back(); }); },
                    "wrong length"},
        BadResponse{"aaaa_rdlength_4",
                    [] {
                      return edit([](MessageSpec& m) {
                        m.answers.push_back(testwire::a(pointer(12), "192.0.2.2"));
                        m.answers[1].type = kTypeAaaa;
                      });
                    },
                    "wrong length"},
        BadResponse{"cname_trailing_rdata",
                    [] {
                      return edit([](MessageSpec& m) {
                        m.answers = {testwire::cname(pointer(12),
                                                     testwire::concat(name("b.test"), Bytes{1}))};
                      });
                    },
                    "CNAME record with bytes after"},
        BadResponse{"cname_target_cut",
                    [] {
                      return edit([](MessageSpec& m) {
                        m.answers = {testwire::cname(pointer(12), Bytes{1, 'b'})};
                      });
                    },
                    "CNAME target: name_truncated"},
        BadResponse{"soa_short",
                    [] {
                      return edit([](MessageSpec& m) {
                        m.authority = {testwire::soa(name("test"), 1, 1)};
                        m.authority[0].rdata.pop_back();
                      });
                    },
                    "SOA record of the wrong length"},
        BadResponse{"two_opt",
                    [] {
                      return edit([](MessageSpec& m) {
                        m.additional = {testwire::opt(), testwire::opt()};
                      });
                    },
                    "OPT"},
        BadResponse{
            "opt_in_answers",
            [] { return edit([](MessageSpec& m) { m.answers.push_back(testwire::opt()); }); },
            "OPT"},
        BadResponse{"opt_not_root",
                    [] {
                      return edit([](MessageSpec& m) {
                        m.additional = {testwire::opt()};
                        m.additional[0].owner = name("a.test");
                      });
                    },
                    "OPT"},
        // Compression pointers (RFC 1035 §4.1.4).
        BadResponse{"pointer_forward",
                    [] {
                      return edit([](MessageSpec& m) {
                        // Owner points at the next record's start (after itself).
                        m.answers[0].owner = pointer(afterQuestion("a.test") + 16);
                        m.answers.push_back(testwire::a(name("a.test"), "192.0.2.2"));
                      });
                    },
                    "record owner: name_bad_pointer"},
        BadResponse{"pointer_to_itself",
                    [] {
                      return edit([](MessageSpec& m) {
                        m.answers[0].owner = pointer(afterQuestion("a.test"));
                      });
                    },
                    "record owner: name_bad_pointer"},
        BadResponse{"pointer_into_header",
                    [] { return edit([](MessageSpec& m) { m.answers[0].owner = pointer(4); }); },
                    "record owner: name_bad_pointer"},
        BadResponse{
            "pointer_past_end",
            [] { return edit([](MessageSpec& m) { m.answers[0].owner = pointer(0x3fff); }); },
            "record owner: name_bad_pointer"},
        BadResponse{"pointer_cut",
                    [] {
                      Bytes b = edit([](MessageSpec& m) {
                        m.answers.clear();
                        m.ancount = 1;
                      });
                      b.push_back(0xc0);
                      return b;
                    },
                    "record owner: name_truncated"},
        BadResponse{"label_type_01",
                    [] { return edit([](MessageSpec& m) {
                           m.answers[0].owner = {0x41, 0};
                         }); },
                    "record owner: name_label_type"},
        BadResponse{"pointer_loop_through_label",
                    [] {
                      // Answer 1 owner "x" + pointer back to its own start: a
                      // loop through a label, refused as pointing into itself.
                      return edit([](MessageSpec& m) {
                        m.answers[0].owner = pointer(afterQuestion("a.test"), name("x"));
                      });
                    },
                    "record owner: name_bad_pointer"},
        BadResponse{"cname_target_points_at_itself",
                    [] {
                      return edit([](MessageSpec& m) {
                        // RDATA starts at afterQuestion + 2 + 10.
                        m.answers = {
                            testwire::cname(pointer(12), pointer(afterQuestion("a.test") + 12))};
                      });
                    },
                    "CNAME target: name_bad_pointer"}),
    [](const ::testing::TestParamInfo<BadResponse>& info) { return info.param.label; });

// Two names whose pointers would bounce between each other: the second one
// points back at the first, whose pointer points forward at the second.
TEST(ParseResponse, MutualPointersAreRejected) {
  const uint16_t first = afterQuestion("a.test");
  // Record 1 (16 bytes: pointer owner + 10 + 4) owner -> record 2's owner.
  const uint16_t second = static_cast<uint16_t>(first + 16);
  MessageSpec spec = testwire::response(
      "a.test", kTypeA,
      {testwire::a(pointer(second), "192.0.2.1"), testwire::a(pointer(first), "192.0.2.2")});
  EXPECT_FALSE(parseFor(spec, "a.test").ok());
}

// A chain of pointers, each to an earlier name: 16 jumps are fine, 17 not.
Bytes pointerChain(size_t jumps) {
  // TXT records whose owners form the chain; the last record is an A whose
  // owner starts it. Record k's owner: label "l" + pointer to record k-1's
  // owner (record 0's owner: pointer to the question).
  const uint16_t first = afterQuestion("a.test");
  MessageSpec spec = testwire::response("a.test", kTypeA, {});
  uint16_t prev = 12;
  uint16_t off = first;
  for (size_t k = 0; k < jumps; ++k) {
    RrSpec rr = testwire::txt(pointer(prev, name("l")), "");
    const uint16_t size = static_cast<uint16_t>(rr.owner.size() + 10 + rr.rdata.size());
    if (k + 1 == jumps) {
      rr = testwire::a(pointer(prev, name("l")), "192.0.2.1");
    }
    spec.answers.push_back(rr);
    prev = off;
    off = static_cast<uint16_t>(off + size);
  }
  return testwire::build(spec);
}

TEST(ParseResponse, PointerJumpLimit) {
  EXPECT_TRUE(parseResponse(pointerChain(16), kId, testwire::question("a.test")).ok());
  Result<ForwardedAnswer> r = parseResponse(pointerChain(17), kId, testwire::question("a.test"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("name_pointer_jumps"), std::string::npos) << r.message();
}

TEST(ParseResponse, NameLongerThan255ThroughPointers) {
  // Record 1 owner: 3 labels of 63 (193 bytes with root); record 2 owner: a
  // 63-byte label + pointer to it: 64 + 193 = 257 > 255.
  const std::string l63(63, 'a');
  const Bytes long_name = testwire::labels({l63, l63, l63});
  MessageSpec spec = testwire::response("a.test", kTypeA, {testwire::txt(long_name, "")});
  spec.answers.push_back(
      testwire::txt(pointer(afterQuestion("a.test"), testwire::labels({l63})), ""));
  Result<ForwardedAnswer> r = parseFor(spec, "a.test");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("name_too_long"), std::string::npos) << r.message();
}

// ---- corruption and garbage ----

std::vector<MessageSpec> validResponses() {
  MessageSpec nx = testwire::response("a.test", kTypeA, {}, 3);
  nx.authority.push_back(testwire::soa(name("test"), 900, 300));
  nx.additional.push_back(testwire::opt());
  const uint16_t at = afterQuestion("a.test");
  return {
      testwire::response("a.test", kTypeA, {testwire::a(pointer(12), "192.0.2.1")}),
      testwire::response("a.test", kTypeA,
                         {testwire::cname(pointer(12), pointer(12, name("b"))),
                          testwire::a(pointer(at + 12), "192.0.2.1")}),
      nx,
  };
}

TEST(ResponseCorruption, EveryLengthAndCountByte) {
  for (const MessageSpec& spec : validResponses()) {
    std::vector<size_t> offsets;
    const Bytes good = testwire::build(spec, &offsets);
    ASSERT_TRUE(parseResponse(good, kId, testwire::question("a.test")).ok());
    for (size_t off : offsets) {
      for (int v : {-1, +1, 0x00, 0x3f, 0x40, 0x80, 0xc0, 0xff}) {
        Bytes bad = good;
        bad[off] = v == -1 || v == 1 ? static_cast<uint8_t>(bad[off] + v) : static_cast<uint8_t>(v);
        Result<ForwardedAnswer> r = parseResponse(bad, kId, testwire::question("a.test"));
        if (r.ok()) {
          EXPECT_LE(r->addresses.size(), 1u);
          EXPECT_LE(r->cname_chain.size(), kMaxCnameChain);
        }
      }
    }
  }
}

TEST(ResponseCorruption, EveryByteEveryValue) {
  const Bytes good = testwire::build(validResponses()[1]);
  for (size_t off = 0; off < good.size(); ++off) {
    for (int v = 0; v < 256; ++v) {
      Bytes bad = good;
      bad[off] = static_cast<uint8_t>(v);
      (void)parseResponse(bad, kId, testwire::question("a.test"));
      (void)truncateForUdp(bad, 512);
    }
  }
}

TEST(ResponseCorruption, RandomGarbageAfterAValidHeaderAndQuestion) {
  std::mt19937 rng(1035);
  const Bytes head = testwire::build(testwire::response("a.test", kTypeA, {}));
  for (int i = 0; i < 20000; ++i) {
    Bytes msg = head;
    const size_t extra = rng() % 300;
    for (size_t j = 0; j < extra; ++j) {
      // Mostly small values and pointer bytes, to reach the name code.
      const uint32_t x = rng();
      msg.push_back(static_cast<uint8_t>(x % 4 == 0 ? 0xc0 | (x >> 8) % 64 : (x >> 8) % 70));
    }
    msg[7] = static_cast<uint8_t>(rng() % 8);   // ANCOUNT
    msg[9] = static_cast<uint8_t>(rng() % 4);   // NSCOUNT
    msg[11] = static_cast<uint8_t>(rng() % 4);  // ARCOUNT
    (void)parseResponse(msg, kId, testwire::question("a.test"));
    (void)truncateForUdp(msg, 512);
    (void)parseQuery(msg);
  }
}

}  // namespace
}  // namespace tollgate::dns
