// RAII owners for libevent handles used by the daemon.
#pragma once

#include <event2/dns.h>
#include <event2/event.h>

#include "base/handles.h"

namespace tollgate::gateway {

inline timeval toTimeval(uint64_t ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

}  // namespace tollgate::gateway
