#include "mitm/scrubber.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>
#include <utility>

#include "mitm/chars.h"

namespace tollgate::mitm {

Scrubber::Scrubber(std::vector<ScrubPair> pairs) {
  for (const ScrubPair& p : pairs) {
    if (p.secret.empty()) {
      continue;
    }
    pairs_.push_back(p);
    max_len_ = std::max(max_len_, p.secret.size());
    first_byte_[static_cast<uint8_t>(p.secret.front())] = true;
  }
  pending_.reserve(max_len_);  // never grows past this: no stray copies on reallocation
}

Scrubber::~Scrubber() {
  if (!pending_.empty()) {
    ::explicit_bzero(pending_.data(), pending_.size());
  }
}

Scrubber::Scrubber(Scrubber&& other) noexcept
    : pairs_(std::move(other.pairs_)),
      max_len_(std::exchange(other.max_len_, 0)),
      pending_(std::move(other.pending_)),
      replacements_(std::exchange(other.replacements_, 0)) {
  std::memcpy(first_byte_, other.first_byte_, sizeof(first_byte_));
  std::memset(other.first_byte_, 0, sizeof(other.first_byte_));
  other.pairs_.clear();
  other.pending_.clear();
}

Scrubber& Scrubber::operator=(Scrubber&& other) noexcept {
  if (this != &other) {
    if (!pending_.empty()) {
      ::explicit_bzero(pending_.data(), pending_.size());
    }
    pairs_ = std::move(other.pairs_);
    max_len_ = std::exchange(other.max_len_, 0);
    pending_ = std::move(other.pending_);
    replacements_ = std::exchange(other.replacements_, 0);
    std::memcpy(first_byte_, other.first_byte_, sizeof(first_byte_));
    std::memset(other.first_byte_, 0, sizeof(other.first_byte_));
    other.pairs_.clear();
    other.pending_.clear();
  }
  return *this;
}

bool Scrubber::lengthPreserving() const {
  return std::all_of(pairs_.begin(), pairs_.end(),
                     [](const ScrubPair& p) { return p.secret.size() == p.placeholder.size(); });
}

size_t Scrubber::process(std::string_view w, size_t limit, bool final, std::string& out) const {
  size_t i = 0;
  size_t run = 0;  // start of bytes not yet appended
  const size_t end = std::min(limit, w.size());
  while (i < end) {
    if (!first_byte_[static_cast<uint8_t>(w[i])]) {
      ++i;
      continue;
    }
    const std::string_view rest = w.substr(i);
    const ScrubPair* best = nullptr;
    bool wait = false;
    for (const ScrubPair& p : pairs_) {
      if (rest.size() >= p.secret.size()) {
        if ((best == nullptr || p.secret.size() > best->secret.size()) &&
            rest.substr(0, p.secret.size()) == p.secret) {
          best = &p;
        }
      } else if (!final && p.secret.substr(0, rest.size()) == rest) {
        wait = true;  // a longer secret may still start here
      }
    }
    if (wait) {
      break;
    }
    if (best == nullptr) {
      ++i;
      continue;
    }
    out.append(w.substr(run, i - run));
    out.append(best->placeholder);
    ++replacements_;
    i += best->secret.size();
    run = i;
  }
  out.append(w.substr(run, i - run));
  return i;
}

void Scrubber::feed(std::string_view in, std::string& out) {
  if (pairs_.empty()) {
    out.append(in);
    return;
  }
  size_t offset = 0;  // where in `in` the plain scan resumes
  if (!pending_.empty()) {
    // Positions in the held-back tail need up to max_len_ - 1 bytes of
    // lookahead from `in`: stitch just that much behind the tail.
    std::string stitch;
    stitch.reserve(pending_.size() + std::min(in.size(), max_len_));
    stitch.append(pending_);
    stitch.append(in.substr(0, std::min(in.size(), max_len_ - 1)));
    const size_t held = pending_.size();
    const size_t done = process(stitch, held, false, out);
    ::explicit_bzero(pending_.data(), pending_.size());
    pending_.clear();
    if (done < held) {
      // Stopped inside the tail: the stitch then holds all of `in`, and
      // what is left is a proper prefix of a secret.
      pending_.append(std::string_view(stitch).substr(done));
      ::explicit_bzero(stitch.data(), stitch.size());
      return;
    }
    ::explicit_bzero(stitch.data(), stitch.size());
    offset = done - held;
  }
  const std::string_view rest = in.substr(offset);
  const size_t done = process(rest, rest.size(), false, out);
  pending_.append(rest.substr(done));
}

void Scrubber::feed(std::span<const uint8_t> in, std::string& out) {
  feed(std::string_view(reinterpret_cast<const char*>(in.data()), in.size()), out);
}

void Scrubber::finish(std::string& out) {
  if (pending_.empty()) {
    return;
  }
  process(pending_, pending_.size(), true, out);
  ::explicit_bzero(pending_.data(), pending_.size());
  pending_.clear();
}

std::string Scrubber::scrub(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  process(text, text.size(), true, out);
  return out;
}

void Scrubber::scrubHead(ResponseHead& head) const {
  if (pairs_.empty()) {
    return;
  }
  head.reason = scrub(head.reason);
  for (HeaderField& f : head.headers.fields) {
    f.name = scrub(f.name);
    f.value = scrub(f.value);
  }
}

bool scrubbable(const ResponseHead& head) {
  bool ok = true;
  for (const HeaderField& f : head.headers.fields) {
    if (!chars::equalsIgnoreCase(f.name, "content-encoding")) {
      continue;
    }
    chars::forEachListMember(f.value, [&](std::string_view coding) {
      if (!coding.empty() && !chars::equalsIgnoreCase(coding, "identity")) {
        ok = false;
      }
      return ok;
    });
  }
  return ok;
}

}  // namespace tollgate::mitm

namespace tollgate::mitm {
namespace {

// An encoder writes its form of a secret byte by byte through `put`; run
// once to count, once to fill secret memory (no copy in an ordinary string).
using Put = std::function<void(char)>;
using Encoder = std::function<void(std::string_view secret, const Put& put)>;

void percentEncode(std::string_view s, const Put& put, bool upper, bool plus_for_space) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  for (char c : s) {
    const auto u = static_cast<uint8_t>(c);
    if (chars::isUnreserved(u)) {
      put(c);
    } else if (plus_for_space && c == ' ') {
      put('+');
    } else {
      put('%');
      put(hex[u >> 4]);
      put(hex[u & 0xf]);
    }
  }
}

struct JsonStyle {
  bool slash = false;     // "/" as "\/"
  bool nonascii = false;  // non-ASCII as \u escapes (UTF-8 decoded)
  bool html = false;      // < > & as \u escapes
  bool all_u = false;     // " \ / ' + ` too as \u escapes
  bool upper = false;     // hex case of \u escapes
};

void putU(const Put& put, uint32_t unit, bool upper) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  put('\\');
  put('u');
  for (int shift = 12; shift >= 0; shift -= 4) {
    put(hex[(unit >> shift) & 0xf]);
  }
}

// The UTF-8 sequence at s[i] (length in `len`), or nullopt when invalid.
std::optional<uint32_t> decodeUtf8(std::string_view s, size_t i, size_t& len) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  uint32_t cp = 0;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
    cp = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    cp = b0 & 0x0f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return std::nullopt;
  }
  if (i + len > s.size()) {
    return std::nullopt;
  }
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xc0) != 0x80) {
      return std::nullopt;
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  const uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return std::nullopt;
  }
  return cp;
}

void jsonEscape(std::string_view s, const Put& put, const JsonStyle& st) {
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const auto u = static_cast<uint8_t>(c);
    const bool html = c == '<' || c == '>' || c == '&';
    const bool more = c == '\'' || c == '+' || c == '`';
    if (c == '"' || c == '\\' || (c == '/' && (st.slash || st.all_u))) {
      if (st.all_u) {
        putU(put, u, st.upper);
      } else {
        put('\\');
        put(c);
      }
    } else if ((html && (st.html || st.all_u)) || (more && st.all_u)) {
      putU(put, u, st.upper);
    } else if (u >= 0x80 && st.nonascii) {
      size_t len = 1;
      if (auto cp = decodeUtf8(s, i, len)) {
        if (*cp >= 0x10000) {
          const uint32_t v = *cp - 0x10000;
          putU(put, 0xd800 + (v >> 10), st.upper);
          putU(put, 0xdc00 + (v & 0x3ff), st.upper);
        } else {
          putU(put, *cp, st.upper);
        }
        i += len - 1;
      } else {
        put(c);  // not UTF-8: an encoder would have refused or copied it
      }
    } else {
      put(c);
    }
  }
}

// The base64 characters of a stream in which `s` starts `offset` (0..2)
// bytes after a 3-byte boundary whose six bits all come from `s`.
void base64Middle(std::string_view s, size_t offset, bool url, const Put& put) {
  const char* alphabet = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const size_t start_bit = 8 * offset;  // where s begins in the stream
  const size_t end_bit = start_bit + 8 * s.size();
  for (size_t bit = (start_bit + 5) / 6 * 6; bit + 6 <= end_bit; bit += 6) {
    unsigned v = 0;
    for (size_t b = bit; b < bit + 6; ++b) {
      const size_t rel = b - start_bit;
      const auto byte = static_cast<uint8_t>(s[rel / 8]);
      v = (v << 1) | ((byte >> (7 - rel % 8)) & 1u);
    }
    put(alphabet[v]);
  }
}

}  // namespace

Result<void> addScrubForms(std::string_view secret, std::string_view placeholder,
                           std::vector<SecretBuffer>& derived, std::vector<ScrubPair>& pairs) {
  if (secret.empty()) {
    return {};
  }
  auto known = [&](std::string_view form) {
    return std::any_of(pairs.begin(), pairs.end(), [&](const ScrubPair& p) {
      return p.secret == form && p.placeholder == placeholder;
    });
  };
  // The raw value is the caller's memory already.
  if (!known(secret)) {
    pairs.push_back(ScrubPair{secret, placeholder});
  }
  std::vector<std::pair<Encoder, size_t>> encoders;  // encoder, minimum length to add
  for (bool upper : {true, false}) {
    encoders.emplace_back(
        [upper](std::string_view s, const Put& p) { percentEncode(s, p, upper, false); }, 1);
  }
  encoders.emplace_back([](std::string_view s, const Put& p) { percentEncode(s, p, true, true); },
                        1);
  // Every mix of the common choices (serde / JSON.stringify: none; PHP:
  // "\/" and non-ASCII; Python: non-ASCII; Go: HTML; .NET: all, upper hex).
  std::vector<JsonStyle> styles;
  for (int bits = 0; bits < 16; ++bits) {
    styles.push_back(JsonStyle{.slash = (bits & 1) != 0,
                               .nonascii = (bits & 2) != 0,
                               .html = (bits & 4) != 0,
                               .upper = (bits & 8) != 0});
  }
  styles.push_back(JsonStyle{.nonascii = true, .html = true, .all_u = true});
  styles.push_back(JsonStyle{.nonascii = true, .html = true, .all_u = true, .upper = true});
  for (const JsonStyle& st : styles) {
    encoders.emplace_back([st](std::string_view s, const Put& p) { jsonEscape(s, p, st); }, 1);
  }
  for (bool url : {false, true}) {
    for (size_t offset : {0, 1, 2}) {
      encoders.emplace_back(
          [url, offset](std::string_view s, const Put& p) { base64Middle(s, offset, url, p); },
          kMinBase64Form);
    }
  }
  for (const auto& [encode, min_len] : encoders) {
    size_t n = 0;
    encode(secret, [&n](char) { ++n; });
    if (n < min_len) {
      continue;
    }
    auto buf = SecretBuffer::allocate(n);
    if (!buf) {
      return buf.error();
    }
    std::span<char> out = buf->writable();
    size_t pos = 0;
    encode(secret, [&](char c) { out[pos++] = c; });
    if (known(buf->view())) {
      continue;  // ~SecretBuffer wipes it
    }
    derived.push_back(std::move(*buf));
    pairs.push_back(ScrubPair{derived.back().view(), placeholder});
  }
  return {};
}

}  // namespace tollgate::mitm
