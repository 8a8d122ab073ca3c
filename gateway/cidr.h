// Cidr: an IPv4 or IPv6 prefix ("10.0.0.0/8", "2001:db8::/32") as used by
// sandbox sources, rule cidrs and deny_cidrs. Pure value type, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/sockaddr.h"

namespace tollgate::gateway {

class Cidr {
 public:
  enum class Family : uint8_t { V4, V6 };

  // Strict parse of "ADDR/LEN" or a bare address (= /32 or /128). Rejects
  // anything else, including host bits set below the prefix ("10.0.0.1/8"),
  // prefixes out of range, leading zeros in the length, brackets, zone ids,
  // surrounding spaces. Returns nullopt on any error; parseDetailed() says why.
  static std::optional<Cidr> parse(std::string_view text);
  // Same grammar as parse(); the error message is meant for config
  // diagnostics, e.g. "host bits set; did you mean 10.0.0.0/8".
  static Result<Cidr> parseDetailed(std::string_view text);
  // The /32 or /128 holding exactly this address (port ignored). The address
  // must be IPv4 or IPv6; anything else yields nullopt.
  static std::optional<Cidr> fromAddress(const SockAddr& addr);
  // Builds a prefix from raw network-order bytes (4 or 16 of them as given
  // by family); host bits below prefix_len are cleared.
  static Cidr fromBytes(Family family, const uint8_t* bytes, unsigned prefix_len);

  Family family() const { return family_; }
  bool isV4() const { return family_ == Family::V4; }
  unsigned prefixLen() const { return prefix_len_; }
  // Network address, 4 or 16 significant bytes (the rest zero).
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  size_t addrLen() const { return isV4() ? 4 : 16; }

  // True when addr (IPv4 or IPv6; the port is ignored) is inside the prefix.
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket
  // reports for an IPv4 peer) is the IPv4 address, and a prefix inside
  // ::ffff:0:0/96 is the IPv4 prefix: 10.0.0.0/8 contains ::ffff:10.1.2.3 and
  // ::ffff:10.0.0.0/104 contains 10.1.2.3. Every other IPv6 prefix holds
  // IPv6 addresses only: ::/0 means "all of IPv6", not IPv4 too.
  bool contains(const SockAddr& addr) const;
  // Same, over 4 or 16 raw network-order address bytes.
  bool containsBytes(const uint8_t* addr, size_t addr_len) const;
  // True when the two prefixes share at least one address (for aligned
  // prefixes: one contains the other), with contains()'s view of families.
  bool overlaps(const Cidr& other) const;
  // The IPv4 form of a prefix inside ::ffff:0:0/96; any other prefix as is.
  Cidr normalized() const;

  // Canonical text: "10.0.0.0/8", "2001:db8::/32".
  std::string toString() const;

  bool operator==(const Cidr& o) const = default;

 private:
  Family family_ = Family::V4;
  uint8_t prefix_len_ = 0;
  std::array<uint8_t, 16> bytes_{};
};

}  // namespace tollgate::gateway
