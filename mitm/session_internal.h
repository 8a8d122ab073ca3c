// tollgate: internal to mitm/
// What the two halves of a Session (transport: session.cc; HTTP/1.1 engine:
// http1_exchange.cc) share.
#pragma once

#include <cstddef>

namespace tollgate::mitm {

// Backpressure: a direction stops reading while the other side's output
// holds more than kHighWater, and resumes below kLowWater. Input read ahead
// of the parser is bounded the same way.
inline constexpr size_t kHighWater = 1 << 20;
inline constexpr size_t kLowWater = 256 * 1024;
inline constexpr size_t kReadAhead = 256 * 1024;

}  // namespace tollgate::mitm
