// Per-sandbox resource limits shared by every worker thread: concurrent
// flows (all, and MITM ones) and a token bucket for leaves minted to answer
// denials (deny_style: http-403). Keyed by sandbox name, so counts survive
// reloads (a reload swaps the Config, not these). Thread-safe: one short
// mutex per operation, taken once at a flow's start and once at its end.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace tollgate::gateway {

// Concurrent holders per key, each key with its own limit.
class FlowSlots {
 public:
  // Held while a flow lives; releases on destruction. Empty when default-
  // constructed or when acquisition failed.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& o) noexcept : owner_(o.owner_), key_(std::move(o.key_)) { o.owner_ = nullptr; }
    Slot& operator=(Slot&& o) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { reset(); }
    explicit operator bool() const { return owner_ != nullptr; }
    void reset();

   private:
    friend class FlowSlots;
    Slot(FlowSlots* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    FlowSlots* owner_ = nullptr;
    std::string key_;
  };

  // A slot for `key` if fewer than `limit` are held, else an empty Slot.
  Slot tryAcquire(const std::string& key, uint32_t limit);
  uint32_t inUse(const std::string& key) const;
  std::map<std::string, uint32_t> snapshot() const;

 private:
  void release(const std::string& key);

  mutable std::mutex mu_;
  std::map<std::string, uint32_t> held_;  // keys at zero are erased
};

// One token bucket per key: `per_minute` tokens refill evenly over a minute,
// up to `per_minute` held (so a burst of that many, then a steady rate).
class TokenBuckets {
 public:
  using Clock = std::chrono::steady_clock;
  // Takes one token for `key` if it has one. per_minute == 0: never.
  bool take(const std::string& key, uint32_t per_minute, Clock::time_point now = Clock::now());

 private:
  // Tokens as time credit (exact integer arithmetic): a token costs a
  // minute / per_minute, and the credit is capped at a minute.
  struct Bucket {
    Clock::duration credit{};
    Clock::time_point last;
  };
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

struct SandboxLimits {
  FlowSlots flows;       // every flow from accept to its end
  FlowSlots mitm_flows;  // MITM sessions, from the decision to their end
  TokenBuckets deny_leaves;
};

}  // namespace tollgate::gateway
