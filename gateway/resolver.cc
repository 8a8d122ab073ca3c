#include "gateway/resolver.h"

#include <event2/util.h>
#include <netinet/in.h>

#include <cstring>

namespace tollgate::gateway {

Result<std::unique_ptr<Resolver>> Resolver::create(event_base* base, const ResolverSettings& s) {
  std::unique_ptr<Resolver> r(new Resolver());
  r->base_ = base;
  r->dns_.reset(evdns_base_new(base, 0));
  if (!r->dns_) {
    return makeError("evdns_base_new failed");
  }
  if (s.use_system) {
    // Only nameservers and their options; the hosts file is not consulted so
    // that upstream names resolve the same way for every flow.
    int rc = evdns_base_resolv_conf_parse(r->dns_.get(), DNS_OPTION_NAMESERVERS | DNS_OPTION_MISC,
                                          "/etc/resolv.conf");
    if (rc != 0) {
      return makeError("resolvers: system: cannot use /etc/resolv.conf (code " +
                       std::to_string(rc) + "); list resolvers explicitly in the config");
    }
  } else {
    for (const SockAddr& a : s.servers) {
      if (evdns_base_nameserver_sockaddr_add(r->dns_.get(), a.sa(), a.len(), 0) != 0) {
        return makeError("resolvers: cannot use " + a.toString());
      }
    }
  }
  // Bounded: a sandbox must not hold a flow open on a dead resolver forever.
  evdns_base_set_option(r->dns_.get(), "timeout:", "2");
  evdns_base_set_option(r->dns_.get(), "attempts:", "2");
  evdns_base_set_option(r->dns_.get(), "randomize-case:", "0");
  return r;
}

std::optional<std::vector<SockAddr>> Resolver::lookupStatic(
    const std::map<std::string, std::vector<SockAddr>>& table, const std::string& name,
    uint16_t port) {
  auto it = table.find(name);
  if (it == table.end()) {
    return std::nullopt;
  }
  std::vector<SockAddr> out = it->second;
  for (SockAddr& a : out) {
    a.setPort(port);
  }
  return out;
}

std::unique_ptr<Resolver::Request> Resolver::resolve(const std::string& name, uint16_t port,
                                                     Callback cb) {
  std::unique_ptr<Request> req(new Request());
  req->cb_ = std::move(cb);
  req->port_ = port;
  req->deliver_ev_.reset(event_new(base_, -1, 0, &Request::onDeliver, req.get()));
  evutil_addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
  // May call onResult synchronously (and then return null); onResult defers
  // delivery to the loop either way.
  req->req_ =
      evdns_getaddrinfo(dns_.get(), name.c_str(), nullptr, &hints, &Request::onResult, req.get());
  if (req->done_) {
    req->req_ = nullptr;
  }
  return req;
}

Resolver::Request::~Request() {
  if (req_ != nullptr && !done_) {
    // Runs onResult with EVUTIL_EAI_CANCEL synchronously; it only marks done.
    evdns_getaddrinfo_cancel(req_);
  }
}

void Resolver::Request::onResult(int err, evutil_addrinfo* res, void* arg) {
  auto* self = static_cast<Request*>(arg);
  self->done_ = true;
  self->req_ = nullptr;
  if (err == EVUTIL_EAI_CANCEL) {
    if (res != nullptr) {
      evutil_freeaddrinfo(res);
    }
    return;
  }
  if (err != 0) {
    self->error_ = evutil_gai_strerror(err);
  }
  for (evutil_addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (auto a = SockAddr::fromSockaddr(ai->ai_addr, static_cast<socklen_t>(ai->ai_addrlen))) {
      a->setPort(self->port_);
      self->addrs_.push_back(*a);
    }
  }
  if (res != nullptr) {
    evutil_freeaddrinfo(res);
  }
  if (self->addrs_.empty() && self->error_.empty()) {
    self->error_ = "no addresses";
  }
  event_active(self->deliver_ev_.get(), 0, 0);
}

void Resolver::Request::onDeliver(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Request*>(arg);
  Callback cb = std::move(self->cb_);
  // The callback may destroy the Request.
  cb(std::move(self->addrs_), std::move(self->error_));
}

}  // namespace tollgate::gateway

namespace tollgate::gateway {

std::unique_ptr<Resolver::RecordLookup> Resolver::lookupRecords(const std::string& name, bool ipv6,
                                                                RecordLookup::Callback cb) {
  std::unique_ptr<RecordLookup> l(new RecordLookup());
  l->dns_ = dns_.get();
  l->cb_ = std::move(cb);
  l->deliver_ev_.reset(event_new(base_, -1, 0, &RecordLookup::onDeliver, l.get()));
  // No search list: the sandbox asked for exactly this name.
  l->req_ = ipv6 ? evdns_base_resolve_ipv6(dns_.get(), name.c_str(), DNS_QUERY_NO_SEARCH,
                                           &RecordLookup::onResult, l.get())
                 : evdns_base_resolve_ipv4(dns_.get(), name.c_str(), DNS_QUERY_NO_SEARCH,
                                           &RecordLookup::onResult, l.get());
  if (l->done_) {
    l->req_ = nullptr;
  } else if (l->req_ == nullptr) {
    l->done_ = true;
    l->err_ = DNS_ERR_UNKNOWN;
    event_active(l->deliver_ev_.get(), 0, 0);
  }
  return l;
}

Resolver::RecordLookup::~RecordLookup() {
  if (req_ != nullptr && !done_) {
    evdns_cancel_request(dns_, req_);  // runs onResult with DNS_ERR_CANCEL
  }
}

void Resolver::RecordLookup::onResult(int result, char type, int count, int ttl, void* addresses,
                                      void* arg) {
  auto* self = static_cast<RecordLookup*>(arg);
  self->done_ = true;
  self->req_ = nullptr;
  if (result == DNS_ERR_CANCEL) {
    return;
  }
  self->err_ = result;
  self->ttl_ = ttl > 0 ? static_cast<uint32_t>(ttl) : 0;
  if (result == DNS_ERR_NONE && addresses != nullptr) {
    for (int i = 0; i < count; ++i) {
      if (type == DNS_IPv4_A) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        std::memcpy(&sin.sin_addr, static_cast<const uint8_t*>(addresses) + 4 * i, 4);
        if (auto a = SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&sin), sizeof(sin))) {
          self->addrs_.push_back(*a);
        }
      } else if (type == DNS_IPv6_AAAA) {
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        std::memcpy(&sin6.sin6_addr, static_cast<const uint8_t*>(addresses) + 16 * i, 16);
        if (auto a = SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof(sin6))) {
          self->addrs_.push_back(*a);
        }
      }
    }
  }
  event_active(self->deliver_ev_.get(), 0, 0);
}

void Resolver::RecordLookup::onDeliver(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<RecordLookup*>(arg);
  Callback cb = std::move(self->cb_);
  cb(std::move(self->addrs_), self->ttl_, self->err_);  // may destroy self
}

}  // namespace tollgate::gateway
