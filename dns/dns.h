// dns/: the pure (no I/O) part of tollgate's DNS service.
//
// tollgate redirects all sandbox DNS (UDP and TCP port 53) to its own DNS
// service, which answers only names policy could allow (REFUSED otherwise, so
// nothing can be exfiltrated through lookups of attacker-chosen names) from
// static_hosts or by forwarding to the resolvers. This module:
//   - parses the sandbox's queries (parseQuery), strictly: a query is one
//     question plus at most one OPT RR and nothing else;
//   - builds every response the sandbox sees (buildError, buildAnswer,
//     truncateForUdp) from parsed values only;
//   - builds tollgate's own upstream queries (buildQuery) and extracts
//     addresses from upstream responses (parseResponse);
//   - frames DNS over TCP (TcpFramer, frameForTcp).
//
// tollgate never relays upstream DNS bytes to a sandbox. An upstream response
// is reduced to {rcode, A/AAAA addresses, TTL} by parseResponse and a clean
// answer is re-built from that with buildAnswer. Relaying raw bytes would let
// a remote server that policy allows (or one that poisons it) smuggle anything
// a DNS message can carry into the sandbox: TXT/NULL payloads, extra records
// for other names in the additional section, EDNS options, odd compression
// that trips the sandbox's own parser. What the sandbox gets is only ever
// the question it asked, echoed, and addresses for that name.
//
// Every byte from the wire is read through base/reader.h's Reader (bounds-checked). No
// call here throws, allocates without bound, or touches a socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/sockaddr.h"

namespace tollgate::dns {

// RFC 1035 §4.1.1 RCODE, plus the extended BADVERS of RFC 6891 §9 (needs an
// OPT RR to be expressed: the upper 8 bits travel in the OPT TTL).
enum class Rcode : uint16_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
  kBadVers = 16,
};
std::string_view rcodeName(Rcode rcode);  // "NOERROR", "FORMERR", ...

// RR TYPE and CLASS values used here (RFC 1035 §3.2.2, §3.2.4; RFC 3596;
// RFC 6891; RFC 6895 §3.1).
inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeNs = 2;
inline constexpr uint16_t kTypeCname = 5;
inline constexpr uint16_t kTypeSoa = 6;
inline constexpr uint16_t kTypePtr = 12;
inline constexpr uint16_t kTypeMx = 15;
inline constexpr uint16_t kTypeTxt = 16;
inline constexpr uint16_t kTypeSig = 24;
inline constexpr uint16_t kTypeAaaa = 28;
inline constexpr uint16_t kTypeOpt = 41;
inline constexpr uint16_t kTypeHttps = 65;
inline constexpr uint16_t kTypeTsig = 250;
inline constexpr uint16_t kTypeAxfr = 252;
inline constexpr uint16_t kTypeAny = 255;
inline constexpr uint16_t kClassIn = 1;
inline constexpr uint16_t kClassCh = 3;

inline constexpr size_t kHeaderSize = 12;       // RFC 1035 §4.1.1
inline constexpr size_t kMaxNameWireLen = 255;  // RFC 1035 §3.1, labels + length bytes
inline constexpr size_t kMaxLabelLen = 63;      // RFC 1035 §3.1
inline constexpr size_t kMaxPointerJumps = 16;  // compression pointers followed per name
inline constexpr size_t kMaxCnameChain = 16;    // CNAMEs followed in one response
inline constexpr size_t kClassicUdpSize = 512;  // RFC 1035 §4.2.1 (no EDNS)
// What tollgate advertises and the most it sends over UDP (DNS flag day 2020:
// no IP fragmentation).
inline constexpr uint16_t kServerUdpPayload = 1232;
inline constexpr size_t kMaxAnswerRecords = 64;  // per buildAnswer; keeps any answer < 4 KiB
inline constexpr uint32_t kMaxTtl = 0x7fffffff;  // RFC 2181 §8
inline constexpr size_t kMaxTcpMessage = 65535;  // RFC 1035 §4.2.2: 2-byte length

// One question (RFC 1035 §4.1.2), as the sandbox asked it.
struct Question {
  // QNAME exactly as received (uncompressed labels, original case, ending in
  // the root label): echoed byte for byte, as clients that randomise case
  // (DNS 0x20) expect.
  std::vector<uint8_t> name_wire;
  // is_host_name: normalizeHostName()'s form (lower case, no trailing dot),
  // the string policy matches against hosts: patterns.
  // Otherwise the presentation form, lower-cased, no trailing dot ("." for
  // the root), bytes other than LDH and '_' written as \DDD (RFC 1035 §5.1),
  // so "_dmarc.example.com" or "a\046b.example" — never to be matched as a
  // host. IP-literal-looking names ("192.0.2.1") are in this second group.
  std::string name;
  bool is_host_name = false;
  uint16_t qtype = 0;
  uint16_t qclass = 0;

  bool operator==(const Question&) const = default;
};

// The OPT pseudo-RR of a query (RFC 6891 §6.1).
struct Edns {
  bool present = false;
  uint8_t version = 0;
  uint16_t udp_size = 0;   // as sent (the class field); see Query::maxUdpResponse()
  bool dnssec_ok = false;  // DO bit (RFC 3225)

  bool operator==(const Edns&) const = default;
};

// A query, or as much of one as was parsed before a fault (see QueryParse).
struct Query {
  uint16_t id = 0;
  uint8_t opcode = 0;
  bool rd = false;            // recursion desired: echoed
  bool cd = false;            // checking disabled: echoed (RFC 4035 §3.2.2)
  bool has_question = false;  // always true for QueryParse::Outcome::kOk
  Question question;
  Edns edns;  // present only when the OPT RR parsed cleanly

  // Largest UDP response to send: 512 without EDNS, else the client's size
  // clamped to [512, kServerUdpPayload] (RFC 6891 §6.2.5, §6.2.3).
  size_t maxUdpResponse() const;
  bool isAddressQuery() const {
    return has_question && (question.qtype == kTypeA || question.qtype == kTypeAaaa);
  }

  bool operator==(const Query&) const = default;
};

// What parseQuery made of a message:
//   kOk:    query is complete; rcode is kNoError; the service decides.
//   kError: answer buildError(query, rcode) (the question is echoed when
//           query.has_question).
//   kDrop:  send nothing: fewer than 12 bytes (no id to answer), or QR=1 (a
//           response: answering responses is how two servers end up
//           bouncing errors at each other forever, and it makes tollgate a
//           reflector for spoofed traffic).
// reason is a stable snake_case token for counters and the audit log
// ("ok", "short_header", "qdcount", "qname_pointer", ...).
struct QueryParse {
  enum class Outcome { kOk, kError, kDrop };
  Outcome outcome = Outcome::kDrop;
  Query query;
  Rcode rcode = Rcode::kNoError;
  std::string_view reason;
};

// Parses a DNS query from a sandbox (RFC 1035 §4.1, RFC 9619, RFC 6891).
// Structural faults win over semantic ones; checked in this order:
//   < 12 bytes, QR=1                              -> drop
//   OPCODE != QUERY                               -> NOTIMP, no question
//   QDCOUNT != 1                                  -> FORMERR, no question
//   bad QNAME (compression pointer, extended label type, > 255 bytes,
//     cut short), QTYPE/QCLASS cut short          -> FORMERR, no question
//   ANCOUNT or NSCOUNT != 0, ARCOUNT > 1          -> FORMERR
//   the additional RR cut short, or its owner
//     compressed or malformed                     -> FORMERR
//   trailing bytes after the last RR              -> FORMERR
//   the additional RR is TSIG or SIG(0)           -> NOTIMP (no keys here)
//   the additional RR is not OPT, OPT owner is
//     not the root, OPT options do not parse      -> FORMERR (no OPT echoed)
//   EDNS version != 0                             -> BADVERS (RFC 6891 §6.1.3)
//   QTYPE 0 or OPT                                -> FORMERR (not queryable)
//   QTYPE 128..255 (AXFR, IXFR, ANY, TSIG, ...)   -> NOTIMP: tollgate serves
//                                                    plain lookups only
//   QCLASS != IN                                  -> REFUSED: there is no data
//                                                    in other classes (CH
//                                                    "version.bind" etc.)
// From ANCOUNT on, errors carry the parsed question (echoed by buildError);
// EDNS is marked present only for a well-formed OPT (so BADVERS answers
// carry an OPT). TC, Z, AA, RA, AD, RCODE and the EDNS flags other than DO,
// the extended RCODE and the options of a query are ignored.
QueryParse parseQuery(std::span<const uint8_t> message);

// A response carrying only `rcode`: header (id, opcode, RD and CD echoed,
// QR=1, RA=1, AA=0), the question when query.has_question, and an OPT RR
// (version 0, DO echoed) when query.edns.present. An extended rcode
// (BADVERS) without EDNS cannot be expressed and is sent as SERVFAIL.
// Use for REFUSED, NXDOMAIN, SERVFAIL and parseQuery's kError.
std::vector<uint8_t> buildError(const Query& query, Rcode rcode);

// A NOERROR response to a parsed query: the question echoed, one A (or
// AAAA) record per distinct address of the queried family (at most
// kMaxAnswerRecords, in the given order), each owned by a compression
// pointer to the question name, TTL min(ttl, kMaxTtl); AA=0, RA=1; OPT
// echoed as in buildError. No address of that family, or a QTYPE other than
// A/AAAA: NODATA (NOERROR, no answers; no SOA, so clients do not cache it).
// A query without a question gets buildError(query, kServFail).
std::vector<uint8_t> buildAnswer(const Query& query, std::span<const SockAddr> addresses,
                                 uint32_t ttl);

// Returns `response` unchanged if it fits in max_size bytes; otherwise the
// same header with TC=1 and the answer and authority sections dropped,
// keeping the question and an OPT RR (RFC 1035 §4.1.1, RFC 6891 §7). The
// client retries over TCP. Meant for this module's own responses; a
// message that cannot be parsed comes back as its header alone, TC=1, all
// counts 0. max_size below 512 is taken as 512.
std::vector<uint8_t> truncateForUdp(std::span<const uint8_t> response, size_t max_size);

// A question for a host name tollgate resolves itself (QCLASS IN). nullopt
// when `host` is not a normalisable host name (IP literals included).
std::optional<Question> questionFor(std::string_view host, uint16_t qtype);

// tollgate's own query to an upstream resolver: RD=1, the question with its
// name lower-cased, and an OPT RR advertising edns_udp_size (none if 0).
std::vector<uint8_t> buildQuery(uint16_t id, const Question& question, uint16_t edns_udp_size);

// What an upstream response says about the question tollgate asked.
struct ForwardedAnswer {
  Rcode rcode = Rcode::kNoError;  // with the OPT's extended bits
  // TC was set: nothing below is filled in; ask again over TCP.
  bool truncated = false;
  // Addresses of the QTYPE's family (port 0) owned by the question name or
  // by the end of a CNAME chain starting there; records for other names are
  // ignored. Only for NOERROR.
  std::vector<SockAddr> addresses;
  // CNAME targets followed, in order, in Question::name's form.
  std::vector<std::string> cname_chain;
  // Seconds the result may be cached: the minimum TTL of the records used;
  // without addresses, min(SOA TTL, SOA MINIMUM) of an SOA in the authority
  // section (RFC 2308 §5), or 0 without one. TTLs with the top bit set count
  // as 0 (RFC 2181 §8).
  uint32_t ttl = 0;
};

// Parses an upstream response (RFC 1035 §4.1) to the query with id
// `expected_id` and question `expected`. Names may be compressed (§4.1.4):
// a pointer must point below the start of the name (or name part) holding
// it and past the header, at most kMaxPointerJumps per name, so loops and
// forward references are rejected. Errors: not a response (QR=0), another
// id or opcode, a question other than `expected` (compared
// case-insensitively), any malformed section (A/AAAA/CNAME/SOA RDATA must
// fill RDLENGTH exactly), an OPT RR outside the additional section or more
// than one, trailing bytes; a CNAME chain longer than kMaxCnameChain links,
// a CNAME loop, or two CNAMEs for one name on the chain. With TC set only
// the header and question are checked (truncated = true).
Result<ForwardedAnswer> parseResponse(std::span<const uint8_t> message, uint16_t expected_id,
                                      const Question& expected);

// DNS over TCP (RFC 1035 §4.2.2, RFC 7766 §8): each message is preceded by
// its length as a 2-byte big-endian integer. Incremental; bounded in the
// bytes it buffers and the messages it hands out per call, so a client that
// pipelines thousands of queries in one segment cannot make the service take
// them all on at once (RFC 7766 §6.2.1.1 lets a server bound its work).
class TcpFramer {
 public:
  static constexpr size_t kDefaultMaxMessage = kMaxTcpMessage;
  static constexpr size_t kDefaultMaxBuffered = 2 * (kMaxTcpMessage + 2);
  static constexpr size_t kDefaultMaxMessagesPerFeed = 16;

  struct Fed {
    // Complete messages in arrival order, without their length prefix.
    std::vector<std::vector<uint8_t>> messages;
    // The stream is unusable (sticky): answer `messages` (those before the
    // fault) if you like, then close the connection. reason is
    // "message_too_short" (< 12 bytes: no answer can be built),
    // "message_too_long" (> max_message) or "buffer_full".
    bool invalid = false;
    std::string_view reason;
  };

  // max_message: the largest message accepted, clamped to [12, 65535] (a
  // query needs far less than 64 KiB; the service may pass e.g. 4096).
  // max_buffered: bytes held that were not handed out yet, at least
  // max_message + 2. max_messages_per_feed: at most this many
  // messages per feed(); the rest stay buffered for the next call (feed({})
  // pulls them without new bytes).
  explicit TcpFramer(size_t max_message = kDefaultMaxMessage,
                     size_t max_buffered = kDefaultMaxBuffered,
                     size_t max_messages_per_feed = kDefaultMaxMessagesPerFeed);

  // Appends `bytes` and returns the messages now complete. Appending more
  // than room() bytes makes the stream invalid (buffer_full): read at most
  // room() bytes from the socket.
  Fed feed(std::span<const uint8_t> bytes);

  size_t buffered() const { return buffer_.size() - start_; }
  size_t room() const;
  bool invalid() const { return invalid_; }
  // Whether complete messages are waiting (call feed({}) to get them).
  bool hasMessage() const;

 private:
  size_t max_message_;
  size_t max_buffered_;
  size_t max_messages_per_feed_;
  std::vector<uint8_t> buffer_;
  size_t start_ = 0;  // bytes of buffer_ already handed out
  bool invalid_ = false;
  std::string_view reason_;
};

// `message` with its 2-byte length prefix; an error if it is over 65535 bytes.
Result<std::vector<uint8_t>> frameForTcp(std::span<const uint8_t> message);

}  // namespace tollgate::dns
