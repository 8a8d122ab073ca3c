// tollgate's DNS service for sandboxes (DESIGN.md "Data flow": UDP/53 and
// TCP/53 are redirected here). With `dns: policy` it answers only names some
// rule of the asking sandbox could allow, so lookups cannot carry data out to
// attacker-chosen names; everything else gets REFUSED. Answers are rebuilt
// from parsed values (dns/), from static_hosts or the resolvers; addresses
// tollgate would never connect to (deny_cidrs, its own, sandbox subnets) are
// left out. Every query ends in an audit record (event "dns").
#pragma once

#include <event2/event.h>

#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "base/sockaddr.h"
#include "base/unique.h"
#include "dns/dns.h"
#include "gateway/audit.h"
#include "gateway/counters.h"
#include "gateway/event_util.h"
#include "gateway/flow.h"
#include "gateway/resolver.h"

namespace tollgate::gateway {

class DnsService {
 public:
  using RuntimeSource = std::function<std::shared_ptr<const Runtime>()>;

  // Binds UDP and TCP sockets on every address in `addrs` (port set by the
  // caller), SO_REUSEPORT so each worker has its own.
  static Result<std::unique_ptr<DnsService>> create(event_base* base,
                                                    const std::vector<SockAddr>& addrs,
                                                    Resolver* resolver, AuditLog* audit,
                                                    Counters* counters, RuntimeSource runtime);
  ~DnsService();
  // Stops accepting new queries (shutdown); pending ones are dropped.
  void stop();

 private:
  struct Pending;
  struct TcpConn;
  DnsService() = default;
  static void onUdp(evutil_socket_t fd, short, void* arg);
  static void onTcpAccept(evutil_socket_t fd, short, void* arg);
  static void onTcpRead(evutil_socket_t fd, short what, void* arg);
  static void onTcpResume(evutil_socket_t, short, void* arg);

  // Handles one query; `reply` is called (maybe later, from the loop) with
  // the bytes to send, or not at all when the query is dropped.
  void handle(std::span<const uint8_t> msg, const SockAddr& src, bool tcp,
              std::function<void(std::vector<uint8_t>)> reply);
  void closeTcp(TcpConn* c);

  event_base* base_ = nullptr;
  Resolver* resolver_ = nullptr;
  AuditLog* audit_ = nullptr;
  Counters* counters_ = nullptr;
  RuntimeSource runtime_;
  std::vector<UniqueFd> udp_fds_;
  std::vector<UniqueFd> tcp_fds_;
  std::vector<EventPtr> events_;
  std::unordered_map<Pending*, std::unique_ptr<Pending>> pending_;
  std::unordered_map<TcpConn*, std::shared_ptr<TcpConn>> tcp_conns_;
  // Out of descriptors, the TCP listeners pause briefly instead of waking
  // the loop forever (they are level-triggered).
  EventPtr tcp_resume_ev_;
  std::vector<event*> tcp_paused_;  // owned by events_
};

}  // namespace tollgate::gateway
