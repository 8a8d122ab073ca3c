// Test helpers for dns/: build DNS messages from parameters (not hex blobs),
// remember where every length and count byte went so tests can corrupt each
// one, read the captures under tests/data/dns/, and print results for gtest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dns/dns.h"

namespace tollgate::dns {

// gtest printers (found by ADL).
void PrintTo(Rcode r, std::ostream* os);
void PrintTo(const Question& q, std::ostream* os);
void PrintTo(const Query& q, std::ostream* os);
void PrintTo(const QueryParse& p, std::ostream* os);

namespace testwire {

using Bytes = std::vector<uint8_t>;

// Header flag bits (RFC 1035 §4.1.1), for building test messages.
constexpr uint16_t kQr = 0x8000;
constexpr uint16_t kAa = 0x0400;
constexpr uint16_t kTc = 0x0200;
constexpr uint16_t kRd = 0x0100;
constexpr uint16_t kRa = 0x0080;
constexpr uint16_t kZ = 0x0040;
constexpr uint16_t kAd = 0x0020;
constexpr uint16_t kCd = 0x0010;
constexpr uint16_t opcodeBits(uint16_t opcode) { return static_cast<uint16_t>(opcode << 11); }

// "www.example.com" (or "www.example.com.") -> wire labels ending in the
// root; "" and "." -> the root alone. Splits on '.', nothing else special.
Bytes name(std::string_view dotted);
// Labels given one by one (any bytes, including '.'), then the root.
Bytes labels(const std::vector<std::string>& labels);
// A compression pointer (0xC000 | offset), optionally after some labels.
Bytes pointer(uint16_t offset, const Bytes& before = {});

struct RrSpec {
  Bytes owner;
  uint16_t type = kTypeA;
  uint16_t rr_class = kClassIn;
  uint32_t ttl = 300;
  Bytes rdata;
  std::optional<uint16_t> rdlength;  // override the RDLENGTH written
};
RrSpec a(const Bytes& owner, std::string_view ipv4, uint32_t ttl = 300);
RrSpec aaaa(const Bytes& owner, std::string_view ipv6, uint32_t ttl = 300);
RrSpec cname(const Bytes& owner, const Bytes& target, uint32_t ttl = 300);
RrSpec soa(const Bytes& owner, uint32_t ttl, uint32_t minimum);
RrSpec txt(const Bytes& owner, std::string_view text, uint32_t ttl = 300);

struct OptSpec {
  uint16_t udp_size = 1232;
  uint8_t extended_rcode = 0;
  uint8_t version = 0;
  bool dnssec_ok = false;
  std::vector<std::pair<uint16_t, Bytes>> options;
};
RrSpec opt(const OptSpec& spec = {});
// An RFC 7873 client cookie option, as dig sends.
std::pair<uint16_t, Bytes> cookieOption();

struct QuestionSpec {
  Bytes name;
  uint16_t qtype = kTypeA;
  uint16_t qclass = kClassIn;
  bool omit_type_class = false;  // a question cut after its name
};

struct MessageSpec {
  uint16_t id = 0x1234;
  uint16_t flags = kRd;
  std::vector<QuestionSpec> questions = {{name("example.com")}};
  std::vector<RrSpec> answers;
  std::vector<RrSpec> authority;
  std::vector<RrSpec> additional;
  // Counts written instead of the real ones, when set.
  std::optional<uint16_t> qdcount, ancount, nscount, arcount;
  Bytes trailing;
};

// A query for `host` (RD set), optionally with an OPT RR.
MessageSpec query(std::string_view host, uint16_t qtype = kTypeA,
                  std::optional<OptSpec> edns = std::nullopt);
// A response to query(host, qtype) with these answers (QR, RD, RA set).
MessageSpec response(std::string_view host, uint16_t qtype, std::vector<RrSpec> answers,
                     uint16_t rcode = 0);

// The message bytes. Offsets of every count field, label length byte,
// RDLENGTH byte and EDNS option length byte are appended to length_offsets.
Bytes build(const MessageSpec& spec, std::vector<size_t>* length_offsets = nullptr);

// The question of query(host, qtype) as parseQuery / questionFor give it.
Question question(std::string_view host, uint16_t qtype = kTypeA);

Bytes concat(Bytes a, std::span<const uint8_t> b);
// A file under TOLLGATE_TEST_DATA/dns/; empty (and a test failure) if it
// cannot be read.
Bytes readCapture(const std::string& file);
SockAddr ip(std::string_view text);
std::vector<std::string> ips(const std::vector<SockAddr>& addrs);

// Big-endian field readers for checking built messages.
uint16_t be16(std::span<const uint8_t> b, size_t offset);
uint32_t be32(std::span<const uint8_t> b, size_t offset);

}  // namespace testwire
}  // namespace tollgate::dns
