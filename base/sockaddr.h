// SockAddr: an IPv4 or IPv6 socket address with parsing and printing.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tollgate {

class SockAddr {
 public:
  SockAddr() = default;
  static std::optional<SockAddr> fromSockaddr(const sockaddr* sa, socklen_t len);
  // Parses an IP literal ("192.0.2.1", "2001:db8::1", "[2001:db8::1]").
  static std::optional<SockAddr> parseIp(std::string_view ip, uint16_t port = 0);
  // Parses "ip:port" or "[ip6]:port".
  static std::optional<SockAddr> parseIpPort(std::string_view s);

  int family() const { return storage_.ss_family; }
  bool isV4() const { return family() == AF_INET; }
  bool isV6() const { return family() == AF_INET6; }
  uint16_t port() const;
  void setPort(uint16_t port);
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t len() const;
  // 4 or 16 bytes of address in network order.
  const uint8_t* addrBytes() const;
  size_t addrLen() const { return isV4() ? 4 : 16; }

  std::string ip() const;        // "192.0.2.1" / "2001:db8::1"
  std::string toString() const;  // "192.0.2.1:443" / "[2001:db8::1]:443"

  bool operator==(const SockAddr& o) const;

 private:
  sockaddr_storage storage_{};
};

}  // namespace tollgate
