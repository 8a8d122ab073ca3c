// libevent handles (their RAII owners) and timer durations, for the daemon.
#pragma once

#include <event2/dns.h>
#include <event2/event.h>

#include "base/handles.h"
#include "base/timeval.h"
