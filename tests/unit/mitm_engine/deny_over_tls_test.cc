// deny_style: http-403 over loopback: the gateway's peeked ClientHello is
// replayed into mitm's terminator, which answers one request with the fixed
// response and hands back the parsed head (for the audit log).
#include <gtest/gtest.h>

#include <thread>

#include "engine_util.h"
#include "mitm/sandbox_tls.h"

namespace tollgate::mitm {
namespace {

using namespace testing_util;

const std::string kResponse =
    "HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied";

struct DenyRun {
  std::string client_got;
  std::optional<DenyOverTls::End> end;
  std::string method;
  std::string path;
};

DenyRun runDeny(TestCa& ca, const std::string& host, const std::string& request) {
  DenyRun run;
  SocketPair pair = socketPair();
  std::thread client(
      [&] { run.client_got = tlsClientExchange(pair.a.get(), ca.cert(), host, request); });
  std::vector<uint8_t> peeked = peekFirstBytes(pair.b.get());
  EXPECT_FALSE(peeked.empty());
  CPtr<event_base, event_base_free> base(event_base_new());
  bool done = false;
  std::unique_ptr<DenyOverTls> deny;
  auto started = DenyOverTls::start(base.get(), ca.sandboxTls(), host, pair.b.get(), peeked,
                                    kResponse, kTestDeadline, [&](DenyOverTls::End e) {
                                      run.end = e;
                                      if (const RequestHead* h = deny->request()) {
                                        run.method = h->method;
                                        run.path = std::string(h->path());
                                      }
                                      done = true;
                                    });
  EXPECT_TRUE(started) << started.message();
  if (started) {
    deny = std::move(*started);
    runUntil(base.get(), &done);
  }
  pair.b.reset();  // the client's read ends
  client.join();
  return run;
}

TEST(DenyOverTlsTest, AnswersInsideTlsWithALeafForTheNameAndParsesTheHead) {
  TestCa ca;
  DenyRun run =
      runDeny(ca, "denied.test", "GET /v1/x?token=abc HTTP/1.1\r\nHost: denied.test\r\n\r\n");
  ASSERT_TRUE(run.end.has_value());
  EXPECT_EQ(*run.end, DenyOverTls::End::kAnswered);
  EXPECT_EQ(run.client_got, kResponse);  // the client verified the leaf for denied.test
  EXPECT_EQ(run.method, "GET");
  EXPECT_EQ(run.path, "/v1/x");  // no query in the audit path
}

TEST(DenyOverTlsTest, AMalformedHeadStillGetsTheRefusalButNoParsedRequest) {
  TestCa ca;
  DenyRun run = runDeny(ca, "denied.test", "NOT A REQUEST\r\n\r\n");
  ASSERT_TRUE(run.end.has_value());
  EXPECT_EQ(*run.end, DenyOverTls::End::kAnswered);
  EXPECT_EQ(run.client_got, kResponse);
  EXPECT_TRUE(run.method.empty());
}

TEST(DenyOverTlsTest, NoCaMeansNoTerminator) {
  SocketPair pair = socketPair();
  CPtr<event_base, event_base_free> base(event_base_new());
  std::vector<uint8_t> none;
  auto started = DenyOverTls::start(base.get(), SandboxTls{}, "denied.test", pair.b.get(), none,
                                    kResponse, kTestDeadline, [](DenyOverTls::End) {});
  EXPECT_FALSE(started);
}

TEST(DenyOverTlsTest, OutcomeNamesAreTheAuditReasons) {
  EXPECT_EQ(reasonName(Outcome::kClean), "");
  EXPECT_EQ(reasonName(Outcome::kClientRejectedCertificate), "client_rejected_certificate");
  EXPECT_EQ(reasonName(Outcome::kUpstreamCertInvalid), "upstream_cert_invalid");
  EXPECT_EQ(reasonName(Outcome::kLeafMintFailed), "leaf_mint_failed");
  EXPECT_EQ(reasonName(Outcome::kAnswered, "credential_scope_violation"),
            "credential_scope_violation");
}

}  // namespace
}  // namespace tollgate::mitm
