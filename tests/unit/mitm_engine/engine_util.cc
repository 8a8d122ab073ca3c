#include "engine_util.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace tollgate::mitm::testing_util {
namespace {

void setTimeouts(int fd) {
  timeval tv{};
  tv.tv_sec = kTestDeadline.count();
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

}  // namespace

TestCa::TestCa() {
  char tmpl[] = "/tmp/tollgate-mitm-engine-XXXXXX";
  const char* made = mkdtemp(tmpl);
  if (made == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return;
  }
  dir_ = made;
  auto files = ca::initCa(dir_, {});
  if (!files) {
    ADD_FAILURE() << files.message();
    return;
  }
  auto authority = ca::Authority::loadDir(dir_);
  if (!authority) {
    ADD_FAILURE() << authority.message();
    return;
  }
  authority_ = *authority;
  auto minter = ca::LeafMinter::create(authority_);
  auto ctx = makeSandboxServerCtx();
  if (!minter || !ctx) {
    ADD_FAILURE() << "minter or context";
    return;
  }
  minter_ = std::move(*minter);
  ctx_ = std::move(*ctx);
}

TestCa::~TestCa() {
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

SocketPair socketPair() {
  int fds[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    ADD_FAILURE() << "socketpair failed";
    return {};
  }
  setTimeouts(fds[0]);
  setTimeouts(fds[1]);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::vector<uint8_t> peekFirstBytes(int fd) {
  pollfd p{fd, POLLIN, 0};
  std::vector<uint8_t> out;
  if (poll(&p, 1, static_cast<int>(kTestDeadline.count() * 1000)) == 1) {
    uint8_t buf[16384];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.assign(buf, buf + n);
    }
  }
  evutil_make_socket_nonblocking(fd);
  return out;
}

std::string tlsClientExchange(int fd, X509* ca, const std::string& host,
                              const std::string& request) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  // The store takes its own reference to the CA certificate.
  X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca);
  SslPtr ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), fd);
  SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  SSL_set1_host(ssl.get(), host.c_str());
  if (SSL_connect(ssl.get()) != 1) {
    ERR_clear_error();
    return "ERROR: handshake failed";
  }
  SSL_write(ssl.get(), request.data(), static_cast<int>(request.size()));
  std::string got;
  char buf[4096];
  for (;;) {
    int n = SSL_read(ssl.get(), buf, sizeof(buf));
    if (n <= 0) {
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  ERR_clear_error();
  return got;
}

void tlsServerOnce(int fd, ca::LeafMinter& minter, const std::string& host, std::string* head,
                   const std::string& response) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  SslPtr ssl(SSL_new(ctx.get()));
  auto leaf = minter.leafFor(host);
  if (!leaf || !(*leaf)->useOn(ssl.get())) {
    return;
  }
  SSL_set_fd(ssl.get(), fd);
  if (SSL_accept(ssl.get()) != 1) {
    ERR_clear_error();
    return;
  }
  char buf[4096];
  while (head->find("\r\n\r\n") == std::string::npos) {
    int n = SSL_read(ssl.get(), buf, sizeof(buf));
    if (n <= 0) {
      ERR_clear_error();
      return;
    }
    head->append(buf, static_cast<size_t>(n));
  }
  SSL_write(ssl.get(), response.data(), static_cast<int>(response.size()));
  SSL_shutdown(ssl.get());
  ERR_clear_error();
}

void runUntil(event_base* base, const bool* done) {
  auto until = std::chrono::steady_clock::now() + kTestDeadline;
  while (!*done && std::chrono::steady_clock::now() < until) {
    timeval tv{0, 50 * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
}

}  // namespace tollgate::mitm::testing_util
