// The transport half of a Session: the sandbox and upstream connections
// (TLS or plain, the peeked bytes replayed first), handshakes, deadlines,
// flow control and closing. The HTTP/1.1 engine is http1_exchange.cc.
#include "mitm/session.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include <cstring>

#include "base/timeval.h"
#include "mitm/replay_bio.h"
#include "mitm/session_internal.h"

namespace tollgate::mitm {
namespace {

// ---------------------------------------------------------------------------

std::string sslErrorOf(bufferevent* bev) {
  std::string out;
  while (unsigned long e = bufferevent_get_openssl_error(bev)) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) {
      out += "; ";
    }
    out += buf;
  }
  return out;
}

// A client that does not trust tollgate's CA ends the handshake with one of
// these alerts: worth its own audit reason, it is an operator's to fix.
bool clientRejectedCertificate(const std::string& detail) {
  for (const char* s : {"unknown ca", "bad certificate", "certificate unknown",
                        "unsupported certificate", "certificate expired"}) {
    if (detail.find(s) != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<Session>> Session::start(event_base* base, SessionOptions opts,
                                                UniqueFd client, std::span<const uint8_t> initial,
                                                SslPtr client_ssl, UniqueFd upstream,
                                                std::string upstream_error,
                                                UpstreamTls* upstream_tls, ExchangeFn exchange,
                                                DoneFn done) {
  ERR_clear_error();
  std::unique_ptr<Session> s(new Session());
  s->base_ = base;
  s->opts_ = std::move(opts);
  s->upstream_tls_ = upstream_tls;
  s->on_exchange_ = std::move(exchange);
  s->done_ = std::move(done);
  const int opts_bev = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;

  // Sandbox side.
  if (s->opts_.tls) {
    if (!client_ssl) {
      return makeError("mitm: no sandbox TLS state");
    }
    if (auto r = attachReplayedSocket(client_ssl.get(), client.get(), initial); !r) {
      return makeError(r.message());
    }
    bufferevent* bev = bufferevent_openssl_socket_new(base, client.get(), client_ssl.get(),
                                                      BUFFEREVENT_SSL_ACCEPTING, opts_bev);
    if (bev == nullptr) {
      return makeError("mitm: cannot create the sandbox TLS bufferevent");
    }
    client_ssl.release();  // owned by bev
    client.release();      // closed by bev
    s->client_.reset(bev);
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
  } else {
    bufferevent* bev = bufferevent_socket_new(base, client.get(), opts_bev);
    if (bev == nullptr) {
      return makeError("mitm: cannot create the sandbox bufferevent");
    }
    client.release();
    s->client_.reset(bev);
    // A socket bufferevent keeps the end of its input frozen between its
    // own reads; the bytes read while peeking go in first.
    evbuffer* in = bufferevent_get_input(bev);
    evbuffer_unfreeze(in, 0);
    int added = evbuffer_add(in, initial.data(), initial.size());
    evbuffer_freeze(in, 0);
    if (added != 0) {
      return makeError("mitm: cannot queue the first request");
    }
    s->client_ready_ = true;
  }
  bufferevent_setcb(s->client_.get(), &Session::onClientRead, &Session::onClientWrite,
                    &Session::onClientEvent, s.get());
  bufferevent_setwatermark(s->client_.get(), EV_READ, 0, kReadAhead);
  bufferevent_setwatermark(s->client_.get(), EV_WRITE, kLowWater, 0);
  bufferevent_enable(s->client_.get(), EV_READ | EV_WRITE);

  if (auto up = s->openUpstream(base, std::move(upstream), std::move(upstream_error)); !up) {
    return up.error();
  }

  // Both handshakes (and, for plain HTTP, the first request) must finish
  // within the deadline; after that the idle timeout governs.
  s->done_ev_.reset(event_new(base, -1, 0, &Session::onDone, s.get()));
  s->timer_.reset(evtimer_new(base, &Session::onTimer, s.get()));
  timeval tv = toTimeval(s->opts_.handshake_timeout);
  evtimer_add(s->timer_.get(), &tv);
  if (s->client_ready_) {
    // Plain HTTP: the first request head is already buffered. Deferred so
    // `done` never runs inside start().
    event_active(s->timer_.get(), EV_READ, 0);
  }
  return s;
}

// The upstream side: TLS (verified for opts_.host) or plain on `upstream`;
// without a connection, the reason the sandbox's first request gets a 502.
Result<void> Session::openUpstream(event_base* base, UniqueFd upstream,
                                   std::string upstream_error) {
  const int opts_bev = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
  if (!upstream_error.empty() || !upstream) {
    if (upstream_error.empty()) {
      upstream_outcome_ = Outcome::kUpstreamConnectFailed;
      upstream_error_ = reasonName(upstream_outcome_);
    } else {
      upstream_error_ = std::move(upstream_error);  // the gateway's reason (resolve_failed ...)
    }
  } else if (opts_.tls) {
    auto ssl = upstream_tls_ == nullptr
                   ? Result<SslPtr>(makeError("no upstream TLS context"))
                   : upstream_tls_->newSsl(opts_.host, opts_.host_is_ip, opts_.port);
    if (!ssl) {
      upstream_outcome_ = Outcome::kUpstreamTlsFailed;
      upstream_error_ = reasonName(upstream_outcome_);
      upstream_detail_ = ssl.message();
    } else {
      bufferevent* bev = bufferevent_openssl_socket_new(base, upstream.get(), ssl->get(),
                                                        BUFFEREVENT_SSL_CONNECTING, opts_bev);
      if (bev == nullptr) {
        return makeError("mitm: cannot create the upstream TLS bufferevent");
      }
      ssl->release();
      upstream.release();
      upstream_.reset(bev);
      bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    }
  } else {
    bufferevent* bev = bufferevent_socket_new(base, upstream.get(), opts_bev);
    if (bev == nullptr) {
      return makeError("mitm: cannot create the upstream bufferevent");
    }
    upstream.release();
    upstream_.reset(bev);
    upstream_ready_ = true;
  }
  if (upstream_) {
    bufferevent_setcb(upstream_.get(), &Session::onUpstreamRead, &Session::onUpstreamWrite,
                      &Session::onUpstreamEvent, this);
    bufferevent_setwatermark(upstream_.get(), EV_READ, 0, kReadAhead);
    bufferevent_setwatermark(upstream_.get(), EV_WRITE, kLowWater, 0);
    bufferevent_enable(upstream_.get(), EV_READ | EV_WRITE);
  }
  return {};
}

Session::~Session() = default;

bool Session::settled() const {
  return client_ready_ && (upstream_ready_ || !upstream_error_.empty());
}

void Session::onTimer(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Session*>(arg);
  if ((what & EV_TIMEOUT) == 0) {
    self->pumpClient();  // the deferred first pump of a plain session
    return;
  }
  if (!self->settled()) {
    self->finish(self->client_ready_ ? Outcome::kUpstreamTlsTimeout : Outcome::kClientTlsTimeout);
    return;
  }
  if (!self->ex_.active && !self->tunnel_) {
    self->finish(Outcome::kIdleTimeout);
    return;
  }
  // Busy: look again later.
  self->armIdle();
}

void Session::armIdle() {
  timeval tv = toTimeval(opts_.idle_timeout);
  evtimer_add(timer_.get(), &tv);
}

// --- events -------------------------------------------------------------

void Session::onClientEvent(bufferevent* bev, short what, void* arg) {
  auto* self = static_cast<Session*>(arg);
  if ((what & BEV_EVENT_CONNECTED) != 0) {
    self->clientHandshakeDone();
    return;
  }
  if ((what & BEV_EVENT_EOF) != 0 && self->closing_) {
    self->maybeClosed();  // let what we owe the sandbox go out first
    return;
  }
  if ((what & BEV_EVENT_EOF) != 0) {
    if (!self->client_ready_) {
      self->finish(Outcome::kClientClosedDuringHandshake);
      return;
    }
    self->client_eof_ = true;
    self->pumpClient();
    if (!self->finished_) {
      self->clientEof();
    }
    return;
  }
  if ((what & BEV_EVENT_ERROR) != 0) {
    std::string detail = sslErrorOf(bev);
    if (!self->client_ready_) {
      self->summary_.detail = detail;
      self->finish(clientRejectedCertificate(detail) ? Outcome::kClientRejectedCertificate
                                                     : Outcome::kClientTlsFailed);
      return;
    }
    self->finish(self->tunnel_ ? Outcome::kClean : Outcome::kClientError);
  }
}

void Session::onUpstreamEvent(bufferevent* bev, short what, void* arg) {
  auto* self = static_cast<Session*>(arg);
  if ((what & BEV_EVENT_CONNECTED) != 0) {
    self->upstreamHandshakeDone();
    return;
  }
  if (!self->upstream_ready_) {
    // The handshake failed: verification, protocol, or a reset.
    Outcome reason = Outcome::kUpstreamTlsFailed;
    std::string detail = sslErrorOf(bev);
    if (SSL* ssl = bufferevent_openssl_get_ssl(bev)) {
      long v = SSL_get_verify_result(ssl);
      if (v != X509_V_OK) {
        reason = Outcome::kUpstreamCertInvalid;
        detail = X509_verify_cert_error_string(v);
      }
    }
    if ((what & BEV_EVENT_EOF) != 0 && detail.empty()) {
      detail = "the upstream closed during the handshake";
    }
    self->summary_.detail = detail;
    self->upstreamFailed(reason, detail);
    return;
  }
  if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0) {
    if (self->closing_ && !self->tunnel_) {
      self->upstream_.reset();
      self->maybeClosed();
      return;
    }
    self->upstream_gone_ = true;
    self->pumpUpstream();
    if (!self->finished_) {
      self->upstreamEof();
    }
  }
}

void Session::clientHandshakeDone() {
  client_ready_ = true;
  summary_.sandbox_handshake = std::chrono::steady_clock::now() - started_;
  if (SSL* ssl = bufferevent_openssl_get_ssl(client_.get())) {
    summary_.tls_version = SSL_get_version(ssl);
  }
  pumpClient();
}

void Session::upstreamHandshakeDone() {
  upstream_ready_ = true;
  summary_.upstream_handshake = std::chrono::steady_clock::now() - started_;
  if (SSL* ssl = bufferevent_openssl_get_ssl(upstream_.get())) {
    if (upstream_tls_ != nullptr) {
      upstream_tls_->noteHandshake(ssl);
    }
    summary_.upstream_resumed = SSL_session_reused(ssl) == 1;
  }
  pumpClient();
}

void Session::upstreamFailed(Outcome reason, std::string detail) {
  upstream_outcome_ = reason;
  upstream_error_ = reasonName(reason);
  upstream_detail_ = std::move(detail);
  upstream_.reset();
  // The sandbox's first request (once its handshake is done) gets a 502.
  pumpClient();
}

// --- flow control -------------------------------------------------------

void Session::onClientRead(bufferevent*, void* arg) { static_cast<Session*>(arg)->pumpClient(); }

void Session::onUpstreamWrite(bufferevent* bev, void* arg) {
  auto* self = static_cast<Session*>(arg);
  if (evbuffer_get_length(bufferevent_get_output(bev)) < kLowWater && !self->closing_) {
    bufferevent_enable(self->client_.get(), EV_READ);
    self->pumpClient();
    return;
  }
  if (self->closing_) {
    self->maybeClosed();
  }
}

void Session::onUpstreamRead(bufferevent*, void* arg) {
  static_cast<Session*>(arg)->pumpUpstream();
}

void Session::onClientWrite(bufferevent* bev, void* arg) {
  auto* self = static_cast<Session*>(arg);
  if (self->closing_) {
    self->maybeClosed();
    return;
  }
  if (evbuffer_get_length(bufferevent_get_output(bev)) < kLowWater && self->upstream_) {
    bufferevent_enable(self->upstream_.get(), EV_READ);
    self->pumpUpstream();
  }
}

// --- ending ---------------------------------------------------------------

void Session::closeAfterFlush() {
  if (finished_) {
    return;
  }
  closing_ = true;
  bufferevent_disable(client_.get(), EV_READ);
  bufferevent_setwatermark(client_.get(), EV_WRITE, 0, 0);
  if (upstream_) {
    bufferevent_setwatermark(upstream_.get(), EV_WRITE, 0, 0);
    if (!tunnel_) {
      bufferevent_disable(upstream_.get(), EV_READ);
    }
  }
  maybeClosed();
}

void Session::maybeClosed() {
  if (finished_) {
    return;
  }
  bool client_flushed = evbuffer_get_length(bufferevent_get_output(client_.get())) == 0;
  bool upstream_flushed =
      !tunnel_ || !upstream_ || evbuffer_get_length(bufferevent_get_output(upstream_.get())) == 0;
  if (client_flushed && upstream_flushed) {
    finish(summary_.outcome, summary_.answered);
  }
}

void Session::finish(Outcome outcome, std::string_view answered) {
  if (finished_) {
    return;
  }
  finished_ = true;
  if (summary_.outcome == Outcome::kClean) {
    summary_.outcome = outcome;
    summary_.answered = outcome == Outcome::kAnswered ? std::string(answered) : std::string();
  }
  if (ex_.active) {
    if (ex_.rec.reason.empty()) {
      std::string_view r = summary_.reason();
      ex_.rec.reason = r.empty() ? "incomplete" : std::string(r);
    }
    endExchange();
  }
  if (timer_) {
    evtimer_del(timer_.get());
  }
  // End both TLS sessions properly (close_notify): a body delimited by the
  // close must be told apart from a truncation. Everything owed has been
  // flushed to the socket by now (maybeClosed); the alert is one small
  // record, written straight to the socket.
  if (opts_.tls) {
    if (client_ready_) {
      if (SSL* ssl = bufferevent_openssl_get_ssl(client_.get())) {
        (void)SSL_shutdown(ssl);
      }
    }
    if (upstream_ && upstream_ready_) {
      if (SSL* ssl = bufferevent_openssl_get_ssl(upstream_.get())) {
        (void)SSL_shutdown(ssl);
      }
    }
    ERR_clear_error();
  }
  // Stop every callback before handing control back: the owner may destroy
  // this session from `done`.
  bufferevent_disable(client_.get(), EV_READ | EV_WRITE);
  if (upstream_) {
    bufferevent_disable(upstream_.get(), EV_READ | EV_WRITE);
  }
  event_active(done_ev_.get(), EV_READ, 0);
}

void Session::onDone(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Session*>(arg);
  if (self->done_) {
    self->done_(self->summary_);  // may destroy self
  }
}

}  // namespace tollgate::mitm
