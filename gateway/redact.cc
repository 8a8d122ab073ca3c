#include "gateway/redact.h"

#include <optional>

namespace tollgate::gateway {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = lower(c);
  return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// The length of the placeholder occurrence starting at text[at], if any.
std::optional<size_t> matchAt(std::string_view text, size_t at, std::string_view placeholder) {
  size_t i = at;
  for (char want : placeholder) {
    want = lower(want);
    if (i >= text.size()) {
      return std::nullopt;
    }
    if (lower(text[i]) == want) {
      i += 1;
      continue;
    }
    if (text[i] == '%' && i + 2 < text.size()) {
      int hi = hexValue(text[i + 1]);
      int lo = hexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0 && lower(static_cast<char>(hi * 16 + lo)) == want) {
        i += 3;
        continue;
      }
    }
    if (text[i] == '\\' && i + 3 < text.size() && isDigit(text[i + 1]) && isDigit(text[i + 2]) &&
        isDigit(text[i + 3])) {
      int v = (text[i + 1] - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
      if (v <= 255 && lower(static_cast<char>(v)) == want) {
        i += 4;
        continue;
      }
    }
    return std::nullopt;
  }
  return i - at;
}

}  // namespace

std::string redactPlaceholders(std::string_view text, std::span<const NamedPlaceholder> list) {
  if (list.empty()) {
    return std::string(text);  // no credentials configured: nothing to look for
  }
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    bool found = false;
    for (const NamedPlaceholder& p : list) {
      if (p.placeholder.empty()) {
        continue;
      }
      if (auto n = matchAt(text, i, p.placeholder)) {
        out += "<placeholder:" + p.name + ">";
        i += *n;
        found = true;
        break;
      }
    }
    if (!found) {
      out.push_back(text[i]);
      ++i;
    }
  }
  return out;
}

}  // namespace tollgate::gateway
