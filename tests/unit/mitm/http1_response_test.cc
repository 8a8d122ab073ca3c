// HTTP/1.1 responses (RFC 9112 §4, §6.3): status line, framing by request
// method and status, interim 1xx, 101 to a tunnel, pipelined responses.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http_util.h"
#include "mitm/http1.h"

namespace tollgate::mitm {
namespace {

using testutil::everyByte;
using testutil::feedResponseHead;
using testutil::runResponses;
using testutil::Transcript;

constexpr ResponseContext kGet{false, false};
constexpr ResponseContext kHead{true, false};
constexpr ResponseContext kUpgrade{false, true};

struct HeadCase {
  std::string label;
  std::string raw;
  ResponseContext ctx;
  std::string reason = {};  // "" when valid
  BodyFraming body = {};
  bool keep_alive = true;
};

void PrintTo(const HeadCase& c, std::ostream* os) { *os << c.label; }

class ResponseHeadTest : public ::testing::TestWithParam<HeadCase> {};

TEST_P(ResponseHeadTest, Parses) {
  const HeadCase& c = GetParam();
  ResponseHead head;
  const HeadResult r = feedResponseHead(c.raw, 0, c.ctx, &head);
  if (!c.reason.empty()) {
    EXPECT_EQ(r.status, Status::Invalid);
    EXPECT_EQ(r.reason, c.reason);
    EXPECT_EQ(r.http_status, 502);
    return;
  }
  ASSERT_EQ(r.status, Status::Done) << r.reason;
  EXPECT_EQ(r.consumed, c.raw.size());
  EXPECT_EQ(head.body, c.body);
  EXPECT_EQ(head.keep_alive, c.keep_alive);
}

TEST_P(ResponseHeadTest, ByteAtATimeEqualsWhole) {
  const HeadCase& c = GetParam();
  ResponseHead a;
  ResponseHead b;
  const HeadResult whole = feedResponseHead(c.raw, 0, c.ctx, &a);
  EXPECT_EQ(feedResponseHead(c.raw, 1, c.ctx, &b), whole);
  EXPECT_EQ(a, b);
}

TEST_P(ResponseHeadTest, SerializeReparses) {
  const HeadCase& c = GetParam();
  ResponseHead head;
  if (feedResponseHead(c.raw, 0, c.ctx, &head).status != Status::Done) {
    return;
  }
  ResponseHead again;
  ASSERT_EQ(feedResponseHead(serialize(head), 0, c.ctx, &again).status, Status::Done);
  EXPECT_EQ(again, head);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ResponseHeadTest,
    ::testing::Values(
        HeadCase{"ok_cl",
                 "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::Length, 3}},
        HeadCase{"ok_chunked",
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::Chunked, 0}},
        HeadCase{"ok_until_close",
                 "HTTP/1.1 200 OK\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::UntilClose, 0},
                 false},
        HeadCase{"http10_until_close",
                 "HTTP/1.0 200 OK\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::UntilClose, 0},
                 false},
        HeadCase{"http10_keep_alive_cl",
                 "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::Length, 0},
                 true},
        HeadCase{"close",
                 "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::Length, 1},
                 false},
        HeadCase{"head_response_ignores_cl",
                 "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
                 kHead,
                 "",
                 {BodyKind::None, 0}},
        HeadCase{"head_response_ignores_chunked",
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                 kHead,
                 "",
                 {BodyKind::None, 0}},
        HeadCase{"no_content",
                 "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::None, 0}},
        HeadCase{"not_modified",
                 "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::None, 0}},
        HeadCase{"continue", "HTTP/1.1 100 Continue\r\n\r\n", kGet, "", {BodyKind::None, 0}},
        HeadCase{"early_hints",
                 "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::None, 0}},
        HeadCase{"switching",
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                 "Upgrade\r\n\r\n",
                 kUpgrade,
                 "",
                 {BodyKind::Tunnel, 0},
                 false},
        HeadCase{"switching_unrequested",
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", kGet,
                 "http_unexpected_101"},
        HeadCase{"switching_to_other_protocol",
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", kUpgrade,
                 "http_unexpected_101"},
        HeadCase{"te_and_cl_te_wins",
                 "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::Chunked, 0},
                 false},
        HeadCase{"no_reason_phrase",
                 "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::Length, 0}},
        HeadCase{"empty_reason_phrase",
                 "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::Length, 0}},
        HeadCase{"reason_with_obs_text",
                 "HTTP/1.1 200 D\xfc\x62 ok\r\nContent-Length: 0\r\n\r\n",
                 kGet,
                 "",
                 {BodyKind::Length, 0}},
        HeadCase{"te_gzip_chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                 kGet, "http_te_unsupported"},
        HeadCase{"te_gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", kGet,
                 "http_te_unsupported"},
        HeadCase{"te_http10", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", kGet,
                 "http_te_in_http10"},
        HeadCase{"cl_two_lines",
                 "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", kGet,
                 "http_multiple_content_length"},
        HeadCase{"cl_bad", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", kGet,
                 "http_bad_content_length"},
        HeadCase{"status_600", "HTTP/1.1 600 X\r\n\r\n", kGet, "http_bad_status"},
        HeadCase{"status_099", "HTTP/1.1 099 X\r\n\r\n", kGet, "http_bad_status"},
        HeadCase{"status_two_digits", "HTTP/1.1 20 OK\r\n\r\n", kGet, "http_bad_status_line"},
        HeadCase{"status_four_digits", "HTTP/1.1 2000 OK\r\n\r\n", kGet, "http_bad_status_line"},
        HeadCase{"status_letters", "HTTP/1.1 2x0 OK\r\n\r\n", kGet, "http_bad_status_line"},
        HeadCase{"no_status", "HTTP/1.1\r\n\r\n", kGet, "http_bad_status_line"},
        HeadCase{"version_2", "HTTP/2.0 200 OK\r\n\r\n", kGet, "http_version_unsupported"},
        HeadCase{"not_http", "ICY 200 OK\r\n\r\n", kGet, "http_bad_status_line"},
        HeadCase{"bare_lf", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", kGet, "http_bare_lf"},
        HeadCase{"obs_fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n", kGet, "http_obs_fold"},
        HeadCase{"space_before_colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", kGet,
                 "http_space_before_colon"},
        HeadCase{"nul", std::string("HTTP/1.1 200 OK\r\nX: \0\r\n\r\n", 25), kGet, "http_nul"}),
    [](const ::testing::TestParamInfo<HeadCase>& info) { return info.param.label; });

TEST(ResponseHeadTest, SerializeIsCanonical) {
  ResponseHead head;
  ASSERT_EQ(
      feedResponseHead("HTTP/1.1 404\r\nserver:  x \r\nContent-Length: 0\r\n\r\n", 0, kGet, &head)
          .status,
      Status::Done);
  EXPECT_EQ(serialize(head), "HTTP/1.1 404 \r\nserver: x\r\nContent-Length: 0\r\n\r\n");
}

struct StreamCase {
  std::string label;
  std::string input;
  std::vector<ResponseContext> contexts;
  std::vector<std::string> events;
};

void PrintTo(const StreamCase& c, std::ostream* os) { *os << c.label; }

class ResponseStreamTest : public ::testing::TestWithParam<StreamCase> {};

TEST_P(ResponseStreamTest, Whole) {
  const StreamCase& c = GetParam();
  EXPECT_EQ(runResponses(c.input, c.contexts, {}, true), Transcript{c.events});
}

TEST_P(ResponseStreamTest, EverySplitEqualsWhole) {
  const StreamCase& c = GetParam();
  const Transcript whole = runResponses(c.input, c.contexts, {}, true);
  for (size_t cut = 0; cut <= c.input.size(); ++cut) {
    ASSERT_EQ(runResponses(c.input, c.contexts, {cut}, true), whole) << "cut at " << cut;
  }
  EXPECT_EQ(runResponses(c.input, c.contexts, everyByte(c.input.size()), true), whole);
}

const std::string kOk3 = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, ResponseStreamTest,
    ::testing::Values(
        StreamCase{"cl", kOk3 + "abc", {kGet}, {"head " + kOk3, "body abc", "end", "eof clean"}},
        StreamCase{
            "pipelined",
            kOk3 + "abc" + kOk3 + "def",
            {kGet, kGet},
            {"head " + kOk3, "body abc", "end", "head " + kOk3, "body def", "end", "eof clean"}},
        StreamCase{"head_then_get",
                   kOk3 + kOk3 + "def",
                   {kHead, kGet},
                   {"head " + kOk3, "end", "head " + kOk3, "body def", "end", "eof clean"}},
        StreamCase{"continue_then_final",
                   "HTTP/1.1 100 Continue\r\n\r\n" + kOk3 + "abc",
                   {kGet},
                   {"head HTTP/1.1 100 Continue\r\n\r\n", "end", "head " + kOk3, "body abc", "end",
                    "eof clean"}},
        StreamCase{"chunked_with_trailer",
                   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n"
                   "Expires: never\r\n\r\n",
                   {kGet},
                   {"head HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "body wiki",
                    "end", "eof clean"}},
        StreamCase{"until_close",
                   "HTTP/1.1 200 OK\r\n\r\nall of this until the end",
                   {kGet},
                   {"head HTTP/1.1 200 OK\r\n\r\n", "body all of this until the end", "eof end"}},
        StreamCase{"switching_protocols_then_tunnel",
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                   "Upgrade\r\n\r\n\x81\x05hello",
                   {kUpgrade},
                   {"head HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                    "Upgrade\r\n\r\n",
                    "tunnel 7"}},
        StreamCase{"refused_upgrade_continues",
                   "HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n",
                   {kUpgrade},
                   {"head HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n", "end", "eof clean"}},
        StreamCase{"unsolicited", kOk3 + "abc", {}, {"invalid http_unsolicited_response 502"}},
        StreamCase{"extra_response",
                   kOk3 + "abc" + kOk3 + "abc",
                   {kGet},
                   {"head " + kOk3, "body abc", "end", "invalid http_unsolicited_response 502"}},
        StreamCase{"after_close",
                   "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\njunk",
                   {kGet, kGet},
                   {"head HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", "end",
                    "invalid http_message_after_close 502"}},
        StreamCase{"truncated_cl",
                   kOk3 + "ab",
                   {kGet},
                   {"head " + kOk3, "body ab", "eof invalid http_truncated"}},
        StreamCase{"truncated_chunked",
                   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwi",
                   {kGet},
                   {"head HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "body wi",
                    "eof invalid http_truncated"}},
        StreamCase{"truncated_head",
                   "HTTP/1.1 200 OK\r\nContent-",
                   {kGet},
                   {"eof invalid http_truncated"}}),
    [](const ::testing::TestParamInfo<StreamCase>& info) { return info.param.label; });

TEST(ResponseReaderTest, OutstandingRequests) {
  ResponseReader r;
  EXPECT_EQ(r.next({}).event, Event::NeedMore);
  r.expect(kGet);
  r.expect(kGet);
  EXPECT_EQ(r.outstanding(), 2u);
  const std::string in = kOk3 + "abc";
  std::span<const uint8_t> rest = testutil::bytes(in);
  while (!rest.empty()) {
    Step s = r.next(rest);
    rest = rest.subspan(s.consumed);
  }
  EXPECT_EQ(r.next(rest).event, Event::End);
  EXPECT_EQ(r.outstanding(), 1u);
}

}  // namespace
}  // namespace tollgate::mitm
