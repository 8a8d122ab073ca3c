#include "gateway/audit.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gateway/deny.h"

namespace tollgate::gateway {
namespace {

TEST(AuditTest, RecordHasEveryContractField) {
  FlowRecord r;
  r.ts = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123));
  r.sandbox = "agents";
  r.src = "10.77.0.10:40000";
  r.dst = "198.51.100.10:443";
  r.proto = "tls";
  r.sni = "api.example.test";
  r.action = "passthrough";
  r.reason = "rule";
  r.rule = "1";
  r.upstream = "198.51.100.10:443";
  r.bytes_up = 517;
  r.bytes_down = 4096;
  r.duration_ms = 12;
  r.has_tls = true;
  r.tls_version = "TLSv1.3";
  r.tls_alpn = {"h2", "http/1.1"};
  std::string line = formatRecord(r);
  ASSERT_EQ(line.back(), '\n');
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["ts"], "2023-11-14T22:13:20.123Z");
  for (const char* k : {"ts", "event", "sandbox", "src", "dst", "proto", "sni", "host", "action",
                        "reason", "rule", "upstream", "bytes_up", "bytes_down", "duration_ms",
                        "credentials"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["event"], "flow");
  EXPECT_EQ(j["tls"]["version"], "TLSv1.3");
  EXPECT_EQ(j["tls"]["alpn"][1], "http/1.1");
  EXPECT_EQ(j["tls"]["ech"], false);
  EXPECT_FALSE(j.contains("http"));
  EXPECT_EQ(j["bytes_down"], 4096);
}

TEST(AuditTest, InvalidUtf8IsReplacedNotThrown) {
  FlowRecord r;
  r.host = std::string("bad\xff\xfe", 5);
  EXPECT_NO_THROW({
    auto j = nlohmann::json::parse(formatRecord(r));
    EXPECT_NE(j["host"].get<std::string>().find("bad"), std::string::npos);
  });
}

struct PathCase {
  const char* target;
  const char* path;
};
class PathWithoutQueryTest : public testing::TestWithParam<PathCase> {};
TEST_P(PathWithoutQueryTest, DropsQueryAndFragment) {
  EXPECT_EQ(pathWithoutQuery(GetParam().target), GetParam().path);
}
INSTANTIATE_TEST_SUITE_P(
    Cases, PathWithoutQueryTest,
    testing::Values(PathCase{"/", "/"}, PathCase{"/v1/chat?key=secret", "/v1/chat"},
                    PathCase{"/a#frag", "/a"}, PathCase{"http://h.test/x/y?q=1", "/x/y"},
                    PathCase{"http://h.test", "/"}, PathCase{"*", "*"},
                    PathCase{"/p?", "/p"}));

TEST(DenyTest, TlsAlertIsFatalAccessDenied) {
  std::string a = tlsAlertRecord(kAlertAccessDenied);
  ASSERT_EQ(a.size(), 7u);
  EXPECT_EQ(static_cast<uint8_t>(a[0]), 21);  // alert
  EXPECT_EQ(static_cast<uint8_t>(a[4]), 2);   // length
  EXPECT_EQ(static_cast<uint8_t>(a[5]), 2);   // fatal
  EXPECT_EQ(static_cast<uint8_t>(a[6]), 49);  // access_denied
}

TEST(DenyTest, Http403NamesSandboxHostRuleWithExactLength) {
  std::string resp = httpErrorResponse(403, "Forbidden", {"agents", "evil.test", "2", "rule"});
  ASSERT_EQ(resp.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u);
  auto split = resp.find("\r\n\r\n");
  ASSERT_NE(split, std::string::npos);
  std::string body = resp.substr(split + 4);
  EXPECT_NE(resp.find("Content-Length: " + std::to_string(body.size()) + "\r\n"),
            std::string::npos);
  EXPECT_NE(resp.find("Connection: close\r\n"), std::string::npos);
  auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["sandbox"], "agents");
  EXPECT_EQ(j["host"], "evil.test");
  EXPECT_EQ(j["rule"], "2");
  EXPECT_EQ(j["reason"], "rule");
}

}  // namespace
}  // namespace tollgate::gateway
