#include "gateway/tls_responder.h"

#include <openssl/err.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tollgate::gateway {
namespace {

constexpr size_t kMaxRequestHead = 16 * 1024;
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

Result<std::unique_ptr<TlsResponder>> TlsResponder::start(event_base* base, SSL_CTX* ctx,
                                                          const ca::Leaf& leaf, int fd,
                                                          std::span<const uint8_t> client_hello,
                                                          std::string response,
                                                          std::chrono::milliseconds deadline,
                                                          DoneFn done) {
  ERR_clear_error();
  std::unique_ptr<TlsResponder> r(new TlsResponder());
  r->fd_ = fd;
  r->response_ = std::move(response);
  r->done_ = std::move(done);
  r->ssl_.reset(SSL_new(ctx));
  if (!r->ssl_) {
    return makeError("SSL_new failed");
  }
  if (auto u = leaf.useOn(r->ssl_.get()); !u) {
    return u.error();
  }
  // Reads come from a memory BIO we fill from the socket, so the ClientHello
  // bytes already consumed by the peek go first; writes go to the socket.
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new_socket(fd, BIO_NOCLOSE);
  if (rbio == nullptr || wbio == nullptr) {
    BIO_free(rbio);
    BIO_free(wbio);
    return makeError("BIO_new failed");
  }
  BIO_set_mem_eof_return(rbio, -1);  // empty = "retry", not EOF
  if (!client_hello.empty()) {
    BIO_write(rbio, client_hello.data(), static_cast<int>(client_hello.size()));
  }
  SSL_set_bio(r->ssl_.get(), rbio, wbio);  // ssl_ owns both BIOs now
  r->rbio_ = rbio;
  SSL_set_accept_state(r->ssl_.get());
  r->ev_.reset(event_new(base, fd, EV_READ | EV_PERSIST, &TlsResponder::onReadable, r.get()));
  timeval tv = toTimeval(static_cast<uint64_t>(deadline.count()));
  event_add(r->ev_.get(), &tv);
  // The first step runs from the loop: `done` must not fire inside start().
  event_active(r->ev_.get(), EV_WRITE, 0);
  return r;
}

TlsResponder::~TlsResponder() = default;

void TlsResponder::onReadable(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<TlsResponder*>(arg);
  if ((what & EV_TIMEOUT) != 0) {
    self->finish(Outcome::TimedOut);
    return;
  }
  if ((what & EV_READ) != 0) {
    char buf[16384];
    ssize_t n = read(self->fd_, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      self->finish(Outcome::ClientGone);
      return;
    }
    if (n > 0) {
      BIO_write(self->rbio_, buf, static_cast<int>(n));
    }
  }
  self->drive();
}

void TlsResponder::drive() {
  ERR_clear_error();
  if (!handshaken_) {
    int rc = SSL_do_handshake(ssl_.get());
    if (rc != 1) {
      int err = SSL_get_error(ssl_.get(), rc);
      if (err != SSL_ERROR_WANT_READ) {
        finish(Outcome::HandshakeFailed);
      }
      return;
    }
    handshaken_ = true;
  }
  char buf[4096];
  while (request_.find("\r\n\r\n") == std::string::npos && request_.size() < kMaxRequestHead) {
    int n = SSL_read(ssl_.get(), buf, sizeof(buf));
    if (n <= 0) {
      int err = SSL_get_error(ssl_.get(), n);
      if (err == SSL_ERROR_WANT_READ) {
        return;
      }
      finish(Outcome::ClientGone);
      return;
    }
    request_.append(buf, static_cast<size_t>(n));
  }
  // The refusal is small: it fits the socket buffer of a fresh connection.
  (void)SSL_write(ssl_.get(), response_.data(), static_cast<int>(response_.size()));
  (void)SSL_shutdown(ssl_.get());
  finish(Outcome::Answered);
}

void TlsResponder::finish(Outcome o) {
  if (finished_) {
    return;
  }
  finished_ = true;
  event_del(ev_.get());
  DoneFn done = std::move(done_);
  done(o);  // may destroy this
}

}  // namespace tollgate::gateway
