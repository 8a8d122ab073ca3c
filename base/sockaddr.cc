#include "base/sockaddr.h"

#include <arpa/inet.h>

#include <cstring>

namespace tollgate {

std::optional<SockAddr> SockAddr::fromSockaddr(const sockaddr* sa, socklen_t len) {
  SockAddr out;
  if (sa == nullptr) {
    return std::nullopt;
  }
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    std::memcpy(&out.storage_, sa, sizeof(sockaddr_in));
    return out;
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    std::memcpy(&out.storage_, sa, sizeof(sockaddr_in6));
    return out;
  }
  return std::nullopt;
}

std::optional<SockAddr> SockAddr::parseIp(std::string_view ip, uint16_t port) {
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') {
    ip = ip.substr(1, ip.size() - 2);
  }
  // inet_pton stops at a NUL: "1.2.3.4\0junk" must not pass as 1.2.3.4.
  if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN || ip.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  std::string s(ip);
  SockAddr out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
  if (inet_pton(AF_INET, s.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return out;
  }
  out = SockAddr();
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
  if (inet_pton(AF_INET6, s.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return out;
  }
  return std::nullopt;
}

std::optional<SockAddr> SockAddr::parseIpPort(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= s.size()) {
    return std::nullopt;
  }
  std::string_view host = s.substr(0, colon);
  std::string_view port_str = s.substr(colon + 1);
  if (host.find(':') != std::string_view::npos && host.front() != '[') {
    return std::nullopt;  // bare IPv6 needs brackets
  }
  unsigned port = 0;
  for (char c : port_str) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    port = port * 10 + static_cast<unsigned>(c - '0');
    if (port > 65535) {
      return std::nullopt;
    }
  }
  return parseIp(host, static_cast<uint16_t>(port));
}

uint16_t SockAddr::port() const {
  if (isV4()) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  }
  if (isV6()) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

void SockAddr::setPort(uint16_t port) {
  if (isV4()) {
    reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  } else if (isV6()) {
    reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
  }
}

socklen_t SockAddr::len() const {
  if (isV4()) {
    return sizeof(sockaddr_in);
  }
  if (isV6()) {
    return sizeof(sockaddr_in6);
  }
  return 0;
}

const uint8_t* SockAddr::addrBytes() const {
  if (isV4()) {
    return reinterpret_cast<const uint8_t*>(
        &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr);
  }
  return reinterpret_cast<const uint8_t*>(
      &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
}

std::string SockAddr::ip() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (isV4() || isV6()) {
    inet_ntop(family(), addrBytes(), buf, sizeof(buf));
  }
  return buf;
}

std::string SockAddr::toString() const {
  if (isV6()) {
    return "[" + ip() + "]:" + std::to_string(port());
  }
  return ip() + ":" + std::to_string(port());
}

bool SockAddr::operator==(const SockAddr& o) const {
  return family() == o.family() && port() == o.port() &&
         std::memcmp(addrBytes(), o.addrBytes(), addrLen()) == 0;
}

}  // namespace tollgate
