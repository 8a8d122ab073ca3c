#include "gateway/limits.h"

#include <algorithm>

namespace tollgate::gateway {

FlowSlots::Slot& FlowSlots::Slot::operator=(Slot&& o) noexcept {
  if (this != &o) {
    reset();
    owner_ = o.owner_;
    key_ = std::move(o.key_);
    o.owner_ = nullptr;
  }
  return *this;
}

void FlowSlots::Slot::reset() {
  if (owner_ != nullptr) {
    owner_->release(key_);
    owner_ = nullptr;
  }
}

FlowSlots::Slot FlowSlots::tryAcquire(const std::string& key, uint32_t limit) {
  std::lock_guard lock(mu_);
  auto it = held_.find(key);
  uint32_t n = it == held_.end() ? 0 : it->second;
  if (n >= limit) {
    return Slot();
  }
  if (it == held_.end()) {
    held_.emplace(key, 1);
  } else {
    ++it->second;
  }
  return Slot(this, key);
}

void FlowSlots::release(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = held_.find(key);
  if (it == held_.end()) {
    return;
  }
  if (--it->second == 0) {
    held_.erase(it);
  }
}

uint32_t FlowSlots::inUse(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = held_.find(key);
  return it == held_.end() ? 0 : it->second;
}

std::map<std::string, uint32_t> FlowSlots::snapshot() const {
  std::lock_guard lock(mu_);
  return held_;
}

bool TokenBuckets::take(const std::string& key, uint32_t per_minute, Clock::time_point now) {
  if (per_minute == 0) {
    return false;
  }
  std::lock_guard lock(mu_);
  constexpr Clock::duration kMinute = std::chrono::minutes(1);
  auto [it, fresh] = buckets_.try_emplace(key);
  Bucket& b = it->second;
  if (fresh) {
    b.credit = kMinute;
    b.last = now;
  } else if (now > b.last) {
    b.credit = std::min(kMinute, b.credit + (now - b.last));
    b.last = now;
  }
  const Clock::duration cost = kMinute / per_minute;
  if (b.credit < cost) {
    return false;
  }
  b.credit -= cost;
  return true;
}

}  // namespace tollgate::gateway
