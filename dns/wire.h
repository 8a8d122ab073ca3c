// tollgate: internal to dns/
// Internal to dns/: domain-name reading (RFC 1035 §3.1, §4.1.4), name
// presentation, and an append-only writer for the messages this module
// builds. Untrusted bytes are read only through base/reader.h's Reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/reader.h"

namespace tollgate::dns::wire {

using ::tollgate::Reader;

// RFC 1035 §4.1.1 header flag bits.
inline constexpr uint16_t kFlagQr = 0x8000;
inline constexpr uint16_t kFlagAa = 0x0400;
inline constexpr uint16_t kFlagTc = 0x0200;
inline constexpr uint16_t kFlagRd = 0x0100;
inline constexpr uint16_t kFlagRa = 0x0080;
inline constexpr uint16_t kFlagCd = 0x0010;  // RFC 4035 §3.2.2
inline constexpr int kOpcodeShift = 11;
inline constexpr uint16_t kOpcodeMask = 0xf;
inline constexpr uint16_t kRcodeMask = 0xf;
inline constexpr uint16_t kOpcodeQuery = 0;
inline constexpr uint16_t kEdnsDoBit = 0x8000;  // RFC 3225, in the OPT TTL's low 16 bits

struct Header {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0;
  uint16_t ancount = 0;
  uint16_t nscount = 0;
  uint16_t arcount = 0;

  uint16_t opcode() const { return (flags >> kOpcodeShift) & kOpcodeMask; }
  uint16_t rcode() const { return flags & kRcodeMask; }
  bool has(uint16_t flag) const { return (flags & flag) != 0; }
};

// RFC 1035 §4.1.1: six 16-bit fields. Fails (reader untouched) on < 12 bytes.
bool readHeader(Reader& r, Header& out);
// A 32-bit big-endian integer (TTLs); fails leaving r untouched.
bool readU32(Reader& r, uint32_t& out);

enum class NameFault {
  kNone,
  kTruncated,     // ran out of bytes inside the name
  kPointer,       // a compression pointer where none is allowed
  kBadPointer,    // points forward, into itself, or into the header
  kTooManyJumps,  // more than kMaxPointerJumps pointers
  kLabelType,     // 0b01/0b10 label types (RFC 6891 §5, RFC 2673): unsupported
  kTooLong,       // more than 255 bytes once expanded (RFC 1035 §3.1)
};
std::string_view nameFaultReason(NameFault fault);

// Reads the domain name at r's position; r views bytes of `message` (the
// whole message, or a part of it such as one RR's RDATA). Compression
// pointers (when allowed) are offsets into `message`; each must point at or
// after the header and strictly below the start of the name part holding
// it, which makes targets strictly decrease: no loops, no forward
// references. On success out_wire holds the expanded name (original case,
// ending in the root label) and r is past the name as it sits at r's
// position; on failure r is untouched.
NameFault readName(std::span<const uint8_t> message, Reader& r, bool allow_pointers,
                   std::vector<uint8_t>& out_wire);

// ASCII-only case folding (RFC 4343): bytes other than A-Z are compared as is.
void lowerAscii(std::vector<uint8_t>& wire);
bool equalIgnoringCase(std::span<const uint8_t> a, std::span<const uint8_t> b);

// The presentation form of an expanded wire name, lower-cased, no trailing
// dot ("." for the root); bytes other than LDH and '_' as \DDD (RFC 1035
// §5.1), so the text maps back to exactly one name.
std::string presentName(std::span<const uint8_t> wire);

// Append-only builder for the messages this module writes.
class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) {
    out_.push_back(static_cast<uint8_t>(v >> 8));
    out_.push_back(static_cast<uint8_t>(v));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v));
  }
  void bytes(std::span<const uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void header(const Header& h) {
    u16(h.id);
    u16(h.flags);
    u16(h.qdcount);
    u16(h.ancount);
    u16(h.nscount);
    u16(h.arcount);
  }
  size_t size() const { return out_.size(); }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

// An OPT RR (RFC 6891 §6.1.2-3) with no options: owner root, CLASS the UDP
// payload size, TTL extended-rcode | version 0 | DO.
void writeOpt(Writer& w, uint16_t udp_size, uint8_t extended_rcode, bool dnssec_ok);

}  // namespace tollgate::dns::wire
