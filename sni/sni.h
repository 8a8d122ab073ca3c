// Peek at the first bytes a sandbox client sends on a TCP connection and say
// what it is: a TLS ClientHello (SNI, ALPN, versions, ECH), an HTTP/1.x
// request head (method, target, Host), or something opaque.
//
// Pure: no I/O, no clock, no exceptions. Every wire length is checked; a
// peer's bytes can only ever produce NeedMore, Done or Invalid{reason}.
//
// Classification (decided by the first bytes, reported in PeekResult.protocol
// even while NeedMore):
//   0x16 (TLS handshake record)          -> Tls
//   1..20 upper-case letters, then SP    -> Http   ("CONNECT " -> Invalid at once)
//   top bit set, SSL 2.0 CLIENT-HELLO    -> Tls, Invalid "tls_sslv2_hello"
//                                           (up to 4 bytes are needed to tell)
//   anything else                        -> Opaque, Done, consumed 0
//   no bytes yet                         -> Unknown, NeedMore (silence is the caller's call)
//
// Reasons carried with Status::Invalid (stable snake_case, fit for counters
// and the audit log):
//   peeker_misuse                update() given fewer bytes than before
//   TLS records (RFC 8446 §5.1) and handshake framing (§4):
//   tls_sslv2_hello              SSL 2.0 (compatible) CLIENT-HELLO
//   tls_bad_record_type          a record other than handshake(22) before the hello is complete
//   tls_bad_record_version       legacy_record_version outside 0x0300..0x0303
//   tls_record_too_long          record length > 2^14
//   tls_empty_record             zero-length handshake record
//   tls_not_client_hello         first handshake message is not client_hello(1)
//   tls_handshake_trailing_data  handshake bytes after the ClientHello in its last record
//   clienthello_too_large        the ClientHello, or the records carrying it, exceed kMaxPeekBytes
//   ClientHello body (RFC 8446 §4.1.2):
//   tls_malformed_client_hello   a field overruns the body, or bytes trail it
//   tls_bad_version              legacy_version major is not 3
//   tls_bad_session_id           legacy_session_id longer than 32
//   tls_bad_cipher_suites        empty or odd-length cipher_suites
//   tls_bad_compression_methods  empty legacy_compression_methods
//   tls_malformed_extensions     an extension header or body overruns the block
//   tls_duplicate_extension      an extension type twice (§4.2)
//   tls_psk_not_last             pre_shared_key not last (§4.2.11)
//   sni_malformed                server_name not exactly one non-empty host_name (RFC 6066 §3)
//   sni_invalid                  host_name > 255 bytes or rejected by normalizeHostName
//   tls_bad_alpn                 ALPN list empty, a name empty, or bytes trailing (RFC 7301 §3.1)
//   tls_bad_supported_versions   list empty, odd, or bytes trailing (§4.2.1)
//   HTTP/1.x request head (RFC 9112):
//   http_connect_unsupported     CONNECT (authority-form)
//   http_header_too_large        no end of head within kMaxHttpHeadBytes
//   http_bad_line_ending         a bare LF (lines must end in CRLF)
//   http_bad_char                NUL, lone CR or another control byte (but HTAB) in a line
//   http_bad_request_line        not "method SP target SP HTTP/d.d"
//   http_bad_method              method not 1..20 upper-case letters
//   http_bad_target              target neither origin-, absolute- (http://, no userinfo)
//                                nor asterisk-form (OPTIONS *), or bytes outside %x21-7E
//   http_version_unsupported     major version not 1 (e.g. the HTTP/2 preface "PRI * HTTP/2.0")
//   http_obs_fold                a header line starting with SP or HTAB
//   http_bad_header              field name empty, not a token, or no ':'
//   http_duplicate_host          more than one Host line
//   http_bad_host                Host value not host[:port] with a valid name and port 1..65535
//   http_no_host                 HTTP/1.1 (or 1.x, x >= 1) without a non-empty Host
//   http_host_mismatch           absolute-form target and Host name different hosts or ports
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/hostname.h"

namespace tollgate::sni {

// Names come out of the peek in base/hostname.h's canonical form.
using ::tollgate::HostName;

enum class Protocol { Unknown, Tls, Http, Opaque };
enum class Status { NeedMore, Done, Invalid };

struct TlsInfo {
  std::optional<HostName> sni;    // validated/normalised; nullopt if no server_name ext
  std::vector<std::string> alpn;  // in client order; raw protocol names (may be any bytes)
  std::vector<uint16_t> supported_versions;  // from supported_versions ext (GREASE dropped)
  uint16_t legacy_version = 0;               // ClientHello.legacy_version
  bool ech = false;                          // encrypted_client_hello (0xfe0d) extension present

  // The highest version offered (supported_versions if sent, else
  // legacy_version), in OpenSSL's spelling: "TLSv1.3", "TLSv1.2", "TLSv1.1",
  // "TLSv1", "SSLv3"; anything else as "0x" and four hex digits.
  std::string versionName() const;

  bool operator==(const TlsInfo&) const = default;
};

struct HttpInfo {
  std::string method;            // e.g. "GET"
  std::string target;            // request-target as sent
  std::optional<HostName> host;  // from Host header (port stripped), or from absolute-form target
  std::optional<uint16_t> host_port;  // explicit port in Host (or absolute-form target), if any
  std::string version;                // "HTTP/1.1"

  bool operator==(const HttpInfo&) const = default;
};

struct PeekResult {
  Status status = Status::NeedMore;
  Protocol protocol = Protocol::Unknown;  // known as soon as the first byte(s) decide it
  TlsInfo tls;                            // filled when protocol == Tls and status == Done
  HttpInfo http;                          // filled when protocol == Http and status == Done
  std::string reason;                     // snake_case reason when Invalid (list above)
  size_t consumed = 0;  // Done: bytes that formed the ClientHello records / request head

  bool operator==(const PeekResult&) const = default;
};

// Cap on bytes a client may send before a decision. A Peeker never answers
// NeedMore once it has been given kMaxPeekBytes bytes, and Done always has
// consumed <= kMaxPeekBytes.
constexpr size_t kMaxPeekBytes = 32 * 1024;
// Cap on an HTTP/1.x request head, request line to the empty line inclusive.
constexpr size_t kMaxHttpHeadBytes = 16 * 1024;
// Longest method token recognised as HTTP ("UPDATEREDIRECTREF" has 17).
constexpr size_t kMaxHttpMethodLen = 20;

// Incremental peeker, one per connection. The caller keeps the buffer (it must
// forward those bytes upstream later) and calls update() with ALL bytes
// received so far each time more arrive (the buffer may move between calls,
// but must start with the bytes given before: they are not looked at again).
// Each call looks only at the bytes it has not seen before, so a client
// trickling one byte at a time costs linear work. Once a result is Done or
// Invalid it is final and every later call returns it unchanged. Passing
// fewer bytes than a previous call is a caller bug and yields Invalid
// "peeker_misuse".
class Peeker {
 public:
  PeekResult update(std::span<const uint8_t> received);

 private:
  PeekResult classify(std::span<const uint8_t> received);
  PeekResult updateTls(std::span<const uint8_t> received);
  PeekResult updateHttp(std::span<const uint8_t> received);
  PeekResult settle(PeekResult result);

  Protocol protocol_ = Protocol::Unknown;
  std::optional<PeekResult> final_;  // set once Done or Invalid
  size_t seen_ = 0;                  // bytes passed to the last update()

  // TLS: the records before record_pos_ are complete. While the ClientHello
  // is incomplete their fragments are gathered in handshake_; a hello that
  // fits in one record is parsed in place and never copied.
  size_t record_pos_ = 0;
  std::vector<uint8_t> handshake_;

  // HTTP: bytes before scan_pos_ have been looked at; line_start_ is where
  // the line being scanned begins.
  size_t scan_pos_ = 0;
  size_t line_start_ = 0;
};

}  // namespace tollgate::sni
