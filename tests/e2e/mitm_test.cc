// End-to-end: the MITM path. Real clients in a sandbox that trusts tollgate's
// CA through its system store (no proxy settings, no --cacert) call a real
// HTTPS upstream (its own namespace, its own test CA given to tollgate as
// upstream_ca) that records every request it receives.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "scenario.h"

namespace tollgate::e2e {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kLlmSecret = "sk-real-LLM-secret-0123456789abcdef";
constexpr const char* kLlmPlaceholder = "tgph_llm_aaaaaaaaaaaaaaaaaaaaaaaa";
constexpr const char* kOtherSecret = "other-real-secret-9876543210XYZ";
constexpr const char* kOtherPlaceholder = "tgph_other_bbbbbbbbbbbbbbbbbbbbbbbb";

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) {
    ++n;
  }
  return n;
}

class MitmTest : public ::testing::Test {
 protected:
  void SetUp() override { start(""); }

  void start(const std::string& extra_gateway) {
    std::string err;
    dir_ = makeDirWithCa("mitm", &err);
    ASSERT_FALSE(dir_.empty()) << err;
    writeSecretFile(dir_ + "/llm.secret", kLlmSecret);
    record_ = dir_ + "/record.jsonl";

    Scenario::Options o;
    o.start_gateway = false;
    o.extra_upstreams = {{"llm", {kLlmV4}}};
    o.gateway_env = {{"TG_E2E_OTHER_KEY", kOtherSecret}};
    o.extra_gateway_yaml = "  ca: {cert: " + dir_ + "/ca/ca.crt, key: " + dir_ +
                           "/ca/ca.key}\n  upstream_ca: " + testPki().ca_cert + "\n" +
                           extra_gateway;
    o.rules_yaml =
        "      - hosts: [llm.example.test]\n"
        "        action: mitm\n"
        "        credentials: [llm]\n"
        "      - hosts: [other.example.test, badcert.example.test]\n"
        "        action: mitm\n"
        "      - hosts: [api.example.test]\n"
        "        action: passthrough\n"
        "      - cidrs: [198.51.100.30/32]\n"
        "        ports: [443]\n"
        "        action: mitm\n";
    o.extra_yaml = std::string("credentials:\n") +
                   "  llm:\n"
                   "    source: { file: " + dir_ + "/llm.secret }\n"
                   "    placeholder: " + kLlmPlaceholder + "\n"
                   "    hosts: [llm.example.test]\n"
                   "    inject:\n"
                   "      header: Authorization\n"
                   "      format: \"Bearer {value}\"\n"
                   "  other:\n"
                   "    source: { env: TG_E2E_OTHER_KEY }\n"
                   "    placeholder: " + kOtherPlaceholder + "\n"
                   "    hosts: [other.example.test]\n"
                   "    inject:\n"
                   "      query: key\n";
    s_ = std::make_unique<Scenario>(o);
    ASSERT_TRUE(s_->startRecordingUpstream(record_, &err)) << err;
    s_->trustInSandbox(slurp(dir_ + "/ca/ca.crt"));
    ASSERT_TRUE(s_->startGateway(&err)) << err;
  }

  void TearDown() override {
    if (s_) {
      std::string log = s_->gatewayStderr();
      EXPECT_EQ(log.find(kLlmSecret), std::string::npos) << "the secret reached the log";
      EXPECT_EQ(log.find(kOtherSecret), std::string::npos) << "the secret reached the log";
      std::string audit = slurp(s_->auditPath());
      EXPECT_EQ(audit.find(kLlmSecret), std::string::npos);
      EXPECT_EQ(audit.find(kLlmPlaceholder), std::string::npos) << "placeholders stay out of audit";
    }
    s_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // curl in the sandbox with no proxy settings and no --cacert: the system
  // store (tollgate's CA) decides.
  harness::CommandResult curl(std::vector<std::string> args, int timeout_s = 10) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", std::to_string(timeout_s)};
    argv.insert(argv.end(), args.begin(), args.end());
    return s_->inSandbox(argv, std::chrono::seconds(timeout_s + 5));
  }
  harness::CommandResult python(const std::string& code, int timeout_s = 15) {
    return s_->inSandbox({"python3", "-c", code}, std::chrono::seconds(timeout_s));
  }
  std::vector<nlohmann::json> recorded() { return readJsonLines(record_); }
  static std::string header(const nlohmann::json& req, const std::string& name) {
    return recordedHeader(req, name);
  }
  std::vector<nlohmann::json> httpRecords(size_t min) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (true) {
      std::vector<nlohmann::json> out;
      for (auto& r : s_->audit()) {
        if (r["event"] == "http") {
          out.push_back(r);
        }
      }
      if (out.size() >= min || std::chrono::steady_clock::now() > deadline) {
        return out;
      }
      std::this_thread::sleep_for(25ms);
    }
  }

  std::string dir_;
  std::string record_;
  std::unique_ptr<Scenario> s_;
};

TEST_F(MitmTest, CurlPlaceholderBecomesTheRealSecretUpstreamAndNeverComesBack) {
  auto r = curl({"-i", "https://llm.example.test/echo?x=1", "-H",
                 std::string("Authorization: Bearer ") + kLlmPlaceholder});
  ASSERT_EQ(r.exit_code, 0) << r.err << s_->gatewayStderr();
  EXPECT_NE(r.out.find("HTTP/1.1 200"), std::string::npos) << r.out;
  // The upstream echoed the real value in a header and in the body: the
  // sandbox sees only the placeholder.
  EXPECT_EQ(r.out.find(kLlmSecret), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::string("X-Echo-Auth: Bearer ") + kLlmPlaceholder), std::string::npos)
      << r.out;
  EXPECT_GE(count(r.out, kLlmPlaceholder), 2u) << r.out;

  auto reqs = recorded();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(header(reqs[0], "Authorization"), std::string("Bearer ") + kLlmSecret);
  EXPECT_EQ(header(reqs[0], "Accept-Encoding"), "identity");
  EXPECT_EQ(reqs[0].dump().find(kLlmPlaceholder), std::string::npos) << reqs[0].dump();
  EXPECT_EQ(reqs[0]["path"], "/echo?x=1");

  auto http = httpRecords(1);
  ASSERT_EQ(http.size(), 1u);
  EXPECT_EQ(http[0]["action"], "mitm");
  EXPECT_EQ(http[0]["http"]["method"], "GET");
  EXPECT_EQ(http[0]["http"]["path"], "/echo");
  EXPECT_EQ(http[0]["http"]["status"], 200);
  EXPECT_EQ(http[0]["credentials"], nlohmann::json::array({"llm"}));
  auto flow = s_->auditWhere("event", "flow");
  EXPECT_EQ(flow["action"], "mitm");
  EXPECT_EQ(flow["sni"], "llm.example.test");
  EXPECT_EQ(flow["credentials"], nlohmann::json::array({"llm"}));
}

TEST_F(MitmTest, SecretSplitAcrossChunksIsScrubbed) {
  auto r = curl({"https://llm.example.test/echo-split", "-H",
                 std::string("Authorization: Bearer ") + kLlmPlaceholder});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, std::string("auth=Bearer ") + kLlmPlaceholder + ";");
}

TEST_F(MitmTest, AbsentHeaderIsSetFromFormat) {
  auto r = curl({"https://llm.example.test/echo"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find(kLlmSecret), std::string::npos);
  auto reqs = recorded();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(header(reqs[0], "Authorization"), std::string("Bearer ") + kLlmSecret);
}

TEST_F(MitmTest, QueryCredentialFromTheEnvironmentIsInjectedAndScrubbed) {
  auto r = curl({std::string("https://other.example.test/echo?key=") + kOtherPlaceholder + "&a=b"});
  ASSERT_EQ(r.exit_code, 0) << r.err << s_->gatewayStderr();
  EXPECT_EQ(r.out.find(kOtherSecret), std::string::npos) << r.out;
  auto reqs = recorded();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0]["path"], std::string("/echo?key=") + kOtherSecret + "&a=b");
  // Read from the environment once, then gone from it.
  std::string environ = slurp("/proc/" + std::to_string(s_->gateway()->pid()) + "/environ");
  EXPECT_EQ(environ.find(kOtherSecret), std::string::npos);
  EXPECT_EQ(environ.find("TG_E2E_OTHER_KEY="), std::string::npos);
  // Secret buffers are locked in RAM (never swapped).
  std::string status = slurp("/proc/" + std::to_string(s_->gateway()->pid()) + "/status");
  auto p = status.find("VmLck:");
  ASSERT_NE(p, std::string::npos);
  EXPECT_GT(std::stol(status.substr(p + 6)), 0) << status.substr(p, 30);
}

TEST_F(MitmTest, PlaceholderSentOutOfScopeIsRefused) {
  // The llm placeholder to other.example.test (a mitm host outside its scope).
  auto r = curl({"-i", "https://other.example.test/echo", "-H",
                 std::string("Authorization: Bearer ") + kLlmPlaceholder});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("HTTP/1.1 403"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("credential_scope_violation"), std::string::npos) << r.out;
  EXPECT_TRUE(recorded().empty()) << "the upstream must not see the request";
  auto http = httpRecords(1);
  ASSERT_EQ(http.size(), 1u);
  EXPECT_EQ(http[0]["reason"], "credential_scope_violation");
  EXPECT_EQ(http[0]["http"]["status"], 403);
}

TEST_F(MitmTest, PlaceholderOverCleartextHttpIsRefusedAndPlainRequestsWork) {
  auto r = curl({"-i", "http://llm.example.test/echo", "-H",
                 std::string("Authorization: Bearer ") + kLlmPlaceholder});
  ASSERT_EQ(r.exit_code, 0) << r.err << slurp(s_->auditPath()) << s_->gatewayStderr();
  EXPECT_NE(r.out.find("HTTP/1.1 403"), std::string::npos) << r.out;
  EXPECT_TRUE(recorded().empty());
  auto ok = curl({"http://llm.example.test/echo"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto reqs = recorded();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(header(reqs[0], "Authorization"), "") << "cleartext never gets a secret";
}

TEST_F(MitmTest, UpstreamWithABadCertificateIsAnswered502) {
  auto r = curl({"-i", "https://badcert.example.test/echo"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("HTTP/1.1 502"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("upstream_cert_invalid"), std::string::npos) << r.out;
  EXPECT_TRUE(recorded().empty());
  auto flow = s_->auditWhere("event", "flow");
  EXPECT_EQ(flow["reason"], "upstream_cert_invalid") << flow.dump();
}

TEST_F(MitmTest, IpLiteralWithoutSniGetsAnIpLeafAndTheUpstreamIsVerifiedForTheIp) {
  // curl sends no SNI for an IP literal: the cidrs rule matches, the leaf is
  // minted for the IP (the sandbox verifies it), and the upstream must prove
  // the IP too; its certificate names only DNS names, so: 502.
  auto r = curl({"-i", std::string("https://") + kLlmV4 + "/echo"});
  ASSERT_EQ(r.exit_code, 0) << r.err << s_->gatewayStderr();
  EXPECT_NE(r.out.find("HTTP/1.1 502"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("upstream_cert_invalid"), std::string::npos) << r.out;
  EXPECT_TRUE(recorded().empty());
}

TEST_F(MitmTest, ContentCodedResponseToACredentialedRequestIsNotRelayed) {
  auto r = curl({"-i", "https://llm.example.test/echo-gzip"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("HTTP/1.1 502"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("upstream_content_encoded"), std::string::npos) << r.out;
}

TEST_F(MitmTest, DomainFrontingThroughAnAllowedNameIsRefused) {
  auto r = curl({"-i", "https://llm.example.test/echo", "-H", "Host: api.example.test"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("HTTP/1.1 421"), std::string::npos) << r.out;
  EXPECT_TRUE(recorded().empty());
}

TEST_F(MitmTest, ClientThatDoesNotTrustTheCaIsAuditedAsSuch) {
  auto r = s_->inSandbox({"curl", "-sS", "--max-time", "5", "--cacert", testPki().ca_cert,
                          "https://llm.example.test/echo"});
  EXPECT_NE(r.exit_code, 0);
  auto flow = s_->auditWhere("event", "flow");
  EXPECT_EQ(flow["reason"], "client_rejected_certificate") << flow.dump();
}

TEST_F(MitmTest, PythonUrllibAndHttpClientWork) {
  std::string code = std::string(R"(
import urllib.request, http.client, ssl, json
req = urllib.request.Request("https://llm.example.test/echo", headers={"Authorization": "Bearer )") +
                     kLlmPlaceholder + R"("})
body = urllib.request.urlopen(req, timeout=10).read().decode()
assert ")" + kLlmPlaceholder + R"(" in body, body
c = http.client.HTTPSConnection("llm.example.test", 443, timeout=10, context=ssl.create_default_context())
for i in range(3):
    c.request("GET", "/echo?i=%d" % i)
    r = c.getresponse()
    r.read()
    assert r.status == 200
print("ok")
)";
  auto r = python(code);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << s_->gatewayStderr();
  EXPECT_EQ(r.out, "ok\n");
  EXPECT_EQ(recorded().size(), 4u);
  // http.client reused one connection for its three requests.
  size_t flows = 0;
  for (auto& rec : s_->audit(6)) {
    flows += rec["event"] == "flow" ? 1 : 0;
  }
  EXPECT_EQ(flows, 2u);
}

TEST_F(MitmTest, OpensslSClientVerifiesTheLeafAndGetsAnAnswer) {
  std::string req = std::string("GET /echo HTTP/1.1\r\nHost: llm.example.test\r\nAuthorization: Bearer ") +
                    kLlmPlaceholder + "\r\nConnection: close\r\n\r\n";
  auto r = s_->topo().run(s_->sandbox(),
                          {"openssl", "s_client", "-connect", "llm.example.test:443", "-servername",
                           "llm.example.test", "-verify_return_error", "-quiet"},
                          15s, req);
  EXPECT_NE(r.out.find("HTTP/1.1 200"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find(kLlmSecret), std::string::npos);
}

TEST_F(MitmTest, NodeHttpsWorks) {
  if (harness::runCommand("", {"sh", "-c", "command -v node"}, 5s).exit_code != 0) {
    GTEST_SKIP() << "node not installed";
  }
  // --use-openssl-ca: Node's own bundle otherwise; the system store is the sandbox's trust.
  std::string js = std::string(
                       "require('https').get('https://llm.example.test/echo',{headers:{Authorization:'Bearer ") +
                   kLlmPlaceholder +
                   "'}},r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>{console.log(r.statusCode);"
                   "console.log(b)})}).on('error',e=>{console.error(e);process.exit(1)})";
  auto r = s_->inSandbox({"node", "--use-openssl-ca", "-e", js}, 20s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("200\n", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find(kLlmSecret), std::string::npos);
  EXPECT_NE(r.out.find(kLlmPlaceholder), std::string::npos);
}

TEST_F(MitmTest, KeepAliveCarriesSeveralExchangesOnOneFlow) {
  auto r = curl({"-w", "%{num_connects}\\n", "https://llm.example.test/echo?a",
                 "https://llm.example.test/status/204", "https://llm.example.test/big/100000",
                 "-I", "https://llm.example.test/echo?head"});
  // (curl -I applies to all: HEAD requests, bodies absent, lengths kept)
  ASSERT_EQ(r.exit_code, 0) << r.err << s_->gatewayStderr();
  EXPECT_NE(r.out.find("Content-Length: 100000"), std::string::npos) << r.out;
  auto http = httpRecords(4);
  EXPECT_EQ(http.size(), 4u);
  size_t flows = 0;
  for (auto& rec : s_->audit()) {
    flows += rec["event"] == "flow" ? 1 : 0;
  }
  EXPECT_LE(flows, 1u) << "one connection for four requests";
}

TEST_F(MitmTest, RepeatUpstreamConnectionsResumeTheirTlsSession) {
  s_.reset();
  start("  metrics: 127.0.0.1:19465\n");
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(curl({"https://llm.example.test/echo"}).exit_code, 0);
  }
  auto m = s_->inHost({"curl", "-sS", "--max-time", "5", "http://127.0.0.1:19465/metrics"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  auto metric = [&](const std::string& series) {
    auto p = m.out.find("\n" + series + " ");
    return p == std::string::npos ? -1.0 : std::stod(m.out.substr(p + series.size() + 2));
  };
  EXPECT_GE(metric("tollgate_upstream_tls_resumed_total"), 1) << m.out << s_->gatewayStderr();
  EXPECT_EQ(metric("tollgate_http_exchanges_total"), 3) << m.out;
  EXPECT_EQ(metric("tollgate_credential_injections_total{credential=\"llm\"}"), 3) << m.out;
  EXPECT_EQ(metric("tollgate_mitm_handshake_seconds_count{side=\"sandbox\"}"), 3) << m.out;
  EXPECT_EQ(metric("tollgate_mitm_handshake_seconds_count{side=\"upstream\"}"), 3) << m.out;
  EXPECT_EQ(metric("tollgate_upstream_connect_seconds_count"), 3) << m.out;
  EXPECT_EQ(
      metric("tollgate_sandbox_flows_total{sandbox=\"agents\",action=\"mitm\",reason=\"rule\"}"), 3)
      << m.out;
}

TEST_F(MitmTest, CloseDelimitedBodyEndsWithCloseNotifyNotATruncation) {
  // An HTTP/1.0 client gets the body delimited by the close: only a TLS
  // close_notify tells it the body is complete (suppress_ragged_eofs=False
  // turns a bare TCP close into an error).
  auto r = python(R"(
import socket, ssl
ctx = ssl.create_default_context()
s = ctx.wrap_socket(socket.create_connection(("llm.example.test", 443), timeout=10),
                    server_hostname="llm.example.test", suppress_ragged_eofs=False)
s.sendall(b"GET /sse HTTP/1.0\r\nHost: llm.example.test\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
print(data.count(b"data: event"), b"Transfer-Encoding" in data)
)");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "5 False\n");
}

TEST_F(MitmTest, ServerSentEventsArriveOneByOne) {
  auto r = python(R"(
import http.client, ssl, time
c = http.client.HTTPSConnection("llm.example.test", 443, timeout=10, context=ssl.create_default_context())
c.request("GET", "/sse")
resp = c.getresponse()
assert resp.status == 200, resp.status
times = []
while True:
    line = resp.fp.readline()
    if not line:
        break
    if line.startswith(b"data:"):
        times.append(time.time())
    if len(times) == 5:
        break
print("%d %.3f" % (len(times), times[-1] - times[0]))
)");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int n = 0;
  double spread = 0;
  ASSERT_EQ(sscanf(r.out.c_str(), "%d %lf", &n, &spread), 2) << r.out;
  EXPECT_EQ(n, 5);
  // Sent 300 ms apart: buffering would deliver them together.
  EXPECT_GT(spread, 0.8) << r.out;
}

TEST_F(MitmTest, WebSocketEchoWorksThroughTheGateway) {
  auto r = python(R"(
import socket, ssl, os, base64, struct
ctx = ssl.create_default_context()
s = ctx.wrap_socket(socket.create_connection(("llm.example.test", 443), timeout=10), server_hostname="llm.example.test")
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /ws HTTP/1.1\r\nHost: llm.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
assert head.startswith(b"HTTP/1.1 101"), head
for msg in [b"hello through tollgate", os.urandom(70000)]:
    mask = os.urandom(4)
    hdr = bytes([0x82]) + (bytes([0x80 | len(msg)]) if len(msg) < 126 else bytes([0x80 | 127]) + struct.pack(">Q", len(msg)))
    s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
    def recvn(n):
        b = b""
        while len(b) < n:
            d = s.recv(n - len(b))
            assert d
            b += d
        return b
    h = recvn(2)
    n = h[1] & 0x7f
    if n == 126: n = struct.unpack(">H", recvn(2))[0]
    elif n == 127: n = struct.unpack(">Q", recvn(8))[0]
    assert recvn(n) == msg
print("ok")
)",
                  20);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << s_->gatewayStderr();
  auto http = httpRecords(1);
  ASSERT_GE(http.size(), 1u);
  EXPECT_EQ(http[0]["http"]["status"], 101);
}

TEST_F(MitmTest, LargeUploadsStreamThroughBothFramings) {
  ASSERT_EQ(s_->inSandbox({"sh", "-c", "head -c 20000000 /dev/urandom > /tmp/tg-upload.bin"}).exit_code, 0);
  auto sum = s_->inSandbox({"sh", "-c", "sha256sum /tmp/tg-upload.bin | cut -d' ' -f1"});
  std::string digest = sum.out.substr(0, 64);
  for (bool chunked : {false, true}) {
    std::vector<std::string> args = {"--data-binary", "@/tmp/tg-upload.bin",
                                     "https://llm.example.test/upload"};
    if (chunked) {
      args.insert(args.begin(), {"-H", "Transfer-Encoding: chunked"});
    }
    auto r = curl(args, 60);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["length"], 20000000) << chunked;
    EXPECT_EQ(j["sha256"], digest) << chunked;
  }
  // curl sends large bodies with `Expect: 100-continue`: forwarded, and the
  // upstream's 100 came back through the engine (else curl waits 1 s and
  // sends anyway; the header at the upstream proves the path).
  auto reqs = recorded();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(header(reqs[0], "Expect"), "100-continue");
  s_->inSandbox({"rm", "-f", "/tmp/tg-upload.bin"});
}

TEST_F(MitmTest, LargeDownloadIsIntact) {
  auto r = s_->inSandbox({"sh", "-c",
                          "curl -sS --max-time 60 https://llm.example.test/big/50000000 | wc -c"},
                         70s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::stoll(r.out), 50000000);
}

TEST_F(MitmTest, SmugglingShapedRequestsAreRefusedAndOthersKeepWorking) {
  auto r = python(R"(
import socket, ssl
ctx = ssl.create_default_context()
out = []
for req in [b"POST /echo HTTP/1.1\r\nHost: llm.example.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: llm.example.test\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
            b"GET /echo HTTP/1.1\r\nHost: llm.example.test\r\nTransfer-Encoding: xchunked\r\n\r\n",
            b"GET /echo HTTP/1.1\r\nHost: llm.example.test\r\n folded: yes\r\n\r\n"]:
    s = ctx.wrap_socket(socket.create_connection(("llm.example.test", 443), timeout=10), server_hostname="llm.example.test")
    s.sendall(req)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    out.append(data.split(b"\r\n")[0].decode())
print("|".join(out))
)");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "HTTP/1.1 400 Bad Request|HTTP/1.1 400 Bad Request|HTTP/1.1 501 Not Implemented|"
                   "HTTP/1.1 400 Bad Request\n");
  EXPECT_TRUE(recorded().empty()) << "nothing ambiguous reaches the upstream";
  EXPECT_EQ(curl({"https://llm.example.test/echo"}).exit_code, 0);
}

TEST_F(MitmTest, ReloadRereadsFileSecretsForNewRequests) {
  {
    std::ofstream f(dir_ + "/llm.secret");
    f << "sk-rotated-secret-abcdefghijklmnop\n";
  }
  s_->gateway()->signal(SIGHUP);
  std::this_thread::sleep_for(500ms);
  auto r = curl({"https://llm.example.test/echo"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto reqs = recorded();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(header(reqs[0], "Authorization"), "Bearer sk-rotated-secret-abcdefghijklmnop");
  EXPECT_EQ(r.out.find("sk-rotated"), std::string::npos);
}

}  // namespace
}  // namespace tollgate::e2e
