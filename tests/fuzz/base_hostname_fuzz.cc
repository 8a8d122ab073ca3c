// libFuzzer target for normalizeHostName (and the host[:port] parser that
// wraps it, parseHostPort): whatever comes in, what comes out is canonical.
//
//   build: cmake -DTOLLGATE_FUZZ=ON (clang); seeds: tests/fuzz/corpus/base_hostname/
//   run:   ./base_hostname_fuzz NEW_CORPUS_DIR tests/fuzz/corpus/base_hostname
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "base/hostname.h"

namespace {

using tollgate::HostName;
using tollgate::normalizeHostName;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "base_hostname_fuzz: violated: %s\n", what);
    std::abort();
  }
}

void checkCanonical(const HostName& h) {
  check(!h.name.empty() && h.name.size() <= 253, "1..253 bytes");
  check(h.name.back() != '.', "no trailing dot");
  size_t label = 0;
  for (char c : h.name) {
    const bool lower = c >= 'a' && c <= 'z';
    const bool digit = c >= '0' && c <= '9';
    check(lower || digit || c == '-' || c == '.' || (h.is_ip && c == ':'), "lower-case LDH only");
    if (!h.is_ip) {
      label = c == '.' ? 0 : label + 1;
      check(label <= 63, "labels of at most 63 bytes");
    }
  }
  check(h.name.find("..") == std::string_view::npos, "no empty label");
  check(normalizeHostName(h.name) == h, "idempotent");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  if (auto h = normalizeHostName(raw)) {
    checkCanonical(*h);
  }
  if (auto hp = tollgate::parseHostPort(raw)) {
    checkCanonical(hp->host);
    check(!hp->port || *hp->port != 0, "port 0 is never accepted");
  }
  return 0;
}
