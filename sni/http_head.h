// HTTP/1.x request head parser. Internal to sni/: the gateway uses sni.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/result.h"
#include "sni/hostname.h"
#include "sni/sni.h"

namespace tollgate::sni {

struct HostPort {
  HostName host;
  std::optional<uint16_t> port;  // nullopt when absent or empty ("host:")

  bool operator==(const HostPort&) const = default;
};

// RFC 9110 §7.2 / RFC 3986 §3.2.2-3.2.3: uri-host [ ":" port ], with an IPv6
// literal in brackets. The host is normalised by normalizeHostName; a port
// must be 1..65535 (at most 5 digits). nullopt on anything else.
std::optional<HostPort> parseHostPort(std::string_view authority);

// Parses a complete request head (RFC 9112 §2.1): request line, header
// lines, each ending in CRLF, then the empty line. `head` must be exactly
// that, final CRLF included. On failure the error message is a snake_case
// reason ("http_no_host", "http_host_mismatch", ...) and out is unspecified.
Result<void> parseRequestHead(std::string_view head, HttpInfo& out);

}  // namespace tollgate::sni
