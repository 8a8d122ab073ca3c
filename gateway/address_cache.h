// Addresses tollgate's DNS service handed to sandboxes, kept for their TTL so
// that a flow to that name connects where the sandbox was told the name is
// (one answer, not two lookups that round-robin DNS could make disagree),
// without a second lookup. Thread-safe: the DNS service of every worker
// writes, every flow reads. Bounded; entries expire.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/sockaddr.h"

namespace tollgate::gateway {

class AddressCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  explicit AddressCache(size_t max_entries = 10000, Clock clock = {});

  // Records the A (v6 false) or AAAA answer for `name` (canonical form) for
  // `ttl_s` seconds (at least 1). An empty answer removes the entry.
  void put(const std::string& name, bool v6, std::vector<SockAddr> addrs, uint32_t ttl_s);
  // The fresh addresses for `name`, IPv4 first, ports set to `port`;
  // nullopt when nothing fresh is cached.
  std::optional<std::vector<SockAddr>> get(const std::string& name, uint16_t port) const;
  size_t size() const;

 private:
  struct Entry {
    std::vector<SockAddr> addrs;
    std::chrono::steady_clock::time_point expires;
  };
  std::chrono::steady_clock::time_point now() const;
  void evictExpiredLocked();

  size_t max_entries_;
  Clock clock_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, bool>, Entry> entries_;
};

}  // namespace tollgate::gateway
