#include "nat/addr_watch.h"

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace tollgate::nat {
namespace {

std::optional<SockAddr> addrFromAttr(uint8_t family, const nlattr* a) {
  const size_t want = family == AF_INET ? 4 : 16;
  if (mnl_attr_get_payload_len(a) != want) {
    return std::nullopt;
  }
  if (family == AF_INET) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    std::memcpy(&sin.sin_addr, mnl_attr_get_payload(a), 4);
    return SockAddr::fromSockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof(sin));
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  std::memcpy(&sin6.sin6_addr, mnl_attr_get_payload(a), 16);
  return SockAddr::fromSockaddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6));
}

// One RTM_NEWADDR / RTM_DELADDR; false when it is unusable.
bool decodeOne(const nlmsghdr* nlh, AddrDecode& out) {
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(ifaddrmsg)) {
    return false;
  }
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) {
    return true;  // not an IP address: nothing tollgate judges
  }
  const nlattr* local = nullptr;
  const nlattr* address = nullptr;
  // Attributes that do not fit the message end the walk (mnl_attr_ok).
  const char* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  for (auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(ifaddrmsg)));
       mnl_attr_ok(a, static_cast<int>(tail - reinterpret_cast<const char*>(a)));
       a = mnl_attr_next(a)) {
    uint16_t type = mnl_attr_get_type(a);
    if (type == IFA_LOCAL) {
      local = a;
    } else if (type == IFA_ADDRESS) {
      address = a;
    }
  }
  const nlattr* use = local != nullptr ? local : address;
  if (use == nullptr) {
    return false;
  }
  auto addr = addrFromAttr(ifa->ifa_family, use);
  if (!addr) {
    return false;
  }
  const unsigned max_len = ifa->ifa_family == AF_INET ? 32 : 128;
  AddrChange c;
  c.added = nlh->nlmsg_type == RTM_NEWADDR;
  c.ifindex = ifa->ifa_index;
  c.addr = *addr;
  c.prefix_len = std::min<unsigned>(ifa->ifa_prefixlen, max_len);
  out.changes.push_back(c);
  return true;
}

}  // namespace

AddrDecode decodeAddrMessages(std::span<const uint8_t> datagram) {
  AddrDecode out;
  // Netlink headers and attributes are read in place: give them alignment.
  std::vector<uint32_t> aligned((datagram.size() + 3) / 4);
  if (!datagram.empty()) {
    std::memcpy(aligned.data(), datagram.data(), datagram.size());
  }
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(aligned.data());
  int left = static_cast<int>(datagram.size());
  // mnl_nlmsg_ok() compares the length as an int: a length with the top bit
  // set would pass it, so the unsigned bound is checked here as well.
  while (mnl_nlmsg_ok(nlh, left) && nlh->nlmsg_len <= static_cast<uint32_t>(left)) {
    if (nlh->nlmsg_type == RTM_NEWADDR || nlh->nlmsg_type == RTM_DELADDR) {
      if (!decodeOne(nlh, out)) {
        out.malformed = true;
      }
    }
    nlh = mnl_nlmsg_next(nlh, &left);
  }
  if (left != 0) {
    out.malformed = true;  // trailing bytes that are not a whole message
  }
  return out;
}

Result<AddrWatch> AddrWatch::open() {
  UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) {
    return makeError(std::string("rtnetlink: ") + strerror(errno));
  }
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
    return makeError(std::string("rtnetlink: address notifications: ") + strerror(errno));
  }
  return AddrWatch(std::move(fd));
}

Result<AddrWatchRead> AddrWatch::drain() {
  AddrWatchRead out;
  std::vector<uint8_t> buf(MNL_SOCKET_BUFFER_SIZE);
  while (true) {
    sockaddr_nl from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = recvfrom(fd_.get(), buf.data(), buf.size(), MSG_TRUNC,
                         reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return out;
      }
      if (errno == ENOBUFS) {
        out.resync = true;  // notifications were lost: re-read everything
        continue;
      }
      return makeError(std::string("rtnetlink: ") + strerror(errno));
    }
    if (from.nl_pid != 0) {
      continue;  // only the kernel speaks for addresses
    }
    if (static_cast<size_t>(n) > buf.size()) {
      out.resync = true;  // cut short (MSG_TRUNC reports the full length)
      continue;
    }
    AddrDecode d = decodeAddrMessages({buf.data(), static_cast<size_t>(n)});
    out.resync = out.resync || d.malformed;
    out.changes.insert(out.changes.end(), d.changes.begin(), d.changes.end());
  }
}

}  // namespace tollgate::nat
