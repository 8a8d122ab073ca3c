// libFuzzer target for mitm/scrubber.h: builds 1-4 (secret -> placeholder)
// pairs from the input, streams the rest of the input through a Scrubber in
// input-derived pieces, and checks
//   - the output equals a naive leftmost-longest replace on the whole input,
//     and Scrubber::scrub() on the whole input;
//   - the held-back tail never reaches the longest secret;
//   - no secret occurs in the output, whenever no secret overlaps a
//     placeholder (the documented condition; placeholders here are drawn
//     like real ones: 24+ characters of [A-Za-z0-9._~-]).
//
// With bit 7 of byte 0 set, each secret is expanded into every encoded form
// an echo may give it (addScrubForms: percent, JSON, base64 at three
// alignments), the body gets every form appended, and the same checks run
// over all forms.
//
//   input: byte 0: number of pairs (% 4 + 1), bit 7: forms; per pair: a length byte
//          (% 12 + 1) and that many secret bytes, a placeholder seed byte;
//          then cut seeds (2 bytes), then the body.
//   build: cmake -DTOLLGATE_FUZZ=ON (clang); seeds: tests/fuzz/corpus/mitm_scrub/
//   run:   ./mitm_scrub_fuzz NEW_CORPUS_DIR tests/fuzz/corpus/mitm_scrub
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "mitm/scrubber.h"

namespace {

using tollgate::mitm::Scrubber;
using tollgate::mitm::ScrubPair;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "mitm_scrub_fuzz: violated: %s\n", what);
    std::abort();
  }
}

std::string reference(const std::vector<ScrubPair>& pairs, std::string_view in) {
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    const ScrubPair* best = nullptr;
    for (const ScrubPair& p : pairs) {
      if (!p.secret.empty() && in.substr(i, p.secret.size()) == p.secret &&
          (best == nullptr || p.secret.size() > best->secret.size())) {
        best = &p;
      }
    }
    if (best != nullptr) {
      out += best->placeholder;
      i += best->secret.size();
    } else {
      out += in[i++];
    }
  }
  return out;
}

// True when some secret and some placeholder share a substring at a border
// or one holds the other: the case the guarantee excludes.
bool overlapping(const std::vector<ScrubPair>& pairs) {
  for (const ScrubPair& s : pairs) {
    for (const ScrubPair& p : pairs) {
      const std::string_view a = s.secret;
      const std::string_view b = p.placeholder;
      if (b.find(a) != std::string_view::npos || a.find(b) != std::string_view::npos) {
        return true;
      }
      for (size_t k = 1; k < std::min(a.size(), b.size()) + 1; ++k) {
        if (b.substr(b.size() - k) == a.substr(0, k) || b.substr(0, k) == a.substr(a.size() - k)) {
          return true;
        }
      }
    }
  }
  return false;
}

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.empty()) {
    return 0;
  }
  const size_t num = static_cast<uint8_t>(in[0]) % 4 + 1;
  const bool forms = (static_cast<uint8_t>(in[0]) & 0x80) != 0;
  in.remove_prefix(1);
  std::vector<std::string> secrets;
  std::vector<std::string> placeholders;
  for (size_t i = 0; i < num; ++i) {
    if (in.size() < 2) {
      return 0;
    }
    const size_t len = static_cast<uint8_t>(in[0]) % 12 + 1;
    in.remove_prefix(1);
    if (in.size() < len + 1) {
      return 0;
    }
    secrets.emplace_back(in.substr(0, len));
    in.remove_prefix(len);
    unsigned seed = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    std::string ph = "tgph_";
    for (size_t k = 0; k < 24; ++k) {
      seed = seed * 1103515245u + 12345u + static_cast<unsigned>(i);
      ph += kAlphabet[(seed >> 16) % kAlphabet.size()];
    }
    placeholders.push_back(ph);
  }
  if (in.size() < 2) {
    return 0;
  }
  const uint8_t cut_a = static_cast<uint8_t>(in[0]);
  const uint8_t cut_b = static_cast<uint8_t>(in[1]);
  in.remove_prefix(2);

  std::vector<ScrubPair> pairs;
  std::vector<tollgate::SecretBuffer> derived;
  std::string body(in);
  for (size_t i = 0; i < num; ++i) {
    if (forms) {
      check(tollgate::mitm::addScrubForms(secrets[i], placeholders[i], derived, pairs).ok(),
            "addScrubForms");
    } else {
      pairs.push_back(ScrubPair{secrets[i], placeholders[i]});
    }
  }
  if (forms) {
    for (const ScrubPair& p : pairs) {
      body.append(p.secret);
    }
    in = body;
  }
  Scrubber scrubber(pairs);
  size_t max_len = 0;
  for (const ScrubPair& p : pairs) {
    max_len = std::max(max_len, p.secret.size());
  }
  check(scrubber.maxSecretLength() == max_len, "maxSecretLength");

  // Pieces of input-derived sizes (1..cut_a+1, then 1..cut_b+1 alternating).
  std::string out;
  size_t pos = 0;
  bool flip = false;
  while (pos < in.size()) {
    const size_t piece = std::min<size_t>(in.size() - pos, (flip ? cut_b : cut_a) % 64 + 1);
    flip = !flip;
    scrubber.feed(in.substr(pos, piece), out);
    check(scrubber.pending() < max_len, "held-back tail below the longest secret");
    pos += piece;
  }
  scrubber.finish(out);
  check(scrubber.pending() == 0, "finish flushes");

  const std::string want = reference(pairs, in);
  check(out == want, "streamed output equals the reference on the whole input");
  check(scrubber.scrub(in) == want, "scrub() equals the reference");

  if (!overlapping(pairs)) {
    for (const ScrubPair& p : pairs) {
      check(out.find(p.secret) == std::string::npos, "no secret (nor form of one) in the output");
    }
  }
  return 0;
}
