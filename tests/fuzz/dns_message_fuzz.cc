// libFuzzer target for dns/: feeds each input as a sandbox query, as an
// upstream response (to the question the input itself carries), to
// truncateForUdp and, cut at input-derived points, to a TcpFramer; checks the
// contracts of dns.h and that whatever tollgate builds from a result reads
// back to the same result.
//
//   build: cmake -DTOLLGATE_FUZZ=ON (clang); seeds: tests/fuzz/corpus/dns_message/
//   run:   ./dns_message_fuzz -max_len=4096 NEW_CORPUS_DIR tests/fuzz/corpus/dns_message
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "dns/dns.h"

namespace {

using tollgate::SockAddr;
using tollgate::dns::buildAnswer;
using tollgate::dns::buildError;
using tollgate::dns::ForwardedAnswer;
using tollgate::dns::frameForTcp;
using tollgate::dns::kClassIn;
using tollgate::dns::kHeaderSize;
using tollgate::dns::kMaxCnameChain;
using tollgate::dns::kMaxNameWireLen;
using tollgate::dns::kMaxTtl;
using tollgate::dns::kTypeA;
using tollgate::dns::kTypeAaaa;
using tollgate::dns::parseQuery;
using tollgate::dns::parseResponse;
using tollgate::dns::Query;
using tollgate::dns::QueryParse;
using tollgate::dns::Rcode;
using tollgate::dns::TcpFramer;
using tollgate::dns::truncateForUdp;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "dns_message_fuzz: violated: %s\n", what);
    std::abort();
  }
}

uint16_t be16(std::span<const uint8_t> b, size_t off) {
  return static_cast<uint16_t>((b[off] << 8) | b[off + 1]);
}

// What tollgate sends back for a query must read back as an answer to it.
void checkOwnAnswers(const Query& q, const std::vector<SockAddr>& addrs, uint32_t ttl) {
  const std::vector<uint8_t> answer = buildAnswer(q, addrs, ttl);
  const std::vector<uint8_t> udp = truncateForUdp(answer, q.maxUdpResponse());
  check(udp.size() <= q.maxUdpResponse(), "own answer fits the client's UDP size");
  tollgate::Result<ForwardedAnswer> back = parseResponse(answer, q.id, q.question);
  check(back.ok(), "own answer parses");
  check(back->rcode == Rcode::kNoError, "own answer is NOERROR");
  check(!back->truncated && back->cname_chain.empty(), "own answer is plain");
  tollgate::Result<ForwardedAnswer> back_udp = parseResponse(udp, q.id, q.question);
  check(back_udp.ok(), "own truncated answer parses");
  const tollgate::dns::Rcode err = Rcode::kRefused;
  tollgate::Result<ForwardedAnswer> refused = parseResponse(buildError(q, err), q.id, q.question);
  check(refused.ok() && refused->rcode == err, "own error parses");
}

void fuzzQuery(std::span<const uint8_t> in) {
  const QueryParse p = parseQuery(in);
  switch (p.outcome) {
    case QueryParse::Outcome::kDrop:
      check(in.size() < kHeaderSize || (in[2] & 0x80) != 0, "drop only short or QR=1");
      return;
    case QueryParse::Outcome::kError:
      check(p.rcode != Rcode::kNoError && !p.reason.empty(), "error has rcode and reason");
      check(buildError(p.query, p.rcode).size() >= kHeaderSize, "error answer has a header");
      break;
    case QueryParse::Outcome::kOk:
      check(p.query.has_question, "ok has a question");
      check(p.query.question.qclass == kClassIn, "ok is class IN");
      check(p.query.question.name_wire.size() <= kMaxNameWireLen, "name within 255");
      check(!p.query.edns.present || p.query.edns.version == 0, "ok EDNS is version 0");
      break;
  }
  if (p.query.has_question) {
    const std::vector<SockAddr> addrs = {*SockAddr::parseIp("192.0.2.1"),
                                         *SockAddr::parseIp("2001:db8::1")};
    checkOwnAnswers(p.query, addrs, 300);
  }
}

void fuzzResponse(std::span<const uint8_t> in) {
  if (in.size() < kHeaderSize) {
    return;
  }
  // The question the input carries, read as a query: QR cleared, one
  // question, no other records; the rest becomes trailing bytes, which
  // parseQuery reports only after it parsed the question.
  std::vector<uint8_t> as_query(in.begin(), in.end());
  as_query[2] &= 0x7f;
  const uint8_t counts[8] = {0, 1, 0, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < 8; ++i) {
    as_query[4 + i] = counts[i];
  }
  const QueryParse asked = parseQuery(as_query);
  if (!asked.query.has_question) {
    return;
  }
  const uint16_t id = be16(in, 0);
  tollgate::Result<ForwardedAnswer> r = parseResponse(in, id, asked.query.question);
  if (!r.ok()) {
    check(!r.message().empty(), "errors have a message");
    return;
  }
  const uint16_t qtype = asked.query.question.qtype;
  check(!r->truncated || r->addresses.empty(), "truncated has no addresses");
  check(r->cname_chain.size() <= kMaxCnameChain, "CNAME chain bounded");
  check(r->ttl <= kMaxTtl, "TTL bounded");
  check(r->addresses.empty() || r->rcode == Rcode::kNoError, "addresses only with NOERROR");
  for (const SockAddr& a : r->addresses) {
    check(qtype == kTypeA ? a.isV4() : (qtype == kTypeAaaa && a.isV6()), "family matches QTYPE");
    check(a.port() == 0, "no port");
  }
  check(parseResponse(in, static_cast<uint16_t>(id + 1), asked.query.question).ok() == false,
        "another id is refused");
  Query q = asked.query;
  q.edns = {};
  q.opcode = 0;
  checkOwnAnswers(q, r->addresses, r->ttl);
}

void fuzzTruncate(std::span<const uint8_t> in) {
  const std::vector<uint8_t> out = truncateForUdp(in, 512);
  if (in.size() <= 512) {
    check(out.size() == in.size(), "small messages unchanged");
    return;
  }
  check(out.size() <= in.size(), "truncation never grows");
  if (out.size() >= kHeaderSize) {
    check((out[2] & 0x02) != 0, "TC set");
    check(be16(out, 6) == 0 && be16(out, 8) == 0, "answer and authority dropped");
  }
}

void fuzzTcp(std::span<const uint8_t> in) {
  // Reference: the messages a stream holds, read in one go.
  std::vector<std::vector<uint8_t>> expected;
  bool expect_invalid = false;
  for (size_t off = 0; off + 2 <= in.size();) {
    const size_t len = be16(in, off);
    if (len < kHeaderSize) {
      expect_invalid = true;
      break;
    }
    if (off + 2 + len > in.size()) {
      break;
    }
    expected.emplace_back(in.begin() + static_cast<std::ptrdiff_t>(off + 2),
                          in.begin() + static_cast<std::ptrdiff_t>(off + 2 + len));
    off += 2 + len;
  }
  const size_t step = in.empty() ? 1 : 1 + in[0] % 37;
  TcpFramer f(tollgate::dns::kMaxTcpMessage, TcpFramer::kDefaultMaxBuffered, 3);
  std::vector<std::vector<uint8_t>> got;
  bool invalid = false;
  for (size_t off = 0; off < in.size() && !invalid; off += step) {
    const size_t n = step < in.size() - off ? step : in.size() - off;
    TcpFramer::Fed fed = f.feed(in.subspan(off, n));
    got.insert(got.end(), fed.messages.begin(), fed.messages.end());
    invalid = fed.invalid;
    check(fed.messages.size() <= 3, "per-feed bound");
  }
  // Messages held back by the per-feed bound, and a fault behind them.
  while (!invalid) {
    const bool has = f.hasMessage();
    TcpFramer::Fed fed = f.feed({});
    check(has == !fed.messages.empty(), "hasMessage predicts feed({})");
    got.insert(got.end(), fed.messages.begin(), fed.messages.end());
    invalid = fed.invalid;
    if (fed.messages.empty()) {
      break;
    }
  }
  check(got == expected, "framer yields the stream's messages in order");
  check(invalid == expect_invalid, "framer flags short messages");
  if (!expected.empty()) {
    tollgate::Result<std::vector<uint8_t>> framed = frameForTcp(expected[0]);
    check(framed.ok() && framed->size() == expected[0].size() + 2, "frameForTcp");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  fuzzQuery(in);
  fuzzResponse(in);
  fuzzTruncate(in);
  fuzzTcp(in);
  return 0;
}
