// mitm/ owns everything after a `mitm` (or `http-403`) decision; this header:
// every TLS session terminated toward a sandbox: the server
// context (TLS 1.2+, ALPN), the leaf minted from tollgate's CA for the
// decided name, the replay of the bytes the gateway peeked, and the
// `deny_style: http-403` answer (DESIGN.md "Deny behaviour"): a terminated
// TLS session that reads one request head and answers a fixed response.
#pragma once

#include <event2/event.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "base/result.h"
#include "base/handles.h"
#include "ca/ca.h"
#include "mitm/http1.h"
#include "mitm/outcome.h"
#include "mitm/upstream_tls.h"

namespace tollgate::mitm {

// Server-side context for sandbox-facing TLS: TLS 1.2+, ALPN http/1.1 only
// (clients offering h2 fall back). Certificates are set per connection.
Result<SslCtxPtr> makeSandboxServerCtx();

// What terminating TLS toward a sandbox needs; both null when tollgate's CA
// is not loaded. Not owned.
struct SandboxTls {
  SSL_CTX* ctx = nullptr;
  ca::LeafMinter* minter = nullptr;
  bool ready() const { return ctx != nullptr && minter != nullptr; }
};

// A server-side SSL presenting the leaf for `host` (minted or cached), not
// yet bound to a socket. On failure: Outcome::kLeafMintFailed or
// kInternalError, with OpenSSL's or the minter's words in `detail`
// (operational log only).
struct SandboxSsl {
  SslPtr ssl;
  Outcome failure = Outcome::kClean;
  std::string detail;
};
SandboxSsl newSandboxSsl(const SandboxTls& tls, const std::string& host);

// deny_style: http-403 over TLS. Finishes the handshake with the leaf for
// `host`, reads one request head (parsed with the HTTP/1 parser, bounded by
// kMaxHeadBytes and `deadline`), writes `response` and close_notify.
class DenyOverTls {
 public:
  enum class End { kAnswered, kHandshakeFailed, kClientGone, kTimedOut };
  using DoneFn = std::function<void(End)>;

  // `fd` stays owned by the caller and must outlive the responder.
  // `peeked` holds the bytes already read from fd (the start of the TLS
  // stream). Fails (nothing started) when no leaf can be had for `host`.
  // `done` runs once, from the loop; the responder may be destroyed in it.
  static Result<std::unique_ptr<DenyOverTls>> start(event_base* base, const SandboxTls& tls,
                                                    const std::string& host, int fd,
                                                    std::span<const uint8_t> peeked,
                                                    std::string response,
                                                    std::chrono::milliseconds deadline,
                                                    DoneFn done);
  ~DenyOverTls();
  DenyOverTls(const DenyOverTls&) = delete;
  DenyOverTls& operator=(const DenyOverTls&) = delete;

  // The request head the client sent, when it parsed (for the audit log:
  // method and path; run it through auditPath before logging the path).
  const RequestHead* request() const { return parsed_ ? &parser_.head() : nullptr; }

 private:
  DenyOverTls() = default;
  static void onEvent(evutil_socket_t, short what, void* arg);
  void drive();
  void finish(End e);

  SslPtr ssl_;
  EventPtr ev_;
  std::string response_;
  RequestHeadParser parser_;
  bool parsed_ = false;
  bool handshaken_ = false;
  bool finished_ = false;
  DoneFn done_;
};

}  // namespace tollgate::mitm
