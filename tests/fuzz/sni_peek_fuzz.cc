// libFuzzer target for sni::Peeker: feeds each input whole, and again in two
// or three pieces cut at input-derived points, and checks that every way of
// feeding gives the same result and that results keep their contract.
//
//   build: cmake -DTOLLGATE_FUZZ=ON (clang); seeds: tests/fuzz/corpus/sni_peek/
//   run:   ./sni_peek_fuzz -max_len=40000 NEW_CORPUS_DIR tests/fuzz/corpus/sni_peek
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "base/hostname.h"
#include "sni/sni.h"

namespace {

using tollgate::normalizeHostName;
using tollgate::sni::kMaxPeekBytes;
using tollgate::sni::Peeker;
using tollgate::sni::PeekResult;
using tollgate::sni::Protocol;
using tollgate::sni::Status;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "sni_peek_fuzz: violated: %s\n", what);
    std::abort();
  }
}

void checkContract(const PeekResult& r, std::span<const uint8_t> in) {
  switch (r.status) {
    case Status::NeedMore:
      check(in.size() < kMaxPeekBytes, "NeedMore only below kMaxPeekBytes");
      check(r.reason.empty() && r.consumed == 0, "NeedMore carries nothing");
      break;
    case Status::Invalid:
      check(!r.reason.empty(), "Invalid has a reason");
      break;
    case Status::Done:
      check(r.reason.empty(), "Done has no reason");
      check(r.consumed <= in.size() && r.consumed <= kMaxPeekBytes,
            "consumed within input and cap");
      check(r.protocol != Protocol::Unknown, "Done has a protocol");
      check((r.protocol == Protocol::Opaque) == (r.consumed == 0), "only opaque consumes nothing");
      if (r.tls.sni) {
        check(normalizeHostName(r.tls.sni->name) == r.tls.sni, "SNI is normalised");
      }
      if (r.http.host) {
        check(normalizeHostName(r.http.host->name) == r.http.host, "Host is normalised");
      }
      break;
  }
}

size_t cutPoint(std::span<const uint8_t> in, size_t salt) {
  if (in.empty()) {
    return 0;
  }
  const size_t mix = in[salt % in.size()] * 257u + in[in.size() - 1 - (salt % in.size())] + salt;
  return mix % (in.size() + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);

  Peeker whole_peeker;
  const PeekResult whole = whole_peeker.update(in);
  checkContract(whole, in);
  check(whole_peeker.update(in) == whole, "same bytes again, same result");

  // Two pieces.
  const size_t cut = cutPoint(in, 0);
  Peeker two;
  const PeekResult first = two.update(in.first(cut));
  checkContract(first, in.first(cut));
  if (first.status != Status::NeedMore) {
    check(first == whole, "a decision on a prefix is the decision on the whole");
  }
  if (first.protocol != Protocol::Unknown) {
    check(first.protocol == whole.protocol, "protocol never changes once known");
  }
  check(two.update(in) == whole, "split in two equals whole");

  // Three pieces.
  size_t a = cutPoint(in, 1);
  size_t b = cutPoint(in, 2);
  if (a > b) {
    const size_t t = a;
    a = b;
    b = t;
  }
  Peeker three;
  (void)three.update(in.first(a));
  (void)three.update(in.first(b));
  check(three.update(in) == whole, "split in three equals whole");
  return 0;
}
