#include "gateway/dns_service.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gateway/log.h"
#include "gateway/server_socket.h"
#include "gateway/policy.h"

namespace tollgate::gateway {
namespace {

constexpr size_t kMaxUdpQuery = 4096;
constexpr int kMaxDatagramsPerWakeup = 64;
constexpr std::chrono::seconds kTcpIdle{10};  // RFC 7766 §6.2.3
constexpr std::chrono::milliseconds kTcpAcceptPause{200};
constexpr size_t kTcpMaxMessage = 4096;
constexpr size_t kMaxPendingPerWorker = 4096;  // bounded work under a query flood
constexpr uint32_t kStaticTtl = 60;
constexpr uint32_t kMaxForwardedTtl = 300;

}  // namespace

struct DnsService::Pending {
  std::unique_ptr<Resolver::RecordLookup> lookup;
};

struct DnsService::TcpConn {
  DnsService* owner = nullptr;
  UniqueFd fd;
  SockAddr src;
  EventPtr ev;
  dns::TcpFramer framer{kTcpMaxMessage};
};

Result<std::unique_ptr<DnsService>> DnsService::create(event_base* base,
                                                       const std::vector<SockAddr>& addrs,
                                                       Resolver* resolver, AuditLog* audit,
                                                       Counters* counters, RuntimeSource runtime) {
  std::unique_ptr<DnsService> s(new DnsService());
  s->base_ = base;
  s->resolver_ = resolver;
  s->audit_ = audit;
  s->counters_ = counters;
  s->runtime_ = std::move(runtime);
  for (const SockAddr& a : addrs) {
    auto udp = bindServerSocket(a, SOCK_DGRAM, "DNS service (gateway.dns_port)");
    if (!udp) {
      return udp.error();
    }
    auto tcp = bindServerSocket(a, SOCK_STREAM, "DNS service (gateway.dns_port)", 256);
    if (!tcp) {
      return tcp.error();
    }
    EventPtr uev(event_new(base, udp->get(), EV_READ | EV_PERSIST, &DnsService::onUdp, s.get()));
    EventPtr tev(
        event_new(base, tcp->get(), EV_READ | EV_PERSIST, &DnsService::onTcpAccept, s.get()));
    event_add(uev.get(), nullptr);
    event_add(tev.get(), nullptr);
    s->events_.push_back(std::move(uev));
    s->events_.push_back(std::move(tev));
    s->udp_fds_.push_back(std::move(*udp));
    s->tcp_fds_.push_back(std::move(*tcp));
  }
  return s;
}

DnsService::~DnsService() { stop(); }

void DnsService::stop() {
  tcp_resume_ev_.reset();
  tcp_paused_.clear();
  events_.clear();
  pending_.clear();  // cancels lookups; their replies never run
  tcp_conns_.clear();
  udp_fds_.clear();
  tcp_fds_.clear();
}

void DnsService::onUdp(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<DnsService*>(arg);
  for (int i = 0; i < kMaxDatagramsPerWakeup; ++i) {
    uint8_t buf[kMaxUdpQuery];
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC, reinterpret_cast<sockaddr*>(&ss), &len);
    if (n < 0) {
      return;
    }
    auto src = SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    if (!src) {
      continue;
    }
    // MSG_TRUNC reports the real size: an oversized datagram is cut, and the
    // parser then sees it as malformed (FORMERR), never as a shorter query.
    size_t size = std::min(static_cast<size_t>(n), sizeof(buf));
    self->handle(std::span<const uint8_t>(buf, size), *src, false,
                 [fd, to = *src](std::vector<uint8_t> reply) {
                   (void)sendto(fd, reply.data(), reply.size(), MSG_NOSIGNAL, to.sa(), to.len());
                 });
  }
}

void DnsService::onTcpAccept(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<DnsService*>(arg);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  int cfd = accept4(fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (cfd < 0) {
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      static log::Throttle throttle;
      throttle.warn("DNS service: accept: {}: pausing TCP for {} ms", std::strerror(errno),
                    kTcpAcceptPause.count());
      self->counters_->add(Counter::kAcceptPauses);
      for (const EventPtr& ev : self->events_) {
        if (event_get_fd(ev.get()) == fd) {
          event_del(ev.get());
          self->tcp_paused_.push_back(ev.get());
        }
      }
      if (!self->tcp_resume_ev_) {
        self->tcp_resume_ev_.reset(evtimer_new(self->base_, &DnsService::onTcpResume, self));
      }
      timeval tv = toTimeval(static_cast<uint64_t>(kTcpAcceptPause.count()));
      evtimer_add(self->tcp_resume_ev_.get(), &tv);
    }
    return;
  }
  auto conn = std::make_shared<TcpConn>();
  conn->owner = self;
  conn->fd.reset(cfd);
  auto src = SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  if (!src) {
    return;
  }
  conn->src = *src;
  conn->ev.reset(event_new(self->base_, cfd, EV_READ | EV_PERSIST, &DnsService::onTcpRead,
                           conn.get()));
  timeval tv = toTimeval(std::chrono::milliseconds(kTcpIdle).count());
  event_add(conn->ev.get(), &tv);
  self->tcp_conns_.emplace(conn.get(), conn);
}

void DnsService::onTcpResume(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<DnsService*>(arg);
  for (event* ev : self->tcp_paused_) {
    event_add(ev, nullptr);
  }
  self->tcp_paused_.clear();
}

void DnsService::onTcpRead(evutil_socket_t fd, short what, void* arg) {
  auto* c = static_cast<TcpConn*>(arg);
  DnsService* self = c->owner;
  if ((what & EV_TIMEOUT) != 0) {
    self->closeTcp(c);
    return;
  }
  uint8_t buf[8192];
  size_t room = std::min(sizeof(buf), c->framer.room());
  ssize_t n = room == 0 ? 0 : read(fd, buf, room);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    return;
  }
  if (n <= 0) {
    self->closeTcp(c);
    return;
  }
  auto fed = c->framer.feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
  std::weak_ptr<TcpConn> weak = self->tcp_conns_[c];
  for (const auto& msg : fed.messages) {
    self->handle(msg, c->src, true, [weak](std::vector<uint8_t> reply) {
      auto conn = weak.lock();
      if (!conn) {
        return;  // the client went away before the answer
      }
      if (auto framed = dns::frameForTcp(reply)) {
        (void)send(conn->fd.get(), framed->data(), framed->size(), MSG_NOSIGNAL);
      }
    });
  }
  if (fed.invalid && weak.lock()) {
    self->closeTcp(c);
  }
}

void DnsService::closeTcp(TcpConn* c) { tcp_conns_.erase(c); }

void DnsService::handle(std::span<const uint8_t> msg, const SockAddr& src, bool tcp,
                        std::function<void(std::vector<uint8_t>)> reply) {
  std::shared_ptr<const Runtime> rt = runtime_();
  const Config& cfg = *rt->config;
  FlowRecord rec;
  rec.event = "dns";
  rec.proto = tcp ? "dns-tcp" : "dns";
  rec.src = src.toString();
  auto started = std::chrono::steady_clock::now();
  auto audit = [this, started, rt](FlowRecord& r, const std::string& action,
                                  const std::string& reason) {
    r.action = action;
    r.reason = reason;
    if (rt->stats) {
      rt->stats->dns.add(promLabels(
          {{"sandbox", r.sandbox.empty() ? "none" : r.sandbox}, {"action", action}, {"reason", reason}}));
      rt->stats->sandboxes.dns(r.sandbox.empty() ? "none" : r.sandbox, action != "deny");
    }
    r.ts = std::chrono::system_clock::now();
    r.duration_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::steady_clock::now() - started)
                                              .count());
    audit_->write(r);
  };
  const Sandbox* sb = selectSandbox(cfg, src);
  if (sb != nullptr) {
    rec.sandbox = sb->name;
  }

  dns::QueryParse p = dns::parseQuery(msg);
  if (p.outcome == dns::QueryParse::Outcome::kDrop) {
    counters_->add(Counter::kDnsRefused);
    audit(rec, "deny", "dns_" + std::string(p.reason));
    return;
  }
  const dns::Query q = p.query;
  if (q.has_question) {
    rec.host = q.question.name;
  }
  auto send = [tcp, q, reply](std::vector<uint8_t> resp) {
    reply(tcp ? std::move(resp) : dns::truncateForUdp(resp, q.maxUdpResponse()));
  };
  if (p.outcome == dns::QueryParse::Outcome::kError) {
    counters_->add(Counter::kDnsRefused);
    send(dns::buildError(q, p.rcode));
    audit(rec, "deny", "dns_" + std::string(p.reason));
    return;
  }
  std::string refusal;
  if (sb == nullptr) {
    refusal = "no_sandbox";
  } else if (!q.question.is_host_name) {
    refusal = "dns_not_a_host_name";
  } else if (sb->dns == DnsMode::Policy && !nameMayBeAllowed(*sb, q.question.name)) {
    refusal = "dns_policy";
  }
  if (!refusal.empty()) {
    counters_->add(Counter::kDnsRefused);
    send(dns::buildError(q, dns::Rcode::kRefused));
    audit(rec, "deny", refusal);
    return;
  }
  if (!q.isAddressQuery()) {
    // Only addresses are served: TXT, NULL and friends would be a channel.
    counters_->add(Counter::kDnsAnswered);
    send(dns::buildAnswer(q, {}, 0));
    audit(rec, "passthrough", "dns_type_not_served");
    return;
  }
  const bool want_v6 = q.question.qtype == dns::kTypeAaaa;
  // Addresses tollgate would refuse to connect to are not handed out either.
  auto usable = [rt, want_v6](const std::vector<SockAddr>& addrs) {
    std::vector<SockAddr> out;
    for (const SockAddr& a : addrs) {
      if (a.isV6() == want_v6 && !checkUpstream(*rt->config, a, rt->never_upstream).denied) {
        out.push_back(a);
      }
    }
    return out;
  };
  if (auto hit = Resolver::lookupStatic(cfg.gateway.static_hosts, q.question.name, 0)) {
    counters_->add(Counter::kDnsAnswered);
    send(dns::buildAnswer(q, usable(*hit), kStaticTtl));
    audit(rec, "passthrough", "static");
    return;
  }
  if (pending_.size() >= kMaxPendingPerWorker) {
    counters_->add(Counter::kDnsRefused);
    send(dns::buildError(q, dns::Rcode::kServFail));
    audit(rec, "deny", "dns_overloaded");
    return;
  }
  auto pending = std::make_unique<Pending>();
  Pending* raw = pending.get();
  pending->lookup = resolver_->lookupRecords(
      q.question.name, want_v6,
      [this, raw, q, send, usable, rec, audit, rt, want_v6](std::vector<SockAddr> addrs, uint32_t ttl,
                                               int err) mutable {
        if (err == DNS_ERR_NONE || err == DNS_ERR_NODATA) {
          counters_->add(Counter::kDnsAnswered);
          send(dns::buildAnswer(q, usable(addrs), std::min(ttl, kMaxForwardedTtl)));
          audit(rec, "passthrough", "resolved");
          if (rt->addresses && err == DNS_ERR_NONE) {
            rt->addresses->put(q.question.name, want_v6, addrs, std::min(ttl, kMaxForwardedTtl));
          }
        } else if (err == DNS_ERR_NOTEXIST) {
          counters_->add(Counter::kDnsAnswered);
          send(dns::buildError(q, dns::Rcode::kNxDomain));
          audit(rec, "passthrough", "nxdomain");
        } else {
          counters_->add(Counter::kDnsRefused);
          send(dns::buildError(q, dns::Rcode::kServFail));
          audit(rec, "deny", "resolve_failed");
        }
        pending_.erase(raw);  // destroys this lookup; nothing runs after
      });
  pending_.emplace(raw, std::move(pending));
}

}  // namespace tollgate::gateway
