#include "base/hostname.h"

#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>

namespace tollgate {
namespace {

struct NameCase {
  std::string label;  // test name suffix
  std::string raw;
  std::optional<HostName> want;
};

void PrintTo(const NameCase& c, std::ostream* os) { *os << c.label; }

HostName name(std::string n) { return HostName{std::move(n), false}; }
HostName ip(std::string n) { return HostName{std::move(n), true}; }

std::string label(size_t n, char c = 'a') { return std::string(n, c); }

// "a{63}.a{63}.a{63}.a{61}" = 253 bytes; one more is 254.
std::string nameOfLength(size_t total) {
  std::string out;
  while (out.size() < total) {
    if (!out.empty()) {
      out.push_back('.');
    }
    out += label(std::min<size_t>(63, total - out.size()));
  }
  return out;
}

class NormalizeHostNameTest : public ::testing::TestWithParam<NameCase> {};

TEST_P(NormalizeHostNameTest, Table) {
  const NameCase& c = GetParam();
  EXPECT_EQ(normalizeHostName(c.raw), c.want) << "raw: \"" << c.raw << "\"";
}

INSTANTIATE_TEST_SUITE_P(
    Names, NormalizeHostNameTest,
    ::testing::Values(
        NameCase{"plain", "api.example.test", name("api.example.test")},
        NameCase{"upper_case", "API.Example.TEST", name("api.example.test")},
        NameCase{"trailing_dot", "example.com.", name("example.com")},
        NameCase{"two_trailing_dots", "example.com..", std::nullopt},
        NameCase{"only_dot", ".", std::nullopt}, NameCase{"empty", "", std::nullopt},
        NameCase{"leading_dot", ".example.com", std::nullopt},
        NameCase{"empty_label", "a..b", std::nullopt},
        NameCase{"single_label", "localhost", name("localhost")},
        NameCase{"idna_a_label", "xn--bcher-kva.example", name("xn--bcher-kva.example")},
        NameCase{"idna_a_label_upper", "XN--BCHER-KVA.Example", name("xn--bcher-kva.example")},
        NameCase{"u_label_rejected",
                 "b\xc3\xbc"
                 "cher.example",
                 std::nullopt},
        NameCase{"hyphen_inside", "my-host.example", name("my-host.example")},
        NameCase{"leading_hyphen", "-host.example", std::nullopt},
        NameCase{"trailing_hyphen", "host-.example", std::nullopt},
        NameCase{"digits_label", "123.example", name("123.example")},
        NameCase{"label_63", label(63) + ".example", name(label(63) + ".example")},
        NameCase{"label_64", label(64) + ".example", std::nullopt},
        NameCase{"total_253", nameOfLength(253), name(nameOfLength(253))},
        NameCase{"total_253_trailing_dot", nameOfLength(253) + ".", name(nameOfLength(253))},
        NameCase{"total_254", nameOfLength(254), std::nullopt},
        NameCase{"nul_inside", std::string("exa\0mple.com", 12), std::nullopt},
        NameCase{"nul_at_end", std::string("example.com\0", 12), std::nullopt},
        NameCase{"space", "exa mple.com", std::nullopt},
        NameCase{"leading_space", " example.com", std::nullopt},
        NameCase{"underscore", "_dmarc.example.com", std::nullopt},
        NameCase{"underscore_inside", "my_host.example", std::nullopt},
        NameCase{"slash", "example.com/x", std::nullopt},
        NameCase{"at_sign", "user@example.com", std::nullopt},
        NameCase{"percent", "exa%2emple.com", std::nullopt},
        NameCase{"star", "*.example.com", std::nullopt},
        NameCase{"port_rejected", "example.com:443", std::nullopt},
        NameCase{"ipv4", "192.0.2.1", ip("192.0.2.1")},
        NameCase{"ipv4_trailing_dot", "192.0.2.1.", ip("192.0.2.1")},
        NameCase{"ipv4_three_parts", "1.2.3", std::nullopt},
        NameCase{"ipv4_leading_zero", "010.1.1.1", std::nullopt},
        NameCase{"ipv4_five_parts", "1.2.3.4.5", std::nullopt},
        NameCase{"ipv4_octet_too_big", "1.2.3.256", std::nullopt},
        NameCase{"ipv4_single_number", "2130706433", std::nullopt},
        NameCase{"hex_number", "0x7f000001", std::nullopt},
        NameCase{"hex_top_label", "1.0x2", std::nullopt},
        NameCase{"hex_top_label_upper", "a.0XFF", std::nullopt},
        NameCase{"hex_prefix_only", "0x", std::nullopt},
        NameCase{"hex_like_name", "0xzz.example", name("0xzz.example")},
        NameCase{"hex_like_top_label", "example.0xg", name("example.0xg")},
        NameCase{"numeric_top_label", "example.123", std::nullopt},
        NameCase{"ipv6", "2001:db8::1", ip("2001:db8::1")},
        NameCase{"ipv6_upper_long", "2001:DB8:0:0:0:0:0:1", ip("2001:db8::1")},
        NameCase{"ipv6_bracketed", "[2001:db8::1]", ip("2001:db8::1")},
        NameCase{"ipv6_loopback", "::1", ip("::1")},
        NameCase{"ipv6_mapped", "::ffff:192.0.2.1", ip("::ffff:192.0.2.1")},
        NameCase{"ipv6_zone", "fe80::1%eth0", std::nullopt},
        NameCase{"ipv6_nul", std::string("::1\0junk", 8), std::nullopt},
        NameCase{"ipv6_bracketed_nul", std::string("[::1\0]", 6), std::nullopt},
        NameCase{"ipv4_bracketed", "[192.0.2.1]", std::nullopt},
        NameCase{"brackets_empty", "[]", std::nullopt},
        NameCase{"bracket_unclosed", "[::1", std::nullopt},
        NameCase{"ipv6_with_port", "[::1]:443", std::nullopt},
        NameCase{"ipv6_bad", "2001:db8:::1", std::nullopt},
        NameCase{"colon_name", "host:name", std::nullopt}),
    [](const ::testing::TestParamInfo<NameCase>& info) { return info.param.label; });

TEST(NormalizeHostNameTest, EveryByteOutsideLdhIsRejected) {
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const bool ldh = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == ':';
    std::string raw = "ab";
    raw.push_back(ch);
    raw += "cd.example";
    auto got = normalizeHostName(raw);
    if (ldh && ch != ':') {
      EXPECT_TRUE(got.has_value()) << "byte " << c;
    } else {
      EXPECT_FALSE(got.has_value()) << "byte " << c;
    }
  }
}

TEST(NormalizeHostNameTest, IsIdempotent) {
  for (const char* raw :
       {"API.example.test.", "192.0.2.1", "[2001:DB8::1]", "xn--bcher-kva.example"}) {
    auto once = normalizeHostName(raw);
    ASSERT_TRUE(once.has_value()) << raw;
    auto twice = normalizeHostName(once->name);
    EXPECT_EQ(twice, once) << raw;
  }
}

// ---------------------------------------------------------------------------
// host[:port]

struct HostPortCase {
  std::string label;
  std::string in;
  std::optional<HostPort> want;
};

void PrintTo(const HostPortCase& c, std::ostream* os) { *os << c.label; }

class ParseHostPortTest : public ::testing::TestWithParam<HostPortCase> {};

TEST_P(ParseHostPortTest, Table) {
  const HostPortCase& c = GetParam();
  auto got = parseHostPort(c.in);
  ASSERT_EQ(got.has_value(), c.want.has_value()) << c.in;
  if (got) {
    EXPECT_EQ(got->host, c.want->host);
    EXPECT_EQ(got->port, c.want->port);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ParseHostPortTest,
    ::testing::Values(
        HostPortCase{"name", "Example.COM", HostPort{name("example.com"), std::nullopt}},
        HostPortCase{"name_port", "example.com:8080", HostPort{name("example.com"), 8080}},
        HostPortCase{"name_empty_port",
                     "example.com:", HostPort{name("example.com"), std::nullopt}},
        HostPortCase{"name_trailing_dot_port", "example.com.:443",
                     HostPort{name("example.com"), 443}},
        HostPortCase{"port_65535", "h.example:65535", HostPort{name("h.example"), 65535}},
        HostPortCase{"port_leading_zeros", "h.example:00080", HostPort{name("h.example"), 80}},
        HostPortCase{"port_65536", "h.example:65536", std::nullopt},
        HostPortCase{"port_0", "h.example:0", std::nullopt},
        HostPortCase{"port_6_digits", "h.example:000080", std::nullopt},
        HostPortCase{"port_sign", "h.example:+80", std::nullopt},
        HostPortCase{"port_alpha", "h.example:http", std::nullopt},
        HostPortCase{"two_colons", "h.example:80:81", std::nullopt},
        HostPortCase{"ipv4", "192.0.2.1", HostPort{ip("192.0.2.1"), std::nullopt}},
        HostPortCase{"ipv4_port", "192.0.2.1:80", HostPort{ip("192.0.2.1"), 80}},
        HostPortCase{"ipv6", "[2001:DB8::1]", HostPort{ip("2001:db8::1"), std::nullopt}},
        HostPortCase{"ipv6_port", "[2001:db8::1]:8443", HostPort{ip("2001:db8::1"), 8443}},
        HostPortCase{"ipv6_unbracketed", "2001:db8::1", std::nullopt},
        HostPortCase{"ipv6_unclosed", "[2001:db8::1", std::nullopt},
        HostPortCase{"ipv6_junk_after", "[::1]x", std::nullopt},
        HostPortCase{"ipv4_bracketed", "[192.0.2.1]", std::nullopt},
        HostPortCase{"empty", "", std::nullopt}, HostPortCase{"port_only", ":80", std::nullopt},
        HostPortCase{"userinfo", "user@example.com", std::nullopt},
        HostPortCase{"space", "example.com 80", std::nullopt}),
    [](const ::testing::TestParamInfo<HostPortCase>& info) { return info.param.label; });

}  // namespace

// gtest printer (found by ADL).
void PrintTo(const HostName& h, std::ostream* os) {
  *os << '"' << h.name << '"' << (h.is_ip ? " (ip)" : "");
}

}  // namespace tollgate
