#include "gateway/host_pattern.h"

#include <idn2.h>

#include <memory>

namespace tollgate::gateway {
namespace {

constexpr size_t kMaxConfigNameLen = 1024;  // before IDNA; the result is capped at 253 anyway

bool isAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      return false;
    }
  }
  return true;
}

// `name` is strictly below `base` ("a.b.example.com" below "example.com").
bool isStrictlyBelow(std::string_view name, std::string_view base) {
  return name.size() > base.size() + 1 && name.ends_with(base) &&
         name[name.size() - base.size() - 1] == '.';
}

}  // namespace

Result<HostName> normalizeConfigHostName(std::string_view text) {
  if (text.empty()) {
    return makeError("empty host name");
  }
  if (text.size() > kMaxConfigNameLen) {
    return makeError("host name is too long");
  }
  if (text.find('\0') != std::string_view::npos) {
    return makeError("host name contains a NUL byte");
  }
  std::string ascii(text);
  if (!isAscii(text)) {
    char* out = nullptr;
    int rc = idn2_to_ascii_8z(ascii.c_str(), &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    // idn2 allocates `out`; it is ours to free with idn2_free.
    std::unique_ptr<char, decltype(&idn2_free)> owned(out, &idn2_free);
    if (rc != IDN2_OK || out == nullptr) {
      return makeError("'" + std::string(text) + "' is not a valid internationalized name (" +
                       idn2_strerror(rc) + ")");
    }
    ascii = out;
  }
  auto host = normalizeHostName(ascii);
  if (!host) {
    return makeError("'" + std::string(text) +
                     "' is not a valid host name (letters, digits, '-' in labels of 1-63, "
                     "at most 253 in all)");
  }
  return std::move(*host);
}

Result<HostPattern> HostPattern::parse(std::string_view text) {
  if (text == "*" || text == "*.") {
    return makeError("'" + std::string(text) +
                     "' would match every host; use the sandbox 'default:' or a cidrs: rule");
  }
  HostPattern out;
  std::string_view base = text;
  if (text.starts_with("*.")) {
    out.wildcard = true;
    base = text.substr(2);
  }
  if (base.find('*') != std::string_view::npos) {
    return makeError("'" + std::string(text) +
                     "': a wildcard is allowed only as the whole leftmost label, e.g. "
                     "*.example.com");
  }
  auto host = normalizeConfigHostName(base);
  if (!host) {
    return host.error();
  }
  if (host->is_ip) {
    return makeError("'" + std::string(text) +
                     "' is an IP literal; host patterns match names only, use cidrs: [" +
                     host->name + (host->name.find(':') == std::string::npos ? "/32" : "/128") +
                     "]");
  }
  out.name = std::move(host->name);
  return out;
}

bool HostPattern::matches(std::string_view normalized_host) const {
  if (wildcard) {
    return isStrictlyBelow(normalized_host, name);
  }
  return normalized_host == name;
}

bool HostPattern::matches(const HostName& host) const { return !host.is_ip && matches(host.name); }

bool HostPattern::overlaps(const HostPattern& other) const {
  if (!wildcard && !other.wildcard) {
    return name == other.name;
  }
  if (wildcard && other.wildcard) {
    // Both sets are subtrees; they meet when one base is at or below the other.
    return name == other.name || isStrictlyBelow(name, other.name) ||
           isStrictlyBelow(other.name, name);
  }
  return wildcard ? matches(other.name) : other.matches(name);
}

std::string HostPattern::toString() const { return wildcard ? "*." + name : name; }

}  // namespace tollgate::gateway
