#include "gateway/host_pattern.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

namespace tollgate::gateway {
namespace {

// --- parsing config names -------------------------------------------------------

struct PatternOk {
  std::string text;
  std::string name;
  bool wildcard;
};

// Readable parameter names in gtest output.
void PrintTo(const PatternOk& c, std::ostream* os) {
  *os << c.text << " | " << c.name << " | " << c.wildcard;
}

class HostPatternParseOkTest : public ::testing::TestWithParam<PatternOk> {};

TEST_P(HostPatternParseOkTest, Canonicalises) {
  const PatternOk& c = GetParam();
  auto p = HostPattern::parse(c.text);
  ASSERT_TRUE(p) << c.text << ": " << p.message();
  EXPECT_EQ(p->name, c.name);
  EXPECT_EQ(p->wildcard, c.wildcard);
}

INSTANTIATE_TEST_SUITE_P(
    All, HostPatternParseOkTest,
    ::testing::Values(PatternOk{"example.com", "example.com", false},
                      PatternOk{"Example.COM", "example.com", false},
                      PatternOk{"example.com.", "example.com", false},
                      PatternOk{"*.example.com", "example.com", true},
                      PatternOk{"*.EXAMPLE.com.", "example.com", true},
                      PatternOk{"*.com", "com", true}, PatternOk{"localhost", "localhost", false},
                      PatternOk{"bücher.example", "xn--bcher-kva.example", false},
                      PatternOk{"BÜCHER.example", "xn--bcher-kva.example", false},
                      PatternOk{"*.bücher.example", "xn--bcher-kva.example", true},
                      PatternOk{"XN--BCHER-KVA.example", "xn--bcher-kva.example", false},
                      // UTS #46 non-transitional: ß stays ß (not "ss")
                      PatternOk{"faß.de", "xn--fa-hia.de", false},
                      // UTS #46 maps full-width forms and ideographic full stops
                      PatternOk{"ｅｘａｍｐｌｅ。com", "example.com", false},
                      PatternOk{"例え.テスト", "xn--r8jz45g.xn--zckzah", false},
                      PatternOk{"a-b.c-d.example", "a-b.c-d.example", false}));

struct PatternBad {
  std::string text;
  std::string message_part;
};

// Readable parameter names in gtest output.
void PrintTo(const PatternBad& c, std::ostream* os) { *os << c.text << " | " << c.message_part; }

class HostPatternParseBadTest : public ::testing::TestWithParam<PatternBad> {};

TEST_P(HostPatternParseBadTest, Rejects) {
  const PatternBad& c = GetParam();
  auto p = HostPattern::parse(c.text);
  ASSERT_FALSE(p) << c.text << " parsed as " << p->toString();
  EXPECT_NE(p.message().find(c.message_part), std::string::npos) << p.message();
}

INSTANTIATE_TEST_SUITE_P(
    All, HostPatternParseBadTest,
    ::testing::Values(PatternBad{"*", "would match every host"},
                      PatternBad{"*.", "would match every host"},
                      PatternBad{"*example.com", "only as the whole leftmost label"},
                      PatternBad{"foo.*.example.com", "only as the whole leftmost label"},
                      PatternBad{"**.example.com", "only as the whole leftmost label"},
                      PatternBad{"*.*.example.com", "only as the whole leftmost label"},
                      PatternBad{"example.*", "only as the whole leftmost label"},
                      PatternBad{"f*o.example.com", "only as the whole leftmost label"},
                      PatternBad{"10.0.0.1", "use cidrs: [10.0.0.1/32]"},
                      PatternBad{"2001:db8::1", "use cidrs: [2001:db8::1/128]"},
                      PatternBad{"[2001:db8::1]", "IP literal"},
                      PatternBad{"*.10.0.0.1", "IP literal"}, PatternBad{"", "empty host name"},
                      PatternBad{"exa mple.com", "not a valid host name"},
                      PatternBad{"under_score.example", "not a valid host name"},
                      PatternBad{"-lead.example", "not a valid host name"},
                      PatternBad{"a..example", "not a valid host name"},
                      PatternBad{"example.com:443", "not a valid host name"},
                      PatternBad{"https://example.com", "not a valid host name"},
                      PatternBad{"1.2.3", "not a valid host name"},
                      PatternBad{std::string("exa\0mple.com", 12), "NUL"},
                      PatternBad{std::string(64, 'a') + ".example", "not a valid host name"},
                      PatternBad{"\xff\xfe.example", "not a valid internationalized name"}));

// --- matching -----------------------------------------------------------------------

struct MatchCase {
  std::string pattern;
  std::string sni;  // raw, run through normalizeHostName as the peek path does
  bool match;
};

// Readable parameter names in gtest output.
void PrintTo(const MatchCase& c, std::ostream* os) {
  *os << c.pattern << " | " << c.sni << " | " << c.match;
}

class HostPatternMatchTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(HostPatternMatchTest, Matches) {
  const MatchCase& c = GetParam();
  auto p = HostPattern::parse(c.pattern);
  ASSERT_TRUE(p) << p.message();
  auto host = normalizeHostName(c.sni);
  ASSERT_TRUE(host.has_value()) << c.sni;
  EXPECT_EQ(p->matches(*host), c.match) << c.pattern << " vs " << c.sni;
}

INSTANTIATE_TEST_SUITE_P(All, HostPatternMatchTest,
                         ::testing::Values(
                             // exact
                             MatchCase{"example.com", "example.com", true},
                             MatchCase{"example.com", "EXAMPLE.COM", true},
                             MatchCase{"example.com", "example.com.", true},
                             MatchCase{"EXAMPLE.com.", "Example.Com", true},
                             MatchCase{"example.com", "www.example.com", false},
                             MatchCase{"example.com", "example.co", false},
                             MatchCase{"example.com", "example.com.evil", false},
                             MatchCase{"example.com", "badexample.com", false},
                             // wildcard: any depth below, never the apex
                             MatchCase{"*.example.com", "a.example.com", true},
                             MatchCase{"*.example.com", "a.b.c.example.com", true},
                             MatchCase{"*.example.com", "A.EXAMPLE.COM.", true},
                             MatchCase{"*.example.com", "example.com", false},
                             MatchCase{"*.example.com", "badexample.com", false},
                             MatchCase{"*.example.com", "a.badexample.com", false},
                             MatchCase{"*.example.com", "example.com.evil.net", false},
                             MatchCase{"*.example.com", "xexample.com", false},
                             MatchCase{"*.github.com", "api.github.com", true},
                             // IDNA: Unicode in config, A-label on the wire
                             MatchCase{"bücher.example", "xn--bcher-kva.example", true},
                             MatchCase{"bücher.example", "XN--BCHER-KVA.EXAMPLE.", true},
                             MatchCase{"*.bücher.example", "www.xn--bcher-kva.example", true},
                             MatchCase{"*.bücher.example", "xn--bcher-kva.example", false},
                             MatchCase{"bucher.example", "xn--bcher-kva.example", false},
                             // IP literal SNI never matches a host pattern
                             MatchCase{"*.com", "192.0.2.1", false},
                             MatchCase{"localhost", "127.0.0.1", false},
                             MatchCase{"*.arpa", "::1", false}));

TEST(HostPatternTest, IpLiteralHostNameNeverMatchesEvenIfTextWould) {
  HostPattern p{"192.0.2.1", false};  // cannot come from parse(); guards the overload
  EXPECT_FALSE(p.matches(HostName{"192.0.2.1", true}));
  EXPECT_TRUE(p.matches(std::string_view("192.0.2.1")));
}

TEST(HostPatternTest, ToStringRoundTrips) {
  EXPECT_EQ(HostPattern::parse("*.Example.com")->toString(), "*.example.com");
  EXPECT_EQ(HostPattern::parse("bücher.example")->toString(), "xn--bcher-kva.example");
}

struct OverlapCase {
  std::string a;
  std::string b;
  bool overlap;
};

// Readable parameter names in gtest output.
void PrintTo(const OverlapCase& c, std::ostream* os) {
  *os << c.a << " | " << c.b << " | " << c.overlap;
}

class HostPatternOverlapTest : public ::testing::TestWithParam<OverlapCase> {};

TEST_P(HostPatternOverlapTest, IsSymmetric) {
  const OverlapCase& c = GetParam();
  auto a = HostPattern::parse(c.a);
  auto b = HostPattern::parse(c.b);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->overlaps(*b), c.overlap) << c.a << " / " << c.b;
  EXPECT_EQ(b->overlaps(*a), c.overlap) << c.b << " / " << c.a;
}

INSTANTIATE_TEST_SUITE_P(All, HostPatternOverlapTest,
                         ::testing::Values(OverlapCase{"a.example", "a.example", true},
                                           OverlapCase{"a.example", "b.example", false},
                                           OverlapCase{"*.example", "a.example", true},
                                           OverlapCase{"*.example", "example", false},
                                           OverlapCase{"*.example", "*.example", true},
                                           OverlapCase{"*.example", "*.a.example", true},
                                           OverlapCase{"*.a.example", "*.b.example", false},
                                           OverlapCase{"*.example", "*.badexample", false}));

TEST(NormalizeConfigHostNameTest, KeepsIpLiteralsMarked) {
  auto h = normalizeConfigHostName("192.0.2.1");
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->is_ip);
  auto n = normalizeConfigHostName("Bücher.Example.");
  ASSERT_TRUE(n);
  EXPECT_FALSE(n->is_ip);
  EXPECT_EQ(n->name, "xn--bcher-kva.example");
}

}  // namespace
}  // namespace tollgate::gateway
