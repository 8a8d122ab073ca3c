// A real client: `openssl s_client` verifies a minted leaf served by an
// in-process TLS server on 127.0.0.1 (loopback only), chain sent by useOn.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "ca/ca.h"
#include "ca_test_util.h"

namespace tollgate::ca {
namespace {

using test::TempDir;

bool haveOpensslCli() { return std::system("openssl version >/dev/null 2>&1") == 0; }

// Serves one TLS connection on 127.0.0.1 with `leaf`, then closes.
class OneShotServer {
 public:
  explicit OneShotServer(std::shared_ptr<const Leaf> leaf) : leaf_(std::move(leaf)) {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (!listener_ || ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listener_.get(), 1) != 0 ||
        ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~OneShotServer() {
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  uint16_t port() const { return port_; }
  bool handshakeOk() {
    if (thread_.joinable()) {
      thread_.join();
    }
    return handshake_ok_;
  }

 private:
  void serve() {
    pollfd pfd{listener_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 20000) != 1) {
      return;
    }
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) {
      return;
    }
    timeval tv{10, 0};
    ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    CPtr<SSL_CTX, SSL_CTX_free> ctx(SSL_CTX_new(TLS_server_method()));
    CPtr<SSL, SSL_free> ssl(ctx ? SSL_new(ctx.get()) : nullptr);
    if (!ssl || !leaf_->useOn(ssl.get()) || SSL_set_fd(ssl.get(), conn.get()) != 1) {
      return;
    }
    if (SSL_accept(ssl.get()) == 1) {
      handshake_ok_ = true;
      const char msg[] = "hello from tollgate\n";
      (void)SSL_write(ssl.get(), msg, sizeof msg - 1);
      (void)SSL_shutdown(ssl.get());
    }
    ERR_clear_error();
  }

  std::shared_ptr<const Leaf> leaf_;
  UniqueFd listener_;
  uint16_t port_ = 0;
  std::thread thread_;
  bool handshake_ok_ = false;
};

struct ClientRun {
  int status = -1;
  std::string output;
};

// openssl s_client with the given flags; stdin is /dev/null, so it closes
// right after the handshake unless -ign_eof is given.
ClientRun runClient(uint16_t port, const std::string& args) {
  const std::string cmd = "timeout 20 openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                          " -verify_return_error " + args + " </dev/null 2>&1";
  ClientRun run;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    return run;
  }
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) {
    run.output += buf;
  }
  const int st = ::pclose(p);
  run.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return run;
}

class SClientTest : public testing::Test {
 protected:
  void SetUp() override {
    if (!haveOpensslCli()) {
      GTEST_SKIP() << "openssl CLI not installed";
    }
    ASSERT_TRUE(initCa(dir_.path(), {}));
    auto ca = Authority::loadDir(dir_.path());
    ASSERT_TRUE(ca) << ca.message();
    ca_ = *ca;
    auto m = LeafMinter::create(ca_);
    ASSERT_TRUE(m) << m.message();
    minter_ = std::move(*m);
  }

  std::shared_ptr<const Leaf> leaf(const std::string& name) {
    auto l = minter_->leafFor(name);
    EXPECT_TRUE(l) << l.message();
    return l ? *l : nullptr;
  }

  TempDir dir_;
  std::shared_ptr<const Authority> ca_;
  std::unique_ptr<LeafMinter> minter_;
};

TEST_F(SClientTest, ChainVerifiesForTheName) {
  auto l = leaf("api.example.test");
  ASSERT_TRUE(l);
  OneShotServer server(l);
  // -ign_eof: read until the server closes; -showcerts: print what it sent.
  ClientRun run = runClient(server.port(),
                            "-ign_eof -showcerts -servername api.example.test "
                            "-verify_hostname api.example.test -CAfile " +
                                (dir_ / "ca.crt"));
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("Verify return code: 0 (ok)"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("hello from tollgate"), std::string::npos) << run.output;
  // The server sent the leaf and the CA (the chain from useOn).
  size_t certs = 0;
  for (size_t at = run.output.find("BEGIN CERTIFICATE"); at != std::string::npos;
       at = run.output.find("BEGIN CERTIFICATE", at + 1)) {
    ++certs;
  }
  EXPECT_EQ(certs, 2u) << run.output;
  EXPECT_NE(run.output.find(ca_->certPem()), std::string::npos) << run.output;
  EXPECT_TRUE(server.handshakeOk());
}

TEST_F(SClientTest, OtherNameIsRejectedByTheClient) {
  auto l = leaf("api.example.test");
  ASSERT_TRUE(l);
  OneShotServer server(l);
  ClientRun run = runClient(server.port(),
                            "-brief -servername evil.example.test -verify_hostname "
                            "evil.example.test -CAfile " +
                                (dir_ / "ca.crt"));
  EXPECT_NE(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("hostname mismatch"), std::string::npos) << run.output;
  EXPECT_FALSE(server.handshakeOk());
}

TEST_F(SClientTest, UntrustedCaIsRejectedByTheClient) {
  TempDir other;
  ASSERT_TRUE(initCa(other.path(), {}));
  auto l = leaf("api.example.test");
  ASSERT_TRUE(l);
  OneShotServer server(l);
  ClientRun run = runClient(server.port(),
                            "-brief -servername api.example.test "
                            "-verify_hostname api.example.test -CAfile " +
                                (other / "ca.crt"));
  EXPECT_NE(run.status, 0) << run.output;
  EXPECT_FALSE(server.handshakeOk());
}

TEST_F(SClientTest, IpLeafVerifiesForItsAddress) {
  auto l = leaf("127.0.0.1");
  ASSERT_TRUE(l);
  OneShotServer server(l);
  ClientRun run =
      runClient(server.port(), "-brief -verify_ip 127.0.0.1 -CAfile " + (dir_ / "ca.crt"));
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("Verification: OK"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace tollgate::ca
