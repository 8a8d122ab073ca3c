// Host patterns of `hosts:` lists and config host names: DESIGN.md "Host
// matching". Config text may be Unicode (turned into IDNA A-labels here);
// names compared against patterns come from normalizeHostName.
#pragma once

#include <string>
#include <string_view>

#include "base/hostname.h"
#include "base/result.h"

namespace tollgate::gateway {

// Brings a host name written in config to the canonical form policy compares:
// Unicode is converted to IDNA A-labels (UTS #46 non-transitional), then
// normalizeHostName applies (lower case, no trailing dot, LDH labels).
// IP literals come back with is_ip set; the caller decides whether they are
// welcome. Errors say what is wrong with the name.
Result<HostName> normalizeConfigHostName(std::string_view text);

struct HostPattern {
  // Canonical name without the wildcard: for "*.Example.COM." this is
  // "example.com" and wildcard is true.
  std::string name;
  // true: matches any name strictly below `name`, at any depth, never `name`.
  bool wildcard = false;

  // Parses one `hosts:` entry: "example.com" or "*.example.com" (wildcard only
  // as the whole leftmost label). Rejects "*" alone, other wildcards, IP
  // literals ("use cidrs:") and names normalizeConfigHostName refuses.
  static Result<HostPattern> parse(std::string_view text);

  // `normalized_host` must already be canonical (normalizeHostName).
  bool matches(std::string_view normalized_host) const;
  // IP literals never match a host pattern.
  bool matches(const HostName& host) const;
  // True when some host name matches both patterns.
  bool overlaps(const HostPattern& other) const;

  // "example.com" or "*.example.com".
  std::string toString() const;

  bool operator==(const HostPattern& o) const = default;
};

}  // namespace tollgate::gateway
