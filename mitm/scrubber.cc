#include "mitm/scrubber.h"

#include <algorithm>
#include <cstring>
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
