#include "gateway/cidr.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace tollgate::gateway {
namespace {

constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
constexpr unsigned kMappedPrefixBits = 96;

// Compares the first `bits` bits of two 16-byte addresses.
bool prefixEqual(const uint8_t* a, const uint8_t* b, unsigned bits) {
  unsigned full = bits / 8;
  if (std::memcmp(a, b, full) != 0) {
    return false;
  }
  unsigned rest = bits % 8;
  if (rest == 0) {
    return true;
  }
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

// IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address a.b.c.d. Returns the
// family and the 4 or 16 significant bytes.
std::pair<Cidr::Family, const uint8_t*> unmap(const uint8_t* addr, size_t addr_len) {
  if (addr_len == 16 && std::memcmp(addr, kMappedPrefix.data(), kMappedPrefix.size()) == 0) {
    return {Cidr::Family::V4, addr + kMappedPrefix.size()};
  }
  return {addr_len == 4 ? Cidr::Family::V4 : Cidr::Family::V6, addr};
}

// inet_pton reads a C string: anything past a NUL would be ignored, so only
// the characters an address can hold get that far.
bool isAddressChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
         c == '.';
}

std::optional<unsigned> parsePrefixLen(std::string_view s) {
  if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) {
    return std::nullopt;
  }
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v;
}

}  // namespace

Result<Cidr> Cidr::parseDetailed(std::string_view text) {
  if (text.empty()) {
    return makeError("empty CIDR");
  }
  std::string_view addr_text = text;
  std::optional<std::string_view> len_text;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr_text = text.substr(0, slash);
    len_text = text.substr(slash + 1);
  }
  if (addr_text.empty() || addr_text.size() >= INET6_ADDRSTRLEN ||
      !std::all_of(addr_text.begin(), addr_text.end(), isAddressChar)) {
    return makeError("'" + std::string(text) +
                     "' is not a CIDR (expected e.g. 10.0.0.0/8 or 2001:db8::/32)");
  }
  std::string addr_str(addr_text);
  uint8_t buf[16] = {};
  Family family;
  if (inet_pton(AF_INET, addr_str.c_str(), buf) == 1) {
    family = Family::V4;
  } else if (inet_pton(AF_INET6, addr_str.c_str(), buf) == 1) {
    family = Family::V6;
  } else {
    return makeError("'" + std::string(text) +
                     "' is not a CIDR (expected e.g. 10.0.0.0/8 or 2001:db8::/32)");
  }
  unsigned max_len = family == Family::V4 ? 32 : 128;
  unsigned len = max_len;
  if (len_text) {
    auto parsed = parsePrefixLen(*len_text);
    if (!parsed) {
      return makeError("'" + std::string(text) + "': prefix length must be a number 0-" +
                       std::to_string(max_len));
    }
    if (*parsed > max_len) {
      return makeError("'" + std::string(text) + "': prefix length " + std::to_string(*parsed) +
                       " is larger than " + std::to_string(max_len));
    }
    len = *parsed;
  }
  Cidr out = fromBytes(family, buf, len);
  if (std::memcmp(out.bytes_.data(), buf, out.addrLen()) != 0) {
    return makeError("'" + std::string(text) + "': host bits set; did you mean " + out.toString());
  }
  return out;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  auto r = parseDetailed(text);
  if (!r) {
    return std::nullopt;
  }
  return *r;
}

std::optional<Cidr> Cidr::fromAddress(const SockAddr& addr) {
  if (addr.isV4()) {
    return fromBytes(Family::V4, addr.addrBytes(), 32);
  }
  if (addr.isV6()) {
    return fromBytes(Family::V6, addr.addrBytes(), 128);
  }
  return std::nullopt;
}

Cidr Cidr::fromBytes(Family family, const uint8_t* bytes, unsigned prefix_len) {
  Cidr out;
  out.family_ = family;
  size_t n = family == Family::V4 ? 4 : 16;
  prefix_len = std::min<unsigned>(prefix_len, static_cast<unsigned>(n * 8));
  out.prefix_len_ = static_cast<uint8_t>(prefix_len);
  std::memcpy(out.bytes_.data(), bytes, n);
  for (size_t i = 0; i < n; ++i) {
    unsigned bit_start = static_cast<unsigned>(i * 8);
    if (bit_start >= prefix_len) {
      out.bytes_[i] = 0;
    } else if (bit_start + 8 > prefix_len) {
      out.bytes_[i] &= static_cast<uint8_t>(0xff << (8 - (prefix_len - bit_start)));
    }
  }
  return out;
}

bool Cidr::containsBytes(const uint8_t* addr, size_t addr_len) const {
  if (addr_len != 4 && addr_len != 16) {
    return false;
  }
  Cidr net = normalized();
  auto [family, bytes] = unmap(addr, addr_len);
  return family == net.family_ && prefixEqual(net.bytes_.data(), bytes, net.prefix_len_);
}

bool Cidr::contains(const SockAddr& addr) const {
  if (!addr.isV4() && !addr.isV6()) {
    return false;
  }
  return containsBytes(addr.addrBytes(), addr.addrLen());
}

bool Cidr::overlaps(const Cidr& other) const {
  Cidr a = normalized();
  Cidr b = other.normalized();
  return a.family_ == b.family_ &&
         prefixEqual(a.bytes_.data(), b.bytes_.data(), std::min(a.prefix_len_, b.prefix_len_));
}

Cidr Cidr::normalized() const {
  if (family_ == Family::V6 && prefix_len_ >= kMappedPrefixBits &&
      std::memcmp(bytes_.data(), kMappedPrefix.data(), kMappedPrefix.size()) == 0) {
    return fromBytes(Family::V4, bytes_.data() + kMappedPrefix.size(),
                     prefix_len_ - kMappedPrefixBits);
  }
  return *this;
}

std::string Cidr::toString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(isV4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof(buf));
  return std::string(buf) + "/" + std::to_string(prefix_len_);
}

}  // namespace tollgate::gateway
