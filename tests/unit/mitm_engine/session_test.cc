// One MITM exchange over loopback, no root: peeked ClientHello -> mitm
// (leaf from the CA, replayed bytes) -> verified TLS to a fake upstream;
// the placeholder is swapped for the real value on the way up and the
// echoed value scrubbed on the way down.
#include "mitm/session.h"

#include <gtest/gtest.h>

#include <thread>

#include "engine_util.h"

namespace tollgate::mitm {
namespace {

using namespace testing_util;

constexpr std::string_view kPlaceholder = "tgph_demo_0123456789abcdefghij";
constexpr std::string_view kSecret = "sk-real-secret-value-42";

struct Harness {
  TestCa ca;
  std::unique_ptr<UpstreamTls> upstream_tls;
  SecretBuffer secret;
  std::vector<CredentialSpec> specs;

  Harness() {
    auto u = UpstreamTls::create(ca.certPath());
    EXPECT_TRUE(u) << u.message();
    if (u) {
      upstream_tls = std::move(*u);
    }
    auto s = SecretBuffer::copyOf(kSecret);
    EXPECT_TRUE(s);
    if (s) {
      secret = std::move(*s);
    }
    CredentialSpec c;
    c.name = "demo";
    c.placeholder = std::string(kPlaceholder);
    c.scope.push_back([](std::string_view h) { return h == "api.test"; });
    c.inject_header = "Authorization";
    c.format = "Bearer {value}";
    c.value = &secret;
    specs.push_back(std::move(c));
  }
};

TEST(SessionTest, OneExchangeInjectsUpstreamAndScrubsDownstream) {
  Harness h;
  ASSERT_TRUE(h.upstream_tls);
  SocketPair sandbox = socketPair();
  SocketPair upstream = socketPair();

  std::string upstream_head;
  const std::string body = "echo " + std::string(kSecret);
  std::thread server([&] {
    tlsServerOnce(
        upstream.a.get(), h.ca.minter(), "api.test", &upstream_head,
        "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  });
  std::string client_got;
  std::thread client([&] {
    client_got = tlsClientExchange(
        sandbox.a.get(), h.ca.cert(), "api.test",
        "GET /v1/models?x=1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " +
            std::string(kPlaceholder) + "\r\nConnection: close\r\n\r\n");
  });

  std::vector<uint8_t> peeked = peekFirstBytes(sandbox.b.get());
  ASSERT_FALSE(peeked.empty());
  evutil_make_socket_nonblocking(upstream.b.get());
  SandboxSsl made = newSandboxSsl(h.ca.sandboxTls(), "api.test");
  ASSERT_TRUE(made.ssl) << made.detail;

  CPtr<event_base, event_base_free> base(event_base_new());
  SessionOptions o;
  o.host = "api.test";
  o.port = 443;
  o.credentials = h.specs;
  std::vector<ExchangeRecord> exchanges;
  std::optional<Session::Summary> summary;
  bool done = false;
  auto session = Session::start(
      base.get(), std::move(o), std::move(sandbox.b), peeked, std::move(made.ssl),
      std::move(upstream.b), "", h.upstream_tls.get(),
      [&](const ExchangeRecord& x) { exchanges.push_back(x); },
      [&](const Session::Summary& s) {
        summary = s;
        done = true;
      });
  ASSERT_TRUE(session) << session.message();
  runUntil(base.get(), &done);
  session->reset();  // closes the sandbox socket: the client's read ends
  client.join();
  server.join();

  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->outcome, Outcome::kClean) << summary->reason();
  EXPECT_EQ(summary->exchanges, 1u);
  EXPECT_NE(upstream_head.find("Authorization: Bearer " + std::string(kSecret)), std::string::npos)
      << upstream_head;
  EXPECT_EQ(upstream_head.find(kPlaceholder), std::string::npos);
  EXPECT_NE(client_got.find("HTTP/1.1 200"), std::string::npos) << client_got;
  EXPECT_NE(client_got.find("echo " + std::string(kPlaceholder)), std::string::npos) << client_got;
  EXPECT_EQ(client_got.find(kSecret), std::string::npos);
  ASSERT_EQ(exchanges.size(), 1u);
  EXPECT_EQ(exchanges[0].method, "GET");
  EXPECT_EQ(exchanges[0].path, "/v1/models");
  EXPECT_EQ(exchanges[0].status, 200);
  EXPECT_EQ(exchanges[0].credentials, std::vector<std::string>{"demo"});
}

TEST(SessionTest, AnUntrustedUpstreamIsAnEnumOutcomeNotAString) {
  Harness h;
  ASSERT_TRUE(h.upstream_tls);
  SocketPair sandbox = socketPair();
  SocketPair upstream = socketPair();
  // The upstream presents a leaf for another name: verification fails.
  std::string upstream_head;
  std::thread server(
      [&] { tlsServerOnce(upstream.a.get(), h.ca.minter(), "other.test", &upstream_head, ""); });
  std::string client_got;
  std::thread client([&] {
    client_got = tlsClientExchange(sandbox.a.get(), h.ca.cert(), "api.test",
                                   "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
  });
  std::vector<uint8_t> peeked = peekFirstBytes(sandbox.b.get());
  evutil_make_socket_nonblocking(upstream.b.get());
  SandboxSsl made = newSandboxSsl(h.ca.sandboxTls(), "api.test");
  ASSERT_TRUE(made.ssl);
  CPtr<event_base, event_base_free> base(event_base_new());
  SessionOptions o;
  o.host = "api.test";
  std::optional<Session::Summary> summary;
  bool done = false;
  auto session = Session::start(
      base.get(), std::move(o), std::move(sandbox.b), peeked, std::move(made.ssl),
      std::move(upstream.b), "", h.upstream_tls.get(), [](const ExchangeRecord&) {},
      [&](const Session::Summary& s) {
        summary = s;
        done = true;
      });
  ASSERT_TRUE(session) << session.message();
  runUntil(base.get(), &done);
  session->reset();
  upstream.a.reset();
  client.join();
  server.join();
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->outcome, Outcome::kUpstreamCertInvalid);
  EXPECT_EQ(summary->reason(), "upstream_cert_invalid");
  EXPECT_NE(client_got.find("HTTP/1.1 502"), std::string::npos) << client_got;
}

}  // namespace
}  // namespace tollgate::mitm
