#include "wire_util.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

namespace tollgate::dns {

void PrintTo(Rcode r, std::ostream* os) {
  *os << rcodeName(r) << "(" << static_cast<int>(r) << ")";
}

void PrintTo(const Question& q, std::ostream* os) {
  *os << "{name=\"" << q.name << "\" host=" << q.is_host_name << " type=" << q.qtype
      << " class=" << q.qclass << " wire=" << q.name_wire.size() << "B}";
}

void PrintTo(const Query& q, std::ostream* os) {
  *os << "{id=" << q.id << " opcode=" << int{q.opcode} << " rd=" << q.rd << " cd=" << q.cd;
  if (q.has_question) {
    *os << " q=";
    PrintTo(q.question, os);
  }
  if (q.edns.present) {
    *os << " edns={v" << int{q.edns.version} << " udp=" << q.edns.udp_size
        << " do=" << q.edns.dnssec_ok << "}";
  }
  *os << "}";
}

void PrintTo(const QueryParse& p, std::ostream* os) {
  static const char* const kOutcomes[] = {"ok", "error", "drop"};
  *os << kOutcomes[static_cast<int>(p.outcome)] << " ";
  PrintTo(p.rcode, os);
  *os << " reason=" << p.reason << " ";
  PrintTo(p.query, os);
}

namespace testwire {
namespace {

class Out {
 public:
  explicit Out(std::vector<size_t>* offsets) : offsets_(offsets) {}
  void u8(uint8_t v) { b_.push_back(v); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v >> 8));
    u8(static_cast<uint8_t>(v));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v));
  }
  void bytes(std::span<const uint8_t> v) { b_.insert(b_.end(), v.begin(), v.end()); }
  void markLen(size_t len_len) {
    if (offsets_ != nullptr) {
      for (size_t i = 0; i < len_len; ++i) {
        offsets_->push_back(b_.size() + i);
      }
    }
  }
  // A name: every label length byte is a length byte (pointers are not).
  void name(const Bytes& wire) {
    size_t i = 0;
    while (i < wire.size()) {
      const uint8_t len = wire[i];
      if ((len & 0xc0) != 0) {
        break;  // pointer or unknown label type: the rest is copied as is
      }
      markLen(1);
      u8(len);
      ++i;
      if (len == 0) {
        break;
      }
      const size_t n = std::min<size_t>(len, wire.size() - i);
      bytes(std::span<const uint8_t>(wire).subspan(i, n));
      i += n;
    }
    bytes(std::span<const uint8_t>(wire).subspan(i));
  }
  void rr(const RrSpec& rr) {
    name(rr.owner);
    u16(rr.type);
    u16(rr.rr_class);
    u32(rr.ttl);
    markLen(2);
    u16(rr.rdlength.value_or(static_cast<uint16_t>(rr.rdata.size())));
    if (rr.type == kTypeOpt) {
      // Options: code(2) length(2) data.
      size_t i = 0;
      while (i + 4 <= rr.rdata.size()) {
        const size_t len = (size_t{rr.rdata[i + 2]} << 8) | rr.rdata[i + 3];
        bytes(std::span<const uint8_t>(rr.rdata).subspan(i, 2));
        markLen(2);
        bytes(std::span<const uint8_t>(rr.rdata).subspan(i + 2, 2));
        i += 4;
        const size_t n = std::min(len, rr.rdata.size() - i);
        bytes(std::span<const uint8_t>(rr.rdata).subspan(i, n));
        i += n;
      }
      bytes(std::span<const uint8_t>(rr.rdata).subspan(i));
      return;
    }
    bytes(rr.rdata);
  }
  Bytes take() { return std::move(b_); }

 private:
  Bytes b_;
  std::vector<size_t>* offsets_;
};

Bytes be(uint32_t v, size_t n) {
  Bytes out;
  for (size_t i = n; i-- > 0;) {
    out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  return out;
}

}  // namespace

Bytes name(std::string_view dotted) {
  std::vector<std::string> parts;
  if (!dotted.empty() && dotted.back() == '.') {
    dotted.remove_suffix(1);
  }
  while (!dotted.empty()) {
    const size_t dot = dotted.find('.');
    parts.emplace_back(dotted.substr(0, dot));
    dotted = dot == std::string_view::npos ? std::string_view() : dotted.substr(dot + 1);
  }
  return labels(parts);
}

Bytes labels(const std::vector<std::string>& ls) {
  Bytes out;
  for (const std::string& l : ls) {
    out.push_back(static_cast<uint8_t>(l.size()));
    out.insert(out.end(), l.begin(), l.end());
  }
  out.push_back(0);
  return out;
}

Bytes pointer(uint16_t offset, const Bytes& before) {
  Bytes out = before;
  if (!out.empty() && out.back() == 0) {
    out.pop_back();  // labels() ends in the root; the pointer replaces it
  }
  out.push_back(static_cast<uint8_t>(0xc0 | (offset >> 8)));
  out.push_back(static_cast<uint8_t>(offset));
  return out;
}

RrSpec a(const Bytes& owner, std::string_view ipv4, uint32_t ttl) {
  const SockAddr addr = ip(ipv4);
  return RrSpec{owner, kTypeA, kClassIn, ttl, Bytes(addr.addrBytes(), addr.addrBytes() + 4), {}};
}

RrSpec aaaa(const Bytes& owner, std::string_view ipv6, uint32_t ttl) {
  const SockAddr addr = ip(ipv6);
  return RrSpec{owner, kTypeAaaa, kClassIn, ttl, Bytes(addr.addrBytes(), addr.addrBytes() + 16),
                {}};
}

RrSpec cname(const Bytes& owner, const Bytes& target, uint32_t ttl) {
  return RrSpec{owner, kTypeCname, kClassIn, ttl, target, {}};
}

RrSpec soa(const Bytes& owner, uint32_t ttl, uint32_t minimum) {
  Bytes rdata = concat(name("ns.example"), name("hostmaster.example"));
  for (uint32_t v : {2024010101u, 3600u, 600u, 86400u, minimum}) {
    rdata = concat(rdata, be(v, 4));
  }
  return RrSpec{owner, kTypeSoa, kClassIn, ttl, rdata, {}};
}

RrSpec txt(const Bytes& owner, std::string_view text, uint32_t ttl) {
  Bytes rdata = {static_cast<uint8_t>(text.size())};
  rdata.insert(rdata.end(), text.begin(), text.end());
  return RrSpec{owner, kTypeTxt, kClassIn, ttl, rdata, {}};
}

RrSpec opt(const OptSpec& spec) {
  Bytes rdata;
  for (const auto& [code, data] : spec.options) {
    rdata = concat(rdata, be(code, 2));
    rdata = concat(rdata, be(static_cast<uint32_t>(data.size()), 2));
    rdata = concat(rdata, data);
  }
  const uint32_t ttl = (uint32_t{spec.extended_rcode} << 24) | (uint32_t{spec.version} << 16) |
                       (spec.dnssec_ok ? 0x8000u : 0u);
  return RrSpec{name("."), kTypeOpt, spec.udp_size, ttl, rdata, {}};
}

std::pair<uint16_t, Bytes> cookieOption() { return {10, Bytes{1, 2, 3, 4, 5, 6, 7, 8}}; }

MessageSpec query(std::string_view host, uint16_t qtype, std::optional<OptSpec> edns) {
  MessageSpec m;
  m.questions = {{name(host), qtype, kClassIn}};
  if (edns) {
    m.additional.push_back(opt(*edns));
  }
  return m;
}

MessageSpec response(std::string_view host, uint16_t qtype, std::vector<RrSpec> answers,
                     uint16_t rcode) {
  MessageSpec m = query(host, qtype);
  m.flags = static_cast<uint16_t>(kQr | kRd | kRa | (rcode & 0xf));
  m.answers = std::move(answers);
  return m;
}

Bytes build(const MessageSpec& spec, std::vector<size_t>* length_offsets) {
  Out o(length_offsets);
  o.u16(spec.id);
  o.u16(spec.flags);
  const auto count = [&](std::optional<uint16_t> forced, size_t real) {
    o.markLen(2);
    o.u16(forced.value_or(static_cast<uint16_t>(real)));
  };
  count(spec.qdcount, spec.questions.size());
  count(spec.ancount, spec.answers.size());
  count(spec.nscount, spec.authority.size());
  count(spec.arcount, spec.additional.size());
  for (const QuestionSpec& q : spec.questions) {
    o.name(q.name);
    if (!q.omit_type_class) {
      o.u16(q.qtype);
      o.u16(q.qclass);
    }
  }
  for (const auto* section : {&spec.answers, &spec.authority, &spec.additional}) {
    for (const RrSpec& rr : *section) {
      o.rr(rr);
    }
  }
  o.bytes(spec.trailing);
  return o.take();
}

Question question(std::string_view host, uint16_t qtype) {
  std::optional<Question> q = questionFor(host, qtype);
  EXPECT_TRUE(q.has_value()) << host;
  return q.value_or(Question{});
}

Bytes concat(Bytes a, std::span<const uint8_t> b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Bytes readCapture(const std::string& file) {
  const std::string path = std::string(TOLLGATE_TEST_DATA) + "/dns/" + file;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return {};
  }
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

SockAddr ip(std::string_view text) {
  std::optional<SockAddr> a = SockAddr::parseIp(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(SockAddr{});
}

std::vector<std::string> ips(const std::vector<SockAddr>& addrs) {
  std::vector<std::string> out;
  for (const SockAddr& a : addrs) {
    out.push_back(a.ip());
  }
  return out;
}

uint16_t be16(std::span<const uint8_t> b, size_t offset) {
  return static_cast<uint16_t>((b[offset] << 8) | b[offset + 1]);
}

uint32_t be32(std::span<const uint8_t> b, size_t offset) {
  return (uint32_t{be16(b, offset)} << 16) | be16(b, offset + 2);
}

}  // namespace testwire
}  // namespace tollgate::dns
