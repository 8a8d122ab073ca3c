#include "gateway/worker.h"

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "gateway/log.h"
#include "gateway/server_socket.h"
#include "nat/nat.h"

namespace tollgate::gateway {
namespace {

constexpr int kMaxAcceptsPerWakeup = 64;
constexpr std::chrono::milliseconds kAcceptBackoffMin{50};
constexpr std::chrono::milliseconds kAcceptBackoffMax{1000};

// Shared by every worker: one line per 10 s however many fail.
log::Throttle g_accept_log;

uint64_t openFilesLimit() {
  rlimit rl{};
  return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? static_cast<uint64_t>(rl.rlim_cur) : 0;
}

}  // namespace

Result<std::unique_ptr<Worker>> Worker::create(int index, const std::vector<SockAddr>& addrs,
                                               const ResolverSettings& dns, AuditLog* audit,
                                               Counters* counters, RuntimeSource runtime,
                                               ca::LeafMinter* minter, SSL_CTX* sandbox_tls,
                                               mitm::UpstreamTls* upstream_tls,
                                               const std::vector<SockAddr>& dns_addrs) {
  std::unique_ptr<Worker> w(new Worker());
  w->index_ = index;
  w->audit_ = audit;
  w->counters_ = counters;
  w->minter_ = minter;
  w->sandbox_tls_ = sandbox_tls;
  w->upstream_tls_ = upstream_tls;
  w->runtime_ = std::move(runtime);
  {
    // Changes to the epoll set within one loop iteration are coalesced and
    // applied once before epoll_wait: a flow's event_del and the relay's
    // event_add on the same socket cost no epoll_ctl at all. (The known
    // pitfall, dup()ed descriptors, does not arise: nothing here dups.)
    EventConfigPtr cfg(event_config_new());
    if (cfg) {
      event_config_set_flag(cfg.get(), EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
      w->base_.reset(event_base_new_with_config(cfg.get()));
    }
  }
  if (!w->base_) {
    return makeError("event_base_new failed");
  }
  auto resolver = Resolver::create(w->base_.get(), dns);
  if (!resolver) {
    return resolver.error();
  }
  w->resolver_ = std::move(*resolver);
  if (!dns_addrs.empty()) {
    auto dns = DnsService::create(w->base_.get(), dns_addrs, w->resolver_.get(), audit, counters,
                                  w->runtime_);
    if (!dns) {
      return dns.error();
    }
    w->dns_ = std::move(*dns);
  }
  w->tproxy_ = w->runtime_()->config->gateway.capture == CaptureMode::Tproxy;
  for (const SockAddr& a : addrs) {
    auto fd = bindServerSocket(a, SOCK_STREAM, "listener (gateway.listen_port)", 4096, w->tproxy_);
    if (!fd) {
      return fd.error();
    }
    setAcceptedStreamOptions(fd->get());
    EventPtr ev(
        event_new(w->base_.get(), fd->get(), EV_READ | EV_PERSIST, &Worker::onAccept, w.get()));
    event_add(ev.get(), nullptr);
    w->listen_fds_.push_back(std::move(*fd));
    w->listen_addrs_.push_back(a);
    w->listen_evs_.push_back(std::move(ev));
  }
  w->stop_ev_.reset(event_new(w->base_.get(), -1, 0, &Worker::onStop, w.get()));
  w->drain_ev_.reset(evtimer_new(w->base_.get(), &Worker::onDrainTimer, w.get()));
  w->resume_ev_.reset(evtimer_new(w->base_.get(), &Worker::onResumeAccept, w.get()));
  return w;
}

Worker::~Worker() {
  join();
  // Flows and the DNS service hold events on base_: they go first.
  flows_.clear();
  dns_.reset();
}

void Worker::startThread() {
  thread_ = std::thread([this] { event_base_dispatch(base_.get()); });
}

void Worker::requestStop(std::chrono::milliseconds drain) {
  drain_ms_ = drain.count();
  // event_active is thread-safe once evthread_use_pthreads() ran.
  event_active(stop_ev_.get(), 0, 0);
}

void Worker::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

Result<SockAddr> Worker::localAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return makeError(std::string("getsockname: ") + std::strerror(errno));
  }
  auto a = SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  if (!a) {
    return makeError("getsockname: unexpected address family");
  }
  return *a;
}

bool Worker::isListenAddress(const SockAddr& a) const {
  for (const SockAddr& l : listen_addrs_) {
    if (l == a) {
      return true;
    }
  }
  return false;
}

void Worker::onAccept(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  for (int i = 0; i < kMaxAcceptsPerWakeup && !self->stopping_; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int cfd = accept4(fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        self->pauseAccepting(errno);
      }
      return;
    }
    self->accept_backoff_ = std::chrono::milliseconds(0);
    UniqueFd client(cfd);
    auto src = SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    // TPROXY leaves the destination untouched: the accepted socket's own
    // address is the one the sandbox dialled. A connection to the listener
    // itself (dialled directly) has nothing to relay to.
    // (The peer's address tells the family: no getsockname.)
    auto dst = self->tproxy_ ? localAddress(client.get())
                             : nat::originalDst(client.get(), reinterpret_cast<sockaddr*>(&ss));
    if (dst && self->tproxy_ && self->isListenAddress(*dst)) {
      continue;
    }
    if (!src || !dst) {
      // Not a redirected connection (someone dialled the listener directly
      // from the host): nothing to relay it to.
      continue;
    }
    auto flow = std::make_unique<Flow>(
        FlowEnv{self->base_.get(), self->resolver_.get(), self->audit_, self->counters_,
                self->minter_, self->sandbox_tls_, self->upstream_tls_, &self->runtime_},
        self->runtime_(), std::move(client), *src, *dst, &Worker::flowDone, self);
    Flow* raw = flow.get();
    self->flows_.emplace(raw, std::move(flow));
    raw->start();  // may already have finished and been erased
  }
}

void Worker::pauseAccepting(int err) {
  accept_backoff_ = std::clamp(accept_backoff_ * 2, kAcceptBackoffMin, kAcceptBackoffMax);
  counters_->add(Counter::kAcceptPauses);
  g_accept_log.warn(
      "accept: {}: pausing new connections for {} ms (open files limit {}; raise LimitNOFILE, or "
      "lower gateway.max_flows_per_sandbox)",
      std::strerror(err), accept_backoff_.count(), openFilesLimit());
  for (EventPtr& ev : listen_evs_) {
    event_del(ev.get());
  }
  accept_paused_ = true;
  timeval tv = toTimeval(static_cast<uint64_t>(accept_backoff_.count()));
  evtimer_add(resume_ev_.get(), &tv);
}

void Worker::onResumeAccept(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  if (self->stopping_ || !self->accept_paused_) {
    return;
  }
  self->accept_paused_ = false;
  for (EventPtr& ev : self->listen_evs_) {
    event_add(ev.get(), nullptr);
  }
}

void Worker::flowDone(void* owner, Flow* flow) {
  auto* self = static_cast<Worker*>(owner);
  auto it = self->flows_.find(flow);
  if (it == self->flows_.end()) {
    return;
  }
  // Every caller of Flow::finish() returns without touching the flow again,
  // so it can be destroyed here.
  self->flows_.erase(it);
  self->maybeExit();
}

void Worker::onStop(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  self->stopping_ = true;
  if (self->resume_ev_) {
    event_del(self->resume_ev_.get());
  }
  self->listen_evs_.clear();
  self->listen_fds_.clear();
  if (self->dns_) {
    self->dns_->stop();
  }
  timeval tv = toTimeval(static_cast<uint64_t>(self->drain_ms_.load()));
  evtimer_add(self->drain_ev_.get(), &tv);
  self->maybeExit();
}

void Worker::onDrainTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  while (!self->flows_.empty()) {
    self->flows_.begin()->first->abort("shutdown");
  }
  self->maybeExit();
}

void Worker::maybeExit() {
  if (stopping_ && flows_.empty()) {
    event_base_loopexit(base_.get(), nullptr);
  }
}

}  // namespace tollgate::gateway
