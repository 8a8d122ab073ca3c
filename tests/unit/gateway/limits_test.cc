#include "gateway/limits.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace tollgate::gateway {
namespace {
using namespace std::chrono_literals;

TEST(FlowSlotsTest, LimitsEachKeyAndReleasesOnDestruction) {
  FlowSlots slots;
  std::vector<FlowSlots::Slot> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(slots.tryAcquire("a", 3));
    EXPECT_TRUE(held.back());
  }
  EXPECT_FALSE(slots.tryAcquire("a", 3));
  EXPECT_TRUE(slots.tryAcquire("b", 3));  // another sandbox is not affected
  EXPECT_EQ(slots.inUse("a"), 3u);
  EXPECT_EQ(slots.inUse("b"), 0u);  // the temporary above was released
  held.pop_back();
  EXPECT_EQ(slots.inUse("a"), 2u);
  FlowSlots::Slot moved = std::move(held.back());
  held.pop_back();
  EXPECT_EQ(slots.inUse("a"), 2u);  // moved, not released
  moved.reset();
  EXPECT_EQ(slots.inUse("a"), 1u);
  held.clear();
  EXPECT_TRUE(slots.snapshot().empty());
}

TEST(FlowSlotsTest, ConcurrentAcquirersNeverExceedTheLimit) {
  FlowSlots slots;
  std::atomic<int> got{0};
  std::vector<std::thread> threads;
  std::vector<std::vector<FlowSlots::Slot>> kept(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        if (auto s = slots.tryAcquire("x", 50)) {
          ++got;
          kept[t].push_back(std::move(s));
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(got.load(), 50);
  EXPECT_EQ(slots.inUse("x"), 50u);
}

TEST(TokenBucketsTest, BurstThenSteadyRatePerKey) {
  TokenBuckets b;
  auto t0 = TokenBuckets::Clock::time_point() + 1h;
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(b.take("a", 6, t0)) << i;
  }
  EXPECT_FALSE(b.take("a", 6, t0));
  EXPECT_TRUE(b.take("b", 6, t0));        // buckets are per key
  EXPECT_FALSE(b.take("a", 6, t0 + 9s));  // 6 a minute: one per 10 s
  EXPECT_TRUE(b.take("a", 6, t0 + 10s));
  EXPECT_FALSE(b.take("a", 6, t0 + 10s));
  EXPECT_FALSE(b.take("a", 6, t0 + 5s));  // time going backwards adds nothing
  // A long pause refills to the burst, not beyond.
  int n = 0;
  while (b.take("a", 6, t0 + 1h)) {
    ++n;
  }
  EXPECT_EQ(n, 6);
  EXPECT_FALSE(b.take("c", 0, t0));  // a budget of 0 never admits
}

}  // namespace
}  // namespace tollgate::gateway

namespace tollgate::gateway {
namespace {

TEST(TokenBucketsTest, ConcurrentTakersShareOneBudget) {
  TokenBuckets b;
  auto t0 = TokenBuckets::Clock::time_point() + 1h;
  std::atomic<int> got{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (b.take("sb", 50, t0)) {
          ++got;
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(got.load(), 50);
}

}  // namespace
}  // namespace tollgate::gateway
