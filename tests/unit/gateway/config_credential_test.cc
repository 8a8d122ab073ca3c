// credentials.NAME.source: { credential: NAME } (systemd LoadCredential=).
// Only parsing and validation: reading the value is gateway/secrets.cc's job.
#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "gateway/config.h"

namespace tollgate::gateway {
namespace {

const std::string kTail =
    "    placeholder: tgph_k_0123456789abcdef01234\n"
    "    hosts: [api.example.com]\n"
    "    inject: { header: Authorization }\n"
    "gateway:\n  interfaces: [br0]\n"
    "sandboxes:\n  - name: a\n    sources: [10.77.0.0/24]\n";

std::variant<Config, std::vector<ConfigError>> parseSource(const std::string& source_line) {
  return parseConfig("credentials:\n  k:\n    source: " + source_line + "\n" + kTail, "t.yaml");
}

std::string firstError(const std::variant<Config, std::vector<ConfigError>>& r) {
  const auto* errors = std::get_if<std::vector<ConfigError>>(&r);
  if (errors == nullptr || errors->empty()) {
    return "";
  }
  return errors->front().toString();
}

TEST(ConfigCredentialSourceTest, AcceptsAPlainCredentialName) {
  for (const std::string name : {"openai", "openai.key", "tollgate-openai_1", "a b", "..x"}) {
    auto r = parseSource("{ credential: \"" + name + "\" }");
    const Config* c = std::get_if<Config>(&r);
    ASSERT_NE(c, nullptr) << name << ": " << firstError(r);
    const Credential& k = c->credentials.at("k");
    EXPECT_EQ(k.source.kind, CredentialSource::Credential) << name;
    EXPECT_EQ(k.source.ref, name);
  }
}

struct BadName {
  std::string yaml;
  int column;
};

class ConfigCredentialBadNameTest : public ::testing::TestWithParam<BadName> {};

TEST_P(ConfigCredentialBadNameTest, RejectsWithPosition) {
  auto r = parseSource("{ credential: " + GetParam().yaml + " }");
  const auto* errors = std::get_if<std::vector<ConfigError>>(&r);
  ASSERT_NE(errors, nullptr) << GetParam().yaml;
  ASSERT_EQ(errors->size(), 1u) << firstError(r);
  EXPECT_EQ(errors->front().line, 3);
  EXPECT_EQ(errors->front().column, GetParam().column);
  EXPECT_NE(errors->front().message.find("credentials.k.source.credential: "), std::string::npos)
      << errors->front().message;
  EXPECT_NE(errors->front().message.find("is not a systemd credential name"), std::string::npos)
      << errors->front().message;
}

INSTANTIATE_TEST_SUITE_P(Names, ConfigCredentialBadNameTest,
                         ::testing::Values(BadName{"/run/secrets/k", 27}, BadName{"a/b", 27},
                                           BadName{"\".\"", 27}, BadName{"\"..\"", 27},
                                           BadName{"\"../k\"", 27}, BadName{"\"a\\tb\"", 27},
                                           BadName{"\"a\\nb\"", 27},
                                           BadName{std::string(256, 'x'), 27}));

TEST(ConfigCredentialSourceTest, AcceptsA255ByteName) {
  auto r = parseSource("{ credential: " + std::string(255, 'x') + " }");
  ASSERT_TRUE(std::holds_alternative<Config>(r)) << firstError(r);
}

TEST(ConfigCredentialSourceTest, NotAString) {
  auto r = parseSource("{ credential: [a] }");
  EXPECT_NE(firstError(r).find("credentials.k.source.credential"), std::string::npos)
      << firstError(r);
}

TEST(ConfigCredentialSourceTest, ExactlyOneSource) {
  for (const std::string src :
       {"{ credential: k, env: K }", "{ credential: k, file: /run/k }", "{}"}) {
    auto r = parseSource(src);
    EXPECT_NE(
        firstError(r).find("t.yaml:3:13: credentials.k.source: needs exactly one of env:, file: or "
                           "credential:"),
        std::string::npos)
        << src << ": " << firstError(r);
  }
}

TEST(ConfigCredentialSourceTest, EmptyName) {
  EXPECT_NE(firstError(parseSource("{ credential: \"\" }"))
                .find("t.yaml:3:27: credentials.k.source.credential: must not be empty"),
            std::string::npos);
}

TEST(ConfigCredentialSourceTest, MisspelledKeySuggestsCredential) {
  auto r = parseSource("{ credentail: k }");
  const auto* errors = std::get_if<std::vector<ConfigError>>(&r);
  ASSERT_NE(errors, nullptr);
  bool found = false;
  for (const ConfigError& e : *errors) {
    found = found || e.toString() ==
                         "t.yaml:3:15: credentials.k.source: unknown key 'credentail'; did you "
                         "mean 'credential'?";
  }
  EXPECT_TRUE(found) << firstError(r);
}

}  // namespace
}  // namespace tollgate::gateway
