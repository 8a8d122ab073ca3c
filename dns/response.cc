// Responses tollgate sends to a sandbox (RFC 1035 §4.1), built only from
// parsed values: the question echoed, A/AAAA records, an OPT RR.
#include <algorithm>
#include <cstring>

#include "dns/dns.h"
#include "dns/wire.h"

namespace tollgate::dns {
namespace {

using wire::Header;
using wire::Reader;
using wire::Writer;

// The question always starts right after the header: answers name it with a
// compression pointer to offset 12 (RFC 1035 §4.1.4).
constexpr uint16_t kPointerToQuestion = 0xc000 | kHeaderSize;

constexpr uint16_t kMaxPlainRcode = 0xf;

uint16_t responseFlags(const Query& q, uint16_t rcode) {
  uint16_t flags = wire::kFlagQr | wire::kFlagRa;
  flags |= static_cast<uint16_t>((q.opcode & wire::kOpcodeMask) << wire::kOpcodeShift);
  if (q.rd) {
    flags |= wire::kFlagRd;
  }
  if (q.cd) {
    flags |= wire::kFlagCd;
  }
  return static_cast<uint16_t>(flags | (rcode & wire::kRcodeMask));
}

void writeQuestion(Writer& w, const Question& q) {
  w.bytes(q.name_wire);
  w.u16(q.qtype);
  w.u16(q.qclass);
}

// The whole response: header, the question echoed, one record per address
// (already filtered by the caller), the OPT when the query had one.
std::vector<uint8_t> build(const Query& q, Rcode rcode, std::span<const SockAddr> answers,
                           uint32_t ttl) {
  uint16_t code = static_cast<uint16_t>(rcode);
  if (code > kMaxPlainRcode && !q.edns.present) {
    code = static_cast<uint16_t>(Rcode::kServFail);
  }
  Writer w;
  Header h;
  h.id = q.id;
  h.flags = responseFlags(q, code);
  h.qdcount = q.has_question ? 1 : 0;
  h.ancount = static_cast<uint16_t>(answers.size());
  h.arcount = q.edns.present ? 1 : 0;
  w.header(h);
  if (q.has_question) {
    writeQuestion(w, q.question);
  }
  for (const SockAddr& a : answers) {
    w.u16(kPointerToQuestion);
    w.u16(a.isV4() ? kTypeA : kTypeAaaa);
    w.u16(kClassIn);
    w.u32(std::min(ttl, kMaxTtl));
    w.u16(static_cast<uint16_t>(a.addrLen()));
    w.bytes(std::span<const uint8_t>(a.addrBytes(), a.addrLen()));
  }
  if (q.edns.present) {
    wire::writeOpt(w, kServerUdpPayload, static_cast<uint8_t>(code >> 4), q.edns.dnssec_ok);
  }
  return w.take();
}

bool sameAddress(const SockAddr& a, const SockAddr& b) {
  return a.family() == b.family() && std::memcmp(a.addrBytes(), b.addrBytes(), a.addrLen()) == 0;
}

// Skips one resource record (RFC 1035 §4.1.3) and tells whether it is an
// OPT RR owned by the root (uncompressed).
bool skipRr(std::span<const uint8_t> message, Reader& r, bool& out_is_root_opt) {
  Reader copy = r;
  std::vector<uint8_t> owner;
  uint16_t type = 0;
  Reader rest;
  if (wire::readName(message, copy, /*allow_pointers=*/true, owner) != wire::NameFault::kNone ||
      !copy.u16(type) || !copy.skip(2 + 4) || !copy.u16Prefixed(rest)) {
    return false;
  }
  // A compressed owner would point into sections truncation may drop.
  out_is_root_opt = type == kTypeOpt && r.rest().front() == 0;
  r = copy;
  return true;
}

}  // namespace

std::string_view rcodeName(Rcode rcode) {
  switch (rcode) {
    case Rcode::kNoError:
      return "NOERROR";
    case Rcode::kFormErr:
      return "FORMERR";
    case Rcode::kServFail:
      return "SERVFAIL";
    case Rcode::kNxDomain:
      return "NXDOMAIN";
    case Rcode::kNotImp:
      return "NOTIMP";
    case Rcode::kRefused:
      return "REFUSED";
    case Rcode::kBadVers:
      return "BADVERS";
  }
  return "RCODE_OTHER";
}

std::vector<uint8_t> buildError(const Query& query, Rcode rcode) {
  return build(query, rcode, {}, 0);
}

std::vector<uint8_t> buildAnswer(const Query& query, std::span<const SockAddr> addresses,
                                 uint32_t ttl) {
  if (!query.has_question) {
    return buildError(query, Rcode::kServFail);
  }
  std::vector<SockAddr> answers;
  const uint16_t qtype = query.question.qtype;
  if (query.question.qclass == kClassIn && (qtype == kTypeA || qtype == kTypeAaaa)) {
    for (const SockAddr& a : addresses) {
      if (answers.size() == kMaxAnswerRecords) {
        break;
      }
      const bool family_matches = qtype == kTypeA ? a.isV4() : a.isV6();
      // RFC 2181 §5: an RRset holds no duplicate records.
      const bool seen = std::any_of(answers.begin(), answers.end(),
                                    [&](const SockAddr& b) { return sameAddress(a, b); });
      if (family_matches && !seen) {
        answers.push_back(a);
      }
    }
  }
  return build(query, Rcode::kNoError, answers, ttl);
}

std::vector<uint8_t> truncateForUdp(std::span<const uint8_t> response, size_t max_size) {
  max_size = std::max(max_size, kClassicUdpSize);
  if (response.size() <= max_size) {
    return std::vector<uint8_t>(response.begin(), response.end());
  }
  Reader r(response);
  Header h;
  if (!wire::readHeader(r, h)) {
    return std::vector<uint8_t>(response.begin(), response.end());
  }
  Header out_h = h;
  out_h.flags |= wire::kFlagTc;
  out_h.ancount = 0;
  out_h.nscount = 0;
  out_h.arcount = 0;

  // Question section, kept as is (RFC 1035 §4.1.2).
  const size_t question_start = kHeaderSize;
  bool ok = true;
  for (uint16_t i = 0; ok && i < h.qdcount; ++i) {
    std::vector<uint8_t> name;
    ok = wire::readName(response, r, /*allow_pointers=*/true, name) == wire::NameFault::kNone &&
         r.skip(4);
  }
  const size_t question_end = response.size() - r.remaining();
  // Answer and authority records are dropped; an OPT RR in the additional
  // section is kept (RFC 6891 §7: the client still learns our EDNS state).
  for (uint32_t i = 0; ok && i < uint32_t{h.ancount} + h.nscount; ++i) {
    bool is_opt = false;
    ok = skipRr(response, r, is_opt);
  }
  std::span<const uint8_t> opt;
  for (uint16_t i = 0; ok && i < h.arcount; ++i) {
    const size_t start = response.size() - r.remaining();
    bool is_opt = false;
    ok = skipRr(response, r, is_opt);
    if (ok && is_opt && opt.empty()) {
      opt = response.subspan(start, response.size() - r.remaining() - start);
    }
  }

  Writer w;
  if (!ok) {
    out_h.qdcount = 0;
    w.header(out_h);
    return w.take();
  }
  out_h.arcount = opt.empty() ? 0 : 1;
  w.header(out_h);
  w.bytes(response.subspan(question_start, question_end - question_start));
  w.bytes(opt);
  return w.take();
}

}  // namespace tollgate::dns
