// nat: tollgate's nftables table (capture / fail-closed block) and the
// original destination of redirected sockets. The only header the gateway
// includes from this module.
//
// Every call acts on the network namespace of the *calling thread* (netlink
// sockets are opened per call), which is what lets tests drive it from a
// thread that setns()'d into a namespace of its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/sockaddr.h"

namespace tollgate::nat {

inline constexpr const char* kTableName = "tollgate";  // family inet

struct CaptureSpec {
  // Sandbox-facing interfaces, e.g. {"br0"}. Matched by name (`iifname`), so
  // an interface that does not exist yet is accepted and captured as soon as
  // it appears. 1-15 bytes, no '/', ':', whitespace or wildcard.
  std::vector<std::string> interfaces;
  uint16_t listen_port = 15001;  // TCP redirect target (on the interface address)
  bool ipv6_capture = true;      // false = `ipv6: block`: drop all IPv6 from the interfaces
};

// Builds and sends ONE atomic netlink batch that replaces any existing
// `inet tollgate` table (stale from a crash) with the full capture ruleset:
//   add table (no-op if present); delete table; create table + sets + chains
//   + rules.
// The kernel applies the batch as one transaction, so there is no moment in
// which sandboxes are uncaptured. On error nothing changed; the message names
// the object and, where known, the missing kernel feature.
//
// Where redirected connections land (kernel behaviour, not ours): IPv4 goes
// to the *primary* address of the incoming interface, IPv6 to the first
// non-tentative address in its list (global before link-local). Bind the
// listener on those addresses (after DAD). A connection that already targets
// exactly that address and listen_port is not marked DNAT and is dropped.
Result<void> installCapture(const CaptureSpec& spec);

// Atomically replaces the table with a fail-closed one: everything arriving on
// the interfaces is dropped (input and forward) and nothing is forwarded to
// them, except the ICMPv6 neighbour discovery messages that keep the link
// itself working (ARP is not IP and is never seen by inet hooks).
Result<void> installBlock(const std::vector<std::string>& interfaces);

// Removes the table; ok if it does not exist.
Result<void> removeTable();

// Whether `inet tollgate` exists in the calling thread's network namespace.
Result<bool> tableExists();

// Original destination of a redirected, accepted TCP socket: SO_ORIGINAL_DST
// (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6), chosen by the socket's family (an
// IPv4-mapped peer on an AF_INET6 socket is looked up as IPv4). Fails when
// conntrack has no entry for the socket.
Result<SockAddr> originalDst(int fd);

}  // namespace tollgate::nat
