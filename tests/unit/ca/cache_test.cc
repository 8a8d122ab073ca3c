// LeafMinter's cache: hits, single mint under concurrency, LRU cap, refresh.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <latch>
#include <set>
#include <thread>
#include <vector>

#include "ca/ca.h"
#include "ca_test_util.h"

namespace tollgate::ca {
namespace {

using test::TempDir;

class CacheTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(initCa(dir_.path(), {}));
    auto ca = Authority::loadDir(dir_.path());
    ASSERT_TRUE(ca) << ca.message();
    ca_ = *ca;
  }

  std::unique_ptr<LeafMinter> minter(LeafOptions o = {}) {
    auto m = LeafMinter::create(ca_, std::move(o));
    EXPECT_TRUE(m) << m.message();
    return m ? std::move(*m) : nullptr;
  }

  static std::shared_ptr<const Leaf> get(LeafMinter& m, const std::string& name) {
    auto l = m.leafFor(name);
    EXPECT_TRUE(l) << l.message();
    return l ? *l : nullptr;
  }

  TempDir dir_;
  std::shared_ptr<const Authority> ca_;
};

TEST_F(CacheTest, SecondRequestIsAHitWithTheSameLeaf) {
  auto m = minter();
  auto first = get(*m, "api.example.test");
  auto second = get(*m, "api.example.test");
  ASSERT_TRUE(first);
  EXPECT_EQ(first.get(), second.get());
  LeafStats s = m->stats();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.mints, 1u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.coalesced, 0u);
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_EQ(s.entries, 1u);
  auto other = get(*m, "other.example.test");
  EXPECT_NE(other.get(), first.get());
  EXPECT_EQ(m->stats().mints, 2u);
}

TEST_F(CacheTest, ConcurrentFirstRequestsMintOnce) {
  constexpr int kThreads = 16;
  for (int round = 0; round < 5; ++round) {
    auto m = minter();
    const std::string name = "burst" + std::to_string(round) + ".example.test";
    std::latch start(kThreads);
    std::vector<const Leaf*> got(kThreads, nullptr);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        auto l = m->leafFor(name);
        if (l) {
          got[i] = l->get();
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    LeafStats s = m->stats();
    EXPECT_EQ(s.mints, 1u);
    EXPECT_EQ(s.misses, 1u);
    EXPECT_EQ(s.hits, static_cast<uint64_t>(kThreads - 1));
    EXPECT_EQ(s.mint_failures, 0u);
    EXPECT_EQ(std::set<const Leaf*>(got.begin(), got.end()).size(), 1u);
    EXPECT_NE(got[0], nullptr);
  }
}

// A clock that parks the thread that mints (its second clock read is the one
// inside the mint, after the in-flight entry is registered) until released,
// so tests can act while a mint is in flight.
struct ParkingClock {
  std::atomic<time_t> now{::time(nullptr)};
  std::atomic<bool> armed{false};
  std::latch parked{1};
  std::latch release{1};

  std::function<time_t()> fn() {
    return [this] {
      thread_local int reads = 0;
      thread_local const ParkingClock* owner = nullptr;
      if (owner != this) {
        owner = this;
        reads = 0;
      }
      if (armed.load() && ++reads == 2) {
        armed = false;
        parked.count_down();
        release.wait();
      }
      return now.load();
    };
  }
};

TEST_F(CacheTest, RequestsDuringAFirstMintWaitForIt) {
  ParkingClock clock;
  LeafOptions o;
  o.clock = clock.fn();
  auto m = minter(o);
  clock.armed = true;
  const Leaf* minted = nullptr;
  std::thread minter_thread([&] { minted = get(*m, "slow.example.test").get(); });
  clock.parked.wait();
  constexpr int kWaiters = 8;
  std::vector<const Leaf*> got(kWaiters, nullptr);
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&, i] { got[i] = get(*m, "slow.example.test").get(); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (const Leaf* g : got) {
    EXPECT_EQ(g, nullptr) << "served before the mint finished";
  }
  clock.release.count_down();
  minter_thread.join();
  for (auto& t : waiters) {
    t.join();
  }
  ASSERT_NE(minted, nullptr);
  for (const Leaf* g : got) {
    EXPECT_EQ(g, minted);
  }
  LeafStats s = m->stats();
  EXPECT_EQ(s.mints, 1u);
  EXPECT_EQ(s.coalesced, static_cast<uint64_t>(kWaiters));
  EXPECT_EQ(s.hits, static_cast<uint64_t>(kWaiters));
}

TEST_F(CacheTest, RequestsDuringARemintGetTheStillValidLeaf) {
  ParkingClock clock;
  const time_t t0 = clock.now.load();
  LeafOptions o;
  o.ttl = std::chrono::seconds(400);
  o.clock = clock.fn();
  auto m = minter(o);
  auto old_leaf = get(*m, "busy.example.test");
  ASSERT_TRUE(old_leaf);
  clock.now = t0 + 350;  // past refreshAt (t0 + 300), before notAfter (t0 + 400)
  clock.armed = true;
  std::shared_ptr<const Leaf> fresh;
  std::thread reminter([&] { fresh = get(*m, "busy.example.test"); });
  clock.parked.wait();
  // Not blocked behind the re-mint: the old leaf is still valid.
  EXPECT_EQ(get(*m, "busy.example.test").get(), old_leaf.get());
  EXPECT_EQ(get(*m, "busy.example.test").get(), old_leaf.get());
  clock.release.count_down();
  reminter.join();
  ASSERT_TRUE(fresh);
  EXPECT_NE(fresh.get(), old_leaf.get());
  EXPECT_EQ(get(*m, "busy.example.test").get(), fresh.get());
  EXPECT_EQ(m->stats().mints, 2u);
}

TEST_F(CacheTest, ConcurrentDifferentNamesEachMintOnce) {
  constexpr int kThreads = 16;
  constexpr int kNames = 8;
  auto m = minter();
  std::latch start(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      for (int n = 0; n < kNames; ++n) {
        auto l = m->leafFor("n" + std::to_string((n + i) % kNames) + ".example.test");
        if (!l) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  LeafStats s = m->stats();
  EXPECT_EQ(s.mints, static_cast<uint64_t>(kNames));
  EXPECT_EQ(s.hits + s.misses, static_cast<uint64_t>(kThreads * kNames));
  EXPECT_EQ(s.entries, static_cast<size_t>(kNames));
}

TEST_F(CacheTest, LeastRecentlyUsedIsEvictedAtTheCap) {
  LeafOptions o;
  o.max_entries = 3;
  auto m = minter(o);
  auto a = get(*m, "a.example.test");
  auto b = get(*m, "b.example.test");
  auto c = get(*m, "c.example.test");
  EXPECT_EQ(get(*m, "a.example.test").get(), a.get());  // a is now most recent; b least
  auto d = get(*m, "d.example.test");
  LeafStats s = m->stats();
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.entries, 3u);
  EXPECT_EQ(get(*m, "a.example.test").get(), a.get());
  EXPECT_EQ(get(*m, "c.example.test").get(), c.get());
  EXPECT_EQ(get(*m, "d.example.test").get(), d.get());
  EXPECT_EQ(m->stats().mints, 4u);
  // b was evicted: asking again mints a new leaf (and evicts the then-LRU a).
  auto b2 = get(*m, "b.example.test");
  EXPECT_NE(b2.get(), b.get());
  s = m->stats();
  EXPECT_EQ(s.mints, 5u);
  EXPECT_EQ(s.evictions, 2u);
  EXPECT_EQ(s.entries, 3u);
  // An evicted leaf someone still holds stays valid.
  EXPECT_EQ(test::verifyLeaf(b->cert(), {ca_->cert()}, {"b.example.test", ""}), X509_V_OK);
}

TEST_F(CacheTest, RemintsWhenAQuarterOfTheLifetimeRemains) {
  std::atomic<time_t> clock{::time(nullptr)};
  const time_t t0 = clock.load();
  LeafOptions o;
  o.ttl = std::chrono::seconds(400);
  o.clock = [&clock] { return clock.load(); };
  auto m = minter(o);
  auto first = get(*m, "ttl.example.test");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->notAfter(), t0 + 400);
  EXPECT_EQ(first->notBefore(), t0 - 3600);
  EXPECT_EQ(first->refreshAt(), t0 + 300);

  clock = t0 + 299;
  EXPECT_EQ(get(*m, "ttl.example.test").get(), first.get());
  clock = t0 + 300;
  auto second = get(*m, "ttl.example.test");
  ASSERT_TRUE(second);
  EXPECT_NE(second.get(), first.get());
  EXPECT_EQ(second->notAfter(), t0 + 700);
  EXPECT_NE(test::serialHex(second->cert()), test::serialHex(first->cert()));
  LeafStats s = m->stats();
  EXPECT_EQ(s.mints, 2u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(get(*m, "ttl.example.test").get(), second.get());
  // Long after expiry: a fresh leaf, never an expired one.
  clock = t0 + 10000;
  auto third = get(*m, "ttl.example.test");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->notAfter(), t0 + 10400);
}

TEST_F(CacheTest, ExpiredCaFailsAndIsNotCached) {
  std::atomic<time_t> clock{::time(nullptr)};
  LeafOptions o;
  o.clock = [&clock] { return clock.load(); };
  auto m = minter(o);
  clock = ca_->notAfter() + 1;
  auto l = m->leafFor("late.example.test");
  ASSERT_FALSE(l);
  EXPECT_NE(l.message().find("expired"), std::string::npos) << l.message();
  LeafStats s = m->stats();
  EXPECT_EQ(s.mint_failures, 1u);
  EXPECT_EQ(s.entries, 0u);
  // Back in time (as after `ca rotate` + restart would be): it works again.
  clock = ::time(nullptr);
  EXPECT_TRUE(m->leafFor("late.example.test"));
}

}  // namespace
}  // namespace tollgate::ca
