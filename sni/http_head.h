// tollgate: internal to sni/
// HTTP/1.x request head parser. Internal to sni/: the gateway uses sni.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/hostname.h"
#include "base/result.h"
#include "sni/sni.h"

namespace tollgate::sni {

// Parses a complete request head (RFC 9112 §2.1): request line, header
// lines, each ending in CRLF, then the empty line. `head` must be exactly
// that, final CRLF included. On failure the error message is a snake_case
// reason ("http_no_host", "http_host_mismatch", ...) and out is unspecified.
Result<void> parseRequestHead(std::string_view head, HttpInfo& out);

}  // namespace tollgate::sni
