// HTTP/1.x request head peeking (RFC 9112).
#include <gtest/gtest.h>

#include <string>

#include "sni/http_head.h"
#include "sni/sni.h"
#include "wire_util.h"

namespace tollgate::sni {
namespace {

using wire::Bytes;
using wire::peekInChunks;
using wire::peekWhole;
using wire::toBytes;

HostName name(std::string n) { return HostName{std::move(n), false}; }
HostName ip(std::string n) { return HostName{std::move(n), true}; }

// ---------------------------------------------------------------------------
// Request heads through the Peeker.

struct HeadCase {
  std::string label;
  std::string head;
  std::string reason;  // empty: Done
  std::optional<HostName> host = std::nullopt;
  std::optional<uint16_t> port = std::nullopt;
};

void PrintTo(const HeadCase& c, std::ostream* os) { *os << c.label; }

class RequestHeadTest : public ::testing::TestWithParam<HeadCase> {};

TEST_P(RequestHeadTest, Table) {
  const HeadCase& c = GetParam();
  const Bytes wire = toBytes(c.head);
  PeekResult r = peekWhole(wire);
  EXPECT_EQ(r.protocol, Protocol::Http) << ::testing::PrintToString(r);
  if (c.reason.empty()) {
    ASSERT_EQ(r.status, Status::Done) << ::testing::PrintToString(r);
    EXPECT_EQ(r.http.host, c.host);
    EXPECT_EQ(r.http.host_port, c.port);
    EXPECT_EQ(r.consumed, wire.size());
  } else {
    EXPECT_EQ(r.status, Status::Invalid) << ::testing::PrintToString(r);
    EXPECT_EQ(r.reason, c.reason);
  }
  EXPECT_EQ(peekInChunks(wire, 1), r) << "byte at a time";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RequestHeadTest,
    ::testing::Values(
        HeadCase{"get_host", "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n", "",
                 name("api.example.test")},
        HeadCase{"host_with_port", "GET /x HTTP/1.1\r\nHost: API.example.test:8080\r\n\r\n", "",
                 name("api.example.test"), 8080},
        HeadCase{"host_ows_trimmed", "GET / HTTP/1.1\r\nHost: \t a.example \t\r\n\r\n", "",
                 name("a.example")},
        HeadCase{"host_header_case", "GET / HTTP/1.1\r\nhOsT:a.example\r\n\r\n", "",
                 name("a.example")},
        HeadCase{"host_ipv6", "GET / HTTP/1.1\r\nHost: [2001:db8::1]:81\r\n\r\n", "",
                 ip("2001:db8::1"), 81},
        HeadCase{"host_ipv4", "GET / HTTP/1.1\r\nHost: 192.0.2.9\r\n\r\n", "", ip("192.0.2.9")},
        HeadCase{"many_headers",
                 "POST /v1/chat?x=1 HTTP/1.1\r\nUser-Agent: t\r\nHost: "
                 "a.example\r\nContent-Length: 2\r\n"
                 "X-Obs-Text: caf\xc3\xa9\r\nEmpty:\r\n\r\n",
                 "", name("a.example")},
        HeadCase{"http10_no_host", "GET / HTTP/1.0\r\n\r\n", "", std::nullopt},
        HeadCase{"http10_host", "GET / HTTP/1.0\r\nHost: a.example\r\n\r\n", "", name("a.example")},
        HeadCase{"http10_empty_host", "GET / HTTP/1.0\r\nHost:\r\n\r\n", "", std::nullopt},
        HeadCase{"http19_treated_as_11", "GET / HTTP/1.9\r\n\r\n", "http_no_host"},
        HeadCase{"absolute_form", "GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n", "",
                 name("a.example")},
        HeadCase{"absolute_form_port",
                 "GET http://a.example:8080?q HTTP/1.1\r\nHost: a.example:8080\r\n\r\n", "",
                 name("a.example"), 8080},
        HeadCase{"absolute_form_default_port_matches",
                 "GET HTTP://A.example:80/ HTTP/1.1\r\nHost: a.example\r\n\r\n", "",
                 name("a.example"), 80},
        HeadCase{"absolute_form_http10_no_host", "GET http://a.example/ HTTP/1.0\r\n\r\n", "",
                 name("a.example")},
        HeadCase{"asterisk_form", "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n", "",
                 name("a.example")},
        // Rejections.
        HeadCase{"no_host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "http_no_host"},
        HeadCase{"empty_host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", "http_no_host"},
        HeadCase{"absolute_form_no_host_header", "GET http://a.example/ HTTP/1.1\r\n\r\n",
                 "http_no_host"},
        HeadCase{"duplicate_host", "GET / HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n",
                 "http_duplicate_host"},
        HeadCase{"duplicate_host_case",
                 "GET / HTTP/1.1\r\nHost: a.example\r\nHOST: b.example\r\n\r\n",
                 "http_duplicate_host"},
        HeadCase{"host_mismatch", "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
                 "http_host_mismatch"},
        HeadCase{"host_port_mismatch",
                 "GET http://a.example:8080/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
                 "http_host_mismatch"},
        HeadCase{"host_empty_with_absolute", "GET http://a.example/ HTTP/1.1\r\nHost:\r\n\r\n",
                 "http_host_mismatch"},
        HeadCase{"bad_host", "GET / HTTP/1.1\r\nHost: a_b.example\r\n\r\n", "http_bad_host"},
        HeadCase{"host_userinfo", "GET / HTTP/1.1\r\nHost: u@a.example\r\n\r\n", "http_bad_host"},
        HeadCase{"host_two_values", "GET / HTTP/1.1\r\nHost: a.example, b.example\r\n\r\n",
                 "http_bad_host"},
        HeadCase{"host_bad_port", "GET / HTTP/1.1\r\nHost: a.example:99999\r\n\r\n",
                 "http_bad_host"},
        HeadCase{"absolute_userinfo",
                 "GET http://u:p@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
                 "http_bad_target"},
        HeadCase{"absolute_other_scheme",
                 "GET ftp://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", "http_bad_target"},
        HeadCase{"absolute_empty_authority", "GET http:///x HTTP/1.1\r\nHost: a.example\r\n\r\n",
                 "http_bad_target"},
        HeadCase{"relative_target", "GET x/y HTTP/1.1\r\nHost: a.example\r\n\r\n",
                 "http_bad_target"},
        HeadCase{"asterisk_not_options", "GET * HTTP/1.1\r\nHost: a.example\r\n\r\n",
                 "http_bad_target"},
        HeadCase{"target_non_ascii", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a.example\r\n\r\n",
                 "http_bad_target"},
        HeadCase{"connect", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
                 "http_connect_unsupported"},
        HeadCase{"http2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http_version_unsupported"},
        HeadCase{"http09", "GET /\r\n\r\n", "http_bad_request_line"},
        HeadCase{"double_space", "GET  / HTTP/1.1\r\nHost: a.example\r\n\r\n", "http_bad_target"},
        HeadCase{"trailing_space_version", "GET / HTTP/1.1 \r\nHost: a.example\r\n\r\n",
                 "http_bad_request_line"},
        HeadCase{"lowercase_version", "GET / http/1.1\r\nHost: a.example\r\n\r\n",
                 "http_bad_request_line"},
        HeadCase{"bare_lf", "GET / HTTP/1.1\nHost: a.example\n\n", "http_bad_line_ending"},
        HeadCase{"bare_lf_late", "GET / HTTP/1.1\r\nHost: a.example\r\nX: y\n\r\n",
                 "http_bad_line_ending"},
        HeadCase{"lf_at_line_start", "GET / HTTP/1.1\r\nHost: a.example\r\n\n",
                 "http_bad_line_ending"},
        HeadCase{"cr_inside_line", "GET / HTTP/1.1\r\nHost: a.example\r\nX: a\rb\r\n\r\n",
                 "http_bad_char"},
        HeadCase{"nul_in_header",
                 std::string("GET / HTTP/1.1\r\nHost: a.example\r\nX: a\0b\r\n\r\n", 43),
                 "http_bad_char"},
        HeadCase{"nul_in_host", std::string("GET / HTTP/1.1\r\nHost: a.example\0.evil\r\n\r\n", 41),
                 "http_bad_char"},
        HeadCase{"ctl_in_header", "GET / HTTP/1.1\r\nHost: a.example\r\nX: \x01\r\n\r\n",
                 "http_bad_char"},
        HeadCase{"del_in_header", "GET / HTTP/1.1\r\nHost: a.example\r\nX: \x7f\r\n\r\n",
                 "http_bad_char"},
        HeadCase{"obs_fold", "GET / HTTP/1.1\r\nHost: a.example\r\nX: a\r\n b\r\n\r\n",
                 "http_obs_fold"},
        HeadCase{"obs_fold_tab",
                 "GET / HTTP/1.1\r\nX: a\r\n\tHost: evil.example\r\nHost: a.example\r\n\r\n",
                 "http_obs_fold"},
        HeadCase{"space_before_colon", "GET / HTTP/1.1\r\nHost : a.example\r\n\r\n",
                 "http_bad_header"},
        HeadCase{"no_colon", "GET / HTTP/1.1\r\nHost a.example\r\n\r\n", "http_bad_header"},
        HeadCase{"empty_name", "GET / HTTP/1.1\r\n: x\r\nHost: a.example\r\n\r\n",
                 "http_bad_header"},
        HeadCase{"non_token_name", "GET / HTTP/1.1\r\nX(y): z\r\nHost: a.example\r\n\r\n",
                 "http_bad_header"}),
    [](const ::testing::TestParamInfo<HeadCase>& info) { return info.param.label; });

TEST(RequestHeadTest, FieldsAreReportedAsSent) {
  const Bytes wire = toBytes("DELETE /v1/files/abc?x=%20 HTTP/1.1\r\nHost: a.example:8443\r\n\r\n");
  PeekResult r = peekWhole(wire);
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.http.method, "DELETE");
  EXPECT_EQ(r.http.target, "/v1/files/abc?x=%20");
  EXPECT_EQ(r.http.version, "HTTP/1.1");
  EXPECT_EQ(r.http.host, name("a.example"));
  EXPECT_EQ(r.http.host_port, 8443);
}

TEST(RequestHeadTest, BodyAfterTheHeadIsNotConsumed) {
  const std::string head = "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\n";
  const Bytes wire = toBytes(head + "hello\r\n\r\nGET");
  PeekResult r = peekWhole(wire);
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.consumed, head.size());
}

TEST(RequestHeadTest, BareLfIsRejectedAsSoonAsItArrives) {
  const Bytes wire = toBytes("GET / HTTP/1.1\nHost");
  Peeker p;
  EXPECT_EQ(p.update(std::span(wire).first(14)).status, Status::NeedMore);
  PeekResult r = p.update(std::span(wire).first(15));
  EXPECT_EQ(r.status, Status::Invalid);
  EXPECT_EQ(r.reason, "http_bad_line_ending");
}

std::string headOfLength(size_t len) {
  std::string head = "GET / HTTP/1.1\r\nHost: a.example\r\nX-Pad: ";
  const std::string end = "\r\n\r\n";
  head += std::string(len - head.size() - end.size(), 'p');
  return head + end;
}

TEST(RequestHeadTest, HeadOfExactly16KiBIsAccepted) {
  const Bytes wire = toBytes(headOfLength(kMaxHttpHeadBytes));
  PeekResult r = peekWhole(wire);
  EXPECT_EQ(r.status, Status::Done) << ::testing::PrintToString(r);
  EXPECT_EQ(r.consumed, kMaxHttpHeadBytes);
  EXPECT_EQ(peekInChunks(wire, 1000), r);
}

TEST(RequestHeadTest, HeadOverTheCapIsRejected) {
  const Bytes wire = toBytes(headOfLength(kMaxHttpHeadBytes + 1));
  PeekResult r = peekWhole(wire);
  EXPECT_EQ(r.status, Status::Invalid);
  EXPECT_EQ(r.reason, "http_header_too_large");
  // Decided as soon as 16 KiB are in without the end of the head.
  EXPECT_EQ(peekWhole(std::span(wire).first(kMaxHttpHeadBytes)).reason, "http_header_too_large");
  EXPECT_EQ(peekWhole(std::span(wire).first(kMaxHttpHeadBytes - 1)).status, Status::NeedMore);
  EXPECT_EQ(peekInChunks(wire, 1), r);
}

TEST(RequestHeadTest, OneLongLineHitsTheCap) {
  const Bytes wire = toBytes("GET /" + std::string(kMaxPeekBytes, 'a'));
  EXPECT_EQ(peekInChunks(wire, 1).reason, "http_header_too_large");
}

TEST(RequestHeadTest, ParseRequestHeadNeedsTheWholeHead) {
  HttpInfo info;
  auto r = parseRequestHead("GET / HTTP/1.1\r\nHost: a.example\r\n", info);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.message(), "http_incomplete_head");
  r = parseRequestHead("GET / HTTP/1.1\r\nHost: a.example\r\n\r\nX", info);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.message(), "http_trailing_data");
}

TEST(RequestHeadTest, ParseRequestHeadChecksTheMethodItself) {
  HttpInfo info;
  auto r = parseRequestHead("get / HTTP/1.1\r\nHost: a.example\r\n\r\n", info);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.message(), "http_bad_method");
  r = parseRequestHead("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", info);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.message(), "http_connect_unsupported");
}

}  // namespace
}  // namespace tollgate::sni
