// mitm/ owns everything after a `mitm` (or `http-403`) decision; this header:
// Strict, incremental, bounded HTTP/1.1 message parsing for the MITM engine
// (RFC 9112), both directions: requests from the sandbox, responses from
// the upstream. Pure: no I/O, no clock, no exceptions, no OpenSSL.
//
// The engine never forwards the bytes a peer sent for a head: it parses the
// head into RequestHead / ResponseHead, may modify it, and re-emits it with
// serialize(). Bodies are decoded (chunked, Content-Length) and streamed out
// as spans into the caller's input, never buffered whole, so the engine
// re-frames them too. Framing is decided once, strictly (RFC 9112 §6.3):
// every message has exactly one reading, or it is refused — request
// smuggling (CL.TE, TE.CL, TE.TE) needs two readings.
//
// Layers (each usable alone):
//   RequestHeadParser / ResponseHeadParser  head bytes -> NeedMore | Done | Invalid
//   BodyDecoder                             body bytes -> decoded spans | Done | Invalid
//   RequestReader / ResponseReader          a connection's byte stream -> events
//                                           Head, Body, End (pipelining, 1xx, 101)
//
// Reasons carried with Status::Invalid (stable snake_case static strings, for
// counters and the audit log). The number is the status to answer a sandbox
// request with (http_status); an Invalid response from the upstream is 502:
//   Lines (RFC 9112 §2.2):
//   http_head_too_large            no end of head within kMaxHeadBytes                   431
//   http_bare_cr                   CR not followed by LF                                 400
//   http_bare_lf                   LF not preceded by CR                                 400
//   http_nul                       a NUL byte in the head                                400
//   http_bad_char                  another control byte (not HTAB) where none may be     400
//   Start line (§3, §4, §2.3):
//   http_bad_request_line          not "method SP request-target SP HTTP-version"        400
//   http_bad_method                method not a token of 1..kMaxMethodBytes              400
//   http_connect_unsupported       CONNECT (authority-form, §3.2.3)                      501
//   http_bad_target                not origin-form, absolute-form (http/https, no
//                                  userinfo) or asterisk-form (OPTIONS only); a byte
//                                  outside VCHAR, a '#', or a bad percent-encoding       400
//   http_version_unsupported       HTTP-version not HTTP/1.0 or HTTP/1.1                 505
//   http_bad_status_line           not "HTTP-version SP 3DIGIT [SP reason-phrase]"       -
//   http_bad_status                status code outside 100..599                          -
//   Field lines (§5):
//   http_obs_fold                  a line starting with SP/HTAB (§5.2, also right after
//                                  the start line, §2.2)                                 400
//   http_space_before_colon        whitespace between field name and ':' (§5.1)          400
//   http_bad_field_name            empty name, a byte that is not a tchar, or
//                                  Transfer_Encoding / Content_Length (underscore)       400
//   http_bad_field_line            no ':'                                                400
//   http_too_many_headers          more than kMaxHeaders field lines                     431
//   Host (§3.2):
//   http_no_host                   HTTP/1.1 request without a (non-empty) Host           400
//   http_duplicate_host            more than one Host line                               400
//   http_bad_host                  Host not host[:port] with a valid name, port 1..65535 400
//   http_host_mismatch             absolute-form authority and Host differ               400
//   Framing (§6):
//   http_te_in_http10              Transfer-Encoding in an HTTP/1.0 message (§6.1)       400
//   http_duplicate_transfer_encoding  more than one Transfer-Encoding line              400
//   http_te_chunked_not_final      chunked present but not the final coding (§6.3)       400
//   http_te_unsupported            a coding other than exactly "chunked" (§6.1)          501
//   http_te_and_cl                 a request with both Transfer-Encoding and
//                                  Content-Length (§6.3 rule 3)                          400
//   http_multiple_content_length   more than one Content-Length line                     400
//   http_bad_content_length        not 1*DIGIT (no sign, space, hex), > 2^63-1, or a
//                                  list with differing members (§6.3 rule 5)             400
//   http_unexpected_101            101 without a WebSocket upgrade in the request, or
//                                  without "Upgrade: websocket"                          -
//   Chunked body (§7.1):
//   http_chunk_bad_size            chunk-size not 1*HEXDIG                               400
//   http_chunk_size_overflow       chunk-size > 2^63-1, or the body total overflows      400
//   http_chunk_bad_extension       chunk-ext not BWS ";" BWS token [BWS "=" BWS
//                                  (token / quoted-string)]                              400
//   http_chunk_line_too_long       chunk-size line longer than kMaxChunkLineBytes        400
//   http_chunk_missing_crlf        chunk-data not followed by CRLF, or size line not
//                                  ended by CRLF                                         400
//   http_trailer_too_large         trailer section longer than kMaxTrailerBytes          431
//   (field-line reasons above also apply to trailer lines)
//   Stream:
//   http_truncated                 the peer closed inside a message (finish())           400
//   http_message_after_close       bytes after a message that ends the connection        400
//   http_unsolicited_response      response bytes while no request is outstanding        -
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/hostname.h"

namespace tollgate::mitm {

// A head (start line through the empty line, CRLFs included) larger than
// this is refused; a head parser never holds more.
inline constexpr size_t kMaxHeadBytes = 32 * 1024;
// Field lines in one head (and in one trailer section).
inline constexpr size_t kMaxHeaders = 128;
// Method token length.
inline constexpr size_t kMaxMethodBytes = 32;
// A chunk-size line (size, extensions, CRLF).
inline constexpr size_t kMaxChunkLineBytes = 4096;
// A trailer section (field lines and the final CRLF).
inline constexpr size_t kMaxTrailerBytes = 16 * 1024;
// Largest Content-Length, chunk size and body total: 2^63 - 1.
inline constexpr uint64_t kMaxBodyLength = 0x7fffffffffffffffULL;

enum class Status { NeedMore, Done, Invalid };

// ---------------------------------------------------------------------------
// Heads

struct HeaderField {
  std::string name;   // as received (case preserved): a token
  std::string value;  // OWS around it removed; VCHAR / obs-text / SP / HTAB

  bool operator==(const HeaderField&) const = default;
};

// Field lines in order. Name comparisons are case-insensitive (RFC 9110 §5.1).
struct Headers {
  std::vector<HeaderField> fields;

  // The first field named `name`, or nullptr.
  const HeaderField* find(std::string_view name) const;
  size_t count(std::string_view name) const;
  void add(std::string name, std::string value);
  // Sets the value of the first field named `name` (keeping its position
  // and case) and removes the others; appends "name: value" if none.
  void set(std::string_view name, std::string value);
  // Removes every field named `name`; returns how many.
  size_t remove(std::string_view name);
  // True when a member of the comma-separated list (RFC 9110 §5.6.1) in any
  // field named `name` equals `token`, case-insensitively.
  bool hasToken(std::string_view name, std::string_view token) const;

  bool operator==(const Headers&) const = default;
};

// How the body of a message is delimited (RFC 9112 §6.3).
enum class BodyKind {
  None,        // no body: the message ends with its head
  Length,      // exactly `length` bytes (Content-Length)
  Chunked,     // chunked transfer coding (§7.1)
  UntilClose,  // a response without length: the body ends when the upstream closes
  Tunnel,      // 101 Switching Protocols: after the head, the connection is a tunnel
};

struct BodyFraming {
  BodyKind kind = BodyKind::None;
  uint64_t length = 0;  // Length only

  bool operator==(const BodyFraming&) const = default;
};

enum class TargetForm { Origin, Absolute, Asterisk };

struct RequestHead {
  std::string method;  // a token, case preserved ("GET")
  std::string target;  // request-target as sent (validated)
  int minor = 1;       // HTTP/1.<minor>: 0 or 1
  Headers headers;

  // Derived by the parser; serialize() writes only the fields above. After
  // a successful parse, a Content-Length value is canonical decimal and a
  // Transfer-Encoding value is exactly "chunked".
  TargetForm form = TargetForm::Origin;
  // Host header, or the absolute-form authority; nullopt only for an
  // HTTP/1.0 request with neither.
  std::optional<HostPort> authority;
  BodyFraming body;
  bool keep_alive = true;          // the connection may carry another request after this one
  bool expect_continue = false;    // "Expect: 100-continue" in an HTTP/1.1 request
  bool upgrade_websocket = false;  // GET, HTTP/1.1, Upgrade: websocket, Connection: upgrade

  // The path of the target without query ("/v1/chat" for
  // "http://h/v1/chat?x=1", "*" for asterisk-form): the audit `http.path`.
  std::string_view path() const;

  bool operator==(const RequestHead&) const = default;
};

struct ResponseHead {
  int minor = 1;
  uint16_t status = 0;  // 100..599
  std::string reason;   // reason-phrase (may be empty)
  Headers headers;

  // Derived by the parser (see RequestHead).
  BodyFraming body;
  bool keep_alive = true;  // the upstream connection may carry another exchange
  // 1xx other than 101: an interim response; the final one follows.
  bool interim() const { return status >= 100 && status < 200 && status != 101; }

  bool operator==(const ResponseHead&) const = default;
};

// What a response's framing depends on in its request (RFC 9112 §6.3 rule 1).
struct ResponseContext {
  bool head_request = false;       // the request method was HEAD
  bool upgrade_requested = false;  // the request asked for a WebSocket upgrade
  static ResponseContext of(const RequestHead& request);
};

struct HeadResult {
  Status status = Status::NeedMore;
  // Done: bytes of the input given to this feed() that completed the head
  // (the rest belongs to the body or the next message). NeedMore: all of it.
  size_t consumed = 0;
  std::string_view reason;   // Invalid: see the list at the top (a static string)
  uint16_t http_status = 0;  // Invalid: the status to answer with (502 for responses)

  bool operator==(const HeadResult&) const = default;
};

// Incremental head parser. feed() takes the bytes that follow those fed
// before (any split) and copies what belongs to the head (at most
// kMaxHeadBytes in all). Line structure (CRLF, NUL) is checked byte by byte
// as bytes arrive; the grammar once the empty line is seen. Once Done or
// Invalid, feed() returns that result again (with consumed 0) until reset().
class RequestHeadParser {
 public:
  HeadResult feed(std::span<const uint8_t> in);
  // Valid after Done (and mutable: the engine rewrites it before serialize()).
  RequestHead& head() { return head_; }
  const RequestHead& head() const { return head_; }
  // Bytes of an unfinished head held so far (0 between messages).
  size_t buffered() const { return final_ ? 0 : buf_.size(); }
  void reset();

 private:
  std::string buf_;
  bool prev_cr_ = false;
  size_t line_start_ = 0;
  std::optional<HeadResult> final_;
  RequestHead head_;
};

class ResponseHeadParser {
 public:
  explicit ResponseHeadParser(ResponseContext context = {}) : context_(context) {}
  HeadResult feed(std::span<const uint8_t> in);
  ResponseHead& head() { return head_; }
  const ResponseHead& head() const { return head_; }
  size_t buffered() const { return final_ ? 0 : buf_.size(); }
  void reset(ResponseContext context);

 private:
  ResponseContext context_;
  std::string buf_;
  bool prev_cr_ = false;
  size_t line_start_ = 0;
  std::optional<HeadResult> final_;
  ResponseHead head_;
};

// Re-emits a head in canonical form: start line, "Name: value\r\n" per
// field in order with the name's case kept, "\r\n". Only method, target,
// minor / status, reason and headers are written.
std::string serialize(const RequestHead& head);
std::string serialize(const ResponseHead& head);
// The exact length serialize() produces, to fill a SecretBuffer in place.
size_t serializedSize(const RequestHead& head);
// Writes serialize(head) into out, which must hold serializedSize(head) bytes.
void serializeTo(const RequestHead& head, std::span<char> out);

// Removes the hop-by-hop fields an intermediary must not forward (RFC 9110
// §7.6.1): those named in Connection, and Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Upgrade. With keep_websocket_upgrade,
// "Upgrade: websocket" and "Connection: upgrade" are kept (only). Framing
// fields (Content-Length, Transfer-Encoding) are left to the caller.
// A Connection option naming Host, a framing field or one of `protect`
// (case-insensitive; the engine passes credential headers) is ignored: a
// peer cannot make an intermediary drop what it must send.
void removeHopByHop(Headers& headers, bool keep_websocket_upgrade,
                    std::span<const std::string_view> protect = {});

// Sets the framing fields for a body sent as `framing` (Length:
// "Content-Length: n"; Chunked: "Transfer-Encoding: chunked"; otherwise
// neither), removing any others.
void setFraming(Headers& headers, const BodyFraming& framing);

// ---------------------------------------------------------------------------
// Bodies

struct BodyResult {
  Status status = Status::NeedMore;
  size_t consumed = 0;            // bytes of the input used by this call
  std::span<const uint8_t> data;  // decoded body bytes: a subspan of the input
  std::string_view reason;        // Invalid
};

// Incremental body decoder for one message. feed() consumes a prefix of its
// input and returns at most one span of decoded body bytes (pointing into
// the input, valid as long as it is). Returns
//   NeedMore: the body goes on. Either the whole input was consumed, or a
//             data span was returned and the rest of the input must be fed
//             again (consumed > 0 whenever the input was not empty).
//   Done:     the body (and for chunked, the trailer section) is complete;
//             bytes after `consumed` belong to the next message.
//   Invalid:  `reason`; final.
// Memory is O(1) in the body size: only a chunked trailer section is copied
// (at most kMaxTrailerBytes). Data bytes are never copied.
class BodyDecoder {
 public:
  explicit BodyDecoder(BodyFraming framing = {});
  BodyResult feed(std::span<const uint8_t> in);
  // The peer closed the connection: Done for an UntilClose body (or one
  // already complete), Invalid "http_truncated" otherwise.
  BodyResult finish();

  bool done() const { return state_ == State::Done; }
  uint64_t received() const { return received_; }  // decoded body bytes so far
  // Chunked only, after Done: the trailer fields (engine policy: drop them).
  const Headers& trailers() const { return trailers_; }
  // Bytes copied and held by the decoder right now (<= kMaxTrailerBytes).
  size_t buffered() const { return trailer_buf_.size(); }

 private:
  enum class State {
    Length,
    UntilClose,
    SizeFirst,       // first HEXDIG of a chunk-size
    Size,            // further HEXDIGs
    ExtPreSemi,      // BWS seen after size / ext element: need BWS or ";"
    ExtNameStart,    // after ";": BWS or the first tchar of a name
    ExtName,         // tchars of a name
    ExtPostName,     // BWS after a name: need BWS, "=" or ";"
    ExtValueStart,   // after "=": BWS, a tchar or DQUOTE
    ExtValueToken,   // tchars of a token value
    ExtQuoted,       // inside a quoted-string
    ExtQuotedPair,   // after a backslash in a quoted-string
    ExtAfterQuoted,  // after the closing DQUOTE
    SizeLf,          // CR seen, need LF
    Data,            // chunk-data
    DataCr,          // need CR after chunk-data
    DataLf,          // need LF after chunk-data CR
    Trailer,         // trailer-section lines up to the empty line
    Done,
    Invalid,
  };

  BodyResult fail(std::string_view reason, size_t consumed);
  // Handles one byte of a chunk-size line; returns an Invalid reason or "".
  std::string_view sizeLineByte(uint8_t c);
  std::string_view trailerByte(uint8_t c);

  State state_ = State::Done;
  uint64_t remaining_ = 0;  // Length / Data: bytes left
  uint64_t received_ = 0;
  uint64_t chunk_size_ = 0;
  size_t line_len_ = 0;  // bytes of the current chunk-size line
  std::string_view reason_;
  std::string trailer_buf_;
  size_t trailer_line_start_ = 0;
  bool trailer_prev_cr_ = false;
  Headers trailers_;
};

// ---------------------------------------------------------------------------
// Connection streams

enum class Event {
  NeedMore,  // all input consumed; feed more when it arrives
  Head,      // a head was parsed: head() (consumed: its bytes)
  Body,      // `body` holds decoded body bytes (a subspan of the input)
  End,       // the message is complete
  Tunnel,    // after a 101 head: every later byte is tunnel data (consumed 0)
  Invalid,   // `reason`, `http_status`; final
};

struct Step {
  Event event = Event::NeedMore;
  size_t consumed = 0;
  std::span<const uint8_t> body;
  std::string_view reason;
  uint16_t http_status = 0;
};

// The requests on one sandbox connection, in order (pipelining). Drive it
// with the bytes received, dropping `consumed` bytes after every step:
//
//   for (;;) { Step s = reader.next(in); in = in.subspan(s.consumed); ... }
//
// Head -> Body* -> End, then the next request's Head. A step never returns
// NeedMore unless it consumed all its input, and never consumes 0 bytes of
// a non-empty input except for End/Tunnel/Invalid, so the loop ends.
// After End of a request with keep_alive false, feeding bytes gives Invalid
// "http_message_after_close". After End of a request with upgrade_websocket,
// stop feeding until the response is known: on 101, what follows is tunnel
// data; on another status, go on.
class RequestReader {
 public:
  Step next(std::span<const uint8_t> in);
  // The sandbox closed its side: NeedMore between requests (a clean close),
  // Invalid "http_truncated" inside one.
  Step finish();
  RequestHead& head() { return head_parser_.head(); }
  const RequestHead& head() const { return head_parser_.head(); }
  const BodyDecoder& body() const { return body_; }

 private:
  enum class State { Head, Body, Closed, Invalid };
  Step fail(const HeadResult& r);

  State state_ = State::Head;
  bool head_done_ = false;  // head_parser_ holds the last message's head
  RequestHeadParser head_parser_;
  BodyDecoder body_;
  Step invalid_;
};

// The responses on one upstream connection. Before the bytes of a response
// can be parsed the engine says which request it answers: expect() once per
// request sent (in order). Interim 1xx responses give Head then End and the
// same request still waits for its final response. A 101 gives Head, then
// Tunnel. Response bytes while no request is outstanding are Invalid
// "http_unsolicited_response".
class ResponseReader {
 public:
  void expect(ResponseContext context);
  Step next(std::span<const uint8_t> in);
  // The upstream closed: End for an UntilClose body, NeedMore between
  // responses, Invalid "http_truncated" inside one.
  Step finish();
  ResponseHead& head() { return head_parser_.head(); }
  const ResponseHead& head() const { return head_parser_.head(); }
  const BodyDecoder& body() const { return body_; }
  size_t outstanding() const { return pending_.size(); }

 private:
  enum class State { Head, Body, Closed, Tunnel, Invalid };

  State state_ = State::Head;
  std::deque<ResponseContext> pending_;
  bool parser_armed_ = false;
  ResponseHeadParser head_parser_;
  BodyDecoder body_;
  Step invalid_;
};

}  // namespace tollgate::mitm
