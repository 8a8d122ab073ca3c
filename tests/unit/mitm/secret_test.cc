// SecretBuffer: own page-aligned mapping, excluded from core dumps, locked
// where allowed, wiped on replacement and destruction, never printable.
#include "base/secret.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>

namespace tollgate {
namespace {

static_assert(!std::is_copy_constructible_v<SecretBuffer>);
static_assert(!std::is_copy_assignable_v<SecretBuffer>);
static_assert(std::is_nothrow_move_constructible_v<SecretBuffer>);
template <typename T>
concept Streamable = requires(std::ostream& os, const T& t) {
  os << t;
};
static_assert(!Streamable<SecretBuffer>, "a secret must not be printable");

// The VmFlags line of the /proc/self/smaps entry holding `addr`.
std::string vmFlags(const void* addr) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const auto a = reinterpret_cast<uintptr_t>(addr);
  while (std::getline(smaps, line)) {
    unsigned long lo = 0;
    unsigned long hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(' ') > 8) {
      inside = a >= lo && a < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return {};
}

TEST(SecretBufferTest, HoldsACopy) {
  auto s = SecretBuffer::copyOf("sk-live-123");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->view(), "sk-live-123");
  EXPECT_EQ(s->size(), 11u);
  EXPECT_FALSE(s->empty());
}

TEST(SecretBufferTest, RedactedOnly) {
  auto s = SecretBuffer::copyOf("sk-live-123");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->redacted(), "<redacted 11 bytes>");
  std::ostringstream os;
  PrintTo(*s, &os);
  EXPECT_EQ(os.str(), "<redacted 11 bytes>");
  EXPECT_EQ(::testing::PrintToString(*s).find("sk-live"), std::string::npos);
}

TEST(SecretBufferTest, OwnPageAlignedMappingExcludedFromCoreDumps) {
  auto s = SecretBuffer::copyOf("value");
  ASSERT_TRUE(s.ok());
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s->view().data()) % page, 0u);
  EXPECT_TRUE(s->dontDump());
  EXPECT_EQ(s->dontDumpError(), 0);
  const std::string flags = vmFlags(s->view().data());
  ASSERT_FALSE(flags.empty());
  EXPECT_NE(flags.find(" dd"), std::string::npos) << flags;
  if (s->locked()) {
    EXPECT_EQ(s->lockError(), 0);
    EXPECT_NE(flags.find(" lo"), std::string::npos) << flags;
  } else {
    // Not allowed to lock here (RLIMIT_MEMLOCK / no CAP_IPC_LOCK): recorded.
    EXPECT_TRUE(s->lockError() == EPERM || s->lockError() == ENOMEM || s->lockError() == EAGAIN)
        << s->lockError();
  }
}

TEST(SecretBufferTest, MoveLeavesTheSourceEmptyAndKeepsTheMemory) {
  auto s = SecretBuffer::copyOf("abc");
  ASSERT_TRUE(s.ok());
  const char* where = s->view().data();
  SecretBuffer moved = std::move(*s);
  EXPECT_TRUE(s->empty());
  EXPECT_EQ(s->view(), "");
  EXPECT_EQ(moved.view(), "abc");
  EXPECT_EQ(moved.view().data(), where);  // views survive moves
  SecretBuffer other;
  other = std::move(moved);
  EXPECT_EQ(other.view(), "abc");
  EXPECT_TRUE(moved.empty());
}

TEST(SecretBufferTest, ReplacementWipesTheOldBytes) {
  auto s = SecretBuffer::copyOf("a-long-old-secret");
  ASSERT_TRUE(s.ok());
  const char* mem = s->view().data();
  ASSERT_TRUE(s->assign("new").ok());
  EXPECT_EQ(s->view(), "new");
  EXPECT_EQ(s->view().data(), mem);  // fits: same mapping
  for (size_t i = 3; i < 17; ++i) {
    EXPECT_EQ(mem[i], '\0') << i;
  }
  const std::string big(3 * static_cast<size_t>(::sysconf(_SC_PAGESIZE)), 'x');
  ASSERT_TRUE(s->assign(big).ok());
  EXPECT_EQ(s->view(), big);
  ASSERT_TRUE(s->assign("").ok());
  EXPECT_TRUE(s->empty());
}

TEST(SecretBufferTest, ClearAndEmpty) {
  SecretBuffer empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.redacted(), "<redacted 0 bytes>");
  auto s = SecretBuffer::copyOf("x");
  ASSERT_TRUE(s.ok());
  s->clear();
  EXPECT_TRUE(s->empty());
  auto e = SecretBuffer::copyOf("");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->empty());
}

TEST(SecretBufferTest, AllocateAndFillInPlace) {
  auto s = SecretBuffer::allocate(5);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->view(), std::string(5, '\0'));
  std::span<char> w = s->writable();
  ASSERT_EQ(w.size(), 5u);
  std::copy_n("hello", 5, w.begin());
  EXPECT_EQ(s->view(), "hello");
}

}  // namespace
}  // namespace tollgate
