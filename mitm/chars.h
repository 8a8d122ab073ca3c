// tollgate: internal to mitm/
// Character classes and small text helpers of RFC 9110 / RFC 9112 / RFC 3986.
#pragma once

#include <cstdint>
#include <string_view>

namespace tollgate::mitm::chars {

constexpr bool isDigit(uint8_t c) { return c >= '0' && c <= '9'; }
constexpr bool isAlpha(uint8_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

// RFC 5234 HEXDIG (case-insensitive, as RFC 9112 §7.1 chunk-size is read).
constexpr int hexValue(uint8_t c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
// "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
constexpr bool isTchar(uint8_t c) {
  if (isDigit(c) || isAlpha(c)) {
    return true;
  }
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// RFC 9110 §5.6.3: OWS / BWS = *( SP / HTAB )
constexpr bool isWs(uint8_t c) { return c == ' ' || c == '\t'; }

// RFC 5234 VCHAR %x21-7E; RFC 9110 §5.5 obs-text %x80-FF.
constexpr bool isVchar(uint8_t c) { return c >= 0x21 && c <= 0x7e; }
constexpr bool isObsText(uint8_t c) { return c >= 0x80; }

// RFC 5234 CTL (%x00-1F / %x7F) other than HTAB: never valid in a start line
// or a field line (RFC 9110 §5.5).
constexpr bool isBadControl(uint8_t c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

// RFC 3986 §2.3 unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
constexpr bool isUnreserved(uint8_t c) {
  return isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

constexpr char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

constexpr std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isWs(static_cast<uint8_t>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && isWs(static_cast<uint8_t>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

// Calls fn(member) for each OWS-trimmed member of a comma-separated list
// (RFC 9110 §5.6.1), empty members included; stops early when fn returns false.
template <typename Fn>
constexpr void forEachListMember(std::string_view list, Fn&& fn) {
  while (true) {
    size_t comma = list.find(',');
    std::string_view member = trimOws(list.substr(0, comma));
    if (!fn(member)) {
      return;
    }
    if (comma == std::string_view::npos) {
      return;
    }
    list.remove_prefix(comma + 1);
  }
}

}  // namespace tollgate::mitm::chars
