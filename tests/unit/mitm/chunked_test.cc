// Body decoding (RFC 9112 §6.3, §7.1): chunked with extensions and
// trailers, Content-Length countdown, until-close; streaming in O(1) memory.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <string>
#include <vector>

#include "http_util.h"
#include "mitm/http1.h"

namespace tollgate::mitm {
namespace {

using testutil::bytes;
using testutil::decodeBody;
using testutil::Decoded;

constexpr BodyFraming kChunked{BodyKind::Chunked, 0};

struct ChunkCase {
  std::string label;
  std::string input;
  std::string reason = {};  // "" when valid
  std::string body = {};    // valid: decoded body
  size_t trailing = 0;      // valid: bytes after the body left unconsumed
};

void PrintTo(const ChunkCase& c, std::ostream* os) { *os << c.label; }

class ChunkedTest : public ::testing::TestWithParam<ChunkCase> {};

TEST_P(ChunkedTest, Decodes) {
  const ChunkCase& c = GetParam();
  const Decoded d = decodeBody(kChunked, c.input, 0);
  if (!c.reason.empty()) {
    EXPECT_EQ(d.status, Status::Invalid);
    EXPECT_EQ(d.reason, c.reason);
    return;
  }
  ASSERT_EQ(d.status, Status::Done) << d.reason;
  EXPECT_EQ(d.body, c.body);
  EXPECT_EQ(d.consumed, c.input.size() - c.trailing);
}

TEST_P(ChunkedTest, EveryPieceSizeEqualsWhole) {
  const ChunkCase& c = GetParam();
  const Decoded whole = decodeBody(kChunked, c.input, 0);
  for (size_t piece = 1; piece <= 9; ++piece) {
    const Decoded d = decodeBody(kChunked, c.input, piece);
    ASSERT_EQ(d.status, whole.status) << piece;
    ASSERT_EQ(d.reason, whole.reason) << piece;
    if (whole.status == Status::Done) {
      ASSERT_EQ(d.body, whole.body) << piece;
      ASSERT_EQ(d.consumed, whole.consumed) << piece;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ChunkedTest,
    ::testing::Values(
        ChunkCase{"simple", "5\r\nhello\r\n0\r\n\r\n", "", "hello"},
        ChunkCase{"several", "3\r\nabc\r\n1\r\nd\r\nA\r\n0123456789\r\n0\r\n\r\n", "",
                  "abcd0123456789"},
        ChunkCase{"upper_and_lower_hex", "a\r\n0123456789\r\nB\r\n0123456789a\r\n0\r\n\r\n", "",
                  "01234567890123456789a"},
        ChunkCase{"leading_zeros", "0005\r\nhello\r\n000\r\n\r\n", "", "hello"},
        ChunkCase{"empty_body", "0\r\n\r\n", "", ""},
        ChunkCase{"next_message_left", "1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "", "x", 16},
        ChunkCase{"extension", "5;name=val\r\nhello\r\n0;last\r\n\r\n", "", "hello"},
        ChunkCase{"extension_bws", "5 ; a = b ;\tc\r\nhello\r\n0\r\n\r\n", "", "hello"},
        ChunkCase{"extension_quoted", "5;a=\"x y\\\"z;\"\r\nhello\r\n0\r\n\r\n", "", "hello"},
        ChunkCase{"extension_quoted_then_more", "5;a=\"q\" ;b\r\nhello\r\n0\r\n\r\n", "", "hello"},
        ChunkCase{"trailer", "4\r\nwiki\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n", "", "wiki"},
        ChunkCase{"binary_data", std::string("3\r\n\0\r\n\r\n0\r\n\r\n", 13), "",
                  std::string("\0\r\n", 3)},
        // Rejections.
        ChunkCase{"no_size", "\r\nhello\r\n0\r\n\r\n", "http_chunk_bad_size"},
        ChunkCase{"bad_hex", "g\r\n", "http_chunk_bad_size"},
        ChunkCase{"negative", "-5\r\nhello\r\n", "http_chunk_bad_size"},
        ChunkCase{"hex_prefix", "0x5\r\nhello\r\n", "http_chunk_bad_size"},
        ChunkCase{"size_bare_lf", "5\nhello\r\n0\r\n\r\n", "http_chunk_bad_size"},
        ChunkCase{"size_cr_no_lf", "5\rhello\r\n", "http_chunk_missing_crlf"},
        ChunkCase{"overflow_18_f", "ffffffffffffffffff\r\n", "http_chunk_size_overflow"},
        ChunkCase{"overflow_2_pow_63", "8000000000000000\r\n", "http_chunk_size_overflow"},
        ChunkCase{"overflow_2_pow_64", "10000000000000000\r\n", "http_chunk_size_overflow"},
        ChunkCase{"data_missing_crlf", "5\r\nhelloX\r\n0\r\n\r\n", "http_chunk_missing_crlf"},
        ChunkCase{"data_bare_lf", "5\r\nhello\n0\r\n\r\n", "http_chunk_missing_crlf"},
        ChunkCase{"data_cr_only", "5\r\nhello\r0\r\n\r\n", "http_chunk_missing_crlf"},
        ChunkCase{"data_too_long", "2\r\nhello\r\n", "http_chunk_missing_crlf"},
        ChunkCase{"ext_empty_name", "5;\r\nhello\r\n", "http_chunk_bad_extension"},
        ChunkCase{"ext_empty_value", "5;a=\r\nhello\r\n", "http_chunk_bad_extension"},
        ChunkCase{"ext_trailing_space", "5 \r\nhello\r\n", "http_chunk_bad_extension"},
        ChunkCase{"ext_name_trailing_space", "5;a \r\nhello\r\n", "http_chunk_bad_extension"},
        ChunkCase{"ext_bare_lf", "5;a\nhello\r\n", "http_chunk_bad_extension"},
        ChunkCase{"ext_nul", std::string("5;a\0\r\nhello\r\n", 13), "http_chunk_bad_extension"},
        ChunkCase{"ext_unterminated_quote", "5;a=\"xy\r\nhello\r\n", "http_chunk_bad_extension"},
        ChunkCase{"ext_quoted_ctl", "5;a=\"x\x01\"\r\nhello\r\n", "http_chunk_bad_extension"},
        ChunkCase{"ext_after_quote_junk", "5;a=\"x\"y\r\nhello\r\n", "http_chunk_bad_extension"},
        ChunkCase{"ext_too_long", "5;" + std::string(kMaxChunkLineBytes, 'a') + "\r\nhello\r\n",
                  "http_chunk_line_too_long"},
        ChunkCase{"leading_zeros_too_long",
                  std::string(kMaxChunkLineBytes + 1, '0') + "5\r\nhello\r\n",
                  "http_chunk_line_too_long"},
        ChunkCase{"trailer_bare_lf", "0\r\nX: 1\n\r\n", "http_bare_lf"},
        ChunkCase{"trailer_obs_fold", "0\r\nX: 1\r\n 2\r\n\r\n", "http_obs_fold"},
        ChunkCase{"trailer_space_before_colon", "0\r\nX : 1\r\n\r\n", "http_space_before_colon"},
        ChunkCase{"trailer_no_colon", "0\r\nX\r\n\r\n", "http_bad_field_line"},
        ChunkCase{"trailer_nul", std::string("0\r\nX: \0\r\n\r\n", 11), "http_nul"},
        ChunkCase{"trailer_too_large", "0\r\nX: " + std::string(kMaxTrailerBytes, 'a') + "\r\n\r\n",
                  "http_trailer_too_large"}),
    [](const ::testing::TestParamInfo<ChunkCase>& info) { return info.param.label; });

// Corrupting any byte of a chunked body (size digits, CRLFs, extensions,
// trailers) never crashes and never makes split feeding disagree.
TEST(ChunkedTest, EveryByteCorruptedStaysConsistent) {
  const std::string in =
      "1a;ext=\"q\"\r\n" + std::string(26, 'd') + "\r\n0004\r\nabcd\r\n0\r\nX-T: 1\r\n\r\n";
  const unsigned char kReplacements[] = {0x00, '\r', '\n', ' ', ';', '=',  '"',
                                         '0',  '9',  'f',  'F', 'g', 0xff, 0x7f};
  for (size_t i = 0; i < in.size(); ++i) {
    for (unsigned char b : kReplacements) {
      std::string v = in;
      v[i] = static_cast<char>(b);
      const Decoded whole = decodeBody(kChunked, v, 0);
      const Decoded bytewise = decodeBody(kChunked, v, 1);
      ASSERT_EQ(bytewise.status, whole.status) << i << " " << int(b);
      ASSERT_EQ(bytewise.reason, whole.reason) << i << " " << int(b);
      ASSERT_EQ(bytewise.body, whole.body) << i << " " << int(b);
      ASSERT_EQ(bytewise.consumed, whole.consumed) << i << " " << int(b);
    }
  }
}

TEST(ChunkedTest, MaxChunkSizeIsAcceptedAndCountsDown) {
  BodyDecoder d(kChunked);
  const std::string head = "7fffffffffffffff\r\n";
  BodyResult r = d.feed(bytes(head));
  EXPECT_EQ(r.status, Status::NeedMore);
  EXPECT_EQ(r.consumed, head.size());
  r = d.feed(bytes("abc"));
  EXPECT_EQ(r.status, Status::NeedMore);
  EXPECT_EQ(testutil::text(r.data), "abc");
  EXPECT_EQ(d.received(), 3u);
}

TEST(ChunkedTest, TrailersAreParsedAndKept) {
  BodyDecoder d(kChunked);
  const std::string in = "1\r\nx\r\n0\r\nExpires: never\r\nx-sum:  7 \r\n\r\n";
  std::span<const uint8_t> rest = bytes(in);
  BodyResult r;
  do {
    r = d.feed(rest);
    rest = rest.subspan(r.consumed);
  } while (r.status == Status::NeedMore);
  ASSERT_EQ(r.status, Status::Done);
  ASSERT_EQ(d.trailers().fields.size(), 2u);
  EXPECT_EQ(d.trailers().fields[1], (HeaderField{"x-sum", "7"}));
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(ChunkedTest, InvalidIsFinal) {
  BodyDecoder d(kChunked);
  EXPECT_EQ(d.feed(bytes("zz")).status, Status::Invalid);
  const BodyResult again = d.feed(bytes("5\r\nhello\r\n"));
  EXPECT_EQ(again.status, Status::Invalid);
  EXPECT_EQ(again.reason, "http_chunk_bad_size");
  EXPECT_EQ(again.consumed, 0u);
}

TEST(ChunkedTest, FeedAfterDoneConsumesNothing) {
  BodyDecoder d(kChunked);
  std::span<const uint8_t> in = bytes("0\r\n\r\nrest");
  BodyResult r = d.feed(in);
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.consumed, 5u);
  r = d.feed(in.subspan(5));
  EXPECT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.consumed, 0u);
}

long maxRssKiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// 1 GiB of chunked body, fed as it would arrive (chunk lines, 64 KiB of data
// from one reused buffer, CRLF, each in pieces): every data byte comes back
// as a span into the input, nothing is held, and peak memory does not grow.
TEST(ChunkedTest, OneGibibyteStreamsInConstantMemory) {
  constexpr size_t kChunk = 64 * 1024;
  constexpr uint64_t kTotal = 1ULL << 30;
  const std::string data(kChunk, 'z');
  const std::string size_line = "10000;ext=1\r\n";  // 0x10000 = 64 KiB
  BodyDecoder d(kChunked);
  const long rss_before = maxRssKiB();
  uint64_t out = 0;
  auto feedAll = [&](std::string_view s) {
    std::span<const uint8_t> in = bytes(s);
    while (!in.empty()) {
      BodyResult r = d.feed(in);
      ASSERT_NE(r.status, Status::Invalid) << r.reason;
      out += r.data.size();
      in = in.subspan(r.consumed);
      ASSERT_EQ(d.buffered(), 0u);
    }
  };
  for (uint64_t sent = 0; sent < kTotal; sent += kChunk) {
    feedAll(size_line.substr(0, 5));
    feedAll(size_line.substr(5));
    feedAll(std::string_view(data).substr(0, 1000));
    feedAll(std::string_view(data).substr(1000));
    feedAll("\r\n");
  }
  feedAll("0\r\n\r\n");
  EXPECT_TRUE(d.done());
  EXPECT_EQ(out, kTotal);
  EXPECT_EQ(d.received(), kTotal);
  EXPECT_LT(maxRssKiB() - rss_before, 8 * 1024) << "peak RSS grew by more than 8 MiB";
}

TEST(ContentLengthTest, CountsDown) {
  const Decoded d = decodeBody({BodyKind::Length, 5}, "helloGET", 2);
  EXPECT_EQ(d.status, Status::Done);
  EXPECT_EQ(d.body, "hello");
  EXPECT_EQ(d.consumed, 5u);
  BodyDecoder dec({BodyKind::Length, 10});
  BodyResult r = dec.feed(bytes("abcd"));
  EXPECT_EQ(r.status, Status::NeedMore);
  EXPECT_EQ(dec.received(), 4u);
  EXPECT_EQ(dec.finish().reason, "http_truncated");
}

TEST(ContentLengthTest, ZeroAndNoneAreDoneAtOnce) {
  EXPECT_TRUE(BodyDecoder({BodyKind::Length, 0}).done());
  EXPECT_TRUE(BodyDecoder({BodyKind::None, 0}).done());
  BodyDecoder none;
  EXPECT_EQ(none.feed(bytes("GET")).consumed, 0u);
}

TEST(UntilCloseTest, EverythingUntilFinish) {
  BodyDecoder d({BodyKind::UntilClose, 0});
  BodyResult r = d.feed(bytes("abc"));
  EXPECT_EQ(r.status, Status::NeedMore);
  EXPECT_EQ(testutil::text(r.data), "abc");
  EXPECT_EQ(d.finish().status, Status::Done);
  EXPECT_TRUE(d.done());
}

}  // namespace
}  // namespace tollgate::mitm
