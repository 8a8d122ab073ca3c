// End-to-end: the red-team findings on the MITM engine and on plain-HTTP
// passthrough. The sandbox is root and the upstream echoes (tools/
// mitm_upstream.py): no head, encoding, connection option, reload or
// cleartext path may hand the sandbox a real secret, nor carry a
// placeholder out.
#include <gtest/gtest.h>
#include <signal.h>
#include <strings.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "scenario.h"

namespace tollgate::e2e {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kSecret = "sk-real-LLM-secret-0123456789abcdef";
constexpr const char* kRotated = "sk-rotated-secret-abcdefghijklmnop";
constexpr const char* kPlaceholder = "tgph_llm_aaaaaaaaaaaaaaaaaaaaaaaa";
// A second credential, for other.example.test (a mitm rule that lists no
// credentials: all may apply), that a reload removes.
constexpr const char* kRotSecret = "rot-REAL-secret-0123456789abcdefgh";
constexpr const char* kRotPlaceholder = "tgph_rot_dddddddddddddddddddddddd";

bool has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

std::string base64(const std::string& in, bool url) {
  const char* a = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                      : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) {
      out += a[(v >> s) & 63];
    }
  }
  return out;  // the tail (and padding) is not needed here
}

class MitmRedTeamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    dir_ = makeDirWithCa("redteam", &err);
    ASSERT_FALSE(dir_.empty()) << err;
    writeSecret(kSecret);
    writeSecretFile(dir_ + "/rot.secret", kRotSecret);
    record_ = dir_ + "/record.jsonl";

    Scenario::Options o;
    o.start_gateway = false;
    o.extra_upstreams = {{"llm", {kLlmV4}}};
    o.extra_gateway_yaml = "  ca: {cert: " + dir_ + "/ca/ca.crt, key: " + dir_ +
                           "/ca/ca.key}\n  upstream_ca: " + testPki().ca_cert + "\n";
    // other.example.test (the recording upstream too): cleartext on port 80
    // is passthrough, TLS is mitm without credentials in scope.
    o.rules_yaml =
        "      - hosts: [llm.example.test]\n"
        "        action: mitm\n"
        "        credentials: [llm]\n"
        "      - hosts: [other.example.test]\n"
        "        ports: [80]\n"
        "        action: passthrough\n"
        "      - hosts: [other.example.test]\n"
        "        action: mitm\n";
    o.extra_yaml = std::string("credentials:\n") +
                   "  llm:\n"
                   "    source: { file: " +
                   dir_ +
                   "/llm.secret }\n"
                   "    placeholder: " +
                   kPlaceholder +
                   "\n"
                   "    hosts: [llm.example.test]\n"
                   "    inject:\n"
                   "      header: Authorization\n"
                   "      format: \"Bearer {value}\"\n"
                   "  rot:\n"
                   "    source: { file: " + dir_ + "/rot.secret }\n"
                   "    placeholder: " + kRotPlaceholder + "\n"
                   "    hosts: [other.example.test]\n"
                   "    inject: { header: X-Rot }\n";
    s_ = std::make_unique<Scenario>(o);
    ASSERT_TRUE(s_->startRecordingUpstream(record_, &err)) << err;
    s_->trustInSandbox(slurp(dir_ + "/ca/ca.crt"));
    ASSERT_TRUE(s_->startGateway(&err)) << err;
  }

  void TearDown() override {
    if (s_) {
      std::string log = s_->gatewayStderr();
      EXPECT_FALSE(has(log, kSecret)) << "the secret reached the log";
      EXPECT_FALSE(has(log, kRotated)) << "the secret reached the log";
      EXPECT_FALSE(has(log, kRotSecret)) << "the secret reached the log";
      std::string audit = slurp(s_->auditPath());
      EXPECT_FALSE(has(audit, kSecret));
      EXPECT_FALSE(has(audit, kPlaceholder)) << "placeholders stay out of audit";
    }
    s_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void writeSecret(const std::string& value) { writeSecretFile(dir_ + "/llm.secret", value); }

  harness::CommandResult curl(std::vector<std::string> args, int timeout_s = 10) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", std::to_string(timeout_s)};
    argv.insert(argv.end(), args.begin(), args.end());
    return s_->inSandbox(argv, std::chrono::seconds(timeout_s + 5));
  }
  harness::CommandResult python(const std::string& code, int timeout_s = 20) {
    return s_->inSandbox({"python3", "-c", code}, std::chrono::seconds(timeout_s));
  }
  std::vector<nlohmann::json> recorded() { return readJsonLines(record_); }
  static std::string header(const nlohmann::json& req, const std::string& name) {
    return recordedHeader(req, name);
  }
  // Python in the sandbox: send `requests` (raw HTTP/1.1 heads) one after
  // the other on one connection (TLS when `tls`), printing each response
  // head's status line and the whole response text, separated by "\n===\n".
  harness::CommandResult rawExchanges(const std::string& host, bool tls,
                                      const std::vector<std::string>& requests) {
    std::string list = "[";
    for (const std::string& r : requests) {
      list += "bytes.fromhex('";
      for (unsigned char c : r) {
        char hex[3];
        snprintf(hex, sizeof(hex), "%02x", c);
        list += hex;
      }
      list += "'),";
    }
    list += "]";
    std::string code = R"(
import socket, ssl, sys
host = ")" + host + R"("
tls = )" + (tls ? "True" : "False") +
                       R"(
s = socket.create_connection((host, 443 if tls else 80), timeout=10)
if tls:
    s = ssl.create_default_context().wrap_socket(s, server_hostname=host)
f = s.makefile("rb")
out = []
for req in )" + list + R"(:
    try:
        s.sendall(req)
    except OSError:
        out.append("SEND FAILED")
        break
    text = b""
    while True:
        status = f.readline()
        text += status
        length = None
        chunked = False
        while status:
            line = f.readline()
            text += line
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            if k.lower() == "content-length":
                length = int(v)
            if k.lower() == "transfer-encoding":
                chunked = True
        code = status.split()[1] if status else b""
        if not (code.startswith(b"1") and code != b"101"):
            break  # 1xx other than 101: interim, the final head follows
    if not status:
        out.append("CLOSED")
        break
    if length:
        text += f.read(length)
    elif chunked:
        while True:
            size = f.readline()
            text += size
            n = int(size.split(b";")[0], 16)
            text += f.read(n + 2)
            if n == 0:
                break
    out.append(text.decode(errors="replace"))
print("\n===\n".join(out))
)";
    return python(code);
  }

  // Two requests on one keep-alive HTTPS connection to `host` (headers: a
  // Python dict literal), with `change` and a reload (SIGHUP) between them.
  // Prints the second response body and whether the connection was kept.
  harness::CommandResult keepAliveAcrossReload(const std::string& host, const std::string& headers,
                                               const std::function<void()>& change) {
    const std::string ready = dir_ + "/ready";
    const std::string go = dir_ + "/go";
    const std::string code = R"(
import http.client, ssl, time, os, sys
c = http.client.HTTPSConnection(sys.argv[1], 443, timeout=10, context=ssl.create_default_context())
c.request("GET", "/echo?n=1", headers=)" + headers + R"()
c.getresponse().read()
sock = c.sock
open(sys.argv[2], "w").close()
for _ in range(200):
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.05)
c.request("GET", "/echo?n=2", headers=)" + headers + R"()
r = c.getresponse()
print(r.read().decode())
print("same connection" if c.sock is sock else "reconnected")
)";
    harness::CommandResult result;
    std::thread client([&] {
      result = s_->inSandbox({"python3", "-c", code, host, ready, go}, 30s);
    });
    bool is_ready = false;
    for (int i = 0; i < 200 && !is_ready; ++i) {
      is_ready = fs::exists(ready);
      if (!is_ready) {
        std::this_thread::sleep_for(50ms);
      }
    }
    EXPECT_TRUE(is_ready);
    change();
    s_->gateway()->signal(SIGHUP);
    std::this_thread::sleep_for(700ms);
    std::ofstream(go).close();
    client.join();
    return result;
  }

  std::string dir_;
  std::string record_;
  std::unique_ptr<Scenario> s_;
};

const std::string kAuth = std::string("Authorization: Bearer ") + kPlaceholder;

// --- 3: every head that reaches the sandbox is scrubbed ------------------

TEST_F(MitmRedTeamTest, EarlyHintsHeadEchoingTheSecretIsScrubbed) {
  auto r = rawExchanges(
      "llm.example.test", true,
      {"GET /early-hints HTTP/1.1\r\nHost: llm.example.test\r\n" + kAuth + "\r\n\r\n"});
  ASSERT_EQ(r.exit_code, 0) << r.err << s_->gatewayStderr();
  EXPECT_TRUE(has(r.out, "HTTP/1.1 103")) << r.out;
  EXPECT_TRUE(has(r.out, "hinted")) << r.out;
  EXPECT_FALSE(has(r.out, kSecret)) << r.out;
  EXPECT_TRUE(has(r.out, std::string("X-Echo-Auth: Bearer ") + kPlaceholder)) << r.out;
  ASSERT_EQ(recorded().size(), 1u);
  EXPECT_EQ(header(recorded()[0], "Authorization"), std::string("Bearer ") + kSecret);
}

TEST_F(MitmRedTeamTest, SwitchingProtocolsHeadEchoingTheSecretIsScrubbed) {
  auto r = rawExchanges("llm.example.test", true,
                        {"GET /ws HTTP/1.1\r\nHost: llm.example.test\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n" +
                         kAuth + "\r\n\r\n"});
  ASSERT_EQ(r.exit_code, 0) << r.err << s_->gatewayStderr();
  EXPECT_TRUE(has(r.out, "HTTP/1.1 101")) << r.out;
  EXPECT_FALSE(has(r.out, kSecret)) << r.out;
  EXPECT_TRUE(has(r.out, std::string("X-Echo-Auth: Bearer ") + kPlaceholder)) << r.out;
}

TEST_F(MitmRedTeamTest, FinalHeadsAndTrailersNeverCarryTheSecret) {
  auto r = rawExchanges(
      "llm.example.test", true,
      {"GET /echo HTTP/1.1\r\nHost: llm.example.test\r\n" + kAuth + "\r\n\r\n",
       "GET /echo-trailer HTTP/1.1\r\nHost: llm.example.test\r\n" + kAuth + "\r\n\r\n"});
  ASSERT_EQ(r.exit_code, 0) << r.err << s_->gatewayStderr();
  EXPECT_TRUE(has(r.out, std::string("X-Echo-Auth: Bearer ") + kPlaceholder)) << r.out;
  EXPECT_TRUE(has(r.out, "\r\nok\r\n")) << r.out;
  // Trailers are dropped (never forwarded), so neither form is there.
  EXPECT_FALSE(has(r.out, kSecret)) << r.out;
  EXPECT_EQ(recorded().size(), 2u);
}

// --- 9: encoded echoes, Range ---------------------------------------------

TEST_F(MitmRedTeamTest, EncodedEchoesOfTheSecretAreScrubbed) {
  auto r = curl({"https://llm.example.test/echo-encoded", "-H", kAuth});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("b64_0")) << r.out;
  EXPECT_FALSE(has(r.out, kSecret)) << r.out;
  const std::string auth = std::string("Bearer ") + kSecret;
  for (size_t k = 0; k < 3; ++k) {
    for (bool url : {false, true}) {
      // The upstream's stream: k filler bytes, the value, one more byte.
      std::string stream = std::string(k, url ? 'y' : 'x') + auth + (url ? "?" : "!");
      std::string e = base64(stream, url);
      const size_t secret_at = k + 7;  // after "Bearer "
      const size_t from = (8 * secret_at + 5) / 6;
      std::string middle = e.substr(from, 20);
      EXPECT_FALSE(has(r.out, middle))
          << "base64 at offset " << k << (url ? " (url)" : "") << ": " << r.out;
    }
  }
  EXPECT_TRUE(has(j["json"].get<std::string>(), kPlaceholder)) << r.out;
}

TEST_F(MitmRedTeamTest, RangeIsStrippedFromCredentialedRequests) {
  auto r = curl({"-i", "-r", "40-60", "https://llm.example.test/echo-range", "-H", kAuth});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "HTTP/1.1 200")) << r.out;  // whole, and scrubbed
  EXPECT_FALSE(has(r.out, kSecret)) << r.out;
  auto reqs = recorded();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(header(reqs[0], "Range"), "");
}

// --- 10: Connection options from the sandbox ---------------------------------

TEST_F(MitmRedTeamTest, ConnectionCannotDropIdentityEncodingNorTheCredentialHeader) {
  auto r = curl({"-i", "https://llm.example.test/echo", "-H", kAuth, "-H", "Accept-Encoding: gzip",
                 "-H", "Connection: Accept-Encoding, Authorization"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "HTTP/1.1 200")) << r.out;
  auto reqs = recorded();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(header(reqs[0], "Accept-Encoding"), "identity");
  EXPECT_EQ(header(reqs[0], "Authorization"), std::string("Bearer ") + kSecret);
  EXPECT_EQ(header(reqs[0], "Connection"), "");
}

// --- 5: rotated credentials reach kept-alive connections ----------------------

TEST_F(MitmRedTeamTest, ReloadedSecretReachesTheNextRequestOnAKeptAliveConnection) {
  auto r = keepAliveAcrossReload("llm.example.test", "{}", [&] { writeSecret(kRotated); });
  ASSERT_EQ(r.exit_code, 0) << r.err << s_->gatewayStderr();
  EXPECT_TRUE(has(r.out, "same connection")) << r.out;
  EXPECT_FALSE(has(r.out, kRotated)) << r.out;
  auto reqs = recorded();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(header(reqs[0], "Authorization"), std::string("Bearer ") + kSecret);
  EXPECT_EQ(header(reqs[1], "Authorization"), std::string("Bearer ") + kRotated);
}

TEST_F(MitmRedTeamTest, CredentialRemovedByAReloadIsNoLongerInjectedOnAKeptAliveConnection) {
  auto r = keepAliveAcrossReload(
      "other.example.test", std::string("{'X-Rot': '") + kRotPlaceholder + "'}", [&] {
        // The rot credential is the config's last section.
        ASSERT_EQ(s_->inHost({"sed", "-i", "/^  rot:/,$d", s_->configPath()}).exit_code, 0);
      });
  ASSERT_EQ(r.exit_code, 0) << r.err << s_->gatewayStderr();
  EXPECT_TRUE(has(r.out, "same connection")) << r.out;
  auto reqs = recorded();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(header(reqs[0], "X-Rot"), kRotSecret);
  // Unknown now: neither injected nor refused.
  EXPECT_EQ(header(reqs[1], "X-Rot"), kRotPlaceholder);
}

// --- 7: plain-HTTP passthrough is inspected, every request ------------------

TEST_F(MitmRedTeamTest, PlaceholderOverCleartextPassthroughIsRefused) {
  for (const std::string& where : {kAuth, std::string("Cookie: s=") + kPlaceholder,
                                   std::string("X-") + kPlaceholder + ": 1"}) {
    auto r =
        rawExchanges("other.example.test", false,
                     {"GET /echo HTTP/1.1\r\nHost: other.example.test\r\n" + where + "\r\n\r\n"});
    ASSERT_EQ(r.exit_code, 0) << r.err << s_->gatewayStderr();
    EXPECT_TRUE(has(r.out, "HTTP/1.1 403")) << where << ": " << r.out;
    EXPECT_TRUE(has(r.out, "credential_scope_violation")) << r.out;
  }
  for (const std::string& target :
       {std::string("/echo?k=") + kPlaceholder, std::string("/") + kPlaceholder,
        std::string("/echo?k=tgph%5Fllm_aaaaaaaaaaaaaaaaaaaaaaaa")}) {
    auto r = rawExchanges("other.example.test", false,
                          {"GET " + target + " HTTP/1.1\r\nHost: other.example.test\r\n\r\n"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(has(r.out, "HTTP/1.1 403")) << target << ": " << r.out;
  }
  EXPECT_TRUE(recorded().empty()) << "nothing reached the upstream";
  auto rec = s_->auditWhere("reason", "credential_scope_violation");
  EXPECT_EQ(rec["action"], "passthrough") << rec.dump();
}

TEST_F(MitmRedTeamTest, EveryRequestOnAKeptAliveCleartextPassthroughIsChecked) {
  const std::string ok = "GET /echo?n=1 HTTP/1.1\r\nHost: other.example.test\r\n\r\n";
  auto leak = rawExchanges(
      "other.example.test", false,
      {ok, "GET /echo?n=2 HTTP/1.1\r\nHost: other.example.test\r\n" + kAuth + "\r\n\r\n"});
  ASSERT_EQ(leak.exit_code, 0) << leak.err << s_->gatewayStderr();
  EXPECT_TRUE(has(leak.out, "HTTP/1.1 200")) << leak.out;
  EXPECT_TRUE(has(leak.out, "HTTP/1.1 403")) << leak.out;
  auto fronted = rawExchanges("other.example.test", false,
                              {ok, "GET /echo?n=3 HTTP/1.1\r\nHost: llm.example.test\r\n\r\n"});
  ASSERT_EQ(fronted.exit_code, 0) << fronted.err;
  EXPECT_TRUE(has(fronted.out, "HTTP/1.1 421")) << fronted.out;
  auto reqs = recorded();
  ASSERT_EQ(reqs.size(), 2u);  // the two clean first requests only
  for (const auto& q : reqs) {
    EXPECT_EQ(q["path"], "/echo?n=1");
  }
}

TEST_F(MitmRedTeamTest, CleartextPassthroughStillStreamsBigBodiesAndWebSockets) {
  auto down = s_->inSandbox(
      {"sh", "-c", "curl -sS --max-time 60 http://other.example.test/big/50000000 | wc -c"}, 70s);
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(std::stoll(down.out), 50000000);
  ASSERT_EQ(
      s_->inSandbox({"sh", "-c", "head -c 20000000 /dev/urandom > /tmp/tg-rt-up.bin"}).exit_code,
      0);
  auto up = curl({"-H", "Transfer-Encoding: chunked", "--data-binary", "@/tmp/tg-rt-up.bin",
                  "http://other.example.test/upload"},
                 60);
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(nlohmann::json::parse(up.out)["length"], 20000000);
  s_->inSandbox({"rm", "-f", "/tmp/tg-rt-up.bin"});
  auto ws = python(R"(
import socket
s = socket.create_connection(("other.example.test", 80), timeout=10)
s.sendall(b"GET /ws HTTP/1.1\r\nHost: other.example.test\r\nUpgrade: websocket\r\n"
          b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
          b"Sec-WebSocket-Version: 13\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
print(head.split(b"\r\n")[0].decode())
s.sendall(b"\x81\x85\x00\x00\x00\x00hello")
data = b""
while len(data) < 7:
    d = s.recv(100)
    if not d:
        break
    data += d
print(data[2:].decode())
)");
  ASSERT_EQ(ws.exit_code, 0) << ws.err << s_->gatewayStderr();
  EXPECT_EQ(ws.out, "HTTP/1.1 101 Switching Protocols\nhello\n");
}

}  // namespace
}  // namespace tollgate::e2e
