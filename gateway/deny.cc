#include "gateway/deny.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace tollgate::gateway {

std::string tlsAlertRecord(uint8_t description) {
  // ContentType alert(21), legacy version 3.3, length 2, level fatal(2), description.
  const char rec[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, static_cast<char>(description)};
  return std::string(rec, sizeof(rec));
}

std::string httpErrorResponse(int status, std::string_view status_text, const DenyInfo& info) {
  nlohmann::ordered_json body;
  body["error"] = status == 403 ? "denied by tollgate" : "tollgate could not serve this request";
  body["sandbox"] = info.sandbox;
  body["host"] = info.host;
  body["rule"] = info.rule;
  body["reason"] = info.reason;
  std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Connection: close\r\nCache-Control: no-store\r\n\r\n{}",
      status, status_text, text.size(), text);
}

}  // namespace tollgate::gateway
