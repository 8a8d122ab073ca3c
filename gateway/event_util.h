// RAII owners for libevent handles used by the daemon.
#pragma once

#include <event2/dns.h>
#include <event2/event.h>

#include "base/unique.h"

namespace tollgate::gateway {

inline void freeEvdnsBase(evdns_base* b) { evdns_base_free(b, /*fail_requests=*/1); }

using EventBasePtr = CPtr<event_base, event_base_free>;
using EventConfigPtr = CPtr<event_config, event_config_free>;
using EventPtr = CPtr<event, event_free>;
using EvdnsBasePtr = CPtr<evdns_base, freeEvdnsBase>;

inline timeval toTimeval(uint64_t ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

}  // namespace tollgate::gateway
