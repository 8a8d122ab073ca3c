#include "base/hostname.h"

#include <arpa/inet.h>

namespace tollgate {
namespace {

constexpr size_t kMaxNameLen = 253;
constexpr size_t kMaxLabelLen = 63;
constexpr size_t kMaxPortDigits = 5;

bool isLdh(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool isHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::optional<std::string> canonicalIp(std::string_view s) {
  if (s.empty() || s.size() > 64) {
    return std::nullopt;
  }
  // inet_pton reads a C string: a NUL (or anything after one) must not get
  // that far, or "::1\0junk" would pass as "::1".
  for (char c : s) {
    if (!isHexDigit(c) && c != ':' && c != '.') {
      return std::nullopt;
    }
  }
  std::string str(s);
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, str.c_str(), buf) == 1) {
    inet_ntop(AF_INET, buf, out, sizeof(out));
    return std::string(out);
  }
  if (inet_pton(AF_INET6, str.c_str(), buf) == 1) {
    inet_ntop(AF_INET6, buf, out, sizeof(out));
    return std::string(out);
  }
  return std::nullopt;
}

}  // namespace

std::optional<HostName> normalizeHostName(std::string_view raw) {
  if (raw.size() >= 2 && raw.front() == '[' && raw.back() == ']') {
    auto ip = canonicalIp(raw.substr(1, raw.size() - 2));
    if (!ip || ip->find(':') == std::string::npos) {
      return std::nullopt;  // brackets are for IPv6 only
    }
    return HostName{*ip, true};
  }
  if (raw.find(':') != std::string_view::npos) {
    auto ip = canonicalIp(raw);
    if (!ip) {
      return std::nullopt;
    }
    return HostName{*ip, true};
  }
  if (!raw.empty() && raw.back() == '.') {
    raw.remove_suffix(1);
  }
  if (raw.empty() || raw.size() > kMaxNameLen) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(raw.size());
  size_t label_len = 0;
  size_t label_start = 0;
  bool label_all_digits = true;
  bool label_c_hex = false;  // "0x" or "0X" then hex digits only
  for (size_t i = 0; i <= raw.size(); ++i) {
    if (i == raw.size() || raw[i] == '.') {
      if (label_len == 0 || label_len > kMaxLabelLen) {
        return std::nullopt;
      }
      if (raw[label_start] == '-' || raw[i - 1] == '-') {
        return std::nullopt;  // RFC 952/1123: no leading or trailing hyphen
      }
      if (i < raw.size()) {
        out.push_back('.');
        label_len = 0;
        label_start = i + 1;
        label_all_digits = true;
        label_c_hex = false;
      }
      continue;
    }
    char c = raw[i];
    if (!isLdh(c)) {
      return std::nullopt;
    }
    if (c < '0' || c > '9') {
      label_all_digits = false;
    }
    if (label_len == 1) {
      label_c_hex = raw[label_start] == '0' && (c == 'x' || c == 'X');
    } else if (label_len > 1 && !isHexDigit(c)) {
      label_c_hex = false;
    }
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    ++label_len;
  }
  if (label_c_hex) {
    // inet_aton() (and so getaddrinfo) reads "0x7f000001" or "1.0x2" as an
    // IPv4 address: a name whose top label is a C hex number is no name.
    return std::nullopt;
  }
  if (label_all_digits) {
    // A numeric top label is never a host name: either an IPv4 literal or junk
    // (e.g. "1.2.3" or "010.1.1.1", which resolvers may read differently).
    auto ip = canonicalIp(raw);
    if (!ip || *ip != out) {
      return std::nullopt;
    }
    return HostName{*ip, true};
  }
  return HostName{std::move(out), false};
}

std::optional<HostPort> parseHostPort(std::string_view authority) {
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    // IP-literal = "[" IPv6address "]"; normalizeHostName takes the brackets.
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else {
    // A reg-name or IPv4address holds no ':', so the first one starts the port.
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
  }
  auto name = normalizeHostName(host);
  if (!name) {
    return std::nullopt;
  }
  HostPort out{std::move(*name), std::nullopt};
  if (port.empty()) {
    return out;  // RFC 3986 §3.2.3: an empty port means the scheme's default
  }
  if (port.size() > kMaxPortDigits) {
    return std::nullopt;
  }
  uint32_t value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535) {
    return std::nullopt;
  }
  out.port = static_cast<uint16_t>(value);
  return out;
}

}  // namespace tollgate
