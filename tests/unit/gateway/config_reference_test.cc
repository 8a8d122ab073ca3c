// docs/config.md documents every key the config loader accepts, and nothing
// else: this test fails when one changes without the other.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "gateway/config.h"

namespace tollgate::gateway {
namespace {

const std::string kDoc = std::string(TOLLGATE_TEST_DATA) + "/../../docs/config.md";

// The key of each table row "| `key` | ..." between the markers
// <!-- keys:begin --> and <!-- keys:end -->.
std::multiset<std::string> documentedKeys(std::string* error) {
  std::ifstream in(kDoc);
  if (!in) {
    *error = "cannot read " + kDoc;
    return {};
  }
  std::multiset<std::string> keys;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line.find("<!-- keys:begin -->") != std::string::npos) {
      inside = true;
    } else if (line.find("<!-- keys:end -->") != std::string::npos) {
      inside = false;
    } else if (inside && line.starts_with("| `")) {
      size_t end = line.find('`', 3);
      if (end != std::string::npos) {
        keys.insert(line.substr(3, end - 3));
      }
    }
  }
  return keys;
}

TEST(ConfigReferenceTest, LoaderKeysAreWellFormed) {
  std::vector<std::string> keys = knownConfigKeys();
  std::set<std::string> unique(keys.begin(), keys.end());
  EXPECT_EQ(unique.size(), keys.size());
  EXPECT_TRUE(unique.count("gateway.interfaces"));
  EXPECT_TRUE(unique.count("credentials.NAME.source.credential"));
  EXPECT_TRUE(unique.count("sandboxes[].rules[].action"));
  EXPECT_TRUE(unique.count("sandboxes[].udp[].ports"));
}

TEST(ConfigReferenceTest, EveryLoaderKeyIsDocumentedOnce) {
  std::string error;
  std::multiset<std::string> documented = documentedKeys(&error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_FALSE(documented.empty()) << kDoc << " has no key rows between the markers";
  for (const std::string& key : knownConfigKeys()) {
    EXPECT_EQ(documented.count(key), 1u)
        << "config key `" << key << "` must be documented exactly once in docs/config.md";
  }
}

TEST(ConfigReferenceTest, EveryDocumentedKeyIsKnownToTheLoader) {
  std::string error;
  std::multiset<std::string> documented = documentedKeys(&error);
  ASSERT_TRUE(error.empty()) << error;
  std::vector<std::string> known = knownConfigKeys();
  std::set<std::string> loader(known.begin(), known.end());
  for (const std::string& key : documented) {
    EXPECT_TRUE(loader.count(key))
        << "docs/config.md documents `" << key << "`, which the loader does not accept";
  }
}

}  // namespace
}  // namespace tollgate::gateway
