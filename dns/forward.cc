// Forwarding: tollgate's own upstream queries and what it takes from the
// responses (RFC 1035 §4.1, §4.1.4 compression; RFC 2308 negative TTLs).
// The upstream message is reduced to {rcode, addresses, CNAME targets, TTL};
// its bytes never reach a sandbox (see dns.h).
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "base/hostname.h"
#include "dns/dns.h"
#include "dns/wire.h"

namespace tollgate::dns {
namespace {

using wire::Header;
using wire::NameFault;
using wire::Reader;
using wire::Writer;

constexpr uint32_t kTtlTopBit = 0x80000000;
constexpr size_t kSoaFixedLen = 20;  // SERIAL REFRESH RETRY EXPIRE MINIMUM

enum class Section { kAnswer, kAuthority, kAdditional };

// One resource record of the response, with what this module uses of it.
struct Rr {
  Section section = Section::kAnswer;
  std::vector<uint8_t> owner;  // expanded, lower-cased
  uint16_t type = 0;
  uint16_t rr_class = 0;
  uint32_t ttl = 0;                  // RFC 2181 §8 applied
  std::vector<uint8_t> target;       // CNAME: expanded, lower-cased
  std::span<const uint8_t> address;  // A: 4 bytes, AAAA: 16
  uint32_t soa_minimum = 0;
};

Error fail(std::string what) { return makeError("DNS response: " + std::move(what)); }

std::string nameError(std::string_view where, NameFault f) {
  return std::string(where) + ": " + std::string(wire::nameFaultReason(f));
}

// RFC 1035 §4.1.3, with the RDATA of A, AAAA (RFC 3596 §2.2), CNAME and SOA
// (§3.3.1, §3.3.13) checked to fill RDLENGTH exactly.
Result<Rr> readRr(std::span<const uint8_t> message, Reader& r, Section section) {
  Rr rr;
  rr.section = section;
  Reader rdata;
  if (NameFault f = wire::readName(message, r, true, rr.owner); f != NameFault::kNone) {
    return fail(nameError("record owner", f));
  }
  if (!r.u16(rr.type) || !r.u16(rr.rr_class) || !wire::readU32(r, rr.ttl) ||
      !r.u16Prefixed(rdata)) {
    return fail("record truncated");
  }
  wire::lowerAscii(rr.owner);
  if (rr.type == kTypeOpt) {
    return rr;  // TTL holds flags, not a TTL; checked by the caller
  }
  if ((rr.ttl & kTtlTopBit) != 0) {
    rr.ttl = 0;
  }
  if (rr.rr_class != kClassIn) {
    return rr;
  }
  switch (rr.type) {
    case kTypeA:
    case kTypeAaaa: {
      const size_t len = rr.type == kTypeA ? 4 : 16;
      if (!rdata.bytes(len, rr.address) || !rdata.empty()) {
        return fail("address record of the wrong length");
      }
      break;
    }
    case kTypeCname:
      if (NameFault f = wire::readName(message, rdata, true, rr.target); f != NameFault::kNone) {
        return fail(nameError("CNAME target", f));
      }
      if (!rdata.empty()) {
        return fail("CNAME record with bytes after its name");
      }
      wire::lowerAscii(rr.target);
      break;
    case kTypeSoa: {
      std::vector<uint8_t> mname;
      std::vector<uint8_t> rname;
      if (NameFault f = wire::readName(message, rdata, true, mname); f != NameFault::kNone) {
        return fail(nameError("SOA MNAME", f));
      }
      if (NameFault f = wire::readName(message, rdata, true, rname); f != NameFault::kNone) {
        return fail(nameError("SOA RNAME", f));
      }
      // SERIAL REFRESH RETRY EXPIRE, then MINIMUM.
      if (!rdata.skip(kSoaFixedLen - 4) || !wire::readU32(rdata, rr.soa_minimum) ||
          !rdata.empty()) {
        return fail("SOA record of the wrong length");
      }
      if ((rr.soa_minimum & kTtlTopBit) != 0) {
        rr.soa_minimum = 0;
      }
      break;
    }
    default:
      break;  // not looked at: never reaches a sandbox
  }
  return rr;
}

SockAddr toSockAddr(std::span<const uint8_t> address) {
  SockAddr out;
  if (address.size() == 4) {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    std::memcpy(&v4.sin_addr, address.data(), 4);
    out = *SockAddr::fromSockaddr(reinterpret_cast<const sockaddr*>(&v4), sizeof(v4));
  } else {
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    std::memcpy(&v6.sin6_addr, address.data(), 16);
    out = *SockAddr::fromSockaddr(reinterpret_cast<const sockaddr*>(&v6), sizeof(v6));
  }
  return out;
}

}  // namespace

std::optional<Question> questionFor(std::string_view host, uint16_t qtype) {
  std::optional<HostName> h = normalizeHostName(host);
  if (!h || h->is_ip) {
    return std::nullopt;
  }
  Question q;
  q.name = h->name;
  q.is_host_name = true;
  q.qtype = qtype;
  q.qclass = kClassIn;
  std::string_view rest = h->name;
  // normalizeHostName guarantees 1-63 byte labels and at most 253 bytes.
  while (!rest.empty()) {
    const size_t dot = rest.find('.');
    const std::string_view label = rest.substr(0, dot);
    q.name_wire.push_back(static_cast<uint8_t>(label.size()));
    q.name_wire.insert(q.name_wire.end(), label.begin(), label.end());
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
  }
  q.name_wire.push_back(0);
  return q;
}

std::vector<uint8_t> buildQuery(uint16_t id, const Question& question, uint16_t edns_udp_size) {
  Writer w;
  Header h;
  h.id = id;
  h.flags = wire::kFlagRd;
  h.qdcount = 1;
  h.arcount = edns_udp_size != 0 ? 1 : 0;
  w.header(h);
  std::vector<uint8_t> name = question.name_wire;
  wire::lowerAscii(name);
  w.bytes(name);
  w.u16(question.qtype);
  w.u16(question.qclass);
  if (edns_udp_size != 0) {
    wire::writeOpt(w, edns_udp_size, 0, false);
  }
  return w.take();
}

Result<ForwardedAnswer> parseResponse(std::span<const uint8_t> message, uint16_t expected_id,
                                      const Question& expected) {
  Reader r(message);
  Header h;
  if (!wire::readHeader(r, h)) {
    return fail("shorter than a header");
  }
  if (h.id != expected_id) {
    return fail("unexpected id");
  }
  if (!h.has(wire::kFlagQr)) {
    return fail("not a response (QR=0)");
  }
  if (h.opcode() != wire::kOpcodeQuery) {
    return fail("opcode is not QUERY");
  }
  // The question must be the one asked: an answer to anything else is not
  // an answer about this name.
  if (h.qdcount != 1) {
    return fail("QDCOUNT is not 1");
  }
  std::vector<uint8_t> qname;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  if (NameFault f = wire::readName(message, r, true, qname); f != NameFault::kNone) {
    return fail(nameError("question", f));
  }
  if (!r.u16(qtype) || !r.u16(qclass)) {
    return fail("question truncated");
  }
  if (!wire::equalIgnoringCase(qname, expected.name_wire) || qtype != expected.qtype ||
      qclass != expected.qclass) {
    return fail("question does not match the query");
  }

  ForwardedAnswer out;
  if (h.has(wire::kFlagTc)) {
    // The sections may be cut anywhere: nothing in them is used.
    out.rcode = static_cast<Rcode>(h.rcode());
    out.truncated = true;
    return out;
  }

  std::vector<Rr> rrs;
  const struct {
    Section section;
    uint16_t count;
  } sections[] = {{Section::kAnswer, h.ancount},
                  {Section::kAuthority, h.nscount},
                  {Section::kAdditional, h.arcount}};
  uint16_t extended_rcode = 0;
  bool seen_opt = false;
  for (const auto& s : sections) {
    for (uint16_t i = 0; i < s.count; ++i) {
      Result<Rr> rr = readRr(message, r, s.section);
      if (!rr) {
        return rr.error();
      }
      if (rr->type == kTypeOpt) {
        // RFC 6891 §6.1.1: one OPT, in the additional section, owned by root.
        if (s.section != Section::kAdditional || seen_opt || rr->owner.size() != 1) {
          return fail("misplaced or repeated OPT record");
        }
        seen_opt = true;
        extended_rcode = static_cast<uint16_t>(rr->ttl >> 24);
        continue;
      }
      rrs.push_back(std::move(*rr));
    }
  }
  if (!r.empty()) {
    return fail("trailing bytes");
  }
  out.rcode = static_cast<Rcode>((extended_rcode << 4) | h.rcode());
  if (out.rcode != Rcode::kNoError && out.rcode != Rcode::kNxDomain) {
    return out;
  }

  // Follow the chain from the question name (RFC 1034 §3.6.2, §4.3.2):
  // addresses of the QTYPE owned by the current name end it; otherwise its
  // CNAME leads on. Records owned by other names are ignored.
  const uint16_t want = expected.qtype;
  std::vector<uint8_t> current = qname;
  wire::lowerAscii(current);
  std::vector<std::vector<uint8_t>> visited = {current};
  uint32_t ttl = kMaxTtl;
  for (;;) {
    if (out.rcode == Rcode::kNoError && (want == kTypeA || want == kTypeAaaa)) {
      for (const Rr& rr : rrs) {
        if (rr.section == Section::kAnswer && rr.rr_class == kClassIn && rr.type == want &&
            rr.owner == current) {
          out.addresses.push_back(toSockAddr(rr.address));
          ttl = std::min(ttl, rr.ttl);
        }
      }
      if (!out.addresses.empty()) {
        break;
      }
    }
    const Rr* cname = nullptr;
    for (const Rr& rr : rrs) {
      if (rr.section == Section::kAnswer && rr.rr_class == kClassIn && rr.type == kTypeCname &&
          rr.owner == current) {
        if (cname != nullptr) {
          return fail("several CNAMEs for one name");  // RFC 2181 §10.1
        }
        cname = &rr;
      }
    }
    if (cname == nullptr) {
      break;
    }
    if (out.cname_chain.size() == kMaxCnameChain) {
      return fail("CNAME chain longer than " + std::to_string(kMaxCnameChain));
    }
    if (std::find(visited.begin(), visited.end(), cname->target) != visited.end()) {
      return fail("CNAME loop");
    }
    ttl = std::min(ttl, cname->ttl);
    current = cname->target;
    visited.push_back(current);
    out.cname_chain.push_back(wire::presentName(current));
  }

  if (out.addresses.empty()) {
    // RFC 2308 §5: a negative answer is cached for min(SOA TTL, MINIMUM);
    // without an SOA it is not cached.
    const auto soa = std::find_if(rrs.begin(), rrs.end(), [](const Rr& rr) {
      return rr.section == Section::kAuthority && rr.rr_class == kClassIn && rr.type == kTypeSoa;
    });
    ttl = soa == rrs.end() ? 0 : std::min({ttl, soa->ttl, soa->soa_minimum});
  }
  out.ttl = ttl;
  return out;
}

}  // namespace tollgate::dns
