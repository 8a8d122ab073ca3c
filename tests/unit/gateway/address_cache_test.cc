#include "gateway/address_cache.h"

#include <gtest/gtest.h>

namespace tollgate::gateway {
namespace {

using namespace std::chrono_literals;

SockAddr ip(const char* s) { return *SockAddr::parseIpPort(std::string(s)); }

class AddressCacheTest : public ::testing::Test {
 protected:
  std::chrono::steady_clock::time_point t_{};
  AddressCache cache_{3, [this] { return t_; }};
};

TEST_F(AddressCacheTest, AnswersBothFamiliesIpv4FirstWithThePortOfTheFlow) {
  cache_.put("api.example.test", true, {ip("[2001:db8::1]:0")}, 60);
  cache_.put("api.example.test", false, {ip("192.0.2.1:0"), ip("192.0.2.2:0")}, 60);
  auto hit = cache_.get("api.example.test", 443);
  ASSERT_TRUE(hit);
  ASSERT_EQ(hit->size(), 3u);
  EXPECT_EQ((*hit)[0].toString(), "192.0.2.1:443");
  EXPECT_EQ((*hit)[1].toString(), "192.0.2.2:443");
  EXPECT_EQ((*hit)[2].toString(), "[2001:db8::1]:443");
  EXPECT_FALSE(cache_.get("other.example.test", 443));
}

TEST_F(AddressCacheTest, EntriesExpireWithTheirTtl) {
  cache_.put("a.test", false, {ip("192.0.2.1:0")}, 10);
  t_ += 9s;
  EXPECT_TRUE(cache_.get("a.test", 80));
  t_ += 1s;
  EXPECT_FALSE(cache_.get("a.test", 80));
  // A zero TTL still lives a second (the answer was just given).
  cache_.put("b.test", false, {ip("192.0.2.2:0")}, 0);
  EXPECT_TRUE(cache_.get("b.test", 80));
}

TEST_F(AddressCacheTest, AnEmptyAnswerRemovesTheEntry) {
  cache_.put("a.test", false, {ip("192.0.2.1:0")}, 60);
  cache_.put("a.test", false, {}, 60);
  EXPECT_FALSE(cache_.get("a.test", 80));
}

TEST_F(AddressCacheTest, StaysBoundedExpiredFirstThenSoonestToExpire) {
  cache_.put("a.test", false, {ip("192.0.2.1:0")}, 5);
  cache_.put("b.test", false, {ip("192.0.2.2:0")}, 100);
  cache_.put("c.test", false, {ip("192.0.2.3:0")}, 50);
  cache_.put("d.test", false, {ip("192.0.2.4:0")}, 100);
  EXPECT_EQ(cache_.size(), 3u);
  EXPECT_FALSE(cache_.get("a.test", 80)) << "soonest to expire goes";
  t_ += 60s;  // c expires
  cache_.put("e.test", false, {ip("192.0.2.5:0")}, 100);
  EXPECT_EQ(cache_.size(), 3u);
  EXPECT_TRUE(cache_.get("b.test", 80));
  EXPECT_TRUE(cache_.get("d.test", 80));
  EXPECT_TRUE(cache_.get("e.test", 80));
}

}  // namespace
}  // namespace tollgate::gateway
