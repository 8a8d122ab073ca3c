// Protocol-appropriate refusals (DESIGN.md "Deny behaviour"). Pure: bytes out.
#pragma once

#include <string>
#include <string_view>

namespace tollgate::gateway {

// A TLS record holding one fatal alert. TLS 1.0-1.3 clients all accept a
// plaintext alert before the handshake completes (RFC 8446 §6).
std::string tlsAlertRecord(uint8_t description);
inline constexpr uint8_t kAlertAccessDenied = 49;
inline constexpr uint8_t kAlertInternalError = 80;

struct DenyInfo {
  std::string sandbox;
  std::string host;
  std::string rule;
  std::string reason;
};

// A complete HTTP/1.1 response with a JSON body naming sandbox, host, rule
// and reason; always "Connection: close".
std::string httpErrorResponse(int status, std::string_view status_text, const DenyInfo& info);

}  // namespace tollgate::gateway
