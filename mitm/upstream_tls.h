// mitm/ owns everything after a `mitm` (or `http-403`) decision; this header:
// TLS toward real upstreams: one client context per configuration, with the
// trust store (`upstream_ca`: the system store or a PEM bundle), TLS 1.2+,
// ALPN http/1.1, certificate chain and host name (or IP) verification, and a
// bounded per-destination session cache so repeat connections resume instead
// of paying a full handshake. Thread-safe: workers share one instance.
#pragma once

#include <openssl/ssl.h>

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/handles.h"
#include "base/result.h"

namespace tollgate::mitm {

class UpstreamTls {
 public:
  // `trust`: "system" or the path of a PEM bundle of trusted roots.
  static Result<std::unique_ptr<UpstreamTls>> create(const std::string& trust,
                                                     size_t session_cache_entries = 4096);
  ~UpstreamTls();
  UpstreamTls(const UpstreamTls&) = delete;
  UpstreamTls& operator=(const UpstreamTls&) = delete;

  // A client SSL for `host` (a normalised name or an IP literal) on `port`:
  // SNI set (names only), verification of the chain and of the name or IP
  // required, a cached session offered when there is one.
  Result<SslPtr> newSsl(const std::string& host, bool host_is_ip, uint16_t port);

  struct Stats {
    uint64_t sessions_cached = 0;
    uint64_t resumed = 0;
  };
  // Call after a completed handshake: counts resumptions.
  void noteHandshake(SSL* ssl);
  Stats stats() const;

  // Why verification of `ssl` failed, as a stable audit reason with the
  // OpenSSL detail ("upstream_cert_invalid: certificate has expired").
  static std::string verifyFailure(SSL* ssl);

 private:
  UpstreamTls() = default;
  static int onNewSession(SSL* ssl, SSL_SESSION* session);
  void store(const std::string& key, SSL_SESSION* session);

  SslCtxPtr ctx_;
  size_t capacity_ = 0;
  mutable std::mutex mu_;
  // LRU: most recent at the front.
  std::list<std::pair<std::string, SslSessionPtr>> lru_;
  std::unordered_map<std::string, decltype(lru_)::iterator> index_;
  uint64_t resumed_ = 0;
};

}  // namespace tollgate::mitm
