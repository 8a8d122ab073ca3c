#include "mitm/sandbox_tls.h"

#include <openssl/err.h>

#include <cstring>

#include "base/timeval.h"
#include "mitm/replay_bio.h"

namespace tollgate::mitm {
namespace {

constexpr unsigned char kAlpnHttp11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};

int selectAlpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
               unsigned int in_len, void*) {
  // RFC 7301 §3.1: the list is a sequence of u8-prefixed names.
  for (unsigned i = 0; i < in_len;) {
    unsigned n = in[i];
    if (i + 1 + n > in_len) {
      break;
    }
    if (n == sizeof(kAlpnHttp11) && std::memcmp(in + i + 1, kAlpnHttp11, n) == 0) {
      *out = in + i + 1;
      *out_len = static_cast<unsigned char>(n);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_NOACK;  // no ALPN: the client assumes HTTP/1.1
}

}  // namespace

Result<SslCtxPtr> makeSandboxServerCtx() {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) {
    return makeError("SSL_CTX_new failed");
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // IGNORE_UNEXPECTED_EOF: a client that closes without close_notify has
  // ended its connection, not failed it (OpenSSL 3 reports an error else).
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Idle MITM flows keep no record buffers (tens of KiB per connection).
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx.get(), &selectAlpn, nullptr);
  return ctx;
}

SandboxSsl newSandboxSsl(const SandboxTls& tls, const std::string& host) {
  SandboxSsl out;
  if (!tls.ready()) {
    out.failure = Outcome::kInternalError;
    out.detail = "no sandbox TLS context";
    return out;
  }
  auto leaf = tls.minter->leafFor(host);
  if (!leaf) {
    out.failure = Outcome::kLeafMintFailed;
    out.detail = leaf.message();
    return out;
  }
  ERR_clear_error();
  out.ssl.reset(SSL_new(tls.ctx));
  if (!out.ssl) {
    out.failure = Outcome::kInternalError;
    out.detail = "SSL_new failed";
    return out;
  }
  // The SSL takes its own references to the leaf's certificate, key and
  // chain: the Leaf need not outlive it.
  if (auto used = (*leaf)->useOn(out.ssl.get()); !used) {
    out.ssl.reset();
    out.failure = Outcome::kInternalError;
    out.detail = used.message();
  }
  return out;
}

Result<std::unique_ptr<DenyOverTls>> DenyOverTls::start(event_base* base, const SandboxTls& tls,
                                                        const std::string& host, int fd,
                                                        std::span<const uint8_t> peeked,
                                                        std::string response,
                                                        std::chrono::milliseconds deadline,
                                                        DoneFn done) {
  SandboxSsl made = newSandboxSsl(tls, host);
  if (!made.ssl) {
    return makeError(std::string(reasonName(made.failure)) + ": " + made.detail);
  }
  std::unique_ptr<DenyOverTls> r(new DenyOverTls());
  r->ssl_ = std::move(made.ssl);
  r->response_ = std::move(response);
  r->done_ = std::move(done);
  if (auto a = attachReplayedSocket(r->ssl_.get(), fd, peeked); !a) {
    return a.error();
  }
  SSL_set_accept_state(r->ssl_.get());
  r->ev_.reset(event_new(base, fd, EV_READ | EV_PERSIST, &DenyOverTls::onEvent, r.get()));
  if (!r->ev_) {
    return makeError("event_new failed");
  }
  timeval tv = toTimeval(deadline);
  event_add(r->ev_.get(), &tv);
  // The first step runs from the loop: `done` must not fire inside start().
  event_active(r->ev_.get(), EV_WRITE, 0);
  return r;
}

DenyOverTls::~DenyOverTls() = default;

void DenyOverTls::onEvent(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<DenyOverTls*>(arg);
  if ((what & EV_TIMEOUT) != 0) {
    self->finish(End::kTimedOut);
    return;
  }
  self->drive();
}

void DenyOverTls::drive() {
  ERR_clear_error();
  if (!handshaken_) {
    int rc = SSL_do_handshake(ssl_.get());
    if (rc != 1) {
      int err = SSL_get_error(ssl_.get(), rc);
      if (err == SSL_ERROR_WANT_READ) {
        return;
      }
      finish(err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN ? End::kClientGone
                                                                      : End::kHandshakeFailed);
      return;
    }
    handshaken_ = true;
  }
  // Read until the head parses or is refused by the parser (too large,
  // malformed): either way the answer is the same refusal.
  uint8_t buf[4096];
  for (;;) {
    int n = SSL_read(ssl_.get(), buf, sizeof(buf));
    if (n <= 0) {
      if (SSL_get_error(ssl_.get(), n) == SSL_ERROR_WANT_READ) {
        return;
      }
      finish(End::kClientGone);
      return;
    }
    HeadResult h = parser_.feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    if (h.status == Status::Done) {
      parsed_ = true;
      break;
    }
    if (h.status == Status::Invalid) {
      break;
    }
  }
  // The refusal is small: it fits the socket buffer of a fresh connection.
  (void)SSL_write(ssl_.get(), response_.data(), static_cast<int>(response_.size()));
  (void)SSL_shutdown(ssl_.get());
  finish(End::kAnswered);
}

void DenyOverTls::finish(End e) {
  if (finished_) {
    return;
  }
  finished_ = true;
  event_del(ev_.get());
  ERR_clear_error();
  DoneFn done = std::move(done_);
  done(e);  // may destroy this
}

}  // namespace tollgate::mitm
