// mitm/ owns everything after a `mitm` (or `http-403`) decision; this header:
// The MITM engine for one sandbox connection: TLS terminated toward the
// sandbox (with a leaf from tollgate's CA), verified TLS toward the real host,
// and between them a strict HTTP/1.1 exchange loop built on the pure parts
// (http1.h, credentials.h, scrubber.h):
//
//   sandbox --TLS--> [request head parsed, checked, credentials injected,
//                     re-serialised] --verified TLS--> upstream
//   sandbox <--TLS-- [response head scrubbed + re-framed, body streamed and
//                     scrubbed chunk by chunk] <-- upstream
//
// One exchange at a time (pipelined requests wait in the socket buffer);
// bodies are streamed with backpressure, never held whole; 1xx responses are
// forwarded; a WebSocket 101 turns the connection into a byte tunnel.
// Plain HTTP (no TLS on either side) runs through the same loop: credentials
// are then never injected (DESIGN.md: real values only over verified TLS),
// and a placeholder anywhere in a request head is refused. Plain-HTTP
// passthrough flows use it too (inject false), so that every request on a
// kept-alive connection is checked, not only the first.
// Every response head that reaches the sandbox (1xx, 101, final) is
// scrubbed; trailers are dropped.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/secret.h"
#include "base/handles.h"
#include "mitm/credentials.h"
#include "mitm/http1.h"
#include "mitm/outcome.h"
#include "mitm/scrubber.h"
#include "mitm/upstream_tls.h"

namespace tollgate::mitm {


// One HTTP exchange, for the audit log (`event: http`).
struct ExchangeRecord {
  std::string method;
  std::string path;  // no query; "<redacted>" if it held a placeholder
  int status = 0;    // what the sandbox got (0: nothing)
  std::vector<std::string> credentials;  // names injected
  uint64_t bytes_up = 0;                 // request body bytes
  uint64_t bytes_down = 0;               // response body bytes
  std::chrono::milliseconds duration{0};
  std::string reason;  // "" for a relayed exchange; else why it was answered/cut
};

struct SessionOptions {
  // The name (or IP literal) policy decided on; requests must be for it.
  std::string host;
  bool host_is_ip = false;
  // TLS on both sides (else plain HTTP on both).
  bool tls = true;
  uint16_t port = 443;  // the upstream port (session-cache key)
  // Credentials the rewriter knows (every placeholder is detected) and the
  // rule's attached names (nullptr: all may apply). Not owned: `keepalive`
  // holds whatever owns them for the session's lifetime.
  std::span<const CredentialSpec> credentials;
  const std::vector<std::string>* attached = nullptr;
  std::shared_ptr<const void> keepalive;
  // When set, asked once per request for the credentials current then (a
  // reload may have rotated or removed some since accept); `credentials`
  // and `keepalive` above are then unused. A credential gone from the
  // table is no longer known: its placeholder is neither injected nor
  // detected. `attached` (names) stays the decided rule's.
  struct CredentialSnapshot {
    std::span<const CredentialSpec> specs;
    std::shared_ptr<const void> keepalive;  // owns `specs` and their values
  };
  std::function<CredentialSnapshot()> current_credentials;
  // False: inspect only (a passthrough flow): never inject, so every known
  // placeholder anywhere in a request head is refused (403
  // credential_scope_violation), and Host is held to `host` (421).
  bool inject = true;
  // Builds a complete error response (status, text, reason) with a body the
  // sandbox can read; always "Connection: close".
  std::function<std::string(int status, std::string_view text, std::string_view reason)>
      error_response;
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds idle_timeout{120000};
};

class Session {
 public:
  struct Summary {
    uint64_t bytes_up = 0;    // plaintext bytes sent upstream
    uint64_t bytes_down = 0;  // plaintext bytes sent to the sandbox
    Outcome outcome = Outcome::kClean;
    std::string answered;  // kAnswered: the reason tollgate's answer (or the parser) named
    std::string detail;    // OpenSSL's words for a TLS failure (operational log only)
    // The audit reason ("" when the connection ended cleanly).
    std::string_view reason() const { return reasonName(outcome, answered); }
    std::string tls_version;  // negotiated with the sandbox
    std::vector<std::string> alpn;
    size_t exchanges = 0;
    bool upstream_resumed = false;
    std::chrono::nanoseconds sandbox_handshake{0};   // 0: not completed
    std::chrono::nanoseconds upstream_handshake{0};  // 0: not completed
  };
  using ExchangeFn = std::function<void(const ExchangeRecord&)>;
  using DoneFn = std::function<void(const Summary&)>;

  // Starts the session on connected sockets. `initial` holds the bytes
  // already read from the sandbox (the ClientHello, or the first request
  // head for plain HTTP). `client_ssl` carries the leaf (TLS only).
  // `upstream` may be invalid: then `upstream_error` is the audit reason and
  // the sandbox's first request is answered 502. `done` runs once, from the
  // loop; the session may be destroyed inside it (not inside `exchange`).
  static Result<std::unique_ptr<Session>> start(event_base* base, SessionOptions opts,
                                                UniqueFd client, std::span<const uint8_t> initial,
                                                SslPtr client_ssl, UniqueFd upstream,
                                                std::string upstream_error,
                                                UpstreamTls* upstream_tls, ExchangeFn exchange,
                                                DoneFn done);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Summary& summary() const { return summary_; }

 private:
  enum class OutFraming { None, Length, Chunked, Close };

  struct Exchange {
    Exchange() {}  // not an aggregate: Scrubber's constructor is explicit
    // The credential table this request was judged with; declared first so
    // it outlives the scrubber's views into its values.
    std::shared_ptr<const void> credentials_keepalive;
    bool active = false;
    std::chrono::steady_clock::time_point started;
    ExchangeRecord rec;
    BodyKind request_body = BodyKind::None;
    bool request_done = false;
    bool response_head_sent = false;
    bool response_done = false;
    bool client_keep_alive = true;
    bool keep_alive_after = true;
    int client_minor = 1;
    bool upgrade = false;
    OutFraming response_out = OutFraming::None;
    Scrubber scrubber;
    std::vector<SecretBuffer> derived;  // encoded secrets the scrubber points into
  };

  Session() = default;
  static void onClientRead(bufferevent*, void* arg);
  static void onClientWrite(bufferevent*, void* arg);
  static void onClientEvent(bufferevent*, short what, void* arg);
  static void onUpstreamRead(bufferevent*, void* arg);
  static void onUpstreamWrite(bufferevent*, void* arg);
  static void onUpstreamEvent(bufferevent*, short what, void* arg);
  static void onTimer(evutil_socket_t, short, void* arg);
  static void onDone(evutil_socket_t, short, void* arg);

  Result<void> openUpstream(event_base* base, UniqueFd upstream, std::string upstream_error);
  void clientHandshakeDone();
  void upstreamHandshakeDone();
  void upstreamFailed(Outcome reason, std::string detail);
  bool settled() const;
  void pumpClient();
  void pumpUpstream();
  bool requestHead();
  void responseHead();
  void responseEnd();
  void upstreamEof();
  void clientEof();
  void startTunnel();
  void pumpTunnel();
  void writeToUpstream(std::span<const uint8_t> data);
  void writeRequestBody(std::span<const uint8_t> data);
  void armIdle();
  void writeResponseBody(std::span<const uint8_t> data);
  void answer(int status, std::string_view text, std::string_view reason,
              Outcome outcome = Outcome::kAnswered);
  void endExchange();
  void closeAfterFlush();
  void maybeClosed();
  void finish(Outcome outcome, std::string_view answered = {});

  event_base* base_ = nullptr;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  SessionOptions opts_;
  UpstreamTls* upstream_tls_ = nullptr;
  BevPtr client_;
  BevPtr upstream_;
  EventPtr timer_;
  EventPtr done_ev_;  // runs `done` from the loop, never from our own stack
  bool client_ready_ = false;
  bool upstream_ready_ = false;
  bool upstream_gone_ = false;
  Outcome upstream_outcome_ = Outcome::kAnswered;  // when upstream_error_ is set
  std::string upstream_error_;
  std::string upstream_detail_;
  bool client_eof_ = false;
  bool tunnel_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool in_pump_ = false;
  bool in_upstream_pump_ = false;
  bool interim_ = false;  // the response head being read is a 1xx
  RequestReader req_;
  ResponseReader resp_;
  Exchange ex_;
  Summary summary_;
  ExchangeFn on_exchange_;
  DoneFn done_;
};

}  // namespace tollgate::mitm
