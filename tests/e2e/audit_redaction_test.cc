// End-to-end: placeholders a sandbox puts into a path, an SNI or a DNS name
// never reach the audit log or the daemon's log; both show
// "<placeholder:NAME>" instead, also after a reload changed the placeholder.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "scenario.h"

namespace tollgate::e2e {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Upper case on purpose: DNS and SNI come back lower-cased.
constexpr const char* kPlaceholder = "TgRedact-E2E-0123456789-AbCdEfGhIj";
constexpr const char* kEncoded = "%54gRedact-E2E-0123456789-AbCdEfGh%49j";  // T and I escaped
constexpr const char* kReloadedPlaceholder = "TgAfterReload-E2E-9876543210-XyZ";
constexpr const char* kRedacted = "<placeholder:redact>";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Any letter case: the check must not miss a lower-cased copy.
bool holds(const std::string& text, const std::string& placeholder) {
  return lower(text).find(lower(placeholder)) != std::string::npos;
}

class AuditRedactionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    dir_ = makeDirWithCa("redact", &err);
    ASSERT_FALSE(dir_.empty()) << err;
    Scenario::Options o;
    o.gateway_env = {{"TG_E2E_REDACT_KEY", "real-secret-value-0123456789"}};
    o.extra_gateway_yaml = "  ca: {cert: " + dir_ + "/ca/ca.crt, key: " + dir_ +
                           "/ca/ca.key}\n  upstream_ca: " + testPki().ca_cert + "\n";
    o.rules_yaml =
        "      - hosts: [plain.example.test]\n"
        "        ports: [80]\n"
        "        action: passthrough\n"
        "      - hosts: [\"*.mitm.example.test\"]\n"
        "        action: mitm\n"
        "      - hosts: [denied.example.test]\n"
        "        action: deny\n";
    o.extra_yaml = std::string("credentials:\n") +
                   "  redact:\n"
                   "    source: { env: TG_E2E_REDACT_KEY }\n"
                   "    placeholder: " +
                   kPlaceholder +
                   "\n"
                   "    hosts: [llm.example.test]\n"
                   "    inject:\n"
                   "      header: Authorization\n"
                   "      format: \"Bearer {value}\"\n";
    s_ = std::make_unique<Scenario>(o);
  }

  void TearDown() override {
    s_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  harness::CommandResult curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "5"};
    argv.insert(argv.end(), args.begin(), args.end());
    return s_->inSandbox(argv, 15s);
  }
  // One A query to the sandbox resolver; prints "rcode N" (dig is not
  // everywhere the tests run).
  harness::CommandResult dig(const std::string& name) {
    return s_->inSandbox(
        {"python3", "-c",
         "import socket,struct,sys\n"
         "q=b''.join(bytes([len(l)])+l.encode() for l in sys.argv[1].split('.'))\n"
         "m=struct.pack('!HHHHHH',4660,256,1,0,0,0)+q+b'\\0'+struct.pack('!HH',1,1)\n"
         "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(3)\n"
         "s.sendto(m,('192.0.2.99',53)); print('rcode',s.recv(4096)[3]&15)\n",
         name},
        15s);
  }

  std::string dir_;
  std::unique_ptr<Scenario> s_;
};

TEST_F(AuditRedactionTest, PlaceholdersFromTheSandboxAreRedactedInAuditAndLog) {
  const std::string p = kPlaceholder;
  const std::string real = std::string("plain.example.test:80:") + kRealV4;
  // Denied plain HTTP: raw, and percent-encoded in the path.
  curl({"--resolve", std::string("denied.example.test:80:") + kRealV4,
        "http://denied.example.test/a/" + p + "/b?q=1"});
  curl({"--resolve", std::string("denied.example.test:80:") + kRealV4,
        std::string("http://denied.example.test/c/") + kEncoded});
  // Passthrough plain HTTP (lower-cased: still the placeholder).
  auto passed = curl({"--resolve", real, "http://plain.example.test/d/" + lower(p)});
  EXPECT_NE(passed.out.find("hello from real"), std::string::npos) << passed.out << passed.err;
  // An SNI holding it: denied by policy, and a MITM flow whose client
  // rejects tollgate's certificate (the daemon logs that, naming the host).
  curl({"-k", "--resolve", p + ".example.test:443:" + kRealV4, "https://" + p + ".example.test/"});
  curl({"--resolve", p + ".mitm.example.test:443:" + kRealV4,
        "https://" + p + ".mitm.example.test/"});
  // A DNS query for it.
  auto asked = dig(p + ".example");
  EXPECT_NE(asked.out.find("rcode"), std::string::npos) << asked.out << asked.err;

  auto denied = s_->auditWhere("host", "denied.example.test");
  ASSERT_FALSE(denied.is_null()) << slurp(s_->auditPath());
  EXPECT_EQ(denied.value("/http/path"_json_pointer, ""), std::string("/a/") + kRedacted + "/b")
      << denied.dump();
  auto plain = s_->auditWhere("host", "plain.example.test");
  ASSERT_FALSE(plain.is_null()) << slurp(s_->auditPath());
  EXPECT_EQ(plain.value("/http/path"_json_pointer, ""), std::string("/d/") + kRedacted)
      << plain.dump();
  EXPECT_EQ(plain.value("action", ""), "passthrough");
  auto dns = s_->auditWhere("host", std::string(kRedacted) + ".example");
  ASSERT_FALSE(dns.is_null()) << slurp(s_->auditPath());
  EXPECT_EQ(dns.value("event", ""), "dns") << dns.dump();
  auto sni = s_->auditWhere("sni", std::string(kRedacted) + ".example.test");
  ASSERT_FALSE(sni.is_null()) << slurp(s_->auditPath());
  EXPECT_EQ(sni.value("action", ""), "deny") << sni.dump();
  s_->auditWhere("sni", std::string(kRedacted) + ".mitm.example.test");

  std::string audit = slurp(s_->auditPath());
  EXPECT_FALSE(holds(audit, p)) << audit;
  EXPECT_FALSE(holds(audit, kEncoded)) << audit;
  EXPECT_NE(audit.find(std::string("/c/") + kRedacted), std::string::npos) << audit;

  // The daemon's log names the MITM host: redacted.
  std::string log;
  for (int i = 0; i < 50 && log.find(kRedacted) == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    log = s_->gatewayStderr();
  }
  EXPECT_FALSE(holds(log, p)) << log;
  EXPECT_NE(log.find(std::string(kRedacted) + ".mitm.example.test"), std::string::npos) << log;

  // A reload with a new placeholder: the writer redacts the new one.
  std::string config = slurp(s_->configPath());
  config.replace(config.find(kPlaceholder), p.size(), kReloadedPlaceholder);
  std::ofstream(s_->configPath()) << config;
  s_->gateway()->signal(SIGHUP);
  for (int i = 0; i < 50 && s_->gatewayStderr().find("reloaded") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(s_->gatewayStderr().find("reloaded"), std::string::npos) << s_->gatewayStderr();
  dig(std::string(kReloadedPlaceholder) + ".example");
  // Its record is the second DNS record with the redacted name.
  auto redactedDns = [&] {
    size_t n = 0;
    for (const auto& r : s_->audit()) {
      n += r.value("event", "") == "dns" &&
           r.value("host", "") == std::string(kRedacted) + ".example";
    }
    return n;
  };
  for (int i = 0; i < 50 && redactedDns() < 2; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(redactedDns(), 2u) << slurp(s_->auditPath());
  audit = slurp(s_->auditPath());
  EXPECT_FALSE(holds(audit, kReloadedPlaceholder)) << audit;
  EXPECT_FALSE(holds(s_->gatewayStderr(), kReloadedPlaceholder)) << s_->gatewayStderr();
}

}  // namespace
}  // namespace tollgate::e2e
