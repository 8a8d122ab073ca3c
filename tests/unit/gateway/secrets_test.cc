// Credential values: read from their sources once, validated, held in
// SecretBuffers, environment copies removed, errors without values.
#include "gateway/secrets.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace tollgate::gateway {
namespace {

namespace fs = std::filesystem;

class SecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tollgate-secrets-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string file(const std::string& name, const std::string& content) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p) << content;
    return p;
  }

  Config config(const std::string& source_yaml) {
    std::string yaml =
        "gateway:\n  interfaces: [tgbr0]\n"
        "sandboxes:\n  - name: a\n    sources: [10.0.0.0/24]\n    rules:\n"
        "      - hosts: [api.example.test]\n        action: mitm\n"
        "credentials:\n  key:\n    source: " +
        source_yaml +
        "\n    placeholder: tgph_key_aaaaaaaaaaaaaaaaaaaaaaaa\n"
        "    hosts: [api.example.test]\n    inject: {header: Authorization, format: \"Bearer "
        "{value}\"}\n";
    auto r = parseConfig(yaml, "t.yaml");
    if (auto* errs = std::get_if<std::vector<ConfigError>>(&r)) {
      ADD_FAILURE() << (*errs)[0].toString();
      return {};
    }
    return std::get<Config>(std::move(r));
  }

  std::string dir_;
};

TEST_F(SecretsTest, FileValueIsReadWithoutItsTrailingNewline) {
  Config c = config("{ file: " + file("k", "s3cr3t-value-1234\n") + " }");
  auto t = loadCredentials(c, nullptr);
  ASSERT_TRUE(t) << t.message();
  ASSERT_EQ((*t)->specs.size(), 1u);
  EXPECT_EQ((*t)->specs[0].value->view(), "s3cr3t-value-1234");
  EXPECT_EQ((*t)->specs[0].placeholder, "tgph_key_aaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ((*t)->specs[0].inject_header, "Authorization");
  ASSERT_EQ((*t)->specs[0].scope.size(), 1u);
  EXPECT_TRUE((*t)->specs[0].scope[0]("api.example.test"));
  EXPECT_FALSE((*t)->specs[0].scope[0]("evil.example.test"));
  file("crlf", "abc-value\r\n");
  Config c2 = config("{ file: " + dir_ + "/crlf }");
  auto t2 = loadCredentials(c2, nullptr);
  ASSERT_TRUE(t2);
  EXPECT_EQ((*t2)->specs[0].value->view(), "abc-value");
}

TEST_F(SecretsTest, ValuesThatCouldSplitAHeaderAreRefusedWithoutShowingThem) {
  for (std::string bad : {std::string("zqx1\nzqx2"), std::string("a\rb"), std::string("a\0b", 3),
                          std::string(""), std::string(" lead")}) {
    Config c = config("{ file: " + file("bad", bad + "\n") + " }");
    auto t = loadCredentials(c, nullptr);
    ASSERT_FALSE(t) << "accepted a bad value";
    EXPECT_NE(t.message().find("credential key"), std::string::npos) << t.message();
    if (bad.size() > 2) {
      EXPECT_EQ(t.message().find(bad.substr(0, 4)), std::string::npos) << t.message();
    }
  }
}

TEST_F(SecretsTest, MissingSourcesNameTheCredentialAndTheSource) {
  Config c = config("{ file: " + dir_ + "/absent }");
  auto t = loadCredentials(c, nullptr);
  ASSERT_FALSE(t);
  EXPECT_NE(t.message().find("credential key"), std::string::npos);
  EXPECT_NE(t.message().find(dir_ + "/absent"), std::string::npos);
  unsetenv("TG_SECRETS_TEST_ABSENT");
  Config e = config("{ env: TG_SECRETS_TEST_ABSENT }");
  auto te = loadCredentials(e, nullptr);
  ASSERT_FALSE(te);
  EXPECT_NE(te.message().find("TG_SECRETS_TEST_ABSENT"), std::string::npos);
}

TEST_F(SecretsTest, EnvironmentValueIsTakenOutOfTheEnvironmentAndCarriedOverOnReload) {
  setenv("TG_SECRETS_TEST_KEY", "env-secret-value-42", 1);
  char* original = getenv("TG_SECRETS_TEST_KEY");
  Config c = config("{ env: TG_SECRETS_TEST_KEY }");
  auto t = loadCredentials(c, nullptr);
  ASSERT_TRUE(t) << t.message();
  EXPECT_EQ((*t)->specs[0].value->view(), "env-secret-value-42");
  EXPECT_EQ(getenv("TG_SECRETS_TEST_KEY"), nullptr);
  // The bytes the environment held were overwritten, not just unlinked.
  EXPECT_EQ(std::string(original, 5), std::string(5, '\0'));
  // Reload: the variable is gone, the value carries over.
  auto again = loadCredentials(c, t->get());
  ASSERT_TRUE(again) << again.message();
  EXPECT_EQ((*again)->specs[0].value->view(), "env-secret-value-42");
  EXPECT_NE((*again)->specs[0].value->view().data(), (*t)->specs[0].value->view().data());
}

TEST_F(SecretsTest, ReloadRereadsFiles) {
  std::string p = file("k", "first-value-000\n");
  Config c = config("{ file: " + p + " }");
  auto t = loadCredentials(c, nullptr);
  ASSERT_TRUE(t);
  file("k", "second-value-111\n");
  auto t2 = loadCredentials(c, t->get());
  ASSERT_TRUE(t2);
  EXPECT_EQ((*t2)->specs[0].value->view(), "second-value-111");
  EXPECT_EQ((*t)->specs[0].value->view(), "first-value-000") << "open flows keep their table";
}

TEST_F(SecretsTest, SystemdCredentialIsReadFromTheCredentialsDirectoryOnce) {
  fs::create_directories(dir_ + "/creds");
  std::ofstream(dir_ + "/creds/api") << "from-systemd-credential-1\n";
  Config c = config("{ credential: api }");
  unsetenv("CREDENTIALS_DIRECTORY");
  auto none = loadCredentials(c, nullptr);
  ASSERT_FALSE(none);
  EXPECT_NE(none.message().find("CREDENTIALS_DIRECTORY"), std::string::npos) << none.message();
  setenv("CREDENTIALS_DIRECTORY", (dir_ + "/creds").c_str(), 1);
  auto t = loadCredentials(c, nullptr);
  ASSERT_TRUE(t) << t.message();
  EXPECT_EQ((*t)->specs[0].value->view(), "from-systemd-credential-1");
  // Fixed for the service's lifetime: a reload carries the value over.
  fs::remove(dir_ + "/creds/api");
  auto again = loadCredentials(c, t->get());
  ASSERT_TRUE(again) << again.message();
  EXPECT_EQ((*again)->specs[0].value->view(), "from-systemd-credential-1");
  unsetenv("CREDENTIALS_DIRECTORY");
}

}  // namespace
}  // namespace tollgate::gateway
