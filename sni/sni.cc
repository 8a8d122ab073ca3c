#include "sni/sni.h"

#include <algorithm>
#include <string_view>

#include "base/reader.h"
#include "sni/client_hello.h"
#include "sni/http_head.h"

namespace tollgate::sni {
namespace {

constexpr uint16_t kMinRecordVersion = 0x0300;
constexpr uint16_t kMaxRecordVersion = 0x0303;

PeekResult needMore(Protocol protocol) {
  PeekResult r;
  r.protocol = protocol;
  return r;
}

PeekResult invalid(Protocol protocol, std::string_view reason) {
  PeekResult r;
  r.status = Status::Invalid;
  r.protocol = protocol;
  r.reason = reason;
  return r;
}

PeekResult opaque() {
  PeekResult r;
  r.status = Status::Done;
  r.protocol = Protocol::Opaque;
  return r;
}

// An SSL 2.0 CLIENT-HELLO behind a 2-byte record header (RFC 6101 App. E.2,
// RFC 5246 App. E.2): length with the top bit set, msg_type 1, then the
// version, major 0 (SSL 2.0) or 3 (an SSLv3/TLS client in compatibility mode).
PeekResult classifySslv2(std::span<const uint8_t> received) {
  Reader in(received);
  uint16_t record_len = 0;
  uint8_t msg_type = 0;
  uint8_t major = 0;
  if (!in.u16(record_len) || !in.u8(msg_type)) {
    return needMore(Protocol::Unknown);
  }
  if (msg_type != 1) {
    return opaque();
  }
  if (!in.u8(major)) {
    return needMore(Protocol::Unknown);
  }
  if (major != 0 && major != 3) {
    return opaque();
  }
  return invalid(Protocol::Tls, "tls_sslv2_hello");
}

// RFC 9112 §3.1: method = token. Only what real methods look like counts as
// HTTP here: 1..kMaxHttpMethodLen upper-case letters, then SP.
PeekResult classifyMethod(std::span<const uint8_t> received) {
  Reader in(received);
  Reader method_start = in;
  size_t len = 0;
  uint8_t c = 0;
  while (in.u8(c)) {
    if (c == ' ') {
      std::string_view method;
      if (!method_start.chars(len, method)) {
        return opaque();  // cannot happen: len bytes were just read
      }
      if (method == "CONNECT") {
        return invalid(Protocol::Http, "http_connect_unsupported");
      }
      return needMore(Protocol::Http);
    }
    if (c < 'A' || c > 'Z' || ++len > kMaxHttpMethodLen) {
      return opaque();
    }
  }
  return needMore(Protocol::Unknown);
}

// What the handshake bytes gathered so far amount to.
struct MessageState {
  enum { Incomplete, Complete, Bad } kind = Incomplete;
  size_t total_len = 0;           // header + body, once the header is known
  std::span<const uint8_t> body;  // Complete
  const char* reason = nullptr;   // Bad
};

// RFC 8446 §4: struct { HandshakeType msg_type; uint24 length; ... } Handshake;
MessageState examineMessage(std::span<const uint8_t> message) {
  MessageState s;
  Reader in(message);
  uint8_t msg_type = 0;
  uint32_t length = 0;
  if (!in.u8(msg_type)) {
    return s;
  }
  if (msg_type != kHandshakeClientHello) {
    s.kind = MessageState::Bad;
    s.reason = "tls_not_client_hello";
    return s;
  }
  if (!in.u24(length)) {
    return s;
  }
  s.total_len = kHandshakeHeaderLen + length;
  if (s.total_len > kMaxPeekBytes) {
    s.kind = MessageState::Bad;
    s.reason = "clienthello_too_large";
    return s;
  }
  if (in.remaining() < length) {
    return s;
  }
  if (in.remaining() > length) {
    // The client's first flight is the ClientHello alone.
    s.kind = MessageState::Bad;
    s.reason = "tls_handshake_trailing_data";
    return s;
  }
  s.kind = MessageState::Complete;
  s.body = in.rest();
  return s;
}

}  // namespace

std::string TlsInfo::versionName() const {
  uint16_t best = legacy_version;
  if (!supported_versions.empty()) {
    best = *std::max_element(supported_versions.begin(), supported_versions.end());
  }
  switch (best) {
    case 0x0304:
      return "TLSv1.3";
    case 0x0303:
      return "TLSv1.2";
    case 0x0302:
      return "TLSv1.1";
    case 0x0301:
      return "TLSv1";
    case 0x0300:
      return "SSLv3";
    default:
      break;
  }
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 12; shift >= 0; shift -= 4) {
    out.push_back(kHex[(best >> shift) & 0xf]);
  }
  return out;
}

PeekResult Peeker::update(std::span<const uint8_t> received) {
  if (final_) {
    return *final_;
  }
  if (received.size() < seen_) {
    return settle(invalid(protocol_, "peeker_misuse"));
  }
  seen_ = received.size();
  if (protocol_ == Protocol::Unknown) {
    PeekResult r = classify(received);
    if (r.status != Status::NeedMore || r.protocol == Protocol::Unknown) {
      return settle(std::move(r));
    }
    protocol_ = r.protocol;
  }
  if (protocol_ == Protocol::Tls) {
    return settle(updateTls(received));
  }
  return settle(updateHttp(received));
}

PeekResult Peeker::settle(PeekResult result) {
  if (result.status != Status::NeedMore) {
    final_ = result;
    std::vector<uint8_t>().swap(handshake_);  // the peeker may outlive its use
  }
  return result;
}

PeekResult Peeker::classify(std::span<const uint8_t> received) {
  Reader in(received);
  uint8_t first = 0;
  if (!in.u8(first)) {
    return needMore(Protocol::Unknown);  // the caller decides what silence means
  }
  if (first == kContentTypeHandshake) {
    return needMore(Protocol::Tls);
  }
  if ((first & 0x80) != 0) {
    return classifySslv2(received);
  }
  if (first >= 'A' && first <= 'Z') {
    return classifyMethod(received);
  }
  return opaque();
}

// Reads whole TLS records from record_pos_ on and gathers their fragments
// until they hold the complete ClientHello. Only complete records are
// consumed, so a record cut by TCP segmentation is read again, whole, on a
// later call; each byte is copied at most once.
PeekResult Peeker::updateTls(std::span<const uint8_t> received) {
  while (true) {
    // The ClientHello and every record carrying it must fit in kMaxPeekBytes.
    if (record_pos_ + kRecordHeaderLen > kMaxPeekBytes) {
      return invalid(Protocol::Tls, "clienthello_too_large");
    }
    // RFC 8446 §5.1:
    //   struct { ContentType type; ProtocolVersion legacy_record_version;
    //            uint16 length; opaque fragment[TLSPlaintext.length]; } TLSPlaintext;
    Reader in(received.subspan(record_pos_));
    uint8_t type = 0;
    uint16_t version = 0;
    uint16_t length = 0;
    std::span<const uint8_t> fragment;
    if (!in.u8(type)) {
      return needMore(Protocol::Tls);
    }
    // "Handshake messages MUST NOT be interleaved with other record types."
    if (type != kContentTypeHandshake) {
      return invalid(Protocol::Tls, "tls_bad_record_type");
    }
    if (!in.u16(version)) {
      return needMore(Protocol::Tls);
    }
    // 0x0303 by the RFC, 0x0301 allowed for an initial ClientHello; older
    // clients send 0x0300.
    if (version < kMinRecordVersion || version > kMaxRecordVersion) {
      return invalid(Protocol::Tls, "tls_bad_record_version");
    }
    if (!in.u16(length)) {
      return needMore(Protocol::Tls);
    }
    // "The length MUST NOT exceed 2^14 bytes."
    if (length > kMaxRecordLen) {
      return invalid(Protocol::Tls, "tls_record_too_long");
    }
    // "Implementations MUST NOT send zero-length fragments of Handshake types."
    if (length == 0) {
      return invalid(Protocol::Tls, "tls_empty_record");
    }
    if (record_pos_ + kRecordHeaderLen + length > kMaxPeekBytes) {
      return invalid(Protocol::Tls, "clienthello_too_large");
    }
    if (!in.bytes(length, fragment)) {
      return needMore(Protocol::Tls);
    }
    record_pos_ = received.size() - in.remaining();  // past this whole record

    // Reassembly: in the common case one record holds the whole message and
    // it is parsed in place; otherwise fragments are gathered in handshake_.
    std::span<const uint8_t> message = fragment;
    if (!handshake_.empty()) {
      handshake_.insert(handshake_.end(), fragment.begin(), fragment.end());
      message = handshake_;
    }
    MessageState state = examineMessage(message);
    if (state.kind == MessageState::Bad) {
      return invalid(Protocol::Tls, state.reason);
    }
    if (state.kind == MessageState::Incomplete) {
      if (handshake_.empty()) {
        handshake_.reserve(std::max(state.total_len, fragment.size()));
        handshake_.assign(fragment.begin(), fragment.end());
      } else if (state.total_len > handshake_.capacity()) {
        handshake_.reserve(state.total_len);
      }
      continue;
    }
    PeekResult done;
    done.status = Status::Done;
    done.protocol = Protocol::Tls;
    if (auto parsed = parseClientHello(state.body, done.tls); !parsed) {
      return invalid(Protocol::Tls, parsed.message());
    }
    done.consumed = record_pos_;
    return done;
  }
}

// Looks for the empty line that ends the request head, one new byte at a
// time, then parses the head whole. Bare LF is rejected as soon as it is seen.
PeekResult Peeker::updateHttp(std::span<const uint8_t> received) {
  const size_t limit = std::min(received.size(), kMaxHttpHeadBytes);
  for (; scan_pos_ < limit; ++scan_pos_) {
    if (received[scan_pos_] != '\n') {
      continue;
    }
    if (scan_pos_ == line_start_ || received[scan_pos_ - 1] != '\r') {
      return invalid(Protocol::Http, "http_bad_line_ending");
    }
    const bool empty_line = scan_pos_ - line_start_ == 1;
    line_start_ = scan_pos_ + 1;
    if (!empty_line) {
      continue;
    }
    std::span<const uint8_t> head_bytes = received.first(line_start_);
    std::string_view head(reinterpret_cast<const char*>(head_bytes.data()), head_bytes.size());
    PeekResult done;
    done.status = Status::Done;
    done.protocol = Protocol::Http;
    if (auto parsed = parseRequestHead(head, done.http); !parsed) {
      return invalid(Protocol::Http, parsed.message());
    }
    done.consumed = head_bytes.size();
    return done;
  }
  if (received.size() >= kMaxHttpHeadBytes) {
    return invalid(Protocol::Http, "http_header_too_large");
  }
  return needMore(Protocol::Http);
}

}  // namespace tollgate::sni
