#include "gateway/cidr.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

namespace tollgate::gateway {
namespace {

SockAddr ip(std::string_view s) {
  auto a = SockAddr::parseIp(s, 443);
  EXPECT_TRUE(a.has_value()) << s;
  return a.value_or(SockAddr());
}

// --- parse ------------------------------------------------------------------

struct ParseOk {
  std::string text;
  std::string canonical;
  bool v4;
  unsigned prefix;
};

// Readable parameter names in gtest output.
void PrintTo(const ParseOk& c, std::ostream* os) {
  *os << c.text << " | " << c.canonical << " | " << c.v4 << " | " << c.prefix;
}

class CidrParseOkTest : public ::testing::TestWithParam<ParseOk> {};

TEST_P(CidrParseOkTest, ParsesToCanonical) {
  const ParseOk& c = GetParam();
  auto r = Cidr::parseDetailed(c.text);
  ASSERT_TRUE(r) << c.text << ": " << r.message();
  EXPECT_EQ(r->toString(), c.canonical);
  EXPECT_EQ(r->isV4(), c.v4);
  EXPECT_EQ(r->prefixLen(), c.prefix);
  auto again = Cidr::parse(r->toString());
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *r);
}

INSTANTIATE_TEST_SUITE_P(
    All, CidrParseOkTest,
    ::testing::Values(ParseOk{"10.0.0.0/8", "10.0.0.0/8", true, 8},
                      ParseOk{"0.0.0.0/0", "0.0.0.0/0", true, 0},
                      ParseOk{"192.0.2.7/32", "192.0.2.7/32", true, 32},
                      ParseOk{"192.0.2.7", "192.0.2.7/32", true, 32},
                      ParseOk{"100.64.0.0/10", "100.64.0.0/10", true, 10},
                      ParseOk{"255.255.255.255/32", "255.255.255.255/32", true, 32},
                      ParseOk{"::/0", "::/0", false, 0}, ParseOk{"::/128", "::/128", false, 128},
                      ParseOk{"::1/128", "::1/128", false, 128},
                      ParseOk{"2001:DB8::/32", "2001:db8::/32", false, 32},
                      ParseOk{"2001:0db8:0000::/48", "2001:db8::/48", false, 48},
                      ParseOk{"fe80::/10", "fe80::/10", false, 10},
                      ParseOk{"2001:db8::1", "2001:db8::1/128", false, 128},
                      ParseOk{"::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104", false, 104},
                      ParseOk{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
                              "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", false, 128}));

struct ParseBad {
  std::string text;
  std::string message_part;
};

// Readable parameter names in gtest output.
void PrintTo(const ParseBad& c, std::ostream* os) { *os << c.text << " | " << c.message_part; }

class CidrParseBadTest : public ::testing::TestWithParam<ParseBad> {};

TEST_P(CidrParseBadTest, Rejects) {
  const ParseBad& c = GetParam();
  auto r = Cidr::parseDetailed(c.text);
  ASSERT_FALSE(r) << c.text << " parsed as " << r->toString();
  EXPECT_NE(r.message().find(c.message_part), std::string::npos) << r.message();
  EXPECT_FALSE(Cidr::parse(c.text).has_value());
}

INSTANTIATE_TEST_SUITE_P(
    All, CidrParseBadTest,
    ::testing::Values(
        ParseBad{"", "empty"}, ParseBad{"10.0.0.0/33", "prefix length 33 is larger than 32"},
        ParseBad{"::/129", "prefix length 129 is larger than 128"},
        ParseBad{"10.0.0.1/8", "host bits set; did you mean 10.0.0.0/8"},
        ParseBad{"10.77.0.1/24", "did you mean 10.77.0.0/24"},
        ParseBad{"2001:db8::1/32", "did you mean 2001:db8::/32"},
        ParseBad{"0.0.0.1/0", "did you mean 0.0.0.0/0"},
        ParseBad{"10.0.0.0/", "prefix length must be a number"},
        ParseBad{"10.0.0.0/08", "prefix length must be a number"},
        ParseBad{"10.0.0.0/+8", "prefix length must be a number"},
        ParseBad{"10.0.0.0/8/8", "prefix length must be a number"},
        ParseBad{"10.0.0.0/ 8", "prefix length must be a number"},
        ParseBad{"10.0.0.0/1000", "prefix length must be a number"},
        ParseBad{"10.0.0/8", "is not a CIDR"}, ParseBad{"010.0.0.0/8", "is not a CIDR"},
        ParseBad{"10.0.0.256/32", "is not a CIDR"}, ParseBad{" 10.0.0.0/8", "is not a CIDR"},
        ParseBad{"/8", "is not a CIDR"}, ParseBad{"example.com/8", "is not a CIDR"},
        ParseBad{"[::1]/128", "is not a CIDR"}, ParseBad{"fe80::1%eth0/128", "is not a CIDR"},
        ParseBad{std::string("10.0.0.0\0/8", 11), "is not a CIDR"},
        ParseBad{"1:2:3:4:5:6:7:8:9/128", "is not a CIDR"}));

// --- contains -----------------------------------------------------------------

struct ContainsCase {
  std::string cidr;
  std::string addr;
  bool contained;
};

// Readable parameter names in gtest output.
void PrintTo(const ContainsCase& c, std::ostream* os) {
  *os << c.cidr << " | " << c.addr << " | " << c.contained;
}

class CidrContainsTest : public ::testing::TestWithParam<ContainsCase> {};

TEST_P(CidrContainsTest, Contains) {
  const ContainsCase& c = GetParam();
  auto cidr = Cidr::parse(c.cidr);
  ASSERT_TRUE(cidr.has_value()) << c.cidr;
  EXPECT_EQ(cidr->contains(ip(c.addr)), c.contained) << c.cidr << " vs " << c.addr;
}

INSTANTIATE_TEST_SUITE_P(
    All, CidrContainsTest,
    ::testing::Values(
        // IPv4 edges
        ContainsCase{"10.0.0.0/8", "10.0.0.0", true},
        ContainsCase{"10.0.0.0/8", "10.255.255.255", true},
        ContainsCase{"10.0.0.0/8", "11.0.0.0", false},
        ContainsCase{"10.0.0.0/8", "9.255.255.255", false},
        ContainsCase{"172.16.0.0/12", "172.31.255.255", true},
        ContainsCase{"172.16.0.0/12", "172.32.0.0", false},
        ContainsCase{"100.64.0.0/10", "100.127.0.1", true},
        ContainsCase{"100.64.0.0/10", "100.128.0.1", false},
        ContainsCase{"192.0.2.7/32", "192.0.2.7", true},
        ContainsCase{"192.0.2.7/32", "192.0.2.8", false},
        ContainsCase{"0.0.0.0/0", "203.0.113.9", true}, ContainsCase{"0.0.0.0/0", "0.0.0.0", true},
        ContainsCase{"0.0.0.0/0", "2001:db8::1", false},
        // IPv6 edges
        ContainsCase{"::/0", "2001:db8::1", true}, ContainsCase{"::/128", "::", true},
        ContainsCase{"::/128", "::1", false}, ContainsCase{"::1/128", "::1", true},
        ContainsCase{"2001:db8::/32", "2001:db8:ffff::1", true},
        ContainsCase{"2001:db8::/32", "2001:db9::1", false},
        ContainsCase{"fe80::/10", "febf::1", true}, ContainsCase{"fe80::/10", "fec0::1", false},
        ContainsCase{"fc00::/7", "fd00::1", true}, ContainsCase{"fc00::/7", "fe00::1", false},
        ContainsCase{"2001:db8::5/128", "2001:db8::5", true},
        ContainsCase{"2001:db8::5/128", "2001:db8::6", false},
        ContainsCase{"2001:db8::/32", "192.0.2.1", false},
        // IPv4 and IPv4-mapped IPv6 are one address space
        ContainsCase{"10.0.0.0/8", "::ffff:10.1.2.3", true},
        ContainsCase{"10.0.0.0/8", "::ffff:11.1.2.3", false},
        ContainsCase{"127.0.0.0/8", "::ffff:127.0.0.1", true},
        ContainsCase{"::ffff:0:0/96", "10.1.2.3", true},
        ContainsCase{"::ffff:10.0.0.0/104", "10.9.9.9", true},
        ContainsCase{"::ffff:10.0.0.0/104", "11.9.9.9", false},
        ContainsCase{"0.0.0.0/0", "::ffff:1.2.3.4", true},
        // other IPv6 prefixes hold IPv6 only, even when they span ::ffff:0:0/96
        ContainsCase{"::/0", "10.1.2.3", false}, ContainsCase{"::/0", "::ffff:10.1.2.3", false},
        ContainsCase{"::/8", "::ffff:10.1.2.3", false}, ContainsCase{"::/8", "::1", true},
        // NAT64 / 6to4 are not the same address as the IPv4 one (checkUpstream
        // handles embedded addresses)
        ContainsCase{"10.0.0.0/8", "64:ff9b::a01:203", false},
        ContainsCase{"10.0.0.0/8", "::a01:203", false}));

TEST(CidrTest, FromAddressIsHostRoute) {
  auto c = Cidr::fromAddress(ip("192.0.2.5"));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->toString(), "192.0.2.5/32");
  auto c6 = Cidr::fromAddress(ip("2001:db8::5"));
  ASSERT_TRUE(c6.has_value());
  EXPECT_EQ(c6->toString(), "2001:db8::5/128");
  EXPECT_FALSE(Cidr::fromAddress(SockAddr()).has_value());
}

TEST(CidrTest, FromBytesClearsHostBits) {
  const uint8_t b[4] = {10, 77, 3, 4};
  EXPECT_EQ(Cidr::fromBytes(Cidr::Family::V4, b, 16).toString(), "10.77.0.0/16");
  EXPECT_EQ(Cidr::fromBytes(Cidr::Family::V4, b, 20).toString(), "10.77.0.0/20");
  EXPECT_EQ(Cidr::fromBytes(Cidr::Family::V4, b, 99).toString(), "10.77.3.4/32");
}

TEST(CidrTest, NormalizedTurnsMappedPrefixesIntoIpv4) {
  EXPECT_EQ(Cidr::parse("::ffff:10.0.0.0/104")->normalized().toString(), "10.0.0.0/8");
  EXPECT_EQ(Cidr::parse("::ffff:0:0/96")->normalized().toString(), "0.0.0.0/0");
  EXPECT_EQ(Cidr::parse("::/0")->normalized().toString(), "::/0");
  EXPECT_EQ(Cidr::parse("10.0.0.0/8")->normalized().toString(), "10.0.0.0/8");
}

TEST(CidrTest, NoAddressIsContainedInAnything) {
  EXPECT_FALSE(Cidr::parse("0.0.0.0/0")->contains(SockAddr()));
  EXPECT_FALSE(Cidr::parse("::/0")->contains(SockAddr()));
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

class CidrOverlapTest : public ::testing::TestWithParam<OverlapCase> {};

TEST_P(CidrOverlapTest, OverlapsIsSymmetric) {
  const OverlapCase& c = GetParam();
  auto a = Cidr::parse(c.a);
  auto b = Cidr::parse(c.b);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->overlaps(*b), c.overlap) << c.a << " / " << c.b;
  EXPECT_EQ(b->overlaps(*a), c.overlap) << c.b << " / " << c.a;
}

INSTANTIATE_TEST_SUITE_P(All, CidrOverlapTest,
                         ::testing::Values(OverlapCase{"10.0.0.0/8", "10.77.0.0/24", true},
                                           OverlapCase{"10.0.0.0/8", "10.0.0.0/8", true},
                                           OverlapCase{"10.0.0.0/8", "11.0.0.0/8", false},
                                           OverlapCase{"10.77.0.0/24", "10.77.1.0/24", false},
                                           OverlapCase{"0.0.0.0/0", "192.0.2.1/32", true},
                                           OverlapCase{"2001:db8::/32", "2001:db8:1::/48", true},
                                           OverlapCase{"2001:db8::/32", "2001:db9::/32", false},
                                           OverlapCase{"10.0.0.0/8", "2001:db8::/32", false},
                                           OverlapCase{"10.0.0.0/8", "::ffff:10.1.0.0/112", true},
                                           OverlapCase{"::/0", "10.0.0.0/8", false},
                                           OverlapCase{"::/0", "::ffff:10.0.0.0/104", false},
                                           OverlapCase{"::ffff:0:0/96", "0.0.0.0/0", true},
                                           OverlapCase{"::ffff:0:0/96", "2001:db8::/32", false}));

}  // namespace
}  // namespace tollgate::gateway
