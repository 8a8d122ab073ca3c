// Host address changes from rtnetlink (RTM_NEWADDR / RTM_DELADDR), so that
// tollgate's "never an upstream" set follows addresses added after start
// (DHCP renumbering, SLAAC and privacy addresses, a floating IP) without a
// reload. decodeAddrMessages() is the pure part (bounds-checked, any bytes);
// AddrWatch is the socket, subscribed to both families' address groups in
// the calling thread's network namespace.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/sockaddr.h"
#include "base/unique.h"

namespace tollgate::nat {

struct AddrChange {
  bool added = false;  // RTM_NEWADDR (true) or RTM_DELADDR
  uint32_t ifindex = 0;
  SockAddr addr;  // IFA_LOCAL if present, else IFA_ADDRESS (port 0)
  unsigned prefix_len = 0;
};

struct AddrDecode {
  std::vector<AddrChange> changes;
  // Some message was cut short or an address message was unusable: the
  // caller cannot know what changed and should re-read every address.
  bool malformed = false;
};

// Decodes one datagram of netlink messages. Messages of other types (and
// families other than IPv4/IPv6) are skipped; decoding stops at the first
// truncated header.
AddrDecode decodeAddrMessages(std::span<const uint8_t> datagram);

struct AddrWatchRead {
  std::vector<AddrChange> changes;
  // Something changed that `changes` may not list (the kernel dropped
  // notifications on overflow, or one was malformed): re-read them all.
  bool resync = false;
};

class AddrWatch {
 public:
  // A non-blocking NETLINK_ROUTE socket joined to RTNLGRP_IPV4_IFADDR and
  // RTNLGRP_IPV6_IFADDR. Needs no privilege.
  static Result<AddrWatch> open();

  int fd() const { return fd_.get(); }

  // Reads every datagram queued now, without blocking.
  Result<AddrWatchRead> drain();

 private:
  explicit AddrWatch(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace tollgate::nat
