// parseQuery: what a sandbox may ask (RFC 1035 §4.1, RFC 9619, RFC 6891).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "dns/dns.h"
#include "wire_util.h"

namespace tollgate::dns {
namespace {

using testwire::Bytes;
using testwire::MessageSpec;
using testwire::OptSpec;
using Outcome = QueryParse::Outcome;

QueryParse parse(const MessageSpec& spec) { return parseQuery(testwire::build(spec)); }

TEST(ParseQuery, PlainQuery) {
  MessageSpec spec = testwire::query("www.Example.COM");
  spec.id = 0xbeef;
  const QueryParse p = parse(spec);
  ASSERT_EQ(p.outcome, Outcome::kOk) << ::testing::PrintToString(p);
  EXPECT_EQ(p.rcode, Rcode::kNoError);
  EXPECT_EQ(p.reason, "ok");
  EXPECT_EQ(p.query.id, 0xbeef);
  EXPECT_EQ(p.query.opcode, 0);
  EXPECT_TRUE(p.query.rd);
  EXPECT_FALSE(p.query.cd);
  EXPECT_TRUE(p.query.has_question);
  EXPECT_EQ(p.query.question.name, "www.example.com");
  EXPECT_TRUE(p.query.question.is_host_name);
  EXPECT_EQ(p.query.question.name_wire, testwire::name("www.Example.COM")) << "case kept for echo";
  EXPECT_EQ(p.query.question.qtype, kTypeA);
  EXPECT_EQ(p.query.question.qclass, kClassIn);
  EXPECT_FALSE(p.query.edns.present);
  EXPECT_EQ(p.query.maxUdpResponse(), 512u);
  EXPECT_TRUE(p.query.isAddressQuery());
}

TEST(ParseQuery, RecursionNotDesiredAndCheckingDisabled) {
  MessageSpec spec = testwire::query("example.com");
  spec.flags = testwire::kCd;
  const QueryParse p = parse(spec);
  ASSERT_EQ(p.outcome, Outcome::kOk);
  EXPECT_FALSE(p.query.rd);
  EXPECT_TRUE(p.query.cd);
}

TEST(ParseQuery, EdnsWithOptions) {
  OptSpec edns;
  edns.udp_size = 4096;
  edns.dnssec_ok = true;
  edns.options = {testwire::cookieOption(), {12, Bytes(20, 0)} /* padding */};
  const QueryParse p = parse(testwire::query("example.com", kTypeAaaa, edns));
  ASSERT_EQ(p.outcome, Outcome::kOk) << ::testing::PrintToString(p);
  EXPECT_TRUE(p.query.edns.present);
  EXPECT_EQ(p.query.edns.udp_size, 4096);
  EXPECT_EQ(p.query.edns.version, 0);
  EXPECT_TRUE(p.query.edns.dnssec_ok);
  EXPECT_EQ(p.query.question.qtype, kTypeAaaa);
}

TEST(ParseQuery, MaxUdpResponseIsClamped) {
  struct Case {
    uint16_t advertised;
    size_t expected;
  };
  for (const Case& c :
       {Case{0, 512}, Case{1, 512}, Case{511, 512}, Case{512, 512}, Case{1200, 1200},
        Case{1232, 1232}, Case{1233, 1232}, Case{4096, 1232}, Case{65535, 1232}}) {
    OptSpec edns;
    edns.udp_size = c.advertised;
    const QueryParse p = parse(testwire::query("example.com", kTypeA, edns));
    ASSERT_EQ(p.outcome, Outcome::kOk);
    EXPECT_EQ(p.query.maxUdpResponse(), c.expected) << c.advertised;
  }
}

TEST(ParseQuery, IgnoredHeaderBits) {
  // TC, Z, AD, AA and a non-zero RCODE mean nothing in a query.
  for (uint16_t extra : {testwire::kTc, testwire::kZ, testwire::kAd, testwire::kAa, testwire::kRa,
                         uint16_t{0x000f}}) {
    MessageSpec spec = testwire::query("example.com");
    spec.flags |= extra;
    EXPECT_EQ(parse(spec).outcome, Outcome::kOk) << std::hex << extra;
  }
}

TEST(ParseQuery, AcceptedQtypes) {
  for (uint16_t qtype :
       {kTypeA, kTypeAaaa, kTypeTxt, kTypeMx, kTypeNs, kTypeCname, kTypeSoa, kTypePtr, kTypeHttps,
        uint16_t{64} /* SVCB */, uint16_t{127}, uint16_t{256}, uint16_t{65280}, uint16_t{65535}}) {
    const QueryParse p = parse(testwire::query("example.com", qtype));
    EXPECT_EQ(p.outcome, Outcome::kOk) << qtype;
    EXPECT_EQ(p.query.question.qtype, qtype);
  }
}

TEST(ParseQuery, NameOfExactly255BytesIsAccepted) {
  // 3 labels of 63 + one of 61: 4*1 + 3*63 + 61 + root = 255.
  const std::string l63(63, 'a');
  const Bytes wire = testwire::labels({l63, l63, l63, std::string(61, 'b')});
  ASSERT_EQ(wire.size(), 255u);
  MessageSpec spec;
  spec.questions = {{wire}};
  const QueryParse p = parse(spec);
  ASSERT_EQ(p.outcome, Outcome::kOk) << ::testing::PrintToString(p);
  EXPECT_TRUE(p.query.question.is_host_name);
  EXPECT_EQ(p.query.question.name.size(), 253u);
}

// ---- names: which ones policy may match as host names ----

struct NameCase {
  std::string label;
  Bytes wire;
  std::string name;
  bool is_host_name;
};

void PrintTo(const NameCase& c, std::ostream* os) { *os << c.label; }

class QueryNameTest : public ::testing::TestWithParam<NameCase> {};

TEST_P(QueryNameTest, Normalises) {
  const NameCase& c = GetParam();
  MessageSpec spec;
  spec.questions = {{c.wire}};
  const QueryParse p = parse(spec);
  ASSERT_EQ(p.outcome, Outcome::kOk) << ::testing::PrintToString(p);
  EXPECT_EQ(p.query.question.name, c.name);
  EXPECT_EQ(p.query.question.is_host_name, c.is_host_name);
  EXPECT_EQ(p.query.question.name_wire, c.wire);
}

INSTANTIATE_TEST_SUITE_P(
    Names, QueryNameTest,
    ::testing::Values(
        NameCase{"lower", testwire::name("example.com"), "example.com", true},
        NameCase{"upper", testwire::name("WWW.EXAMPLE.COM"), "www.example.com", true},
        NameCase{"single_label", testwire::name("localhost"), "localhost", true},
        NameCase{"idna_a_label", testwire::name("xn--bcher-kva.example"), "xn--bcher-kva.example",
                 true},
        NameCase{"hyphen_inside", testwire::name("a-b.example"), "a-b.example", true},
        NameCase{"underscore", testwire::name("_dmarc.Example.com"), "_dmarc.example.com", false},
        NameCase{"srv", testwire::name("_443._tcp.example.com"), "_443._tcp.example.com", false},
        NameCase{"dot_inside_label", testwire::labels({"a.b", "example"}), "a\\046b.example",
                 false},
        NameCase{"space", testwire::labels({"a b", "example"}), "a\\032b.example", false},
        NameCase{"nul", testwire::labels({std::string("a\0b", 3), "example"}), "a\\000b.example",
                 false},
        NameCase{"backslash", testwire::labels({"a\\b", "example"}), "a\\092b.example", false},
        NameCase{"utf8",
                 testwire::labels({"b\xc3\xbc"
                                   "cher",
                                   "example"}),
                 "b\\195\\188cher.example", false},
        NameCase{"leading_hyphen", testwire::name("-a.example"), "-a.example", false},
        NameCase{"ipv4_literal", testwire::name("192.0.2.1"), "192.0.2.1", false},
        NameCase{"numeric_tld", testwire::name("foo.123"), "foo.123", false},
        NameCase{"c_hex_tld", testwire::name("foo.0x7f"), "foo.0x7f", false},
        NameCase{"root", testwire::name("."), ".", false}),
    [](const ::testing::TestParamInfo<NameCase>& info) { return info.param.label; });

// ---- every rejection ----

struct Rejection {
  std::string label;
  std::function<Bytes()> message;
  Outcome outcome;
  Rcode rcode;
  std::string reason;
  bool has_question;
  bool edns_present = false;
};

void PrintTo(const Rejection& r, std::ostream* os) { *os << r.label; }

Bytes withSpec(const std::function<void(MessageSpec&)>& edit) {
  MessageSpec spec = testwire::query("example.com");
  edit(spec);
  return testwire::build(spec);
}

class QueryRejectionTest : public ::testing::TestWithParam<Rejection> {};

TEST_P(QueryRejectionTest, Rejects) {
  const Rejection& c = GetParam();
  const Bytes msg = c.message();
  const QueryParse p = parseQuery(msg);
  EXPECT_EQ(p.outcome, c.outcome) << ::testing::PrintToString(p);
  EXPECT_EQ(p.rcode, c.rcode) << ::testing::PrintToString(p);
  EXPECT_EQ(p.reason, c.reason);
  EXPECT_EQ(p.query.has_question, c.has_question);
  EXPECT_EQ(p.query.edns.present, c.edns_present);
  if (p.outcome == Outcome::kError) {
    // The error answer is a well-formed response to the same id and, when
    // parsed, to the same question.
    const Bytes answer = buildError(p.query, p.rcode);
    ASSERT_GE(answer.size(), kHeaderSize);
    EXPECT_EQ(testwire::be16(answer, 0), testwire::be16(msg, 0));
    if (p.query.has_question) {
      Result<ForwardedAnswer> back = parseResponse(answer, p.query.id, p.query.question);
      ASSERT_TRUE(back.ok()) << back.message();
      EXPECT_EQ(back->rcode, c.rcode);
    }
  }
}

const OptSpec kEdns{};

INSTANTIATE_TEST_SUITE_P(
    Rejections, QueryRejectionTest,
    ::testing::Values(
        // Nothing to answer.
        Rejection{"empty", [] { return Bytes{}; }, Outcome::kDrop, Rcode::kNoError, "short_header",
                  false},
        Rejection{"eleven_bytes",
                  [] {
                    Bytes b = testwire::build(testwire::query("example.com"));
                    b.resize(11);
                    return b;
                  },
                  Outcome::kDrop, Rcode::kNoError, "short_header", false},
        Rejection{"response",
                  [] { return withSpec([](MessageSpec& m) { m.flags |= testwire::kQr; }); },
                  Outcome::kDrop, Rcode::kNoError, "response", false},
        Rejection{"response_header_only",
                  [] {
                    Bytes b = testwire::build(testwire::query("example.com"));
                    b.resize(12);
                    b[2] |= 0x80;
                    return b;
                  },
                  Outcome::kDrop, Rcode::kNoError, "response", false},
        // Opcodes other than QUERY.
        Rejection{
            "opcode_iquery",
            [] { return withSpec([](MessageSpec& m) { m.flags |= testwire::opcodeBits(1); }); },
            Outcome::kError, Rcode::kNotImp, "opcode", false},
        Rejection{
            "opcode_status",
            [] { return withSpec([](MessageSpec& m) { m.flags |= testwire::opcodeBits(2); }); },
            Outcome::kError, Rcode::kNotImp, "opcode", false},
        Rejection{
            "opcode_notify",
            [] { return withSpec([](MessageSpec& m) { m.flags |= testwire::opcodeBits(4); }); },
            Outcome::kError, Rcode::kNotImp, "opcode", false},
        Rejection{
            "opcode_update",
            [] { return withSpec([](MessageSpec& m) { m.flags |= testwire::opcodeBits(5); }); },
            Outcome::kError, Rcode::kNotImp, "opcode", false},
        Rejection{
            "opcode_15",
            [] { return withSpec([](MessageSpec& m) { m.flags |= testwire::opcodeBits(15); }); },
            Outcome::kError, Rcode::kNotImp, "opcode", false},
        Rejection{"header_only",
                  [] {
                    Bytes b = testwire::build(testwire::query("example.com"));
                    b.resize(12);
                    return b;
                  },
                  Outcome::kError, Rcode::kFormErr, "name_truncated", false},
        // QDCOUNT (RFC 9619).
        Rejection{"qdcount_0", [] { return withSpec([](MessageSpec& m) { m.questions.clear(); }); },
                  Outcome::kError, Rcode::kFormErr, "qdcount", false},
        Rejection{
            "qdcount_2",
            [] { return withSpec([](MessageSpec& m) { m.questions.push_back(m.questions[0]); }); },
            Outcome::kError, Rcode::kFormErr, "qdcount", false},
        Rejection{"qdcount_65535_claimed",
                  [] { return withSpec([](MessageSpec& m) { m.qdcount = 0xffff; }); },
                  Outcome::kError, Rcode::kFormErr, "qdcount", false},
        // QNAME.
        Rejection{"qname_pointer",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.questions[0].name = testwire::pointer(12, testwire::name("www"));
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "qname_pointer", false},
        Rejection{"qname_pointer_alone",
                  [] {
                    return withSpec(
                        [](MessageSpec& m) { m.questions[0].name = testwire::pointer(12); });
                  },
                  Outcome::kError, Rcode::kFormErr, "qname_pointer", false},
        Rejection{"qname_label_type_01",
                  [] {
                    return withSpec([](MessageSpec& m) { m.questions[0].name = {0x41, 'a', 0}; });
                  },
                  Outcome::kError, Rcode::kFormErr, "name_label_type", false},
        Rejection{"qname_label_type_10",
                  [] {
                    return withSpec([](MessageSpec& m) { m.questions[0].name = {0x81, 'a', 0}; });
                  },
                  Outcome::kError, Rcode::kFormErr, "name_label_type", false},
        Rejection{"qname_256_bytes",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      const std::string l63(63, 'a');
                      m.questions[0].name = testwire::labels({l63, l63, l63, std::string(62, 'b')});
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "name_too_long", false},
        Rejection{"qname_no_root",
                  [] {
                    Bytes b = testwire::build(testwire::query("example.com"));
                    b.resize(12 + 1 + 7 + 1 + 3);  // up to and including "com", no root
                    return b;
                  },
                  Outcome::kError, Rcode::kFormErr, "name_truncated", false},
        Rejection{"qname_label_past_end",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.questions[0].name = {60, 'a', 'b'};
                      m.questions[0].omit_type_class = true;
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "name_truncated", false},
        Rejection{
            "no_qtype",
            [] { return withSpec([](MessageSpec& m) { m.questions[0].omit_type_class = true; }); },
            Outcome::kError, Rcode::kFormErr, "question_truncated", false},
        Rejection{"half_qclass",
                  [] {
                    Bytes b = testwire::build(testwire::query("example.com"));
                    b.pop_back();
                    return b;
                  },
                  Outcome::kError, Rcode::kFormErr, "question_truncated", false},
        // Sections a query must not have.
        Rejection{"answer_record",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.answers.push_back(testwire::a(testwire::name("example.com"), "192.0.2.1"));
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "ancount", true},
        Rejection{"ancount_claimed", [] { return withSpec([](MessageSpec& m) { m.ancount = 1; }); },
                  Outcome::kError, Rcode::kFormErr, "ancount", true},
        Rejection{"authority_record",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.authority.push_back(testwire::soa(testwire::name("example.com"), 60, 60));
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "nscount", true},
        Rejection{"two_opt",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.additional = {testwire::opt(), testwire::opt()};
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "arcount", true},
        Rejection{"arcount_claimed_without_rr",
                  [] { return withSpec([](MessageSpec& m) { m.arcount = 1; }); }, Outcome::kError,
                  Rcode::kFormErr, "additional_name", true},
        // The additional RR.
        Rejection{"opt_truncated",
                  [] {
                    Bytes b = testwire::build(testwire::query("example.com", kTypeA, kEdns));
                    b.resize(b.size() - 3);
                    return b;
                  },
                  Outcome::kError, Rcode::kFormErr, "additional_truncated", true},
        Rejection{"opt_rdlength_past_end",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.additional = {testwire::opt()};
                      m.additional[0].rdlength = 4;
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "additional_truncated", true},
        Rejection{"opt_owner_not_root",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.additional = {testwire::opt()};
                      m.additional[0].owner = testwire::name("example.com");
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "opt_owner", true},
        Rejection{"opt_owner_pointer",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.additional = {testwire::opt()};
                      m.additional[0].owner = testwire::pointer(12);
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "additional_name", true},
        Rejection{"opt_option_cut",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.additional = {testwire::opt()};
                      m.additional[0].rdata = {0, 10, 0};  // code, then half a length
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "opt_options", true},
        Rejection{"opt_option_length_past_rdata",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.additional = {testwire::opt()};
                      m.additional[0].rdata = {0, 10, 0, 8, 1, 2, 3, 4};
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "opt_options", true},
        Rejection{"tsig",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      testwire::RrSpec tsig = testwire::txt(testwire::name("key.example"), "sig");
                      tsig.type = kTypeTsig;
                      tsig.rr_class = 255;
                      tsig.ttl = 0;
                      m.additional = {tsig};
                    });
                  },
                  Outcome::kError, Rcode::kNotImp, "tsig", true},
        Rejection{"sig0",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      testwire::RrSpec sig = testwire::txt(testwire::name("."), "sig");
                      sig.type = kTypeSig;
                      m.additional = {sig};
                    });
                  },
                  Outcome::kError, Rcode::kNotImp, "tsig", true},
        Rejection{"additional_a_record",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.additional = {testwire::a(testwire::name("x.example"), "192.0.2.1")};
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "additional_not_opt", true},
        Rejection{"trailing_byte",
                  [] { return withSpec([](MessageSpec& m) { m.trailing = {0}; }); },
                  Outcome::kError, Rcode::kFormErr, "trailing_bytes", true},
        Rejection{"trailing_after_opt",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.additional = {testwire::opt()};
                      m.trailing = {0, 0, 0, 0};
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "trailing_bytes", true},
        // EDNS version (RFC 6891 §6.1.3): BADVERS, with an OPT in the answer.
        Rejection{"edns_version_1",
                  [] {
                    OptSpec e;
                    e.version = 1;
                    return testwire::build(testwire::query("example.com", kTypeA, e));
                  },
                  Outcome::kError, Rcode::kBadVers, "edns_version", true, true},
        Rejection{"edns_version_255",
                  [] {
                    OptSpec e;
                    e.version = 255;
                    return testwire::build(testwire::query("example.com", kTypeA, e));
                  },
                  Outcome::kError, Rcode::kBadVers, "edns_version", true, true},
        // QTYPE and QCLASS.
        Rejection{"qtype_0", [] { return testwire::build(testwire::query("example.com", 0)); },
                  Outcome::kError, Rcode::kFormErr, "qtype", true},
        Rejection{"qtype_opt",
                  [] { return testwire::build(testwire::query("example.com", kTypeOpt)); },
                  Outcome::kError, Rcode::kFormErr, "qtype", true},
        Rejection{"qtype_opt_with_edns",
                  [] { return testwire::build(testwire::query("example.com", kTypeOpt, kEdns)); },
                  Outcome::kError, Rcode::kFormErr, "qtype", true, true},
        Rejection{"qtype_any",
                  [] { return testwire::build(testwire::query("example.com", kTypeAny)); },
                  Outcome::kError, Rcode::kNotImp, "qtype_meta", true},
        Rejection{"qtype_axfr",
                  [] { return testwire::build(testwire::query("example.com", kTypeAxfr)); },
                  Outcome::kError, Rcode::kNotImp, "qtype_meta", true},
        Rejection{"qtype_ixfr", [] { return testwire::build(testwire::query("example.com", 251)); },
                  Outcome::kError, Rcode::kNotImp, "qtype_meta", true},
        Rejection{"qtype_tsig",
                  [] { return testwire::build(testwire::query("example.com", kTypeTsig)); },
                  Outcome::kError, Rcode::kNotImp, "qtype_meta", true},
        Rejection{"qtype_128", [] { return testwire::build(testwire::query("example.com", 128)); },
                  Outcome::kError, Rcode::kNotImp, "qtype_meta", true},
        Rejection{"qclass_chaos",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.questions[0] = {testwire::name("version.bind"), kTypeTxt, kClassCh};
                    });
                  },
                  Outcome::kError, Rcode::kRefused, "qclass", true},
        Rejection{"qclass_hesiod",
                  [] { return withSpec([](MessageSpec& m) { m.questions[0].qclass = 4; }); },
                  Outcome::kError, Rcode::kRefused, "qclass", true},
        Rejection{"qclass_any",
                  [] { return withSpec([](MessageSpec& m) { m.questions[0].qclass = 255; }); },
                  Outcome::kError, Rcode::kRefused, "qclass", true},
        Rejection{"qclass_0",
                  [] { return withSpec([](MessageSpec& m) { m.questions[0].qclass = 0; }); },
                  Outcome::kError, Rcode::kRefused, "qclass", true},
        Rejection{"qclass_with_edns",
                  [] {
                    MessageSpec m = testwire::query("example.com", kTypeA, kEdns);
                    m.questions[0].qclass = kClassCh;
                    return testwire::build(m);
                  },
                  Outcome::kError, Rcode::kRefused, "qclass", true, true},
        // Structural faults win over semantic ones.
        Rejection{"chaos_with_trailing",
                  [] {
                    return withSpec([](MessageSpec& m) {
                      m.questions[0].qclass = kClassCh;
                      m.trailing = {1};
                    });
                  },
                  Outcome::kError, Rcode::kFormErr, "trailing_bytes", true},
        Rejection{"badvers_beats_qtype",
                  [] {
                    OptSpec e;
                    e.version = 1;
                    return testwire::build(testwire::query("example.com", kTypeAny, e));
                  },
                  Outcome::kError, Rcode::kBadVers, "edns_version", true, true}),
    [](const ::testing::TestParamInfo<Rejection>& info) { return info.param.label; });

// ---- corruption: every length and count byte, every prefix, every byte ----

std::vector<MessageSpec> validQueries() {
  OptSpec cookie;
  cookie.options = {testwire::cookieOption()};
  OptSpec two_options;
  two_options.dnssec_ok = true;
  two_options.options = {testwire::cookieOption(), {12, Bytes(7, 0)}};
  return {testwire::query("example.com"), testwire::query("a.b.c.d.example.org", kTypeAaaa),
          testwire::query("example.com", kTypeA, OptSpec{}),
          testwire::query("www.example.com", kTypeA, cookie),
          testwire::query("_dmarc.example.com", kTypeTxt, two_options)};
}

// What any parse must satisfy, whatever the input.
void expectContract(const QueryParse& p, std::span<const uint8_t> msg) {
  switch (p.outcome) {
    case Outcome::kDrop:
      EXPECT_TRUE(msg.size() < kHeaderSize || (msg[2] & 0x80) != 0);
      EXPECT_FALSE(p.query.has_question);
      break;
    case Outcome::kError:
      EXPECT_NE(p.rcode, Rcode::kNoError);
      EXPECT_FALSE(p.reason.empty());
      break;
    case Outcome::kOk:
      EXPECT_EQ(p.rcode, Rcode::kNoError);
      EXPECT_TRUE(p.query.has_question);
      EXPECT_LE(p.query.question.name_wire.size(), kMaxNameWireLen);
      EXPECT_EQ(p.query.question.qclass, kClassIn);
      break;
  }
  if (p.query.has_question) {
    // Whatever was accepted can be answered and the answer read back.
    const Bytes answer = buildAnswer(p.query, {}, 60);
    Result<ForwardedAnswer> back = parseResponse(answer, p.query.id, p.query.question);
    EXPECT_TRUE(back.ok()) << back.message();
  }
}

TEST(QueryCorruption, EveryLengthAndCountByte) {
  size_t tried = 0;
  for (const MessageSpec& spec : validQueries()) {
    std::vector<size_t> offsets;
    const Bytes good = testwire::build(spec, &offsets);
    ASSERT_EQ(parseQuery(good).outcome, Outcome::kOk);
    ASSERT_GE(offsets.size(), 8u);
    for (size_t off : offsets) {
      for (int delta : {-1, +1}) {
        Bytes bad = good;
        bad[off] = static_cast<uint8_t>(bad[off] + delta);
        const QueryParse p = parseQuery(bad);
        expectContract(p, bad);
        // A changed length or count never leaves the same valid query.
        if (p.outcome == Outcome::kOk) {
          EXPECT_NE(p.query, parseQuery(good).query) << "offset " << off;
        }
        ++tried;
      }
      for (uint8_t v : {0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xfe, 0xff}) {
        Bytes bad = good;
        bad[off] = v;
        expectContract(parseQuery(bad), bad);
        ++tried;
      }
    }
  }
  EXPECT_GT(tried, 500u);
}

TEST(QueryCorruption, EveryPrefixIsRejected) {
  for (const MessageSpec& spec : validQueries()) {
    const Bytes good = testwire::build(spec);
    for (size_t n = 0; n < good.size(); ++n) {
      const Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
      const QueryParse p = parseQuery(cut);
      EXPECT_NE(p.outcome, Outcome::kOk) << n;
      expectContract(p, cut);
    }
  }
}

TEST(QueryCorruption, EveryByteEveryValue) {
  const Bytes good = testwire::build(testwire::query("ab.example", kTypeA, OptSpec{}));
  for (size_t off = 0; off < good.size(); ++off) {
    for (int v = 0; v < 256; ++v) {
      Bytes bad = good;
      bad[off] = static_cast<uint8_t>(v);
      expectContract(parseQuery(bad), bad);
    }
  }
}

}  // namespace
}  // namespace tollgate::dns
