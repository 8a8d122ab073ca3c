#include "gateway/server_socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace tollgate::gateway {

Result<UniqueFd> bindServerSocket(const SockAddr& addr, int type, std::string_view what,
                                  int backlog, bool transparent) {
  UniqueFd fd(socket(addr.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    return makeError(std::string("socket: ") + std::strerror(errno));
  }
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (addr.isV6()) {
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    // An address still in duplicate address detection is bindable this way.
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
  }
  if (transparent) {
    int rc = addr.isV6() ? setsockopt(fd.get(), IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
                         : setsockopt(fd.get(), IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one));
    if (rc != 0) {
      return makeError("cannot make " + std::string(what) + " transparent (capture: tproxy): " +
                       std::strerror(errno) + " (needs CAP_NET_ADMIN)");
    }
  }
  if (bind(fd.get(), addr.sa(), addr.len()) != 0) {
    return makeError("cannot bind " + std::string(what) + " on " + addr.toString() + ": " +
                     std::strerror(errno) + " (is another tollgate running, or the port in use?)");
  }
  if (type == SOCK_STREAM && listen(fd.get(), backlog) != 0) {
    return makeError("listen on " + addr.toString() + ": " + std::strerror(errno));
  }
  return fd;
}

void setAcceptedStreamOptions(int listen_fd) {
  int one = 1;
  (void)setsockopt(listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  (void)setsockopt(listen_fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

}  // namespace tollgate::gateway
