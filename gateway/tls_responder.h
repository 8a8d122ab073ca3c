// Terminates TLS toward a sandbox with a leaf from tollgate's CA to answer one
// HTTP request with a fixed response (deny_style: http-403): the sandbox then
// sees a readable 403 naming sandbox, host and rule instead of a bare alert.
// Only useful for clients that trust tollgate's CA; others see a certificate
// error, which is still a refusal.
#pragma once

#include <event2/event.h>
#include <openssl/ssl.h>

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "base/handles.h"
#include "base/result.h"
#include "ca/ca.h"
#include "gateway/event_util.h"

namespace tollgate::gateway {

// Server-side context for sandbox-facing TLS: TLS 1.2+, ALPN http/1.1 only
// (clients offering h2 fall back). Certificates are set per connection.
Result<SslCtxPtr> makeSandboxServerCtx();

class TlsResponder {
 public:
  enum class Outcome { Answered, HandshakeFailed, ClientGone, TimedOut };
  using DoneFn = std::function<void(Outcome)>;

  // `fd` stays owned by the caller and must outlive the responder.
  // `client_hello` holds the bytes already read from fd (the start of the
  // TLS stream). `done` runs once, from the loop; the responder may be
  // destroyed inside it.
  static Result<std::unique_ptr<TlsResponder>> start(event_base* base, SSL_CTX* ctx,
                                                     const ca::Leaf& leaf, int fd,
                                                     std::span<const uint8_t> client_hello,
                                                     std::string response,
                                                     std::chrono::milliseconds deadline,
                                                     DoneFn done);
  ~TlsResponder();
  // The decrypted request head the client sent (bounded), for the audit log.
  const std::string& request() const { return request_; }

 private:
  TlsResponder() = default;
  static void onReadable(evutil_socket_t, short what, void* arg);
  void drive();
  void finish(Outcome o);

  int fd_ = -1;
  SslPtr ssl_;
  BIO* rbio_ = nullptr;  // owned by ssl_
  EventPtr ev_;
  std::string response_;
  std::string request_;
  bool handshaken_ = false;
  bool finished_ = false;
  DoneFn done_;
};

}  // namespace tollgate::gateway
