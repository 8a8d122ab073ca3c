#include "mitm/upstream_tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace tollgate::mitm {
namespace {

constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

void freeKey(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::string*>(ptr);
}

// The session-cache key of an SSL ("host:port"), owned by the SSL.
int keyIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &freeKey);
  return index;
}

std::string opensslError() {
  unsigned long e = ERR_get_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return e == 0 ? std::string("unknown error") : std::string(buf);
}

}  // namespace

Result<std::unique_ptr<UpstreamTls>> UpstreamTls::create(const std::string& trust,
                                                         size_t session_cache_entries) {
  ERR_clear_error();
  std::unique_ptr<UpstreamTls> t(new UpstreamTls());
  t->capacity_ = session_cache_entries;
  t->ctx_.reset(SSL_CTX_new(TLS_client_method()));
  if (!t->ctx_) {
    return makeError("upstream TLS: SSL_CTX_new failed: " + opensslError());
  }
  SSL_CTX* ctx = t->ctx_.get();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (trust == "system") {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return makeError("upstream_ca: cannot load the system trust store: " + opensslError());
    }
  } else if (SSL_CTX_load_verify_locations(ctx, trust.c_str(), nullptr) != 1) {
    return makeError("upstream_ca: cannot load " + trust + ": " + opensslError());
  }
  if (SSL_CTX_set_alpn_protos(ctx, kAlpnHttp11, sizeof(kAlpnHttp11)) != 0) {
    return makeError("upstream TLS: cannot set ALPN");
  }
  // Client-side caching only through our callback: OpenSSL's internal
  // client cache is not keyed by destination.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, &UpstreamTls::onNewSession);
  SSL_CTX_set_app_data(ctx, t.get());
  return t;
}

UpstreamTls::~UpstreamTls() = default;

Result<SslPtr> UpstreamTls::newSsl(const std::string& host, bool host_is_ip, uint16_t port) {
  ERR_clear_error();
  SslPtr ssl(SSL_new(ctx_.get()));
  if (!ssl) {
    return makeError("SSL_new failed: " + opensslError());
  }
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (host_is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
      return makeError("bad upstream IP " + host);
    }
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl.get(), host.c_str()) != 1 ||
        SSL_set_tlsext_host_name(ssl.get(), host.c_str()) != 1) {
      return makeError("bad upstream name " + host);
    }
  }
  auto key = std::make_unique<std::string>(host + ":" + std::to_string(port));
  {
    std::lock_guard lock(mu_);
    if (auto it = index_.find(*key); it != index_.end()) {
      SSL_SESSION* s = it->second->second.get();
      if (SSL_SESSION_is_resumable(s) == 1) {
        (void)SSL_set_session(ssl.get(), s);
      }
    }
  }
  if (SSL_set_ex_data(ssl.get(), keyIndex(), key.get()) != 1) {
    return makeError("SSL_set_ex_data failed");
  }
  key.release();  // owned by the SSL now (freeKey)
  return ssl;
}

int UpstreamTls::onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<UpstreamTls*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  auto* key = static_cast<std::string*>(SSL_get_ex_data(ssl, keyIndex()));
  if (self == nullptr || key == nullptr || self->capacity_ == 0) {
    return 0;
  }
  // Keep a copy: OpenSSL marks the session object it handed us
  // not-resumable when its connection ends without a clean TLS shutdown
  // (ssl_clear_bad_session), which a copy does not share.
  SSL_SESSION* copy = SSL_SESSION_dup(session);
  if (copy != nullptr) {
    self->store(*key, copy);
  }
  return 0;  // OpenSSL keeps (and frees) the original
}

void UpstreamTls::store(const std::string& key, SSL_SESSION* session) {
  std::lock_guard lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.emplace_front(key, SslSessionPtr(session));
  index_[key] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

void UpstreamTls::noteHandshake(SSL* ssl) {
  if (SSL_session_reused(ssl) == 1) {
    std::lock_guard lock(mu_);
    ++resumed_;
  }
}

UpstreamTls::Stats UpstreamTls::stats() const {
  std::lock_guard lock(mu_);
  return Stats{lru_.size(), resumed_};
}

std::string UpstreamTls::verifyFailure(SSL* ssl) {
  long v = SSL_get_verify_result(ssl);
  if (v != X509_V_OK) {
    return std::string("upstream_cert_invalid: ") + X509_verify_cert_error_string(v);
  }
  return "upstream_tls_failed: " + opensslError();
}

}  // namespace tollgate::mitm
