// DNS over TCP framing: RFC 1035 §4.2.2 (2-byte length prefix), RFC 7766 §8.
#include <algorithm>

#include "base/reader.h"
#include "dns/dns.h"

namespace tollgate::dns {

TcpFramer::TcpFramer(size_t max_message, size_t max_buffered, size_t max_messages_per_feed)
    : max_message_(std::clamp(max_message, kHeaderSize, kMaxTcpMessage)),
      max_buffered_(std::max(max_buffered, max_message_ + 2)),
      max_messages_per_feed_(std::max<size_t>(max_messages_per_feed, 1)) {}

size_t TcpFramer::room() const { return invalid_ ? 0 : max_buffered_ - buffered(); }

bool TcpFramer::hasMessage() const {
  Reader r(std::span<const uint8_t>(buffer_).subspan(start_));
  uint16_t len = 0;
  return !invalid_ && r.u16(len) && len >= kHeaderSize && len <= max_message_ &&
         r.remaining() >= len;
}

TcpFramer::Fed TcpFramer::feed(std::span<const uint8_t> bytes) {
  Fed out;
  if (!invalid_ && bytes.size() > room()) {
    invalid_ = true;
    reason_ = "buffer_full";
  }
  if (invalid_) {
    out.invalid = true;
    out.reason = reason_;
    return out;
  }
  // Drop what was handed out before growing the buffer.
  if (start_ > 0) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());

  while (out.messages.size() < max_messages_per_feed_) {
    Reader r(std::span<const uint8_t>(buffer_).subspan(start_));
    uint16_t len = 0;
    if (!r.u16(len)) {
      break;
    }
    // Judged as soon as the prefix is in: no waiting for bytes that would
    // be refused anyway.
    if (len < kHeaderSize || len > max_message_) {
      invalid_ = true;
      reason_ = len < kHeaderSize ? "message_too_short" : "message_too_long";
      out.invalid = true;
      out.reason = reason_;
      break;
    }
    std::span<const uint8_t> body;
    if (!r.bytes(len, body)) {
      break;
    }
    out.messages.emplace_back(body.begin(), body.end());
    start_ += 2 + size_t{len};
  }
  return out;
}

Result<std::vector<uint8_t>> frameForTcp(std::span<const uint8_t> message) {
  if (message.size() > kMaxTcpMessage) {
    return makeError("DNS message of " + std::to_string(message.size()) +
                     " bytes does not fit a TCP length prefix");
  }
  std::vector<uint8_t> out;
  out.reserve(message.size() + 2);
  out.push_back(static_cast<uint8_t>(message.size() >> 8));
  out.push_back(static_cast<uint8_t>(message.size()));
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

}  // namespace tollgate::dns
