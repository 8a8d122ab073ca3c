// originalDst(): the destination a redirected connection was sent to, from
// the conntrack entry of the accepted socket.
// clang-format off
#include "nat/nat.h"
// glibc's <netinet/in.h> (via nat.h) must precede the uapi headers.
#include <linux/netfilter_ipv4.h>  // SO_ORIGINAL_DST
// clang-format on
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace tollgate::nat {
namespace {

// IP6T_SO_ORIGINAL_DST from <linux/netfilter_ipv6/ip6_tables.h>, which drags
// in the whole ip6tables ABI; the value is fixed ABI.
constexpr int kIp6tSoOriginalDst = 80;

Error lookupError(int fd, const char* option, int err) {
  std::string text = "original destination of socket " + std::to_string(fd) + " (" + option +
                     ") unavailable: " + std::strerror(err);
  if (err == ENOENT) {
    text += " (no conntrack entry: the connection did not come through tollgate's redirect)";
  } else if (err == ENOPROTOOPT) {
    text += " (kernel lacks conntrack for this address family)";
  }
  return makeError(std::move(text));
}

Result<SockAddr> originalDstV4(int fd) {
  sockaddr_in dst{};
  socklen_t len = sizeof(dst);
  if (::getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0) {
    return lookupError(fd, "SO_ORIGINAL_DST", errno);
  }
  auto out = SockAddr::fromSockaddr(reinterpret_cast<const sockaddr*>(&dst), len);
  if (!out) {
    return makeError("SO_ORIGINAL_DST returned no IPv4 address");
  }
  return *out;
}

Result<SockAddr> originalDstV6(int fd) {
  sockaddr_in6 dst{};
  socklen_t len = sizeof(dst);
  if (::getsockopt(fd, SOL_IPV6, kIp6tSoOriginalDst, &dst, &len) != 0) {
    return lookupError(fd, "IP6T_SO_ORIGINAL_DST", errno);
  }
  auto out = SockAddr::fromSockaddr(reinterpret_cast<const sockaddr*>(&dst), len);
  if (!out) {
    return makeError("IP6T_SO_ORIGINAL_DST returned no IPv6 address");
  }
  return *out;
}

}  // namespace

Result<SockAddr> originalDst(int fd) {
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return makeError("original destination: getsockname(" + std::to_string(fd) +
                     ") failed: " + std::strerror(errno));
  }
  return originalDst(fd, reinterpret_cast<const sockaddr*>(&local));
}

Result<SockAddr> originalDst(int fd, const sockaddr* addr) {
  if (addr->sa_family == AF_INET) {
    return originalDstV4(fd);
  }
  if (addr->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(addr);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      // A dual-stack socket carrying IPv4: conntrack has an IPv4 entry.
      return originalDstV4(fd);
    }
    return originalDstV6(fd);
  }
  return makeError("original destination: socket " + std::to_string(fd) +
                   " is not an IPv4/IPv6 socket");
}

}  // namespace tollgate::nat
