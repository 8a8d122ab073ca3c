#include "gateway/address_cache.h"

namespace tollgate::gateway {

AddressCache::AddressCache(size_t max_entries, Clock clock)
    : max_entries_(max_entries == 0 ? 1 : max_entries), clock_(std::move(clock)) {}

std::chrono::steady_clock::time_point AddressCache::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

void AddressCache::evictExpiredLocked() {
  auto t = now();
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = it->second.expires <= t ? entries_.erase(it) : std::next(it);
  }
}

void AddressCache::put(const std::string& name, bool v6, std::vector<SockAddr> addrs,
                       uint32_t ttl_s) {
  std::lock_guard lock(mu_);
  auto key = std::make_pair(name, v6);
  if (addrs.empty()) {
    entries_.erase(key);
    return;
  }
  if (entries_.size() >= max_entries_ && entries_.find(key) == entries_.end()) {
    evictExpiredLocked();
    if (entries_.size() >= max_entries_) {
      // Full of live entries: the one closest to expiry goes.
      auto victim = entries_.begin();
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->second.expires < victim->second.expires) {
          victim = it;
        }
      }
      entries_.erase(victim);
    }
  }
  entries_[key] = Entry{std::move(addrs), now() + std::chrono::seconds(std::max<uint32_t>(ttl_s, 1))};
}

std::optional<std::vector<SockAddr>> AddressCache::get(const std::string& name,
                                                       uint16_t port) const {
  std::lock_guard lock(mu_);
  auto t = now();
  std::vector<SockAddr> out;
  for (bool v6 : {false, true}) {
    auto it = entries_.find(std::make_pair(name, v6));
    if (it == entries_.end() || it->second.expires <= t) {
      continue;
    }
    for (SockAddr a : it->second.addrs) {
      a.setPort(port);
      out.push_back(a);
    }
  }
  if (out.empty()) {
    return std::nullopt;
  }
  return out;
}

size_t AddressCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace tollgate::gateway
