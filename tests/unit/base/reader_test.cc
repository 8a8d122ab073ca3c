#include "base/reader.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace tollgate {
namespace {

TEST(ReaderTest, ReadsBigEndianIntegers) {
  const std::array<uint8_t, 6> data = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06};
  Reader r(data);
  uint8_t a = 0;
  uint16_t b = 0;
  uint32_t c = 0;
  ASSERT_TRUE(r.u8(a));
  ASSERT_TRUE(r.u16(b));
  ASSERT_TRUE(r.u24(c));
  EXPECT_EQ(a, 0x01);
  EXPECT_EQ(b, 0x0203);
  EXPECT_EQ(c, 0x040506u);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(ReaderTest, ShortReadsFailWithoutAdvancingOrWriting) {
  const std::array<uint8_t, 2> data = {0xaa, 0xbb};
  Reader r(data);
  uint32_t c = 7;
  EXPECT_FALSE(r.u24(c));
  EXPECT_EQ(c, 7u);
  EXPECT_EQ(r.remaining(), 2u);
  EXPECT_FALSE(r.skip(3));
  EXPECT_EQ(r.remaining(), 2u);
  std::span<const uint8_t> out;
  EXPECT_FALSE(r.bytes(3, out));
  EXPECT_TRUE(out.empty());
  uint16_t b = 0;
  ASSERT_TRUE(r.u16(b));
  EXPECT_EQ(b, 0xaabb);
  uint8_t a = 9;
  EXPECT_FALSE(r.u8(a));
  EXPECT_EQ(a, 9);
}

TEST(ReaderTest, EmptyReader) {
  Reader r;
  uint8_t a = 0;
  Reader child;
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.u8(a));
  EXPECT_FALSE(r.u8Prefixed(child));
  EXPECT_TRUE(r.skip(0));
  std::span<const uint8_t> out;
  EXPECT_TRUE(r.bytes(0, out));
}

struct PrefixCase {
  std::vector<uint8_t> data;
  int len_len;
  bool ok;
  size_t child_len;
  size_t rest_after;
};

class ReaderPrefixedTest : public ::testing::TestWithParam<PrefixCase> {};

TEST_P(ReaderPrefixedTest, ChildSpansExactlyTheLength) {
  const PrefixCase& c = GetParam();
  Reader r(c.data);
  Reader child;
  bool ok = false;
  switch (c.len_len) {
    case 1:
      ok = r.u8Prefixed(child);
      break;
    case 2:
      ok = r.u16Prefixed(child);
      break;
    default:
      ok = r.u24Prefixed(child);
      break;
  }
  ASSERT_EQ(ok, c.ok);
  if (ok) {
    EXPECT_EQ(child.remaining(), c.child_len);
    EXPECT_EQ(r.remaining(), c.rest_after);
  } else {
    EXPECT_EQ(r.remaining(), c.data.size()) << "a failed read must not advance";
    EXPECT_TRUE(child.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ReaderPrefixedTest,
    ::testing::Values(PrefixCase{{0x00}, 1, true, 0, 0},                                //
                      PrefixCase{{0x02, 0xaa, 0xbb, 0xcc}, 1, true, 2, 1},              //
                      PrefixCase{{0x03, 0xaa, 0xbb}, 1, false, 0, 0},                   //
                      PrefixCase{{}, 1, false, 0, 0},                                   //
                      PrefixCase{{0x00, 0x01, 0xaa}, 2, true, 1, 0},                    //
                      PrefixCase{{0x00}, 2, false, 0, 0},                               //
                      PrefixCase{{0xff, 0xff, 0x00}, 2, false, 0, 0},                   //
                      PrefixCase{{0x00, 0x00, 0x02, 0x01, 0x02, 0x03}, 3, true, 2, 1},  //
                      PrefixCase{{0xff, 0xff, 0xff, 0x00}, 3, false, 0, 0},             //
                      PrefixCase{{0x00, 0x00}, 3, false, 0, 0}));

TEST(ReaderTest, NestedChildrenDoNotReadPastTheirParent) {
  // u16 length 3 holding a u8-prefixed child that claims 5 bytes.
  const std::array<uint8_t, 9> data = {0x00, 0x03, 0x05, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06};
  Reader r(data);
  Reader outer;
  Reader inner;
  ASSERT_TRUE(r.u16Prefixed(outer));
  EXPECT_FALSE(outer.u8Prefixed(inner));
  EXPECT_EQ(outer.remaining(), 3u);
  EXPECT_EQ(r.remaining(), 4u);
}

TEST(ReaderTest, BytesAndChars) {
  const std::array<uint8_t, 5> data = {'h', 'e', 'l', 'l', 'o'};
  Reader r(data);
  std::span<const uint8_t> b;
  std::string_view s;
  ASSERT_TRUE(r.bytes(2, b));
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0], 'h');
  ASSERT_TRUE(r.chars(3, s));
  EXPECT_EQ(s, "llo");
  EXPECT_FALSE(r.chars(1, s));
  EXPECT_EQ(s, "llo");
}

}  // namespace
}  // namespace tollgate
