// Authority::load: what it exposes, and every refusal with its fix.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include "ca/ca.h"
#include "ca_test_util.h"

namespace tollgate::ca {
namespace {

using test::readFile;
using test::TempDir;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class AuthorityTest : public testing::Test {
 protected:
  void SetUp() override {
    auto files = initCa(dir_.path(), {});
    ASSERT_TRUE(files) << files.message();
    files_ = *files;
  }
  std::string cert() const { return dir_ / "ca.crt"; }
  std::string key() const { return dir_ / "ca.key"; }

  TempDir dir_;
  CaFiles files_;
};

TEST_F(AuthorityTest, LoadExposesTheCa) {
  auto ca = Authority::load(cert(), key());
  ASSERT_TRUE(ca) << ca.message();
  const Authority& a = **ca;
  ASSERT_NE(a.cert(), nullptr);
  EXPECT_EQ(a.fingerprintSha256(), files_.cert.fingerprint_sha256);
  EXPECT_EQ(a.notAfter(), files_.cert.not_after);
  EXPECT_EQ(a.notAfter(), test::notAfter(a.cert()));
  EXPECT_EQ(a.subject(), files_.cert.subject);
  EXPECT_EQ(a.certPem(), readFile(cert()));
  EXPECT_EQ(a.info().path, cert());
  EXPECT_EQ(a.prevCert(), nullptr);
  EXPECT_FALSE(a.prevInfo());
}

TEST_F(AuthorityTest, FingerprintMatchesOpensslCli) {
  const std::string cmd = "openssl x509 -noout -fingerprint -sha256 -in " + cert() + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[256] = {};
  const bool got = std::fgets(buf, sizeof buf, p) != nullptr;
  const int rc = ::pclose(p);
  if (!got || rc != 0) {
    GTEST_SKIP() << "openssl CLI not available";
  }
  std::string line = buf;
  // "sha256 Fingerprint=AB:..." (the label's case varies between versions)
  EXPECT_EQ(line.substr(line.find('=') + 1, 95), files_.cert.fingerprint_sha256);
}

TEST_F(AuthorityTest, ReadOnlyKeyIsAccepted) {
  ASSERT_EQ(::chmod(key().c_str(), 0400), 0);
  EXPECT_TRUE(Authority::load(cert(), key()));
}

TEST_F(AuthorityTest, RefusesKeyAccessibleToOthers) {
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602, 0610}) {
    ASSERT_EQ(::chmod(key().c_str(), mode), 0);
    auto ca = Authority::load(cert(), key());
    ASSERT_FALSE(ca) << std::oct << mode;
    EXPECT_TRUE(contains(ca.message(), key())) << ca.message();
    EXPECT_TRUE(contains(ca.message(), "chmod 600 " + key())) << ca.message();
  }
}

TEST_F(AuthorityTest, RefusesKeyOwnedBySomeoneElse) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to chown";
  }
  ASSERT_EQ(::chown(key().c_str(), 4242, static_cast<gid_t>(-1)), 0);
  auto ca = Authority::load(cert(), key());
  ASSERT_FALSE(ca);
  EXPECT_TRUE(contains(ca.message(), "uid 4242")) << ca.message();
  EXPECT_TRUE(contains(ca.message(), "chown 0 " + key())) << ca.message();
}

TEST_F(AuthorityTest, RefusesMismatchedKey) {
  TempDir other;
  ASSERT_TRUE(initCa(other.path(), {}));
  auto ca = Authority::load(cert(), other / "ca.key");
  ASSERT_FALSE(ca);
  EXPECT_TRUE(contains(ca.message(), "does not belong")) << ca.message();
}

TEST_F(AuthorityTest, RefusesNonCaCertificate) {
  auto ca = Authority::load(cert(), key());
  ASSERT_TRUE(ca);
  auto minter = LeafMinter::create(*ca);
  ASSERT_TRUE(minter);
  auto leaf = (*minter)->leafFor("leaf.example.test");
  ASSERT_TRUE(leaf);
  TempDir tmp;
  CPtr<BIO, BIO_free> bio(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_X509(bio.get(), (*leaf)->cert()), 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  test::writeFile(tmp / "leaf.crt", std::string(data, static_cast<size_t>(len)), 0644);
  test::writeFile(tmp / "leaf.key", test::keyPem((*leaf)->key()), 0600);
  auto loaded = Authority::load(tmp / "leaf.crt", tmp / "leaf.key");
  ASSERT_FALSE(loaded);
  EXPECT_TRUE(contains(loaded.message(), "not a CA")) << loaded.message();
}

TEST(AuthorityExpiryTest, RefusesExpiredCa) {
  TempDir dir;
  CaOptions o;
  o.now = ::time(nullptr) - 10 * 86400;
  o.validity_days = 2;
  ASSERT_TRUE(initCa(dir.path(), o));
  auto ca = Authority::loadDir(dir.path());
  ASSERT_FALSE(ca);
  EXPECT_TRUE(contains(ca.message(), "expired")) << ca.message();
  EXPECT_TRUE(contains(ca.message(), "tollgate ca rotate")) << ca.message();
}

TEST(AuthorityExpiryTest, RefusesNotYetValidCa) {
  TempDir dir;
  CaOptions o;
  o.now = ::time(nullptr) + 10 * 86400;
  ASSERT_TRUE(initCa(dir.path(), o));
  auto ca = Authority::loadDir(dir.path());
  ASSERT_FALSE(ca);
  EXPECT_TRUE(contains(ca.message(), "clock")) << ca.message();
}

TEST_F(AuthorityTest, RefusesEncryptedKeyWithoutPrompting) {
  CPtr<BIO, BIO_free> in(BIO_new_file(key().c_str(), "r"));
  PkeyPtr pkey(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(pkey);
  CPtr<BIO, BIO_free> out(BIO_new(BIO_s_mem()));
  char pass[] = "secret-pass";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(out.get(), pkey.get(), EVP_aes_256_cbc(), pass,
                                          sizeof(pass) - 1, nullptr, nullptr),
            1);
  char* data = nullptr;
  long len = BIO_get_mem_data(out.get(), &data);
  ASSERT_EQ(::unlink(key().c_str()), 0);
  test::writeFile(key(), std::string(data, static_cast<size_t>(len)), 0600);
  auto ca = Authority::load(cert(), key());
  ASSERT_FALSE(ca);
  EXPECT_TRUE(contains(ca.message(), "encrypted")) << ca.message();
}

TEST_F(AuthorityTest, RefusesMissingOrOddFiles) {
  auto missing = Authority::load(cert(), dir_ / "nope.key");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(contains(missing.message(), dir_ / "nope.key")) << missing.message();
  auto directory = Authority::load(cert(), dir_.path());
  EXPECT_FALSE(directory);
  test::writeFile(dir_ / "garbage.crt", "not a certificate", 0644);
  auto garbage = Authority::load(dir_ / "garbage.crt", key());
  ASSERT_FALSE(garbage);
  EXPECT_TRUE(contains(garbage.message(), dir_ / "garbage.crt")) << garbage.message();
}

TEST_F(AuthorityTest, ErrorQueueIsLeftEmpty) {
  ASSERT_EQ(::chmod(key().c_str(), 0644), 0);
  EXPECT_FALSE(Authority::load(cert(), key()));
  EXPECT_EQ(ERR_peek_error(), 0u);
  test::writeFile(dir_ / "garbage.crt", "not a certificate", 0644);
  ASSERT_EQ(::chmod(key().c_str(), 0600), 0);
  EXPECT_FALSE(Authority::load(dir_ / "garbage.crt", key()));
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_TRUE(Authority::load(cert(), key()));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

}  // namespace
}  // namespace tollgate::ca
