// mitm/ owns everything after a `mitm` (or `http-403`) decision; this header:
// Response scrubbing (DESIGN.md "Credential semantics"): any real credential
// value an upstream echoes back is replaced by its placeholder before the
// sandbox sees it — in the response head and, streaming, in the body.
//
// Matching is leftmost-longest over all pairs: scanning left to right, at
// each position the longest secret that occurs there is replaced (the first
// pair listed wins a tie) and the scan resumes after it. The streaming
// Scrubber gives exactly the output of scrub() on the whole body, for any
// split into feeds, and holds back only a tail that is a proper prefix of
// some secret (so at most maxSecretLength() - 1 bytes): everything that can
// no longer be part of a match is emitted at once.
//
// Guarantee: no secret occurs in the output unless a secret overlaps a
// placeholder (one is a substring of the other, or a suffix of one is a
// prefix of the other), in which case bytes next to a replaced placeholder
// could complete a secret. Placeholders are random and validateSecretValue()
// rules out the substring cases; only an upstream that already sends most
// of a secret could exploit the rest, and no byte scrubber stops that.
//
// Lengths: a placeholder need not be as long as its value, so a scrubbed
// body may change length. The engine re-frames every response to a
// credentialed request: chunked to an HTTP/1.1 client, Content-Length only
// when lengthPreserving(), and for an HTTP/1.0 client without a length, by
// closing the connection. Only identity-coded bodies can be scrubbed: see
// scrubbable().
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/secret.h"
#include "mitm/http1.h"

namespace tollgate::mitm {

// A real value (or an encoding of it the upstream may echo) and the
// placeholder it becomes. The views are not owned: the SecretBuffers behind
// them must outlive the Scrubber.
struct ScrubPair {
  std::string_view secret;
  std::string_view placeholder;
};

class Scrubber {
 public:
  // Pairs with an empty secret are dropped.
  explicit Scrubber(std::vector<ScrubPair> pairs = {});
  ~Scrubber();  // wipes the held-back tail (it may be a secret's prefix)
  Scrubber(Scrubber&& other) noexcept;
  Scrubber& operator=(Scrubber&& other) noexcept;
  Scrubber(const Scrubber&) = delete;
  Scrubber& operator=(const Scrubber&) = delete;

  // True when there is anything to scrub.
  bool active() const { return !pairs_.empty(); }
  // True when every placeholder is as long as its secret (scrubbing then
  // never changes a length).
  bool lengthPreserving() const;
  size_t maxSecretLength() const { return max_len_; }

  // Body streaming: appends to `out` the scrubbed output that `in` (after
  // all bytes fed before) makes certain. Call finish() at the end of the
  // body to flush the held-back tail.
  void feed(std::string_view in, std::string& out);
  void feed(std::span<const uint8_t> in, std::string& out);
  void finish(std::string& out);
  // Bytes held back right now (< maxSecretLength()).
  size_t pending() const { return pending_.size(); }
  // Secrets replaced so far, in bodies and heads (for a counter: an upstream
  // echoing a credential is worth knowing about).
  size_t replacements() const { return replacements_; }

  // One-shot: `text` with every secret replaced.
  std::string scrub(std::string_view text) const;
  // Scrubs the reason phrase, field names and field values of a response
  // head (a placeholder is a token, so names stay tokens).
  void scrubHead(ResponseHead& head) const;

 private:
  // Scans w[0..limit) (a match that starts below limit may run past it),
  // appending decided output. With `final` false, stops at a position
  // where the rest of w is a proper prefix of some secret. Returns the
  // number of bytes of w decided.
  size_t process(std::string_view w, size_t limit, bool final, std::string& out) const;

  std::vector<ScrubPair> pairs_;
  size_t max_len_ = 0;
  bool first_byte_[256] = {};
  std::string pending_;
  mutable size_t replacements_ = 0;
};

// The forms an echo commonly gives a secret, each to be scrubbed like the raw
// value (an upstream that echoes a request into JSON, a URL or a base64 blob
// must not hand the sandbox a trivially decodable copy):
//   - raw;
//   - percent-encoded (RFC 3986 §2.1, everything but unreserved), upper- and
//     lower-case hex, and form-encoded (space as "+");
//   - JSON-escaped in the styles of common encoders: minimal (backslash
//     before " and \), with "\/", with "\u" + 4 hex digits for non-ASCII
//     (UTF-8 decoded, surrogate pairs), with such escapes for < > &, every
//     mix of those, and all of " \ / < > & ' + ` and non-ASCII as "\u"
//     escapes; lower- and upper-case hex;
//   - base64, standard and URL-safe alphabets, for the secret starting at
//     each of the three byte alignments of a base64 stream: the base64
//     characters whose six bits all come from the secret (the middle of the
//     encoding, stable whatever surrounds it; at most 4 bits at each end are
//     not covered). Forms shorter than kMinBase64Form characters are not
//     added (a short one would match unrelated text).
// Mixed styles inside one value (e.g. "%2f" next to "%2F") are not covered.
// Every form is written into its own SecretBuffer appended to `derived`
// (views stay valid: the memory does not move with the object) and paired
// with `placeholder` in `pairs`; duplicate forms are added once. Fails only
// when secret memory cannot be had.
inline constexpr size_t kMinBase64Form = 8;
Result<void> addScrubForms(std::string_view secret, std::string_view placeholder,
                           std::vector<SecretBuffer>& derived, std::vector<ScrubPair>& pairs);

// A response body can be scrubbed only if it is not content-coded
// (RFC 9110 §8.4): Content-Encoding absent or "identity". The engine asks
// upstreams for identity (the rewriter sets Accept-Encoding); a credentialed
// response that is still encoded must not be relayed (answer 502).
bool scrubbable(const ResponseHead& head);

}  // namespace tollgate::mitm
