#include "dns/wire.h"

#include "dns/dns.h"

namespace tollgate::dns::wire {
namespace {

constexpr uint8_t kLabelTypeMask = 0xc0;
constexpr uint8_t kLabelTypeNormal = 0x00;
constexpr uint8_t kLabelTypePointer = 0xc0;
constexpr uint16_t kPointerOffsetMask = 0x3fff;

// Offset of r's next byte within message (r views a part of message).
size_t offsetIn(std::span<const uint8_t> message, const Reader& r) {
  return static_cast<size_t>(r.rest().data() - message.data());
}

bool isUpper(uint8_t c) { return c >= 'A' && c <= 'Z'; }
uint8_t toLower(uint8_t c) { return isUpper(c) ? static_cast<uint8_t>(c - 'A' + 'a') : c; }

}  // namespace

bool readHeader(Reader& r, Header& out) {
  Reader copy = r;
  Header h;
  if (!copy.u16(h.id) || !copy.u16(h.flags) || !copy.u16(h.qdcount) || !copy.u16(h.ancount) ||
      !copy.u16(h.nscount) || !copy.u16(h.arcount)) {
    return false;
  }
  r = copy;
  out = h;
  return true;
}

bool readU32(Reader& r, uint32_t& out) {
  Reader copy = r;
  uint16_t hi = 0;
  uint16_t lo = 0;
  if (!copy.u16(hi) || !copy.u16(lo)) {
    return false;
  }
  r = copy;
  out = (static_cast<uint32_t>(hi) << 16) | lo;
  return true;
}

std::string_view nameFaultReason(NameFault fault) {
  switch (fault) {
    case NameFault::kNone:
      return "ok";
    case NameFault::kTruncated:
      return "name_truncated";
    case NameFault::kPointer:
      return "name_pointer";
    case NameFault::kBadPointer:
      return "name_bad_pointer";
    case NameFault::kTooManyJumps:
      return "name_pointer_jumps";
    case NameFault::kLabelType:
      return "name_label_type";
    case NameFault::kTooLong:
      return "name_too_long";
  }
  return "name_invalid";
}

// RFC 1035 §3.1 (labels), §4.1.4 (message compression).
NameFault readName(std::span<const uint8_t> message, Reader& r, bool allow_pointers,
                   std::vector<uint8_t>& out_wire) {
  std::vector<uint8_t> name;
  Reader cur = r;
  Reader after_first_pointer;
  bool jumped = false;
  size_t part_start = offsetIn(message, r);
  size_t jumps = 0;
  for (;;) {
    uint8_t len = 0;
    if (!cur.u8(len)) {
      return NameFault::kTruncated;
    }
    const uint8_t type = len & kLabelTypeMask;
    if (type == kLabelTypePointer) {
      uint8_t low = 0;
      if (!allow_pointers) {
        return NameFault::kPointer;
      }
      if (!cur.u8(low)) {
        return NameFault::kTruncated;
      }
      const size_t target = ((static_cast<size_t>(len) << 8) | low) & kPointerOffsetMask;
      if (target < kHeaderSize || target >= part_start) {
        return NameFault::kBadPointer;
      }
      if (++jumps > kMaxPointerJumps) {
        return NameFault::kTooManyJumps;
      }
      if (!jumped) {
        after_first_pointer = cur;
        jumped = true;
      }
      part_start = target;
      cur = Reader(message.subspan(target));
      continue;
    }
    if (type != kLabelTypeNormal) {
      return NameFault::kLabelType;
    }
    if (len == 0) {
      name.push_back(0);
      break;
    }
    std::span<const uint8_t> label;
    if (!cur.bytes(len, label)) {
      return NameFault::kTruncated;
    }
    // This label's length byte and bytes, plus the root label still to come.
    if (name.size() + 1 + label.size() + 1 > kMaxNameWireLen) {
      return NameFault::kTooLong;
    }
    name.push_back(len);
    name.insert(name.end(), label.begin(), label.end());
  }
  r = jumped ? after_first_pointer : cur;
  out_wire = std::move(name);
  return NameFault::kNone;
}

void lowerAscii(std::vector<uint8_t>& wire) {
  // Length bytes are at most 63, never in 'A'..'Z' (65..90), so folding
  // every byte folds exactly the label bytes.
  for (uint8_t& c : wire) {
    c = toLower(c);
  }
}

bool equalIgnoringCase(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (toLower(a[i]) != toLower(b[i])) {
      return false;
    }
  }
  return true;
}

std::string presentName(std::span<const uint8_t> wire) {
  Reader r(wire);
  std::string out;
  for (;;) {
    Reader label;
    if (!r.u8Prefixed(label) || label.empty()) {
      break;  // the root label (or the end of a malformed name)
    }
    if (!out.empty()) {
      out.push_back('.');
    }
    uint8_t c = 0;
    while (label.u8(c)) {
      c = toLower(c);
      const bool plain = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (plain) {
        out.push_back(static_cast<char>(c));
      } else {
        out.push_back('\\');
        out.push_back(static_cast<char>('0' + c / 100));
        out.push_back(static_cast<char>('0' + (c / 10) % 10));
        out.push_back(static_cast<char>('0' + c % 10));
      }
    }
  }
  return out.empty() ? std::string(".") : out;
}

void writeOpt(Writer& w, uint16_t udp_size, uint8_t extended_rcode, bool dnssec_ok) {
  w.u8(0);  // owner: the root
  w.u16(kTypeOpt);
  w.u16(udp_size);
  w.u8(extended_rcode);
  w.u8(0);  // version
  w.u16(dnssec_ok ? kEdnsDoBit : 0);
  w.u16(0);  // RDLENGTH: no options
}

}  // namespace tollgate::dns::wire
