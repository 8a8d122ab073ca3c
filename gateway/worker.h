// One event loop on one thread, with its own SO_REUSEPORT listeners and
// resolver; workers share nothing mutable but the runtime pointer, the audit
// sink and the counters.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "base/sockaddr.h"
#include "base/unique.h"
#include "gateway/counters.h"
#include "gateway/event_util.h"
#include "gateway/dns_service.h"
#include "gateway/flow.h"

namespace tollgate::gateway {

class Worker {
 public:
  using RuntimeSource = std::function<std::shared_ptr<const Runtime>()>;

  // Binds listeners on `addrs` (SO_REUSEPORT, so every worker can bind them).
  static Result<std::unique_ptr<Worker>> create(int index, const std::vector<SockAddr>& addrs,
                                                const ResolverSettings& dns, AuditLog* audit,
                                                Counters* counters, RuntimeSource runtime,
                                                ca::LeafMinter* minter, SSL_CTX* sandbox_tls,
                                                mitm::UpstreamTls* upstream_tls,
                                                const std::vector<SockAddr>& dns_addrs);
  ~Worker();

  void startThread();
  // Thread-safe: stop accepting, give open flows `drain` to end, then end
  // the rest and return from the loop.
  void requestStop(std::chrono::milliseconds drain);
  void join();

 private:
  Worker() = default;
  static void onAccept(evutil_socket_t fd, short, void* arg);
  static void onStop(evutil_socket_t, short, void* arg);
  static void onDrainTimer(evutil_socket_t, short, void* arg);
  static void onResumeAccept(evutil_socket_t, short, void* arg);
  void pauseAccepting(int err);
  static void flowDone(void* owner, Flow* flow);
  static Result<SockAddr> localAddress(int fd);
  bool isListenAddress(const SockAddr& a) const;
  void maybeExit();

  int index_ = 0;
  EventBasePtr base_;
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<DnsService> dns_;
  AuditLog* audit_ = nullptr;
  Counters* counters_ = nullptr;
  ca::LeafMinter* minter_ = nullptr;
  SSL_CTX* sandbox_tls_ = nullptr;
  mitm::UpstreamTls* upstream_tls_ = nullptr;
  RuntimeSource runtime_;
  std::vector<UniqueFd> listen_fds_;
  std::vector<SockAddr> listen_addrs_;
  bool tproxy_ = false;  // capture: tproxy (original destination = local address)
  std::vector<EventPtr> listen_evs_;
  EventPtr stop_ev_;
  EventPtr drain_ev_;
  // Out of descriptors, a level-triggered listener would wake the loop
  // forever: listeners pause instead, for a backoff that doubles while
  // accept keeps failing and resets once it succeeds.
  EventPtr resume_ev_;
  bool accept_paused_ = false;
  std::chrono::milliseconds accept_backoff_{0};
  std::atomic<int64_t> drain_ms_{0};
  bool stopping_ = false;
  std::unordered_map<Flow*, std::unique_ptr<Flow>> flows_;
  std::thread thread_;
};

}  // namespace tollgate::gateway
