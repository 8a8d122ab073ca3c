// Durations as the `timeval` libevent's timers take.
#pragma once

#include <sys/time.h>

#include <chrono>
#include <cstdint>

namespace tollgate {

inline timeval toTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

inline timeval toTimeval(uint64_t ms) {
  return toTimeval(std::chrono::milliseconds(static_cast<int64_t>(ms)));
}

}  // namespace tollgate
