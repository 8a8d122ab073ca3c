// Test helpers for mitm/: drive the HTTP/1.1 readers over a byte stream fed
// in pieces (as an evbuffer would deliver it) and record what they report,
// so whole and split feeding can be compared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mitm/http1.h"

namespace tollgate::mitm {

// gtest printers (found by ADL).
void PrintTo(const HeadResult& r, std::ostream* os);
void PrintTo(Status s, std::ostream* os);

namespace testutil {

inline std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string text(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Feeds `input` to a fresh head parser in pieces of `piece` bytes (0: whole),
// keeping unconsumed bytes like an evbuffer. Returns the final result with
// `consumed` relative to the whole input.
HeadResult feedRequestHead(std::string_view input, size_t piece, RequestHead* out = nullptr);
HeadResult feedResponseHead(std::string_view input, size_t piece, ResponseContext ctx = {},
                            ResponseHead* out = nullptr);

// What a reader reported over a stream: one line per event, bodies merged
// ("head GET /a HTTP/1.1", "body <bytes>", "end", "invalid <reason> <status>",
// "tunnel <n bytes left>", "eof ..." for finish()).
struct Transcript {
  std::vector<std::string> events;
  bool operator==(const Transcript&) const = default;
};
void PrintTo(const Transcript& t, std::ostream* os);

// Feeds `input` in pieces (cut at `cuts`, increasing offsets), then calls
// finish() if `eof`. For responses, `contexts` are expect()ed up front.
Transcript runRequests(std::string_view input, const std::vector<size_t>& cuts, bool eof);
Transcript runResponses(std::string_view input, const std::vector<ResponseContext>& contexts,
                        const std::vector<size_t>& cuts, bool eof);
// Every piece one byte.
std::vector<size_t> everyByte(size_t n);

// Decodes a whole body with a BodyDecoder fed in pieces of `piece` bytes;
// returns the decoded bytes and sets `status` / `reason` / `consumed`.
struct Decoded {
  Status status = Status::NeedMore;
  std::string reason;
  std::string body;
  size_t consumed = 0;  // bytes of the input used (Done: up to the end of the body)
};
Decoded decodeBody(BodyFraming framing, std::string_view input, size_t piece);

}  // namespace testutil
}  // namespace tollgate::mitm
