// Server sockets on the sandbox-facing addresses: every worker binds its own
// (SO_REUSEPORT), IPv6 ones V6ONLY and FREEBIND (usable during DAD).
#pragma once

#include <string_view>

#include "base/result.h"
#include "base/sockaddr.h"
#include "base/unique.h"

namespace tollgate::gateway {

// type: SOCK_STREAM (then also listening, with `backlog`) or SOCK_DGRAM.
// `what` names the service and the config key in errors, e.g.
// "listener (gateway.listen_port)". `transparent`: IP_TRANSPARENT /
// IPV6_TRANSPARENT, so the socket accepts connections TPROXY diverts to it
// (whose destination is not a local address).
Result<UniqueFd> bindServerSocket(const SockAddr& addr, int type, std::string_view what,
                                  int backlog = 4096, bool transparent = false);

// TCP_NODELAY and SO_KEEPALIVE on a listener: the sockets it accepts inherit
// both, which saves two system calls per accepted connection.
void setAcceptedStreamOptions(int listen_fd);

}  // namespace tollgate::gateway
