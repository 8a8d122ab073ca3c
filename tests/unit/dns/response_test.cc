// buildError, buildAnswer, truncateForUdp: every byte a sandbox receives.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dns/dns.h"
#include "wire_util.h"

namespace tollgate::dns {
namespace {

using testwire::be16;
using testwire::be32;
using testwire::Bytes;
using testwire::ip;
using testwire::MessageSpec;
using testwire::OptSpec;

Query parsed(const MessageSpec& spec) {
  const QueryParse p = parseQuery(testwire::build(spec));
  EXPECT_EQ(p.outcome, QueryParse::Outcome::kOk) << ::testing::PrintToString(p);
  return p.query;
}

// Offsets in a response to a query for `host` (uncompressed question).
size_t answersStart(std::string_view host) { return kHeaderSize + testwire::name(host).size() + 4; }

TEST(BuildAnswer, ARecords) {
  MessageSpec spec = testwire::query("Api.Example.Test");
  spec.id = 0x4242;
  const Query q = parsed(spec);
  const std::vector<SockAddr> addrs = {ip("192.0.2.1"), ip("2001:db8::1"), ip("198.51.100.7")};
  const Bytes r = buildAnswer(q, addrs, 120);

  EXPECT_EQ(be16(r, 0), 0x4242);
  EXPECT_EQ(be16(r, 2), testwire::kQr | testwire::kRd | testwire::kRa) << "AA=0, NOERROR";
  EXPECT_EQ(be16(r, 4), 1);
  EXPECT_EQ(be16(r, 6), 2) << "only the A family";
  EXPECT_EQ(be16(r, 8), 0);
  EXPECT_EQ(be16(r, 10), 0) << "no OPT without EDNS";
  // Question echoed byte for byte, original case included.
  const Bytes qwire = testwire::name("Api.Example.Test");
  EXPECT_TRUE(std::equal(qwire.begin(), qwire.end(), r.begin() + kHeaderSize));
  size_t off = answersStart("Api.Example.Test");
  for (const char* expected : {"192.0.2.1", "198.51.100.7"}) {
    EXPECT_EQ(be16(r, off), 0xc00c) << "owner is a pointer to the question name";
    EXPECT_EQ(be16(r, off + 2), kTypeA);
    EXPECT_EQ(be16(r, off + 4), kClassIn);
    EXPECT_EQ(be32(r, off + 6), 120u);
    EXPECT_EQ(be16(r, off + 10), 4);
    const SockAddr want = ip(expected);
    EXPECT_TRUE(std::equal(r.begin() + static_cast<std::ptrdiff_t>(off) + 12,
                           r.begin() + static_cast<std::ptrdiff_t>(off) + 16, want.addrBytes()));
    off += 16;
  }
  EXPECT_EQ(off, r.size());

  Result<ForwardedAnswer> back = parseResponse(r, q.id, q.question);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(testwire::ips(back->addresses),
            (std::vector<std::string>{"192.0.2.1", "198.51.100.7"}));
  EXPECT_EQ(back->ttl, 120u);
}

TEST(BuildAnswer, AaaaRecordsOnlyAndDeduplicated) {
  const Query q = parsed(testwire::query("example.test", kTypeAaaa));
  const std::vector<SockAddr> addrs = {ip("2001:db8::1"), ip("192.0.2.1"), ip("2001:db8::2"),
                                       ip("2001:db8::1")};
  const Bytes r = buildAnswer(q, addrs, 60);
  EXPECT_EQ(be16(r, 6), 2);
  size_t off = answersStart("example.test");
  EXPECT_EQ(be16(r, off + 2), kTypeAaaa);
  EXPECT_EQ(be16(r, off + 10), 16);
  Result<ForwardedAnswer> back = parseResponse(r, q.id, q.question);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(testwire::ips(back->addresses),
            (std::vector<std::string>{"2001:db8::1", "2001:db8::2"}));
}

TEST(BuildAnswer, NoDataWhenNoAddressOfTheFamily) {
  const Query q = parsed(testwire::query("example.test", kTypeAaaa));
  const Bytes r = buildAnswer(q, std::vector<SockAddr>{ip("192.0.2.1")}, 60);
  EXPECT_EQ(be16(r, 2) & 0xf, 0) << "NOERROR";
  EXPECT_EQ(be16(r, 6), 0);
  EXPECT_EQ(r.size(), answersStart("example.test"));
}

TEST(BuildAnswer, NoDataForOtherTypes) {
  for (uint16_t qtype : {kTypeTxt, kTypeMx, kTypeHttps, kTypeCname}) {
    const Query q = parsed(testwire::query("example.test", qtype));
    const Bytes r = buildAnswer(q, std::vector<SockAddr>{ip("192.0.2.1"), ip("2001:db8::1")}, 60);
    EXPECT_EQ(be16(r, 6), 0) << qtype;
    EXPECT_EQ(be16(r, 2) & 0xf, 0) << qtype;
  }
}

TEST(BuildAnswer, TtlIsCapped) {
  const Query q = parsed(testwire::query("example.test"));
  const Bytes r = buildAnswer(q, std::vector<SockAddr>{ip("192.0.2.1")}, 0xffffffff);
  EXPECT_EQ(be32(r, answersStart("example.test") + 6), kMaxTtl);
}

TEST(BuildAnswer, AtMost64Records) {
  const Query q = parsed(testwire::query("example.test"));
  std::vector<SockAddr> addrs;
  for (int i = 0; i < 200; ++i) {
    addrs.push_back(ip("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250)));
  }
  const Bytes r = buildAnswer(q, addrs, 60);
  EXPECT_EQ(be16(r, 6), kMaxAnswerRecords);
}

TEST(BuildAnswer, EdnsEchoed) {
  OptSpec edns;
  edns.udp_size = 4096;
  edns.dnssec_ok = true;
  edns.options = {testwire::cookieOption()};
  const Query q = parsed(testwire::query("example.test", kTypeA, edns));
  const Bytes r = buildAnswer(q, std::vector<SockAddr>{ip("192.0.2.1")}, 60);
  EXPECT_EQ(be16(r, 10), 1);
  const size_t opt = answersStart("example.test") + 16;
  ASSERT_EQ(r.size(), opt + 11) << "OPT with no options (the cookie is not echoed)";
  EXPECT_EQ(r[opt], 0) << "owner: root";
  EXPECT_EQ(be16(r, opt + 1), kTypeOpt);
  EXPECT_EQ(be16(r, opt + 3), kServerUdpPayload);
  EXPECT_EQ(be32(r, opt + 5), 0x00008000u) << "rcode 0, version 0, DO echoed";
  EXPECT_EQ(be16(r, opt + 9), 0);
}

TEST(BuildAnswer, NoQuestionGivesServfail) {
  Query q;
  q.id = 7;
  const Bytes r = buildAnswer(q, std::vector<SockAddr>{ip("192.0.2.1")}, 60);
  EXPECT_EQ(r.size(), kHeaderSize);
  EXPECT_EQ(be16(r, 2) & 0xf, static_cast<int>(Rcode::kServFail));
}

TEST(BuildError, EchoesQuestionIdAndFlags) {
  MessageSpec spec = testwire::query("Blocked.Example");
  spec.id = 0x0102;
  spec.flags = testwire::kRd | testwire::kCd;
  const Query q = parsed(spec);
  const Bytes r = buildError(q, Rcode::kRefused);
  EXPECT_EQ(be16(r, 0), 0x0102);
  EXPECT_EQ(be16(r, 2), testwire::kQr | testwire::kRd | testwire::kRa | testwire::kCd | 5);
  EXPECT_EQ(be16(r, 4), 1);
  EXPECT_EQ(be16(r, 6), 0);
  EXPECT_EQ(be16(r, 8), 0);
  EXPECT_EQ(be16(r, 10), 0);
  const Bytes expected_question =
      testwire::concat(testwire::name("Blocked.Example"), Bytes{0, 1, 0, 1});
  EXPECT_EQ(Bytes(r.begin() + kHeaderSize, r.end()), expected_question);
}

TEST(BuildError, NotImpEchoesOpcodeWithoutQuestion) {
  MessageSpec spec = testwire::query("example.test");
  spec.flags = testwire::opcodeBits(5);  // UPDATE
  const QueryParse p = parseQuery(testwire::build(spec));
  ASSERT_EQ(p.outcome, QueryParse::Outcome::kError);
  const Bytes r = buildError(p.query, p.rcode);
  ASSERT_EQ(r.size(), kHeaderSize);
  EXPECT_EQ(be16(r, 2), testwire::kQr | testwire::opcodeBits(5) | testwire::kRa | 4);
  EXPECT_EQ(be16(r, 4), 0);
}

TEST(BuildError, BadVersCarriesExtendedRcodeInOpt) {
  OptSpec edns;
  edns.version = 1;
  edns.dnssec_ok = true;
  const QueryParse p = parseQuery(testwire::build(testwire::query("example.test", kTypeA, edns)));
  ASSERT_EQ(p.rcode, Rcode::kBadVers);
  const Bytes r = buildError(p.query, p.rcode);
  EXPECT_EQ(be16(r, 2) & 0xf, 0) << "BADVERS = 16: low bits 0";
  EXPECT_EQ(be16(r, 10), 1);
  const size_t opt = answersStart("example.test");
  ASSERT_EQ(r.size(), opt + 11);
  EXPECT_EQ(be32(r, opt + 5), 0x01008000u) << "extended rcode 1, version 0, DO";
  Result<ForwardedAnswer> back = parseResponse(r, p.query.id, p.query.question);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->rcode, Rcode::kBadVers);
}

TEST(BuildError, ExtendedRcodeWithoutEdnsIsServfail) {
  const Query q = parsed(testwire::query("example.test"));
  const Bytes r = buildError(q, Rcode::kBadVers);
  EXPECT_EQ(be16(r, 2) & 0xf, static_cast<int>(Rcode::kServFail));
  EXPECT_EQ(be16(r, 10), 0);
}

TEST(BuildError, RoundTripsEveryRcode) {
  for (bool edns : {false, true}) {
    const Query q = parsed(testwire::query(
        "example.test", kTypeA, edns ? std::optional<OptSpec>(OptSpec{}) : std::nullopt));
    for (Rcode rc : {Rcode::kNoError, Rcode::kFormErr, Rcode::kServFail, Rcode::kNxDomain,
                     Rcode::kNotImp, Rcode::kRefused}) {
      Result<ForwardedAnswer> back = parseResponse(buildError(q, rc), q.id, q.question);
      ASSERT_TRUE(back.ok()) << back.message();
      EXPECT_EQ(back->rcode, rc);
      EXPECT_TRUE(back->addresses.empty());
      EXPECT_EQ(back->ttl, 0u);
    }
  }
}

// ---- truncation ----

std::vector<SockAddr> manyV4(int n) {
  std::vector<SockAddr> out;
  for (int i = 1; i <= n; ++i) {
    out.push_back(ip("198.51.100." + std::to_string(i)));
  }
  return out;
}

std::vector<SockAddr> manyV6(int n) {
  std::vector<SockAddr> out;
  for (int i = 1; i <= n; ++i) {
    out.push_back(ip("2001:db8::" + std::to_string(i)));
  }
  return out;
}

TEST(TruncateForUdp, FitsUnchanged) {
  const Query q = parsed(testwire::query("example.test"));
  const Bytes r = buildAnswer(q, manyV4(3), 60);
  EXPECT_EQ(truncateForUdp(r, q.maxUdpResponse()), r);
}

TEST(TruncateForUdp, ClassicClientGetsTcAndNoAnswers) {
  const Query q = parsed(testwire::query("example.test"));
  const Bytes r = buildAnswer(q, manyV4(40), 60);  // 12 + 18 + 40 * 16 = 670 > 512
  ASSERT_GT(r.size(), 512u);
  const Bytes t = truncateForUdp(r, q.maxUdpResponse());
  EXPECT_LE(t.size(), 512u);
  EXPECT_EQ(be16(t, 0), be16(r, 0));
  EXPECT_EQ(be16(t, 2), be16(r, 2) | testwire::kTc);
  EXPECT_EQ(be16(t, 4), 1);
  EXPECT_EQ(be16(t, 6), 0);
  EXPECT_EQ(be16(t, 10), 0);
  EXPECT_EQ(t.size(), answersStart("example.test"));
  Result<ForwardedAnswer> back = parseResponse(t, q.id, q.question);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_TRUE(back->truncated);
}

TEST(TruncateForUdp, EdnsClientSizeAndOptKept) {
  OptSpec edns;
  edns.udp_size = 4096;  // clamped to 1232
  edns.dnssec_ok = true;
  const Query q = parsed(testwire::query("example.test", kTypeAaaa, edns));
  EXPECT_EQ(q.maxUdpResponse(), kServerUdpPayload);
  const Bytes fits = buildAnswer(q, manyV6(40), 60);  // 30 + 40 * 28 + 11 = 1161
  EXPECT_EQ(truncateForUdp(fits, q.maxUdpResponse()), fits);
  const Bytes big = buildAnswer(q, manyV6(64), 60);  // 30 + 64 * 28 + 11 = 1833
  const Bytes t = truncateForUdp(big, q.maxUdpResponse());
  EXPECT_NE(be16(t, 2) & testwire::kTc, 0);
  EXPECT_EQ(be16(t, 6), 0);
  EXPECT_EQ(be16(t, 10), 1) << "OPT kept";
  EXPECT_EQ(t.size(), answersStart("example.test") + 11);
  EXPECT_EQ(be32(t, t.size() - 6), 0x00008000u) << "DO still echoed";
}

TEST(TruncateForUdp, SmallMaxIsTakenAs512) {
  const Query q = parsed(testwire::query("example.test"));
  const Bytes r = buildAnswer(q, manyV4(20), 60);  // 30 + 320 = 350
  EXPECT_EQ(truncateForUdp(r, 100), r);
}

TEST(TruncateForUdp, GarbageBecomesHeaderOnly) {
  Bytes garbage(600, 0xff);
  const Bytes t = truncateForUdp(garbage, 512);
  ASSERT_EQ(t.size(), kHeaderSize);
  EXPECT_EQ(be16(t, 4), 0);
  EXPECT_EQ(be16(t, 6), 0);
  EXPECT_EQ(be16(t, 8), 0);
  EXPECT_EQ(be16(t, 10), 0);
  EXPECT_NE(be16(t, 2) & testwire::kTc, 0);
}

TEST(TruncateForUdp, ForeignCompressedResponse) {
  // A response in another server's style: answers, authority, an OPT.
  MessageSpec spec = testwire::response("example.test", kTypeA, {});
  for (int i = 1; i <= 40; ++i) {
    spec.answers.push_back(testwire::a(testwire::pointer(12), "198.51.100." + std::to_string(i)));
  }
  spec.authority.push_back(testwire::soa(testwire::pointer(12), 60, 60));
  spec.additional.push_back(testwire::opt());
  const Bytes r = testwire::build(spec);
  const Bytes t = truncateForUdp(r, 512);
  EXPECT_EQ(be16(t, 6), 0);
  EXPECT_EQ(be16(t, 8), 0);
  EXPECT_EQ(be16(t, 10), 1);
  EXPECT_EQ(t.size(), answersStart("example.test") + 11);
}

}  // namespace
}  // namespace tollgate::dns
