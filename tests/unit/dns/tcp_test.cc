// TcpFramer and frameForTcp: DNS over TCP (RFC 1035 §4.2.2, RFC 7766 §8).
#include <gtest/gtest.h>

#include <vector>

#include "dns/dns.h"
#include "wire_util.h"

namespace tollgate::dns {
namespace {

using testwire::Bytes;

Bytes queryBytes(std::string_view host, uint16_t id = 1) {
  testwire::MessageSpec spec = testwire::query(host);
  spec.id = id;
  return testwire::build(spec);
}

Bytes framed(const Bytes& msg) {
  Result<Bytes> f = frameForTcp(msg);
  EXPECT_TRUE(f.ok());
  return f.ok() ? *f : Bytes{};
}

TEST(FrameForTcp, PrefixesLength) {
  const Bytes msg = queryBytes("example.test");
  const Bytes f = framed(msg);
  ASSERT_EQ(f.size(), msg.size() + 2);
  EXPECT_EQ(testwire::be16(f, 0), msg.size());
  EXPECT_TRUE(std::equal(msg.begin(), msg.end(), f.begin() + 2));
}

TEST(FrameForTcp, RefusesOver65535) {
  EXPECT_TRUE(frameForTcp(Bytes(65535, 0)).ok());
  EXPECT_FALSE(frameForTcp(Bytes(65536, 0)).ok());
}

TEST(TcpFramer, OneMessageAtOnce) {
  const Bytes msg = queryBytes("example.test");
  TcpFramer f;
  TcpFramer::Fed out = f.feed(framed(msg));
  EXPECT_FALSE(out.invalid);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0], msg);
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(TcpFramer, ByteByByte) {
  const Bytes msg = queryBytes("example.test");
  const Bytes wire = framed(msg);
  TcpFramer f;
  for (size_t i = 0; i < wire.size(); ++i) {
    TcpFramer::Fed out = f.feed(std::span<const uint8_t>(wire).subspan(i, 1));
    EXPECT_FALSE(out.invalid);
    if (i + 1 < wire.size()) {
      EXPECT_TRUE(out.messages.empty()) << i;
      EXPECT_EQ(f.buffered(), i + 1);
    } else {
      ASSERT_EQ(out.messages.size(), 1u);
      EXPECT_EQ(out.messages[0], msg);
    }
  }
}

TEST(TcpFramer, PipelinedMessagesSplitAnywhere) {
  Bytes stream;
  std::vector<Bytes> msgs;
  for (uint16_t i = 0; i < 5; ++i) {
    msgs.push_back(queryBytes("host" + std::to_string(i) + ".example.test", i));
    stream = testwire::concat(stream, framed(msgs.back()));
  }
  for (size_t chunk : {1, 2, 3, 7, 13, 100, 1000}) {
    TcpFramer f;
    std::vector<Bytes> got;
    for (size_t i = 0; i < stream.size(); i += chunk) {
      TcpFramer::Fed out =
          f.feed(std::span<const uint8_t>(stream).subspan(i, std::min(chunk, stream.size() - i)));
      ASSERT_FALSE(out.invalid);
      got.insert(got.end(), out.messages.begin(), out.messages.end());
    }
    EXPECT_EQ(got, msgs) << "chunk " << chunk;
    EXPECT_EQ(f.buffered(), 0u);
  }
}

TEST(TcpFramer, AtMostNMessagesPerFeed) {
  Bytes stream;
  for (uint16_t i = 0; i < 10; ++i) {
    stream = testwire::concat(stream, framed(queryBytes("example.test", i)));
  }
  TcpFramer f(TcpFramer::kDefaultMaxMessage, TcpFramer::kDefaultMaxBuffered, 4);
  TcpFramer::Fed out = f.feed(stream);
  EXPECT_EQ(out.messages.size(), 4u);
  EXPECT_TRUE(f.hasMessage());
  out = f.feed({});
  EXPECT_EQ(out.messages.size(), 4u);
  out = f.feed({});
  ASSERT_EQ(out.messages.size(), 2u);
  EXPECT_EQ(testwire::be16(out.messages[1], 0), 9) << "in order";
  EXPECT_FALSE(f.hasMessage());
  EXPECT_TRUE(f.feed({}).messages.empty());
}

TEST(TcpFramer, TooShortIsInvalidAndSticky) {
  for (uint16_t len : {0, 1, 11}) {
    TcpFramer f;
    TcpFramer::Fed out = f.feed(Bytes{static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)});
    EXPECT_TRUE(out.invalid) << len;
    EXPECT_EQ(out.reason, "message_too_short");
    EXPECT_TRUE(f.invalid());
    EXPECT_EQ(f.room(), 0u);
    out = f.feed(framed(queryBytes("example.test")));
    EXPECT_TRUE(out.invalid);
    EXPECT_TRUE(out.messages.empty());
  }
}

TEST(TcpFramer, MessagesBeforeAFaultAreHandedOut) {
  const Bytes good = queryBytes("example.test");
  TcpFramer f;
  TcpFramer::Fed out = f.feed(testwire::concat(framed(good), Bytes{0, 3, 1, 2, 3}));
  EXPECT_TRUE(out.invalid);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0], good);
}

TEST(TcpFramer, TooLongIsRejectedFromThePrefix) {
  TcpFramer f(512);
  TcpFramer::Fed out = f.feed(Bytes{0x02, 0x01});  // 513
  EXPECT_TRUE(out.invalid);
  EXPECT_EQ(out.reason, "message_too_long");

  TcpFramer exact(512);
  Bytes msg = queryBytes("example.test");
  msg.resize(512, 0);  // trailing zeros: the framer does not parse messages
  out = exact.feed(framed(msg));
  EXPECT_FALSE(out.invalid);
  EXPECT_EQ(out.messages.size(), 1u);
}

TEST(TcpFramer, LargestMessage) {
  TcpFramer f;
  Bytes msg(65535, 0x5a);
  TcpFramer::Fed out = f.feed(framed(msg));
  EXPECT_FALSE(out.invalid);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].size(), 65535u);
}

TEST(TcpFramer, BufferBound) {
  // max_buffered is raised to hold one largest message plus its prefix.
  TcpFramer f(512, 100, 1);
  EXPECT_EQ(f.room(), 514u);
  Bytes stream;
  for (uint16_t i = 0; i < 40; ++i) {
    stream = testwire::concat(stream, framed(queryBytes("example.test", i)));  // 32 bytes each
  }
  TcpFramer::Fed out = f.feed(std::span<const uint8_t>(stream).first(500));
  EXPECT_FALSE(out.invalid);
  EXPECT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(f.buffered(), 500u - 32u);
  EXPECT_EQ(f.room(), 514u - 468u);
  out = f.feed(std::span<const uint8_t>(stream).subspan(500, f.room() + 1));
  EXPECT_TRUE(out.invalid);
  EXPECT_EQ(out.reason, "buffer_full");
}

TEST(TcpFramer, CaptureFromDig) {
  const Bytes stream = testwire::readCapture("dig_tcp.query.tcp");
  ASSERT_GT(stream.size(), 2u);
  for (size_t chunk : {1, 2, 5, 1000}) {
    TcpFramer f;
    std::vector<Bytes> got;
    for (size_t i = 0; i < stream.size(); i += chunk) {
      TcpFramer::Fed out =
          f.feed(std::span<const uint8_t>(stream).subspan(i, std::min(chunk, stream.size() - i)));
      ASSERT_FALSE(out.invalid);
      got.insert(got.end(), out.messages.begin(), out.messages.end());
    }
    ASSERT_EQ(got.size(), 1u);
    const QueryParse p = parseQuery(got[0]);
    EXPECT_EQ(p.outcome, QueryParse::Outcome::kOk);
    EXPECT_EQ(p.query.question.name, "x.test");
  }
}

}  // namespace
}  // namespace tollgate::dns
