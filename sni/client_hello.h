// tollgate: internal to sni/
// TLS ClientHello body parser. Internal to sni/: the gateway uses sni.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.h"
#include "sni/sni.h"

namespace tollgate::sni {

// RFC 8446 §5.1: TLSPlaintext header is type(1) version(2) length(2), and a
// fragment is at most 2^14 bytes.
constexpr size_t kRecordHeaderLen = 5;
constexpr size_t kMaxRecordLen = size_t{1} << 14;
constexpr uint8_t kContentTypeHandshake = 22;
// RFC 8446 §4: Handshake header is msg_type(1) length(3).
constexpr size_t kHandshakeHeaderLen = 4;
constexpr uint8_t kHandshakeClientHello = 1;

// Parses a ClientHello body (the handshake message without its 4-byte
// header) into out. On failure the error message is a snake_case reason
// ("tls_duplicate_extension", "sni_invalid", ...) and out is unspecified.
Result<void> parseClientHello(std::span<const uint8_t> body, TlsInfo& out);

// RFC 8701: GREASE values are 0x?A?A with both bytes equal.
constexpr bool isGrease(uint16_t v) { return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff); }

}  // namespace tollgate::sni
