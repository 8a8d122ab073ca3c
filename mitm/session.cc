#include "mitm/session.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include <cstring>

namespace tollgate::mitm {
namespace {

// Backpressure: a direction stops reading while the other side's output
// holds more than kHighWater, and resumes below kLowWater. Input read ahead
// of the parser is bounded the same way.
constexpr size_t kHighWater = 1 << 20;
constexpr size_t kLowWater = 256 * 1024;
constexpr size_t kReadAhead = 256 * 1024;

// ---------------------------------------------------------------------------
// A BIO that first returns bytes already read from the socket (the peeked
// ClientHello), then reads from the next BIO (the socket). Everything else
// (writes, BIO_get_fd, flush) goes to the next BIO, so libevent's socket
// bufferevent drives it like a plain socket BIO.

struct PrefixData {
  std::string bytes;
  size_t off = 0;
};

int prefixCreate(BIO* b) {
  BIO_set_data(b, nullptr);
  BIO_set_init(b, 1);
  return 1;
}

int prefixDestroy(BIO* b) {
  delete static_cast<PrefixData*>(BIO_get_data(b));
  BIO_set_data(b, nullptr);
  return 1;
}

int prefixRead(BIO* b, char* out, size_t len, size_t* got) {
  auto* d = static_cast<PrefixData*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (d != nullptr && d->off < d->bytes.size()) {
    size_t n = std::min(len, d->bytes.size() - d->off);
    std::memcpy(out, d->bytes.data() + d->off, n);
    d->off += n;
    *got = n;
    if (d->off == d->bytes.size()) {
      std::string().swap(d->bytes);
      d->off = 0;
    }
    return 1;
  }
  BIO* next = BIO_next(b);
  if (next == nullptr) {
    return 0;
  }
  int r = BIO_read_ex(next, out, len, got);
  BIO_copy_next_retry(b);
  return r;
}

int prefixWrite(BIO* b, const char* in, size_t len, size_t* put) {
  BIO* next = BIO_next(b);
  if (next == nullptr) {
    return 0;
  }
  BIO_clear_retry_flags(b);
  int r = BIO_write_ex(next, in, len, put);
  BIO_copy_next_retry(b);
  return r;
}

long prefixCtrl(BIO* b, int cmd, long num, void* ptr) {
  auto* d = static_cast<PrefixData*>(BIO_get_data(b));
  BIO* next = BIO_next(b);
  if (cmd == BIO_CTRL_PENDING && d != nullptr && d->off < d->bytes.size()) {
    return static_cast<long>(d->bytes.size() - d->off);
  }
  return next == nullptr ? 0 : BIO_ctrl(next, cmd, num, ptr);
}

void freeMethod(BIO_METHOD* m) { BIO_meth_free(m); }

const BIO_METHOD* prefixMethod() {
  static const CPtr<BIO_METHOD, freeMethod> method = [] {
    CPtr<BIO_METHOD, freeMethod> m(
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "tollgate prefix"));
    if (m) {
      BIO_meth_set_create(m.get(), prefixCreate);
      BIO_meth_set_destroy(m.get(), prefixDestroy);
      BIO_meth_set_read_ex(m.get(), prefixRead);
      BIO_meth_set_write_ex(m.get(), prefixWrite);
      BIO_meth_set_ctrl(m.get(), prefixCtrl);
    }
    return m;
  }();
  return method.get();
}

using BioPtr = CPtr<BIO, BIO_free_all>;

// Gives `ssl` a read path of prefix-then-socket and a write path to the
// socket. The socket BIO does not close fd (the bufferevent does).
Result<void> attachPrefixedSocket(SSL* ssl, int fd, std::span<const uint8_t> prefix) {
  const BIO_METHOD* m = prefixMethod();
  if (m == nullptr) {
    return makeError("BIO_meth_new failed");
  }
  BioPtr top(BIO_new(m));
  BioPtr sock(BIO_new_socket(fd, BIO_NOCLOSE));
  if (!top || !sock) {
    return makeError("BIO_new failed");
  }
  auto* d = new PrefixData{std::string(reinterpret_cast<const char*>(prefix.data()), prefix.size())};
  BIO_set_data(top.get(), d);
  BIO* chain = BIO_push(top.release(), sock.release());
  SSL_set_bio(ssl, chain, chain);  // one reference for both directions
  return {};
}

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

void writeFramed(bufferevent* bev, bool chunked, const char* data, size_t len) {
  if (len == 0) {
    return;
  }
  if (chunked) {
    char line[32];
    int n = snprintf(line, sizeof(line), "%zx\r\n", len);
    bufferevent_write(bev, line, static_cast<size_t>(n));
    bufferevent_write(bev, data, len);
    bufferevent_write(bev, "\r\n", 2);
  } else {
    bufferevent_write(bev, data, len);
  }
}

std::string_view statusText(int status) {
  switch (status) {
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Bad Request";
  }
}

// The first contiguous run of bytes in `in` (empty when it is empty): the
// readers take any split, so no pullup (copy) is needed.
std::span<const uint8_t> firstSegment(evbuffer* in) {
  evbuffer_iovec v{};
  if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, nullptr, &v, 1) < 1) {
    return {};
  }
  return {static_cast<const uint8_t*>(v.iov_base), v.iov_len};
}

timeval toTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

void wipeAndDelete(const void*, size_t, void* extra) {
  delete static_cast<SecretBuffer*>(extra);  // ~SecretBuffer wipes
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
    if (auto r = attachPrefixedSocket(client_ssl.get(), client.get(), initial); !r) {
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

  // Upstream side.
  if (!upstream_error.empty() || !upstream) {
    s->upstream_error_ = upstream_error.empty() ? "upstream_connect_failed" : upstream_error;
  } else if (s->opts_.tls) {
    auto ssl = upstream_tls == nullptr
                   ? Result<SslPtr>(makeError("no upstream TLS context"))
                   : upstream_tls->newSsl(s->opts_.host, s->opts_.host_is_ip, s->opts_.port);
    if (!ssl) {
      s->upstream_error_ = "upstream_tls_failed";
      s->upstream_detail_ = ssl.message();
    } else {
      bufferevent* bev = bufferevent_openssl_socket_new(base, upstream.get(), ssl->get(),
                                                        BUFFEREVENT_SSL_CONNECTING, opts_bev);
      if (bev == nullptr) {
        return makeError("mitm: cannot create the upstream TLS bufferevent");
      }
      ssl->release();
      upstream.release();
      s->upstream_.reset(bev);
      bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    }
  } else {
    bufferevent* bev = bufferevent_socket_new(base, upstream.get(), opts_bev);
    if (bev == nullptr) {
      return makeError("mitm: cannot create the upstream bufferevent");
    }
    upstream.release();
    s->upstream_.reset(bev);
    s->upstream_ready_ = true;
  }
  if (s->upstream_) {
    bufferevent_setcb(s->upstream_.get(), &Session::onUpstreamRead, &Session::onUpstreamWrite,
                      &Session::onUpstreamEvent, s.get());
    bufferevent_setwatermark(s->upstream_.get(), EV_READ, 0, kReadAhead);
    bufferevent_setwatermark(s->upstream_.get(), EV_WRITE, kLowWater, 0);
    bufferevent_enable(s->upstream_.get(), EV_READ | EV_WRITE);
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
    self->finish(self->client_ready_ ? "upstream_tls_timeout" : "client_tls_timeout");
    return;
  }
  if (!self->ex_.active && !self->tunnel_) {
    self->finish("idle_timeout");
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
      self->finish("client_closed_during_handshake");
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
      self->finish(clientRejectedCertificate(detail) ? "client_rejected_certificate"
                                                     : "client_tls_failed");
      return;
    }
    self->finish(self->tunnel_ ? "" : "client_error");
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
    std::string reason = "upstream_tls_failed";
    std::string detail = sslErrorOf(bev);
    if (SSL* ssl = bufferevent_openssl_get_ssl(bev)) {
      long v = SSL_get_verify_result(ssl);
      if (v != X509_V_OK) {
        reason = "upstream_cert_invalid";
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

void Session::upstreamFailed(std::string reason, std::string detail) {
  upstream_error_ = std::move(reason);
  upstream_detail_ = std::move(detail);
  upstream_.reset();
  // The sandbox's first request (once its handshake is done) gets a 502.
  pumpClient();
}

// --- sandbox -> upstream ------------------------------------------------

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

void Session::pumpClient() {
  if (finished_ || closing_ || !settled() || in_pump_) {
    return;
  }
  if (tunnel_) {
    pumpTunnel();
    return;
  }
  if (!ex_.active) {
    armIdle();
  }
  evbuffer* in = bufferevent_get_input(client_.get());
  in_pump_ = true;
  while (!finished_ && !closing_) {
    if (ex_.active && ex_.request_done) {
      break;  // one exchange at a time: the next request waits
    }
    if (upstream_ && evbuffer_get_length(bufferevent_get_output(upstream_.get())) > kHighWater) {
      bufferevent_disable(client_.get(), EV_READ);
      break;
    }
    // An empty input still goes to the reader: a message's End (after its
    // last body bytes, or after a head without body) is its own step.
    std::span<const uint8_t> seg = firstSegment(in);
    Step st = req_.next(seg);
    switch (st.event) {
      case Event::NeedMore:
        evbuffer_drain(in, st.consumed);
        if (seg.empty()) {
          break;
        }
        continue;
      case Event::Head:
        evbuffer_drain(in, st.consumed);
        if (!requestHead()) {
          in_pump_ = false;
          return;
        }
        continue;
      case Event::Body:
        writeRequestBody(st.body);
        evbuffer_drain(in, st.consumed);
        continue;
      case Event::End:
        evbuffer_drain(in, st.consumed);
        if (ex_.request_body == BodyKind::Chunked) {
          writeToUpstream(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("0\r\n\r\n"), 5));
        }
        ex_.request_done = true;
        if (ex_.response_done) {
          // The upstream answered before the request ended; it is complete
          // now, so the connection may go on.
          responseEnd();
        }
        continue;
      case Event::Tunnel:
        break;
      case Event::Invalid:
        in_pump_ = false;
        if (ex_.active && ex_.response_head_sent) {
          finish(std::string(st.reason));
        } else {
          int status = st.http_status == 0 ? 400 : st.http_status;
          answer(status, statusText(status), st.reason);
        }
        return;
    }
    break;
  }
  in_pump_ = false;
  if (!finished_ && client_eof_ && evbuffer_get_length(in) == 0 && !closing_) {
    clientEof();
  }
}

bool Session::requestHead() {
  RequestHead& h = req_.head();
  ex_ = Exchange{};
  ex_.active = true;
  ex_.started = std::chrono::steady_clock::now();
  ex_.rec.method = h.method;
  std::span<const CredentialSpec> table = opts_.credentials;
  if (opts_.current_credentials) {
    SessionOptions::CredentialSnapshot now = opts_.current_credentials();
    table = now.specs;
    ex_.credentials_keepalive = std::move(now.keepalive);
  }
  ex_.rec.path = auditPath(h, table);
  ex_.client_minor = h.minor;
  ex_.client_keep_alive = h.keep_alive;
  ex_.upgrade = h.upgrade_websocket;
  ex_.request_body = h.body.kind;
  if (!upstream_error_.empty()) {
    answer(502, "Bad Gateway", upstream_error_);
    return false;
  }
  if (upstream_gone_ || !upstream_) {
    answer(502, "Bad Gateway", "upstream_closed");
    return false;
  }
  // Requests must be for the name policy decided on: a different Host on
  // an allowed connection (domain fronting) would reach a host policy never
  // judged.
  if (h.authority && h.authority->host.name != opts_.host) {
    answer(421, "Misdirected Request", "http_host_mismatch");
    return false;
  }
  RewriteContext ctx{opts_.host, opts_.tls && opts_.inject, opts_.attached};
  RewriteOutcome out = rewriteCredentials(h, ctx, table);
  if (auto* refused = std::get_if<Refused>(&out)) {
    answer(403, "Forbidden", refused->reason);
    return false;
  }
  auto& inj = std::get<Injected>(out);
  ex_.rec.credentials = inj.credentials;
  if (!inj.scrub.empty()) {
    ex_.derived = std::move(inj.derived);
    ex_.scrubber = Scrubber(std::move(inj.scrub));
  }
  // The sandbox's hop-by-hop removals, then tollgate's own fields: a
  // Connection option must not drop a credential's header nor the identity
  // coding the scrubber depends on (RFC 9110 §7.6.1 lets an intermediary
  // keep a field it adds itself).
  std::vector<std::string_view> protect;
  for (const CredentialSpec& c : table) {
    if (!c.inject_header.empty()) {
      protect.push_back(c.inject_header);
    }
  }
  removeHopByHop(h.headers, h.upgrade_websocket, protect);
  if (inj.identity_encoding) {
    h.headers.set("Accept-Encoding", "identity");
  }
  if (!h.authority) {
    h.headers.set("Host", opts_.host_is_ip && opts_.host.find(':') != std::string::npos
                              ? "[" + opts_.host + "]"
                              : opts_.host);
  }
  // Toward the upstream always HTTP/1.1 with persistent connections; the
  // response is re-framed for the sandbox's version.
  h.minor = 1;
  setFraming(h.headers, h.body);
  resp_.expect(ResponseContext::of(h));
  if (!inj.credentials.empty()) {
    // The head holds real values: serialise it straight into locked memory,
    // hand that memory to the output buffer by reference (no copy), and
    // wipe it when the TLS layer has taken it.
    auto buf = SecretBuffer::allocate(serializedSize(h));
    if (!buf) {
      wipeSecrets(h);
      answer(500, "Internal Server Error", "secret_buffer_failed");
      return false;
    }
    serializeTo(h, buf->writable());
    wipeSecrets(h);
    auto* held = new SecretBuffer(std::move(*buf));
    summary_.bytes_up += held->size();
    if (evbuffer_add_reference(bufferevent_get_output(upstream_.get()), held->view().data(),
                               held->size(), &wipeAndDelete, held) != 0) {
      delete held;
      answer(500, "Internal Server Error", "internal_error");
      return false;
    }
  } else {
    std::string head = serialize(h);
    writeToUpstream(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(head.data()),
                                             head.size()));
  }
  return true;
}

void Session::writeToUpstream(std::span<const uint8_t> data) {
  if (!upstream_ || data.empty()) {
    return;
  }
  bufferevent_write(upstream_.get(), data.data(), data.size());
  summary_.bytes_up += data.size();
}

void Session::writeRequestBody(std::span<const uint8_t> data) {
  ex_.rec.bytes_up += data.size();
  if (!upstream_ || data.empty()) {
    return;
  }
  size_t before = evbuffer_get_length(bufferevent_get_output(upstream_.get()));
  writeFramed(upstream_.get(), ex_.request_body == BodyKind::Chunked,
              reinterpret_cast<const char*>(data.data()), data.size());
  summary_.bytes_up += evbuffer_get_length(bufferevent_get_output(upstream_.get())) - before;
}

// --- upstream -> sandbox ------------------------------------------------

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

void Session::pumpUpstream() {
  if (finished_ || !upstream_ || in_upstream_pump_) {
    return;
  }
  if (tunnel_) {
    pumpTunnel();
    return;
  }
  evbuffer* in = bufferevent_get_input(upstream_.get());
  in_upstream_pump_ = true;
  while (!finished_ && !closing_) {
    if (evbuffer_get_length(bufferevent_get_output(client_.get())) > kHighWater) {
      bufferevent_disable(upstream_.get(), EV_READ);
      break;
    }
    size_t avail = evbuffer_get_length(in);
    if (avail == 0 && (!ex_.active || ex_.response_done)) {
      break;
    }
    if (!ex_.active || ex_.response_done) {
      // Bytes nobody asked for: the upstream connection is unusable.
      in_upstream_pump_ = false;
      upstream_gone_ = true;
      evbuffer_drain(in, evbuffer_get_length(in));
      upstream_.reset();
      if (!ex_.active) {
        closeAfterFlush();
      }
      return;
    }
    std::span<const uint8_t> seg = firstSegment(in);
    Step st = resp_.next(seg);
    switch (st.event) {
      case Event::NeedMore:
        evbuffer_drain(in, st.consumed);
        if (seg.empty()) {
          break;
        }
        continue;
      case Event::Head:
        evbuffer_drain(in, st.consumed);
        responseHead();
        continue;
      case Event::Body:
        writeResponseBody(st.body);
        evbuffer_drain(in, st.consumed);
        continue;
      case Event::End:
        evbuffer_drain(in, st.consumed);
        if (interim_) {
          interim_ = false;
          continue;
        }
        in_upstream_pump_ = false;
        responseEnd();
        if (finished_) {
          return;
        }
        in_upstream_pump_ = true;
        continue;
      case Event::Tunnel:
        in_upstream_pump_ = false;
        startTunnel();
        return;
      case Event::Invalid:
        in_upstream_pump_ = false;
        if (ex_.response_head_sent) {
          finish(std::string(st.reason));
        } else {
          answer(502, "Bad Gateway", st.reason);
        }
        return;
    }
    break;  // NeedMore on an empty input
  }
  in_upstream_pump_ = false;
}

void Session::responseHead() {
  ResponseHead& h = resp_.head();
  if (h.interim()) {
    interim_ = true;
    if (ex_.client_minor == 1) {
      // 103 Early Hints and the like are heads too: an echo may sit in them.
      ex_.scrubber.scrubHead(h);
      removeHopByHop(h.headers, false);
      std::string head = serialize(h);
      bufferevent_write(client_.get(), head.data(), head.size());
      summary_.bytes_down += head.size();
    }
    return;
  }
  interim_ = false;
  ex_.rec.status = h.status;
  if (h.status == 101) {
    ex_.scrubber.scrubHead(h);
    removeHopByHop(h.headers, true);
    std::string head = serialize(h);
    bufferevent_write(client_.get(), head.data(), head.size());
    summary_.bytes_down += head.size();
    ex_.response_head_sent = true;
    return;
  }
  if (ex_.scrubber.active()) {
    if (!scrubbable(h)) {
      answer(502, "Bad Gateway", "upstream_content_encoded");
      return;
    }
    ex_.scrubber.scrubHead(h);
  }
  removeHopByHop(h.headers, false);
  bool v11 = ex_.client_minor == 1;
  OutFraming out = OutFraming::None;
  switch (h.body.kind) {
    case BodyKind::None:
    case BodyKind::Tunnel:
      out = OutFraming::None;  // HEAD / 204 / 304 keep their fields as sent
      break;
    case BodyKind::Length:
      if (ex_.scrubber.active() && !ex_.scrubber.lengthPreserving()) {
        out = v11 ? OutFraming::Chunked : OutFraming::Close;
      } else {
        out = OutFraming::Length;
      }
      break;
    case BodyKind::Chunked:
    case BodyKind::UntilClose:
      out = v11 ? OutFraming::Chunked : OutFraming::Close;
      break;
  }
  if (out == OutFraming::Length) {
    setFraming(h.headers, h.body);
  } else if (out == OutFraming::Chunked) {
    setFraming(h.headers, BodyFraming{BodyKind::Chunked, 0});
  } else if (out == OutFraming::Close) {
    setFraming(h.headers, BodyFraming{});
  }
  ex_.response_out = out;
  ex_.keep_alive_after = ex_.client_keep_alive && h.keep_alive && out != OutFraming::Close;
  if (!ex_.keep_alive_after) {
    h.headers.set("Connection", "close");
  } else if (!v11) {
    h.headers.set("Connection", "keep-alive");
  }
  h.minor = 1;
  std::string head = serialize(h);
  bufferevent_write(client_.get(), head.data(), head.size());
  summary_.bytes_down += head.size();
  ex_.response_head_sent = true;
}

void Session::writeResponseBody(std::span<const uint8_t> data) {
  ex_.rec.bytes_down += data.size();
  bool chunked = ex_.response_out == OutFraming::Chunked;
  if (ex_.scrubber.active()) {
    std::string out;
    ex_.scrubber.feed(data, out);
    writeFramed(client_.get(), chunked, out.data(), out.size());
    summary_.bytes_down += out.size();
    return;
  }
  writeFramed(client_.get(), chunked, reinterpret_cast<const char*>(data.data()), data.size());
  summary_.bytes_down += data.size();
}

void Session::responseEnd() {
  if (!ex_.response_done) {
    ex_.response_done = true;
    if (ex_.scrubber.active()) {
      std::string tail;
      ex_.scrubber.finish(tail);
      writeFramed(client_.get(), ex_.response_out == OutFraming::Chunked, tail.data(), tail.size());
      summary_.bytes_down += tail.size();
    }
    if (ex_.response_out == OutFraming::Chunked) {
      bufferevent_write(client_.get(), "0\r\n\r\n", 5);
      summary_.bytes_down += 5;
    }
  }
  if (!ex_.request_done) {
    // The request body is still arriving. Without a keep-alive promise the
    // connection ends now; otherwise let the request finish first.
    if (!ex_.keep_alive_after) {
      endExchange();
      closeAfterFlush();
    }
    return;
  }
  bool keep = ex_.keep_alive_after && !upstream_gone_;
  endExchange();
  if (!keep) {
    closeAfterFlush();
    return;
  }
  pumpClient();
}

void Session::upstreamEof() {
  if (tunnel_) {
    closeAfterFlush();
    return;
  }
  Step st = resp_.finish();
  if (ex_.active && !ex_.response_done) {
    if (st.event == Event::End && ex_.response_head_sent) {
      // A body delimited by the upstream's close.
      ex_.keep_alive_after = false;
      responseEnd();
      return;
    }
    if (ex_.response_head_sent) {
      finish(st.event == Event::Invalid ? std::string(st.reason) : "upstream_closed");
      return;
    }
    answer(502, "Bad Gateway", "upstream_closed");
    return;
  }
  upstream_.reset();
  if (!ex_.active) {
    // Between exchanges: nothing to lose; the sandbox reconnects.
    closeAfterFlush();
  }
}

void Session::clientEof() {
  if (tunnel_) {
    closeAfterFlush();
    return;
  }
  Step st = req_.finish();
  if (st.event == Event::Invalid) {
    if (ex_.active && !ex_.request_done) {
      finish(std::string(st.reason));
      return;
    }
  }
  if (!ex_.active) {
    finish("");
  }
  // Otherwise the response still goes out (half-close); responseEnd closes.
}

// --- tunnel (WebSocket after 101) ---------------------------------------

void Session::startTunnel() {
  tunnel_ = true;
  endExchange();
  evtimer_del(timer_.get());
  pumpTunnel();
}

void Session::pumpTunnel() {
  if (finished_ || !upstream_) {
    return;
  }
  evbuffer* cin = bufferevent_get_input(client_.get());
  evbuffer* uin = bufferevent_get_input(upstream_.get());
  size_t up = evbuffer_get_length(cin);
  size_t down = evbuffer_get_length(uin);
  summary_.bytes_up += up;
  summary_.bytes_down += down;
  bufferevent_write_buffer(upstream_.get(), cin);
  bufferevent_write_buffer(client_.get(), uin);
  if (closing_) {
    maybeClosed();
  }
}

// --- ending ---------------------------------------------------------------

void Session::answer(int status, std::string_view text, std::string_view reason) {
  if (!ex_.active) {
    ex_ = Exchange{};
    ex_.active = true;
    ex_.started = std::chrono::steady_clock::now();
  }
  ex_.rec.status = status;
  ex_.rec.reason = std::string(reason);
  if (summary_.reason.empty()) {
    summary_.reason = std::string(reason);
  }
  std::string reply = opts_.error_response
                          ? opts_.error_response(status, text, reason)
                          : "HTTP/1.1 " + std::to_string(status) + " " + std::string(text) +
                                "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  bufferevent_write(client_.get(), reply.data(), reply.size());
  summary_.bytes_down += reply.size();
  endExchange();
  closeAfterFlush();
}

void Session::endExchange() {
  if (!ex_.active) {
    return;
  }
  ex_.rec.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - ex_.started);
  ++summary_.exchanges;
  if (on_exchange_) {
    on_exchange_(ex_.rec);
  }
  ex_ = Exchange{};
}

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
    finish(summary_.reason);
  }
}

void Session::finish(std::string reason) {
  if (finished_) {
    return;
  }
  finished_ = true;
  if (summary_.reason.empty()) {
    summary_.reason = std::move(reason);
  }
  if (ex_.active) {
    if (ex_.rec.reason.empty()) {
      ex_.rec.reason = summary_.reason.empty() ? "incomplete" : summary_.reason;
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
