// parseQuery: a sandbox's DNS query, RFC 1035 §4.1 with RFC 9619 (QDCOUNT is
// one) and RFC 6891 (EDNS). The grammar this accepts:
//
//   query      = header question [opt-rr]            ; nothing after
//   header     = id flags qdcount(=1) ancount(=0) nscount(=0) arcount(<=1)
//   question   = qname qtype qclass                  ; §4.1.2
//   qname      = *label root                         ; §3.1, no pointers
//   opt-rr     = root type(=41) udp-size ext-rcode version flags rdata
//   rdata      = *(option-code option-length option-data)   ; RFC 6891 §6.1.2
#include <algorithm>

#include "base/hostname.h"
#include "dns/dns.h"
#include "dns/wire.h"

namespace tollgate::dns {
namespace {

using wire::Header;
using wire::NameFault;
using wire::Reader;

// RFC 6895 §3.1: 128-255 are meta-TYPEs and QTYPEs (TKEY, TSIG, IXFR,
// AXFR, MAILB, MAILA, ANY).
constexpr uint16_t kFirstMetaType = 128;
constexpr uint16_t kLastMetaType = 255;

QueryParse drop(std::string_view reason) {
  QueryParse p;
  p.outcome = QueryParse::Outcome::kDrop;
  p.reason = reason;
  return p;
}

QueryParse fail(Query q, Rcode rcode, std::string_view reason) {
  QueryParse p;
  p.outcome = QueryParse::Outcome::kError;
  p.query = std::move(q);
  p.rcode = rcode;
  p.reason = reason;
  return p;
}

// QNAME bytes -> Question::name and is_host_name.
void nameQuestion(Question& q) {
  std::string text = wire::presentName(q.name_wire);
  // A '\' means a byte outside LDH/'_' (a '.' inside a label included): not
  // a host name, and normalizeHostName must not see the escape as text.
  if (text != "." && text.find('\\') == std::string::npos) {
    if (auto host = normalizeHostName(text); host && !host->is_ip) {
      q.name = std::move(host->name);
      q.is_host_name = true;
      return;
    }
  }
  q.name = std::move(text);
  q.is_host_name = false;
}

// The single additional RR a query may carry, read structurally.
struct AdditionalRr {
  std::vector<uint8_t> owner;
  uint16_t type = 0;
  uint16_t rr_class = 0;
  uint32_t ttl = 0;
};

}  // namespace

size_t Query::maxUdpResponse() const {
  if (!edns.present) {
    return kClassicUdpSize;
  }
  return std::clamp<size_t>(edns.udp_size, kClassicUdpSize, kServerUdpPayload);
}

QueryParse parseQuery(std::span<const uint8_t> message) {
  Reader r(message);
  Header h;
  if (!wire::readHeader(r, h)) {
    return drop("short_header");
  }
  if (h.has(wire::kFlagQr)) {
    return drop("response");
  }
  Query q;
  q.id = h.id;
  q.opcode = static_cast<uint8_t>(h.opcode());
  q.rd = h.has(wire::kFlagRd);
  q.cd = h.has(wire::kFlagCd);
  // RFC 1035 §4.1.1: only standard queries; the sections of other opcodes
  // (NOTIFY, UPDATE, ...) are not parsed, so nothing is echoed.
  if (q.opcode != wire::kOpcodeQuery) {
    return fail(std::move(q), Rcode::kNotImp, "opcode");
  }
  // RFC 9619 §3: a QUERY has exactly one question.
  if (h.qdcount != 1) {
    return fail(std::move(q), Rcode::kFormErr, "qdcount");
  }

  // §4.1.2 question. A query has nothing earlier to point at: no pointers.
  const NameFault fault =
      wire::readName(message, r, /*allow_pointers=*/false, q.question.name_wire);
  if (fault != NameFault::kNone) {
    return fail(std::move(q), Rcode::kFormErr,
                fault == NameFault::kPointer ? "qname_pointer" : wire::nameFaultReason(fault));
  }
  if (!r.u16(q.question.qtype) || !r.u16(q.question.qclass)) {
    return fail(std::move(q), Rcode::kFormErr, "question_truncated");
  }
  nameQuestion(q.question);
  q.has_question = true;

  // §4.1.1: a query carries no answer or authority records; additional:
  // at most the OPT RR (RFC 6891 §6.1.1: more than one OPT is FORMERR).
  if (h.ancount != 0) {
    return fail(std::move(q), Rcode::kFormErr, "ancount");
  }
  if (h.nscount != 0) {
    return fail(std::move(q), Rcode::kFormErr, "nscount");
  }
  if (h.arcount > 1) {
    return fail(std::move(q), Rcode::kFormErr, "arcount");
  }

  std::optional<AdditionalRr> additional;
  bool options_ok = true;
  if (h.arcount == 1) {
    // §4.1.3 resource record.
    AdditionalRr rr;
    Reader rdata;
    const NameFault owner_fault = wire::readName(message, r, /*allow_pointers=*/false, rr.owner);
    if (owner_fault != NameFault::kNone) {
      return fail(std::move(q), Rcode::kFormErr, "additional_name");
    }
    if (!r.u16(rr.type) || !r.u16(rr.rr_class) || !wire::readU32(r, rr.ttl) ||
        !r.u16Prefixed(rdata)) {
      return fail(std::move(q), Rcode::kFormErr, "additional_truncated");
    }
    if (rr.type == kTypeOpt) {
      // RFC 6891 §6.1.2: {OPTION-CODE, OPTION-LENGTH, OPTION-DATA}*, filling
      // RDATA exactly. Contents (cookies, ECS, padding) are not used.
      while (!rdata.empty()) {
        uint16_t code = 0;
        Reader data;
        if (!rdata.u16(code) || !rdata.u16Prefixed(data)) {
          options_ok = false;
          break;
        }
      }
    }
    additional = std::move(rr);
  }
  if (!r.empty()) {
    return fail(std::move(q), Rcode::kFormErr, "trailing_bytes");
  }

  if (additional) {
    const AdditionalRr& rr = *additional;
    if (rr.type == kTypeTsig || rr.type == kTypeSig) {
      return fail(std::move(q), Rcode::kNotImp, "tsig");  // RFC 8945, RFC 2931: no keys here
    }
    if (rr.type != kTypeOpt) {
      return fail(std::move(q), Rcode::kFormErr, "additional_not_opt");
    }
    if (rr.owner.size() != 1) {
      return fail(std::move(q), Rcode::kFormErr, "opt_owner");  // RFC 6891 §6.1.2: root
    }
    if (!options_ok) {
      return fail(std::move(q), Rcode::kFormErr, "opt_options");
    }
    // RFC 6891 §6.1.3: TTL = EXTENDED-RCODE(8) VERSION(8) DO(1) Z(15).
    q.edns.present = true;
    q.edns.udp_size = rr.rr_class;
    q.edns.version = static_cast<uint8_t>(rr.ttl >> 16);
    q.edns.dnssec_ok = (rr.ttl & wire::kEdnsDoBit) != 0;
    if (q.edns.version != 0) {
      return fail(std::move(q), Rcode::kBadVers, "edns_version");
    }
  }

  const uint16_t qtype = q.question.qtype;
  if (qtype == 0 || qtype == kTypeOpt) {
    return fail(std::move(q), Rcode::kFormErr, "qtype");
  }
  if (qtype >= kFirstMetaType && qtype <= kLastMetaType) {
    return fail(std::move(q), Rcode::kNotImp, "qtype_meta");
  }
  if (q.question.qclass != kClassIn) {
    return fail(std::move(q), Rcode::kRefused, "qclass");
  }

  QueryParse p;
  p.outcome = QueryParse::Outcome::kOk;
  p.query = std::move(q);
  p.rcode = Rcode::kNoError;
  p.reason = "ok";
  return p;
}

}  // namespace tollgate::dns
