// In-memory TLS handshakes (BIO pairs, no sockets) from many threads at once,
// each server SSL configured with Leaf::useOn from one shared minter, each
// client verifying the chain and the name: the way the MITM server uses it.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <atomic>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "base/handles.h"
#include "ca/ca.h"
#include "ca_test_util.h"

namespace tollgate::ca {
namespace {

// One handshake between a client trusting `ca` and asking for `name`, and a
// server presenting `leaf`. Returns "" or what went wrong.
std::string handshake(SSL_CTX* client_ctx, SSL_CTX* server_ctx, const Leaf& leaf,
                      const std::string& name) {
  SslPtr client(SSL_new(client_ctx));
  SslPtr server(SSL_new(server_ctx));
  if (!client || !server) {
    return "SSL_new failed";
  }
  if (auto r = leaf.useOn(server.get()); !r) {
    return r.message();
  }
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  if (BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) != 1) {
    return "BIO_new_bio_pair failed";
  }
  SSL_set_bio(client.get(), client_bio, client_bio);  // client owns client_bio
  SSL_set_bio(server.get(), server_bio, server_bio);  // server owns server_bio
  SSL_set_tlsext_host_name(client.get(), name.c_str());
  SSL_set1_host(client.get(), name.c_str());
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  for (int round = 0; round < 20; ++round) {
    int c = SSL_do_handshake(client.get());
    int s = SSL_do_handshake(server.get());
    if (c == 1 && s == 1) {
      if (SSL_get_verify_result(client.get()) != X509_V_OK) {
        return "verify result " + std::to_string(SSL_get_verify_result(client.get()));
      }
      return "";
    }
    const int ce = SSL_get_error(client.get(), c);
    const int se = SSL_get_error(server.get(), s);
    if ((c != 1 && ce != SSL_ERROR_WANT_READ) || (s != 1 && se != SSL_ERROR_WANT_READ)) {
      std::string why = "handshake failed: verify " +
                        std::to_string(SSL_get_verify_result(client.get()));
      ERR_clear_error();
      return why;
    }
  }
  return "handshake did not finish";
}

class HandshakeTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(initCa(dir_.path(), {}));
    auto ca = Authority::loadDir(dir_.path());
    ASSERT_TRUE(ca) << ca.message();
    ca_ = *ca;
    client_ctx_.reset(SSL_CTX_new(TLS_client_method()));
    server_ctx_.reset(SSL_CTX_new(TLS_server_method()));
    ASSERT_TRUE(client_ctx_ && server_ctx_);
    SSL_CTX_set_verify(client_ctx_.get(), SSL_VERIFY_PEER, nullptr);
    // get0: the store is owned by the ctx; it takes its own CA reference.
    ASSERT_EQ(X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx_.get()), ca_->cert()), 1);
  }

  test::TempDir dir_;
  std::shared_ptr<const Authority> ca_;
  SslCtxPtr client_ctx_;
  SslCtxPtr server_ctx_;
};

TEST_F(HandshakeTest, VerifiesAndRejectsOtherNames) {
  auto minter = LeafMinter::create(ca_);
  ASSERT_TRUE(minter);
  auto leaf = (*minter)->leafFor("api.example.test");
  ASSERT_TRUE(leaf);
  EXPECT_EQ(handshake(client_ctx_.get(), server_ctx_.get(), **leaf, "api.example.test"), "");
  EXPECT_NE(handshake(client_ctx_.get(), server_ctx_.get(), **leaf, "evil.example.test"), "");
}

class ConcurrentHandshakeTest : public HandshakeTest,
                                public testing::WithParamInterface<KeyType> {};

TEST_P(ConcurrentHandshakeTest, ManyThreadsShareLeavesAndKeys) {
  LeafOptions o;
  o.key_type = GetParam();
  auto minter = LeafMinter::create(ca_, o);
  ASSERT_TRUE(minter) << minter.message();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 12;
  constexpr int kNames = 4;
  std::latch start(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::string> first_error(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        const std::string name = "h" + std::to_string((t + i) % kNames) + ".example.test";
        auto leaf = (*minter)->leafFor(name);
        std::string err = leaf ? handshake(client_ctx_.get(), server_ctx_.get(), **leaf, name)
                               : leaf.message();
        if (!err.empty()) {
          failures.fetch_add(1);
          first_error[t] = err;
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(failures.load(), 0) << first_error[0] << first_error[1];
  EXPECT_EQ((*minter)->stats().mints, static_cast<uint64_t>(kNames));
}

INSTANTIATE_TEST_SUITE_P(LeafKeys, ConcurrentHandshakeTest,
                         testing::Values(KeyType::kEcdsaP256, KeyType::kRsa2048));

}  // namespace
}  // namespace tollgate::ca
