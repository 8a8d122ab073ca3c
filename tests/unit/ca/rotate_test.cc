// rotateCa: the old CA becomes ca.prev.*, a new one takes its place.
#include <gtest/gtest.h>

#include "ca/ca.h"
#include "ca_test_util.h"

namespace tollgate::ca {
namespace {

using test::fileMode;
using test::readFile;
using test::TempDir;

TEST(RotateCaTest, RequiresAnExistingCa) {
  TempDir tmp;
  auto r = rotateCa(tmp.path(), {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("tollgate ca init"), std::string::npos) << r.message();
  EXPECT_TRUE(test::listDir(tmp.path()).empty());
  auto missing = rotateCa(tmp / "absent", {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(fileMode(tmp / "absent"), -1);
}

TEST(RotateCaTest, KeepsPreviousAndCreatesANewOne) {
  TempDir tmp;
  auto first = initCa(tmp.path(), {});
  ASSERT_TRUE(first) << first.message();
  const std::string old_cert = readFile(tmp / "ca.crt");
  const std::string old_key = readFile(tmp / "ca.key");

  auto second = rotateCa(tmp.path(), {});
  ASSERT_TRUE(second) << second.message();
  EXPECT_EQ(readFile(tmp / "ca.prev.crt"), old_cert);
  EXPECT_EQ(readFile(tmp / "ca.prev.key"), old_key);
  EXPECT_NE(readFile(tmp / "ca.crt"), old_cert);
  EXPECT_NE(readFile(tmp / "ca.key"), old_key);
  EXPECT_EQ(fileMode(tmp / "ca.crt"), 0644);
  EXPECT_EQ(fileMode(tmp / "ca.key"), 0600);
  EXPECT_EQ(fileMode(tmp / "ca.prev.crt"), 0644);
  EXPECT_EQ(fileMode(tmp / "ca.prev.key"), 0600);
  EXPECT_EQ(test::listDir(tmp.path()),
            (std::vector<std::string>{"ca.crt", "ca.key", "ca.prev.crt", "ca.prev.key"}));
  EXPECT_NE(second->cert.fingerprint_sha256, first->cert.fingerprint_sha256);
  // Same day, default names: the subjects still differ (time of day added).
  EXPECT_NE(second->cert.subject, first->cert.subject);
  EXPECT_NE(second->cert.subject.find(" sandbox CA "), std::string::npos) << second->cert.subject;
  ASSERT_TRUE(second->prev);
  EXPECT_EQ(second->prev->fingerprint_sha256, first->cert.fingerprint_sha256);
  EXPECT_EQ(second->prev_key_path, tmp / "ca.prev.key");

  auto loaded = Authority::loadDir(tmp.path());
  ASSERT_TRUE(loaded) << loaded.message();
  EXPECT_EQ((*loaded)->fingerprintSha256(), second->cert.fingerprint_sha256);
  ASSERT_TRUE((*loaded)->prevInfo());
  EXPECT_EQ((*loaded)->prevInfo()->fingerprint_sha256, first->cert.fingerprint_sha256);
  ASSERT_NE((*loaded)->prevCert(), nullptr);
  // The previous pair still loads as a CA of its own.
  EXPECT_TRUE(Authority::load(tmp / "ca.prev.crt", tmp / "ca.prev.key"));

  // A second rotation replaces the older prev pair.
  auto third = rotateCa(tmp.path(), {});
  ASSERT_TRUE(third) << third.message();
  ASSERT_TRUE(third->prev);
  EXPECT_EQ(third->prev->fingerprint_sha256, second->cert.fingerprint_sha256);
  EXPECT_EQ(test::listDir(tmp.path()).size(), 4u);
}

TEST(RotateCaTest, OverlapTrustsLeavesFromBoth) {
  TempDir tmp;
  ASSERT_TRUE(initCa(tmp.path(), {}));
  auto old_ca = Authority::loadDir(tmp.path());
  ASSERT_TRUE(old_ca);
  auto old_minter = LeafMinter::create(*old_ca);
  ASSERT_TRUE(old_minter);
  ASSERT_TRUE(rotateCa(tmp.path(), {}));
  auto new_ca = Authority::loadDir(tmp.path());
  ASSERT_TRUE(new_ca);
  auto new_minter = LeafMinter::create(*new_ca);
  ASSERT_TRUE(new_minter);

  auto old_leaf = (*old_minter)->leafFor("api.example.test");
  auto new_leaf = (*new_minter)->leafFor("api.example.test");
  ASSERT_TRUE(old_leaf && new_leaf);
  X509Ptr prev = test::parsePem(readFile(tmp / "ca.prev.crt"));
  X509Ptr cur = test::parsePem(readFile(tmp / "ca.crt"));
  const test::VerifyTarget host{"api.example.test", ""};
  // Bundle with both: both verify. Only the new one: the old leaf fails.
  EXPECT_EQ(test::verifyLeaf((*old_leaf)->cert(), {cur.get(), prev.get()}, host), X509_V_OK);
  EXPECT_EQ(test::verifyLeaf((*new_leaf)->cert(), {cur.get(), prev.get()}, host), X509_V_OK);
  EXPECT_NE(test::verifyLeaf((*old_leaf)->cert(), {cur.get()}, host), X509_V_OK);
}

TEST(RotateCaTest, RotatesAnExpiredCaAndChangesKeyType) {
  TempDir tmp;
  CaOptions old;
  old.now = ::time(nullptr) - 30 * 86400;
  old.validity_days = 1;
  ASSERT_TRUE(initCa(tmp.path(), old));
  ASSERT_FALSE(Authority::loadDir(tmp.path()));
  CaOptions fresh;
  fresh.key_type = KeyType::kRsa2048;
  auto r = rotateCa(tmp.path(), fresh);
  ASSERT_TRUE(r) << r.message();
  EXPECT_EQ(r->key_type, KeyType::kRsa2048);
  auto ca = Authority::loadDir(tmp.path());
  ASSERT_TRUE(ca) << ca.message();
  EXPECT_TRUE(EVP_PKEY_is_a(X509_get0_pubkey((*ca)->cert()), "RSA"));
}

TEST(RotateCaTest, RefusesSymlinkedCurrentFiles) {
  TempDir tmp;
  TempDir elsewhere;
  ASSERT_TRUE(initCa(elsewhere.path(), {}));
  ASSERT_EQ(::symlink((elsewhere / "ca.crt").c_str(), (tmp / "ca.crt").c_str()), 0);
  ASSERT_EQ(::symlink((elsewhere / "ca.key").c_str(), (tmp / "ca.key").c_str()), 0);
  auto r = rotateCa(tmp.path(), {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("regular file"), std::string::npos) << r.message();
  EXPECT_EQ(test::listDir(tmp.path()), (std::vector<std::string>{"ca.crt", "ca.key"}));
}

}  // namespace
}  // namespace tollgate::ca
