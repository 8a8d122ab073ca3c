// Name resolution for upstream connections: static_hosts first, then the
// configured resolvers through evdns (asynchronous, on the worker's loop).
#pragma once

#include <event2/dns.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/sockaddr.h"
#include "gateway/event_util.h"

namespace tollgate::gateway {

struct ResolverSettings {
  bool use_system = true;                                     // /etc/resolv.conf
  std::vector<SockAddr> servers;                              // used when !use_system
  std::map<std::string, std::vector<SockAddr>> static_hosts;  // normalised names
};

class Resolver {
 public:
  using Callback = std::function<void(std::vector<SockAddr> addrs, std::string error)>;

  // A pending lookup; destroying it cancels the lookup and its callback.
  class Request {
   public:
    ~Request();
    Request(const Request&) = delete;
    Request& operator=(const Request&) = delete;

   private:
    friend class Resolver;
    Request() = default;
    static void onResult(int err, evutil_addrinfo* res, void* arg);
    static void onDeliver(evutil_socket_t, short, void* arg);
    evdns_getaddrinfo_request* req_ = nullptr;
    EventPtr deliver_ev_;
    Callback cb_;
    uint16_t port_ = 0;
    std::vector<SockAddr> addrs_;
    std::string error_;
    bool done_ = false;
  };

  // One A or AAAA lookup for the DNS service: addresses plus the TTL.
  class RecordLookup {
   public:
    using Callback = std::function<void(std::vector<SockAddr> addrs, uint32_t ttl, int dns_err)>;
    ~RecordLookup();
    RecordLookup(const RecordLookup&) = delete;
    RecordLookup& operator=(const RecordLookup&) = delete;

   private:
    friend class Resolver;
    RecordLookup() = default;
    static void onResult(int result, char type, int count, int ttl, void* addresses, void* arg);
    static void onDeliver(evutil_socket_t, short, void* arg);
    evdns_base* dns_ = nullptr;
    evdns_request* req_ = nullptr;
    EventPtr deliver_ev_;
    Callback cb_;
    std::vector<SockAddr> addrs_;
    uint32_t ttl_ = 0;
    int err_ = 0;
    bool done_ = false;
  };

  static Result<std::unique_ptr<Resolver>> create(event_base* base, const ResolverSettings& s);

  // Static entry for the name in `table` (the running config's static_hosts,
  // so a reload takes effect at once), ports set to `port`.
  static std::optional<std::vector<SockAddr>> lookupStatic(
      const std::map<std::string, std::vector<SockAddr>>& table, const std::string& name,
      uint16_t port);
  // Resolves A and AAAA through the resolvers. The callback always runs from
  // the loop, never from inside this call.
  std::unique_ptr<Request> resolve(const std::string& name, uint16_t port, Callback cb);
  // Looks up A (ipv6 = false) or AAAA records; the callback runs from the loop.
  std::unique_ptr<RecordLookup> lookupRecords(const std::string& name, bool ipv6,
                                              RecordLookup::Callback cb);

 private:
  Resolver() = default;
  event_base* base_ = nullptr;
  EvdnsBasePtr dns_;
};

}  // namespace tollgate::gateway
