#include <gtest/gtest.h>

#include "gateway/log.h"

namespace tollgate::gateway::log {
namespace {
using namespace std::chrono_literals;

TEST(LogThrottleTest, FirstLineThenOnePerWindowCountingTheRest) {
  Throttle t(10s);
  auto t0 = Throttle::Clock::time_point() + 1h;
  uint64_t suppressed = 99;
  ASSERT_TRUE(t.admit(t0, &suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_EQ(t.suffix(suppressed), "");
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(t.admit(t0 + 1ms * i, &suppressed));
  }
  EXPECT_FALSE(t.admit(t0 + 9s, &suppressed));
  ASSERT_TRUE(t.admit(t0 + 10s, &suppressed));
  EXPECT_EQ(suppressed, 1001u);
  EXPECT_EQ(t.suffix(suppressed), " (1001 more in the last 10 s)");
  EXPECT_FALSE(t.admit(t0 + 11s, &suppressed));
  ASSERT_TRUE(t.admit(t0 + 1h, &suppressed));
  EXPECT_EQ(suppressed, 1u);
}

}  // namespace
}  // namespace tollgate::gateway::log
