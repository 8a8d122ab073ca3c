// Host names from untrusted sources (SNI, Host header) and from config are
// brought to one canonical form before policy ever compares them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tollgate {

struct HostName {
  std::string name;  // lower case, no trailing dot; IPv6 literals without brackets
  bool is_ip = false;

  bool operator==(const HostName&) const = default;
};

// Validates and normalises an ASCII host name: LDH labels (IDNA A-labels are
// LDH), 1-63 bytes per label, 1-253 bytes total, one trailing dot dropped,
// lower-cased. IPv4 dotted-quad and IPv6 literals (bracketed or not) are
// returned with is_ip set, in canonical text form. Anything else (NUL, spaces,
// underscores, non-ASCII, empty labels, a label starting or ending with '-',
// a numeric last label that is not a canonical dotted-quad IPv4 address, a
// last label that is a C hex number like "0x7f") yields nullopt.
std::optional<HostName> normalizeHostName(std::string_view raw);

struct HostPort {
  HostName host;
  std::optional<uint16_t> port;  // nullopt when absent or empty ("host:")

  bool operator==(const HostPort&) const = default;
};

// RFC 9110 §7.2 / RFC 3986 §3.2.2-3.2.3: uri-host [ ":" port ], with an IPv6
// literal in brackets. The host is normalised by normalizeHostName; a port
// must be 1..65535 (at most 5 digits). nullopt on anything else.
std::optional<HostPort> parseHostPort(std::string_view authority);

}  // namespace tollgate
