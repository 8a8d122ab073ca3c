// HTTP/1.1 request heads (RFC 9112 §2-§6): grammar, framing, smuggling
// variants, every rejection reason, split feeding, byte corruption,
// pipelining and re-serialisation.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "http_util.h"
#include "mitm/http1.h"

namespace tollgate::mitm {
namespace {

using testutil::everyByte;
using testutil::feedRequestHead;
using testutil::runRequests;
using testutil::Transcript;

// A request head built from its lines: start line, field lines, empty line.
std::string req(std::string_view start, std::initializer_list<std::string_view> fields = {}) {
  std::string out(start);
  out += "\r\n";
  for (std::string_view f : fields) {
    out += f;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

std::string get11(std::initializer_list<std::string_view> more = {}) {
  std::string out = "GET / HTTP/1.1\r\nHost: example.com\r\n";
  for (std::string_view f : more) {
    out += f;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

std::string post11(std::initializer_list<std::string_view> more) {
  std::string out = "POST /upload HTTP/1.1\r\nHost: example.com\r\n";
  for (std::string_view f : more) {
    out += f;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

// ---------------------------------------------------------------------------
// Valid requests

struct ValidCase {
  std::string label;
  std::string raw;
  BodyFraming body;
  bool keep_alive = true;
  std::string path = "/";
  std::string host = "example.com";  // "" when no authority
  bool expect_continue = false;
  bool upgrade_websocket = false;
  TargetForm form = TargetForm::Origin;
};

void PrintTo(const ValidCase& c, std::ostream* os) { *os << c.label; }

class ValidRequestTest : public ::testing::TestWithParam<ValidCase> {};

TEST_P(ValidRequestTest, Parses) {
  const ValidCase& c = GetParam();
  RequestHead head;
  const HeadResult r = feedRequestHead(c.raw, 0, &head);
  ASSERT_EQ(r.status, Status::Done) << r.reason;
  EXPECT_EQ(r.consumed, c.raw.size());
  EXPECT_EQ(head.body, c.body);
  EXPECT_EQ(head.keep_alive, c.keep_alive);
  EXPECT_EQ(head.path(), c.path);
  EXPECT_EQ(head.form, c.form);
  EXPECT_EQ(head.expect_continue, c.expect_continue);
  EXPECT_EQ(head.upgrade_websocket, c.upgrade_websocket);
  if (c.host.empty()) {
    EXPECT_FALSE(head.authority.has_value());
  } else {
    ASSERT_TRUE(head.authority.has_value());
    EXPECT_EQ(head.authority->host.name, c.host);
  }
}

TEST_P(ValidRequestTest, ByteAtATimeEqualsWhole) {
  const ValidCase& c = GetParam();
  RequestHead whole;
  RequestHead split;
  RequestHead sevens;
  const HeadResult a = feedRequestHead(c.raw, 0, &whole);
  EXPECT_EQ(feedRequestHead(c.raw, 1, &split), a);
  EXPECT_EQ(feedRequestHead(c.raw, 7, &sevens), a);
  EXPECT_EQ(split, whole);
  EXPECT_EQ(sevens, whole);
}

TEST_P(ValidRequestTest, SerializeReparsesToTheSameHead) {
  const ValidCase& c = GetParam();
  RequestHead head;
  ASSERT_EQ(feedRequestHead(c.raw, 0, &head).status, Status::Done);
  const std::string once = serialize(head);
  EXPECT_EQ(serializedSize(head), once.size());
  std::string in_place(serializedSize(head), '\0');
  serializeTo(head, in_place);
  EXPECT_EQ(in_place, once);
  RequestHead again;
  ASSERT_EQ(feedRequestHead(once, 0, &again).status, Status::Done) << once;
  EXPECT_EQ(again, head);
  EXPECT_EQ(serialize(again), once);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ValidRequestTest,
    ::testing::Values(
        ValidCase{"get_origin",
                  req("GET /index.html HTTP/1.1", {"Host: example.com"}),
                  {},
                  true,
                  "/index.html"},
        ValidCase{
            "get_query", req("GET /a/b?x=1&y=2 HTTP/1.1", {"Host: example.com"}), {}, true, "/a/b"},
        ValidCase{"pct_encoded_target",
                  req("GET /a%2Fb%20c HTTP/1.1", {"Host: example.com"}),
                  {},
                  true,
                  "/a%2Fb%20c"},
        ValidCase{"absolute_http",
                  req("GET http://example.com/p?q HTTP/1.1", {"Host: example.com"}),
                  {},
                  true,
                  "/p",
                  "example.com",
                  false,
                  false,
                  TargetForm::Absolute},
        ValidCase{"absolute_https_default_port",
                  req("GET https://Example.com:443 HTTP/1.1", {"Host: example.com"}),
                  {},
                  true,
                  "/",
                  "example.com",
                  false,
                  false,
                  TargetForm::Absolute},
        ValidCase{"absolute_query_only",
                  req("GET http://example.com?x HTTP/1.1", {"Host: example.com"}),
                  {},
                  true,
                  "/",
                  "example.com",
                  false,
                  false,
                  TargetForm::Absolute},
        ValidCase{"absolute_no_host_http10",
                  req("GET http://example.com/x HTTP/1.0"),
                  {},
                  false,
                  "/x",
                  "example.com",
                  false,
                  false,
                  TargetForm::Absolute},
        ValidCase{"http10_no_host", req("GET / HTTP/1.0"), {}, false, "/", ""},
        ValidCase{"options_asterisk",
                  req("OPTIONS * HTTP/1.1", {"Host: example.com"}),
                  {},
                  true,
                  "*",
                  "example.com",
                  false,
                  false,
                  TargetForm::Asterisk},
        ValidCase{"custom_method", req("PURGE /c HTTP/1.1", {"Host: example.com"}), {}, true, "/c"},
        ValidCase{"post_content_length",
                  post11({"Content-Length: 5"}),
                  {BodyKind::Length, 5},
                  true,
                  "/upload"},
        ValidCase{"content_length_zero",
                  post11({"Content-Length: 0"}),
                  {BodyKind::Length, 0},
                  true,
                  "/upload"},
        ValidCase{"content_length_leading_zeros",
                  post11({"Content-Length: 007"}),
                  {BodyKind::Length, 7},
                  true,
                  "/upload"},
        ValidCase{"content_length_max",
                  post11({"Content-Length: 9223372036854775807"}),
                  {BodyKind::Length, 9223372036854775807ULL},
                  true,
                  "/upload"},
        ValidCase{"content_length_same_list",
                  post11({"Content-Length: 5, 5"}),
                  {BodyKind::Length, 5},
                  true,
                  "/upload"},
        ValidCase{"chunked",
                  post11({"Transfer-Encoding: chunked"}),
                  {BodyKind::Chunked, 0},
                  true,
                  "/upload"},
        ValidCase{"chunked_any_case",
                  post11({"transfer-encoding: ChUnKeD"}),
                  {BodyKind::Chunked, 0},
                  true,
                  "/upload"},
        ValidCase{"chunked_ows",
                  post11({"Transfer-Encoding: \t chunked \t"}),
                  {BodyKind::Chunked, 0},
                  true,
                  "/upload"},
        ValidCase{"chunked_empty_list_members",
                  post11({"Transfer-Encoding: , chunked,"}),
                  {BodyKind::Chunked, 0},
                  true,
                  "/upload"},
        ValidCase{"http10_keep_alive",
                  req("GET / HTTP/1.0", {"Connection: keep-alive"}),
                  {},
                  true,
                  "/",
                  ""},
        ValidCase{"connection_close", get11({"Connection: close"}), {}, false},
        ValidCase{"connection_list_close", get11({"Connection: keep-alive, Close"}), {}, false},
        ValidCase{"expect_continue",
                  post11({"Content-Length: 3", "Expect: 100-continue"}),
                  {BodyKind::Length, 3},
                  true,
                  "/upload",
                  "example.com",
                  true},
        ValidCase{"expect_ignored_in_http10",
                  req("POST / HTTP/1.0", {"Content-Length: 3", "Expect: 100-continue"}),
                  {BodyKind::Length, 3},
                  false,
                  "/",
                  "",
                  false},
        ValidCase{
            "websocket",
            get11({"Upgrade: websocket", "Connection: keep-alive, Upgrade",
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"}),
            {},
            true,
            "/",
            "example.com",
            false,
            true},
        ValidCase{"websocket_needs_connection_upgrade",
                  get11({"Upgrade: websocket"}),
                  {},
                  true,
                  "/",
                  "example.com",
                  false,
                  false},
        ValidCase{"websocket_needs_get",
                  post11({"Content-Length: 0", "Upgrade: websocket", "Connection: upgrade"}),
                  {BodyKind::Length, 0},
                  true,
                  "/upload",
                  "example.com",
                  false,
                  false},
        ValidCase{"obs_text_value", get11({"X-Name: caf\xe9"}), {}},
        ValidCase{"tab_in_value", get11({"X-A: a\tb"}), {}},
        ValidCase{"empty_value", get11({"X-Empty:"}), {}},
        ValidCase{"value_with_colons", get11({"X-Time: 12:30:00"}), {}},
        ValidCase{"host_with_port", req("GET / HTTP/1.1", {"Host: example.com:8443"}), {}},
        ValidCase{"host_ipv6",
                  req("GET / HTTP/1.1", {"Host: [2001:db8::1]:8080"}),
                  {},
                  true,
                  "/",
                  "2001:db8::1"},
        ValidCase{"name_case_kept", get11({"x-CUSTOM-Header: v"}), {}}),
    [](const ::testing::TestParamInfo<ValidCase>& info) { return info.param.label; });

TEST(RequestHeadTest, CanonicalFramingValues) {
  RequestHead head;
  ASSERT_EQ(feedRequestHead(post11({"Content-Length: 0005, 5"}), 0, &head).status, Status::Done);
  EXPECT_EQ(head.headers.find("content-length")->value, "5");
  ASSERT_EQ(feedRequestHead(post11({"Transfer-Encoding:  Chunked "}), 0, &head).status,
            Status::Done);
  EXPECT_EQ(head.headers.find("transfer-encoding")->value, "chunked");
}

TEST(RequestHeadTest, SerializeIsCanonical) {
  RequestHead head;
  ASSERT_EQ(feedRequestHead("GET /x HTTP/1.1\r\nhOST:   example.com  \r\nX-B:\t1\r\nx-a: 2\r\n\r\n",
                            0, &head)
                .status,
            Status::Done);
  EXPECT_EQ(serialize(head), "GET /x HTTP/1.1\r\nhOST: example.com\r\nX-B: 1\r\nx-a: 2\r\n\r\n");
  head.headers.set("X-B", "changed");
  head.headers.add("X-New", "n");
  EXPECT_EQ(serialize(head),
            "GET /x HTTP/1.1\r\nhOST: example.com\r\nX-B: changed\r\nx-a: 2\r\nX-New: n\r\n\r\n");
}

TEST(RequestHeadTest, HeadersHelpers) {
  Headers h;
  h.add("A", "1");
  h.add("b", "2");
  h.add("a", "3");
  EXPECT_EQ(h.count("a"), 2u);
  EXPECT_EQ(h.find("B")->value, "2");
  h.set("A", "x");
  ASSERT_EQ(h.fields.size(), 2u);
  EXPECT_EQ(h.fields[0], (HeaderField{"A", "x"}));
  EXPECT_EQ(h.remove("B"), 1u);
  h.add("Connection", "keep-alive, Upgrade");
  EXPECT_TRUE(h.hasToken("connection", "upgrade"));
  EXPECT_FALSE(h.hasToken("connection", "close"));
  EXPECT_FALSE(h.hasToken("connection", "keep"));
}

TEST(RequestHeadTest, RemoveHopByHop) {
  Headers h;
  for (auto [n, v] : std::initializer_list<std::pair<const char*, const char*>>{
           {"Host", "example.com"},
           {"Connection", "keep-alive, X-Secret-Hop, Content-Length, Host, Upgrade"},
           {"Keep-Alive", "timeout=5"},
           {"X-Secret-Hop", "1"},
           {"Content-Length", "3"},
           {"TE", "trailers"},
           {"Trailer", "X-T"},
           {"Upgrade", "websocket"},
           {"Proxy-Connection", "keep-alive"},
           {"X-Kept", "yes"}}) {
    h.add(n, v);
  }
  Headers plain = h;
  removeHopByHop(plain, false);
  std::vector<std::string> names;
  for (const HeaderField& f : plain.fields) {
    names.push_back(f.name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"Host", "Content-Length", "X-Kept"}));
  Headers ws = h;
  removeHopByHop(ws, true);
  EXPECT_TRUE(ws.hasToken("upgrade", "websocket"));
  EXPECT_TRUE(ws.hasToken("connection", "upgrade"));
  EXPECT_EQ(ws.count("connection"), 1u);
  EXPECT_EQ(ws.find("x-secret-hop"), nullptr);
}

TEST(RequestHeadTest, ConnectionNeverNamesAProtectedField) {
  Headers h;
  h.add("Host", "a.test");
  h.add("Authorization", "Bearer x");
  h.add("x-api-key", "k");
  h.add("X-Other", "o");
  h.add("Connection", "authorization, X-API-KEY, x-other");
  const std::string_view protect[] = {"Authorization", "X-Api-Key"};
  removeHopByHop(h, false, protect);
  EXPECT_NE(h.find("authorization"), nullptr);
  EXPECT_NE(h.find("x-api-key"), nullptr);
  EXPECT_EQ(h.find("x-other"), nullptr);
  EXPECT_EQ(h.find("connection"), nullptr);
}

TEST(RequestHeadTest, SetFraming) {
  Headers h;
  h.add("Content-Length", "3");
  h.add("X", "y");
  setFraming(h, {BodyKind::Chunked, 0});
  EXPECT_EQ(h.find("content-length"), nullptr);
  EXPECT_EQ(h.find("transfer-encoding")->value, "chunked");
  setFraming(h, {BodyKind::Length, 42});
  EXPECT_EQ(h.find("transfer-encoding"), nullptr);
  EXPECT_EQ(h.find("content-length")->value, "42");
  setFraming(h, {BodyKind::None, 0});
  EXPECT_EQ(h.fields.size(), 1u);
}

// ---------------------------------------------------------------------------
// Rejections, including request smuggling shapes

struct InvalidCase {
  std::string label;
  std::string raw;
  std::string reason;
  uint16_t status = 400;
};

void PrintTo(const InvalidCase& c, std::ostream* os) { *os << c.label; }

class InvalidRequestTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidRequestTest, Refused) {
  const InvalidCase& c = GetParam();
  const HeadResult r = feedRequestHead(c.raw, 0);
  EXPECT_EQ(r.status, Status::Invalid);
  EXPECT_EQ(r.reason, c.reason);
  EXPECT_EQ(r.http_status, c.status);
}

TEST_P(InvalidRequestTest, ByteAtATimeEqualsWhole) {
  const InvalidCase& c = GetParam();
  const HeadResult whole = feedRequestHead(c.raw, 0);
  EXPECT_EQ(feedRequestHead(c.raw, 1), whole);
  EXPECT_EQ(feedRequestHead(c.raw, 5), whole);
}

TEST_P(InvalidRequestTest, ReaderRefusesToo) {
  const InvalidCase& c = GetParam();
  const Transcript t = runRequests(c.raw, {}, true);
  ASSERT_FALSE(t.events.empty());
  EXPECT_EQ(t.events.back(), "invalid " + c.reason + " " + std::to_string(c.status));
}

INSTANTIATE_TEST_SUITE_P(
    Lines, InvalidRequestTest,
    ::testing::Values(
        InvalidCase{"bare_lf_request_line", "GET / HTTP/1.1\nHost: a\r\n\r\n", "http_bare_lf"},
        InvalidCase{"bare_lf_field", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "http_bare_lf"},
        InvalidCase{"bare_lf_end", "GET / HTTP/1.1\r\nHost: a\r\n\n", "http_bare_lf"},
        InvalidCase{"bare_cr_field", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", "http_bare_cr"},
        InvalidCase{"bare_cr_end", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", "http_bare_cr"},
        InvalidCase{"nul_in_value", get11({std::string("X-A: a\0b", 8)}), "http_nul"},
        InvalidCase{"nul_in_target", std::string("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", 28),
                    "http_nul"},
        InvalidCase{"vt_in_value",
                    get11({"X-A: a\x0b"
                           "b"}),
                    "http_bad_char"},
        InvalidCase{"del_in_value", get11({"X-A: a\x7f"}), "http_bad_char"},
        InvalidCase{"esc_in_request_line", req("GET /\x1b HTTP/1.1", {"Host: a"}), "http_bad_char"},
        InvalidCase{"obs_fold_space", get11({"X-A: a", " b"}), "http_obs_fold"},
        InvalidCase{"obs_fold_tab", get11({"X-A: a", "\tb"}), "http_obs_fold"},
        InvalidCase{"whitespace_after_start_line", req("GET / HTTP/1.1", {" Host: a"}),
                    "http_obs_fold"},
        InvalidCase{"space_before_colon", req("GET / HTTP/1.1", {"Host : a"}),
                    "http_space_before_colon"},
        InvalidCase{"tab_before_colon", get11({"X-A\t: a"}), "http_space_before_colon"},
        InvalidCase{"no_colon", get11({"X-A a"}), "http_bad_field_line"},
        InvalidCase{"empty_name", get11({": a"}), "http_bad_field_name"},
        InvalidCase{"name_with_paren", get11({"X(A): b"}), "http_bad_field_name"},
        InvalidCase{"name_with_space", get11({"X A: b"}), "http_bad_field_name"},
        InvalidCase{"name_non_ascii", get11({"X\xc3\xa9: b"}), "http_bad_field_name"}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return info.param.label; });

INSTANTIATE_TEST_SUITE_P(
    StartLine, InvalidRequestTest,
    ::testing::Values(
        InvalidCase{"no_version", req("GET /", {"Host: a"}), "http_bad_request_line"},
        InvalidCase{"double_space", req("GET  / HTTP/1.1", {"Host: a"}), "http_bad_request_line"},
        InvalidCase{"trailing_space", req("GET / HTTP/1.1 ", {"Host: a"}), "http_bad_request_line"},
        InvalidCase{"leading_space", req(" GET / HTTP/1.1", {"Host: a"}), "http_bad_request_line"},
        InvalidCase{"leading_empty_line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
                    "http_bad_request_line"},
        InvalidCase{"lowercase_version", req("GET / http/1.1", {"Host: a"}),
                    "http_bad_request_line"},
        InvalidCase{"tab_separator", req("GET\t/ HTTP/1.1", {"Host: a"}), "http_bad_request_line"},
        InvalidCase{"tab_in_method", req("GE\tT / HTTP/1.1", {"Host: a"}), "http_bad_method"},
        InvalidCase{"method_not_token", req("GE(T / HTTP/1.1", {"Host: a"}), "http_bad_method"},
        InvalidCase{"method_too_long", req(std::string(33, 'M') + " / HTTP/1.1", {"Host: a"}),
                    "http_bad_method"},
        InvalidCase{"connect", req("CONNECT example.com:443 HTTP/1.1", {"Host: example.com:443"}),
                    "http_connect_unsupported", 501},
        InvalidCase{"authority_form_get", req("GET example.com:443 HTTP/1.1", {"Host: a"}),
                    "http_bad_target"},
        InvalidCase{"asterisk_get", req("GET * HTTP/1.1", {"Host: a"}), "http_bad_target"},
        InvalidCase{"fragment", req("GET /a#b HTTP/1.1", {"Host: a"}), "http_bad_target"},
        InvalidCase{"pct_short", req("GET /a%2 HTTP/1.1", {"Host: a"}), "http_bad_target"},
        InvalidCase{"pct_not_hex", req("GET /a%zz HTTP/1.1", {"Host: a"}), "http_bad_target"},
        InvalidCase{"target_non_ascii", req("GET /caf\xc3\xa9 HTTP/1.1", {"Host: a"}),
                    "http_bad_target"},
        InvalidCase{"absolute_userinfo",
                    req("GET http://user@example.com/ HTTP/1.1", {"Host: example.com"}),
                    "http_bad_target"},
        InvalidCase{"absolute_ftp", req("GET ftp://example.com/ HTTP/1.1", {"Host: example.com"}),
                    "http_bad_target"},
        InvalidCase{"absolute_bad_host", req("GET http://exa_mple.com/ HTTP/1.1", {"Host: a"}),
                    "http_bad_target"},
        InvalidCase{"http2", req("GET / HTTP/2.0", {"Host: a"}), "http_version_unsupported", 505},
        InvalidCase{"http12", req("GET / HTTP/1.2", {"Host: a"}), "http_version_unsupported", 505},
        InvalidCase{"http09", req("GET / HTTP/0.9", {"Host: a"}), "http_version_unsupported", 505},
        InvalidCase{"h2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http_version_unsupported",
                    505}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return info.param.label; });

INSTANTIATE_TEST_SUITE_P(
    Host, InvalidRequestTest,
    ::testing::Values(InvalidCase{"no_host", req("GET / HTTP/1.1"), "http_no_host"},
                      InvalidCase{"empty_host", req("GET / HTTP/1.1", {"Host:"}), "http_no_host"},
                      InvalidCase{"duplicate_host", req("GET / HTTP/1.1", {"Host: a", "Host: a"}),
                                  "http_duplicate_host"},
                      InvalidCase{"host_with_space", req("GET / HTTP/1.1", {"Host: exa mple.com"}),
                                  "http_bad_host"},
                      InvalidCase{"host_bad_port",
                                  req("GET / HTTP/1.1", {"Host: example.com:99999"}),
                                  "http_bad_host"},
                      InvalidCase{"host_userinfo", req("GET / HTTP/1.1", {"Host: u@example.com"}),
                                  "http_bad_host"},
                      InvalidCase{"absolute_host_mismatch",
                                  req("GET http://a.example/ HTTP/1.1", {"Host: b.example"}),
                                  "http_host_mismatch"},
                      InvalidCase{"absolute_port_mismatch",
                                  req("GET https://a.example/ HTTP/1.1", {"Host: a.example:80"}),
                                  "http_host_mismatch"}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return info.param.label; });

// RFC 9112 §6.3 and the classic desync shapes (CL.TE, TE.CL, TE.TE).
INSTANTIATE_TEST_SUITE_P(
    Smuggling, InvalidRequestTest,
    ::testing::Values(
        InvalidCase{"cl_te", post11({"Content-Length: 4", "Transfer-Encoding: chunked"}),
                    "http_te_and_cl"},
        InvalidCase{"te_cl", post11({"Transfer-Encoding: chunked", "Content-Length: 4"}),
                    "http_te_and_cl"},
        InvalidCase{"te_cl_zero", post11({"Transfer-Encoding: chunked", "Content-Length: 0"}),
                    "http_te_and_cl"},
        InvalidCase{"te_xchunked", post11({"Transfer-Encoding: xchunked"}), "http_te_unsupported",
                    501},
        InvalidCase{"te_chunked_suffix", post11({"Transfer-Encoding: chunkedx"}),
                    "http_te_unsupported", 501},
        InvalidCase{"te_chunked_identity", post11({"Transfer-Encoding: chunked, identity"}),
                    "http_te_chunked_not_final"},
        InvalidCase{"te_identity", post11({"Transfer-Encoding: identity"}), "http_te_unsupported",
                    501},
        InvalidCase{"te_gzip_chunked", post11({"Transfer-Encoding: gzip, chunked"}),
                    "http_te_unsupported", 501},
        InvalidCase{"te_chunked_twice_list", post11({"Transfer-Encoding: chunked, chunked"}),
                    "http_te_chunked_not_final"},
        InvalidCase{"te_duplicated_lines",
                    post11({"Transfer-Encoding: chunked", "Transfer-Encoding: chunked"}),
                    "http_duplicate_transfer_encoding"},
        InvalidCase{"te_duplicated_obfuscated",
                    post11({"Transfer-Encoding: chunked", "Transfer-Encoding: x"}),
                    "http_duplicate_transfer_encoding"},
        InvalidCase{"te_space_before_colon", post11({"Transfer-Encoding : chunked"}),
                    "http_space_before_colon"},
        InvalidCase{"te_vertical_tab",
                    post11({"Transfer-Encoding:\x0b"
                            "chunked"}),
                    "http_bad_char"},
        InvalidCase{"te_vertical_tab_after_space",
                    post11({"Transfer-Encoding: \x0b"
                            "chunked"}),
                    "http_bad_char"},
        InvalidCase{"te_form_feed", post11({"Transfer-Encoding: chunked\x0c"}), "http_bad_char"},
        InvalidCase{"te_obs_fold", post11({"Transfer-Encoding:", " chunked"}), "http_obs_fold"},
        InvalidCase{"te_leading_space_line",
                    req("POST / HTTP/1.1", {" Transfer-Encoding: chunked", "Host: a"}),
                    "http_obs_fold"},
        InvalidCase{"te_underscore", post11({"Transfer_Encoding: chunked"}), "http_bad_field_name"},
        InvalidCase{"cl_underscore", post11({"Content_Length: 5"}), "http_bad_field_name"},
        InvalidCase{"te_quoted", post11({"Transfer-Encoding: \"chunked\""}), "http_te_unsupported",
                    501},
        InvalidCase{"te_param", post11({"Transfer-Encoding: chunked;q=1"}), "http_te_unsupported",
                    501},
        InvalidCase{"te_empty", post11({"Transfer-Encoding:"}), "http_te_unsupported", 501},
        InvalidCase{"te_http10", req("POST / HTTP/1.0", {"Transfer-Encoding: chunked"}),
                    "http_te_in_http10"},
        InvalidCase{"te_http10_with_cl",
                    req("POST / HTTP/1.0", {"Transfer-Encoding: chunked", "Content-Length: 3"}),
                    "http_te_in_http10"},
        InvalidCase{"cl_plus", post11({"Content-Length: +5"}), "http_bad_content_length"},
        InvalidCase{"cl_minus", post11({"Content-Length: -5"}), "http_bad_content_length"},
        InvalidCase{"cl_space_inside", post11({"Content-Length: 1 0"}), "http_bad_content_length"},
        InvalidCase{"cl_hex", post11({"Content-Length: 0x10"}), "http_bad_content_length"},
        InvalidCase{"cl_hex_digits", post11({"Content-Length: 1a"}), "http_bad_content_length"},
        InvalidCase{"cl_decimal_point", post11({"Content-Length: 5.0"}), "http_bad_content_length"},
        InvalidCase{"cl_empty", post11({"Content-Length:"}), "http_bad_content_length"},
        InvalidCase{"cl_list_differs", post11({"Content-Length: 5, 6"}), "http_bad_content_length"},
        InvalidCase{"cl_list_empty_member", post11({"Content-Length: 5,"}),
                    "http_bad_content_length"},
        InvalidCase{"cl_two_lines_same", post11({"Content-Length: 5", "Content-Length: 5"}),
                    "http_multiple_content_length"},
        InvalidCase{"cl_two_lines_differ", post11({"Content-Length: 5", "Content-Length: 6"}),
                    "http_multiple_content_length"},
        InvalidCase{"cl_2_pow_63", post11({"Content-Length: 9223372036854775808"}),
                    "http_bad_content_length"},
        InvalidCase{"cl_huge", post11({"Content-Length: 99999999999999999999999999"}),
                    "http_bad_content_length"},
        InvalidCase{"cl_space_before_colon", post11({"Content-Length : 5"}),
                    "http_space_before_colon"}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return info.param.label; });

TEST(RequestHeadTest, HeadSizeCap) {
  const std::string prefix = "GET / HTTP/1.1\r\nHost: example.com\r\nX-Pad: ";
  const size_t pad = kMaxHeadBytes - prefix.size() - 4;  // "\r\n\r\n"
  const std::string exact = prefix + std::string(pad, 'a') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), kMaxHeadBytes);
  EXPECT_EQ(feedRequestHead(exact, 0).status, Status::Done);
  EXPECT_EQ(feedRequestHead(exact, 1).status, Status::Done);

  const std::string over = prefix + std::string(pad + 1, 'a') + "\r\n\r\n";
  HeadResult r = feedRequestHead(over, 0);
  EXPECT_EQ(r.status, Status::Invalid);
  EXPECT_EQ(r.reason, "http_head_too_large");
  EXPECT_EQ(r.http_status, 431);
  EXPECT_EQ(feedRequestHead(over, 1), r);

  // A client that never ends its head is refused at the cap, not buffered.
  RequestHeadParser p;
  const std::string endless(kMaxHeadBytes + 100, 'a');
  EXPECT_EQ(p.feed(testutil::bytes(endless)).reason, "http_head_too_large");
}

TEST(RequestHeadTest, HeaderCountCap) {
  std::string ok = "GET / HTTP/1.1\r\nHost: example.com\r\n";
  for (size_t i = 1; i < kMaxHeaders; ++i) {
    ok += "X-" + std::to_string(i) + ": v\r\n";
  }
  EXPECT_EQ(feedRequestHead(ok + "\r\n", 0).status, Status::Done);
  const HeadResult r = feedRequestHead(ok + "X-Last: v\r\n\r\n", 0);
  EXPECT_EQ(r.reason, "http_too_many_headers");
  EXPECT_EQ(r.http_status, 431);
}

TEST(RequestHeadTest, IncompleteIsNeedMoreAndResultsAreFinal) {
  RequestHeadParser p;
  EXPECT_EQ(p.feed(testutil::bytes("GET / HTTP/1.1\r\nHost: a\r\n")).status, Status::NeedMore);
  EXPECT_GT(p.buffered(), 0u);
  const HeadResult done = p.feed(testutil::bytes("\r\nGET"));
  EXPECT_EQ(done.status, Status::Done);
  EXPECT_EQ(done.consumed, 2u);
  EXPECT_EQ(p.feed(testutil::bytes("xyz")).status, Status::Done);
  EXPECT_EQ(p.feed(testutil::bytes("xyz")).consumed, 0u);
  p.reset();
  EXPECT_EQ(p.feed(testutil::bytes("G\n")).reason, "http_bare_lf");
  EXPECT_EQ(p.feed(testutil::bytes("ET / HTTP/1.1\r\n\r\n")).reason, "http_bare_lf");
}

// Corrupting any single byte of any case, in several ways, never crashes and
// never makes byte-at-a-time feeding disagree with whole feeding. (Text has
// no length bytes: the digits of Content-Length / chunk sizes, the CRLFs and
// the colons play that role and are all covered.)
TEST(RequestHeadTest, EveryByteCorruptedStaysConsistent) {
  std::vector<std::string> inputs;
  inputs.push_back(get11({"X-A: b"}));
  inputs.push_back(post11({"Content-Length: 12"}));
  inputs.push_back(post11({"Transfer-Encoding: chunked"}));
  inputs.push_back(req("GET http://example.com:8080/p?q=1 HTTP/1.1", {"Host: example.com:8080"}));
  inputs.push_back(req("OPTIONS * HTTP/1.0", {"Connection: keep-alive"}));
  const unsigned char kReplacements[] = {0x00, '\r', '\n', ' ',  '\t', ':',  '0', '9',
                                         'f',  'x',  ',',  0x0b, 0x7f, 0xff, '%', '#'};
  size_t variants = 0;
  for (const std::string& in : inputs) {
    for (size_t i = 0; i < in.size(); ++i) {
      for (unsigned char b : kReplacements) {
        std::string v = in;
        v[i] = static_cast<char>(b);
        RequestHead a;
        RequestHead c;
        const HeadResult whole = feedRequestHead(v, 0, &a);
        ASSERT_EQ(feedRequestHead(v, 1, &c), whole) << i << " " << int(b);
        if (whole.status == Status::Done) {
          ASSERT_EQ(a, c);
          RequestHead again;
          ASSERT_EQ(feedRequestHead(serialize(a), 0, &again).status, Status::Done);
          ASSERT_EQ(again, a);
        }
        ++variants;
      }
    }
  }
  EXPECT_GT(variants, 1000u);
}

// ---------------------------------------------------------------------------
// Streams: pipelining, bodies, keep-alive

struct StreamCase {
  std::string label;
  std::string input;
  std::vector<std::string> events;  // with finish() at the end ("eof ...")
};

void PrintTo(const StreamCase& c, std::ostream* os) { *os << c.label; }

class RequestStreamTest : public ::testing::TestWithParam<StreamCase> {};

TEST_P(RequestStreamTest, Whole) {
  const StreamCase& c = GetParam();
  EXPECT_EQ(runRequests(c.input, {}, true), Transcript{c.events});
}

TEST_P(RequestStreamTest, EverySplitEqualsWhole) {
  const StreamCase& c = GetParam();
  const Transcript whole = runRequests(c.input, {}, true);
  for (size_t cut = 0; cut <= c.input.size(); ++cut) {
    ASSERT_EQ(runRequests(c.input, {cut}, true), whole) << "cut at " << cut;
  }
  EXPECT_EQ(runRequests(c.input, everyByte(c.input.size()), true), whole);
}

const std::string kGetA = "GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n";
const std::string kGetB = "GET /b HTTP/1.1\r\nHost: example.com\r\n\r\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, RequestStreamTest,
    ::testing::Values(
        StreamCase{"one_get", kGetA, {"head " + kGetA, "end", "eof clean"}},
        StreamCase{"pipelined_gets",
                   kGetA + kGetB,
                   {"head " + kGetA, "end", "head " + kGetB, "end", "eof clean"}},
        StreamCase{
            "post_cl_then_get",
            "POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello" + kGetB,
            {"head POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n",
             "body hello", "end", "head " + kGetB, "end", "eof clean"}},
        StreamCase{"post_chunked_then_get",
                   "POST /p HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n" +
                       kGetB,
                   {"head POST /p HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: "
                    "chunked\r\n\r\n",
                    "body abcde", "end", "head " + kGetB, "end", "eof clean"}},
        StreamCase{"smuggled_request_in_body_is_body",
                   "POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: " +
                       std::to_string(kGetB.size()) + "\r\n\r\n" + kGetB,
                   {"head POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: " +
                        std::to_string(kGetB.size()) + "\r\n\r\n",
                    "body " + kGetB, "end", "eof clean"}},
        StreamCase{"close_then_more",
                   "GET /a HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n" + kGetB,
                   {"head GET /a HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", "end",
                    "invalid http_message_after_close 400"}},
        StreamCase{"http10_then_more",
                   "GET /a HTTP/1.0\r\n\r\n" + kGetB,
                   {"head GET /a HTTP/1.0\r\n\r\n", "end", "invalid http_message_after_close 400"}},
        StreamCase{
            "truncated_head", "GET /a HTTP/1.1\r\nHost: exa", {"eof invalid http_truncated"}},
        StreamCase{"truncated_body",
                   "POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhel",
                   {"head POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n",
                    "body hel", "eof invalid http_truncated"}},
        StreamCase{"bad_chunk_then_nothing",
                   "POST /p HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "zz\r\n",
                   {"head POST /p HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: "
                    "chunked\r\n\r\n",
                    "invalid http_chunk_bad_size 400"}},
        StreamCase{"second_request_invalid",
                   kGetA + "GET /b HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n",
                   {"head " + kGetA, "end", "invalid http_te_and_cl 400"}}),
    [](const ::testing::TestParamInfo<StreamCase>& info) { return info.param.label; });

TEST(RequestReaderTest, HeadStaysValidUntilNextHead) {
  RequestReader r;
  const std::string in = kGetA + kGetB;
  std::span<const uint8_t> rest = testutil::bytes(in);
  Step s = r.next(rest);
  ASSERT_EQ(s.event, Event::Head);
  rest = rest.subspan(s.consumed);
  s = r.next(rest);
  ASSERT_EQ(s.event, Event::End);
  EXPECT_EQ(r.head().target, "/a");  // still the finished request's head
  rest = rest.subspan(s.consumed);
  s = r.next(rest);
  ASSERT_EQ(s.event, Event::Head);
  EXPECT_EQ(r.head().target, "/b");
}

}  // namespace
}  // namespace tollgate::mitm
