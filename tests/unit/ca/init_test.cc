// initCa: files, modes, refusals, and the CA certificate's contents.
#include <gtest/gtest.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include "ca/ca.h"
#include "ca_test_util.h"

namespace tollgate::ca {
namespace {

using test::fileMode;
using test::readFile;
using test::TempDir;

// Restores the process umask at scope exit.
class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t mask) : old_(::umask(mask)) {}
  ~UmaskGuard() { ::umask(old_); }

 private:
  mode_t old_;
};

TEST(InitCaTest, CreatesDirAndFilesWithExactModes) {
  for (mode_t mask : {mode_t{0}, mode_t{022}, mode_t{077}}) {
    UmaskGuard guard(mask);
    TempDir tmp;
    const std::string dir = tmp / "state";
    auto files = initCa(dir, {});
    ASSERT_TRUE(files) << files.message();
    EXPECT_EQ(fileMode(dir), 0700) << "umask " << mask;
    EXPECT_EQ(fileMode(dir + "/ca.crt"), 0644) << "umask " << mask;
    EXPECT_EQ(fileMode(dir + "/ca.key"), 0600) << "umask " << mask;
    struct stat st {};
    ASSERT_EQ(::stat((dir + "/ca.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, ::geteuid());
    // Nothing else left behind (no temporary files).
    EXPECT_EQ(test::listDir(dir), (std::vector<std::string>{"ca.crt", "ca.key"}));
    EXPECT_EQ(files->cert.path, dir + "/ca.crt");
    EXPECT_EQ(files->key_path, dir + "/ca.key");
  }
}

TEST(InitCaTest, KeyIsPkcs8PemAndCertIsPem) {
  TempDir tmp;
  auto files = initCa(tmp.path(), {});
  ASSERT_TRUE(files) << files.message();
  EXPECT_EQ(readFile(tmp / "ca.key").rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
  EXPECT_EQ(readFile(tmp / "ca.crt"), files->cert.pem);
  EXPECT_EQ(files->cert.pem.rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u);
}

TEST(InitCaTest, ExistingDirectoryKeepsItsMode) {
  TempDir tmp;
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0750), 0);
  ASSERT_TRUE(initCa(tmp.path(), {}));
  EXPECT_EQ(fileMode(tmp.path()), 0750);
}

TEST(InitCaTest, RefusesToOverwrite) {
  TempDir tmp;
  ASSERT_TRUE(initCa(tmp.path(), {}));
  const std::string cert = readFile(tmp / "ca.crt");
  const std::string key = readFile(tmp / "ca.key");
  auto again = initCa(tmp.path(), {});
  ASSERT_FALSE(again);
  EXPECT_NE(again.message().find("exists"), std::string::npos) << again.message();
  EXPECT_NE(again.message().find("tollgate ca rotate"), std::string::npos) << again.message();
  EXPECT_EQ(readFile(tmp / "ca.crt"), cert);
  EXPECT_EQ(readFile(tmp / "ca.key"), key);
  EXPECT_EQ(test::listDir(tmp.path()), (std::vector<std::string>{"ca.crt", "ca.key"}));
}

TEST(InitCaTest, RefusesWhenEitherFileExists) {
  for (const char* name : {"ca.crt", "ca.key"}) {
    TempDir tmp;
    test::writeFile(tmp / name, "placeholder", 0600);
    auto r = initCa(tmp.path(), {});
    ASSERT_FALSE(r) << name;
    EXPECT_NE(r.message().find(tmp / name), std::string::npos) << r.message();
    EXPECT_EQ(readFile(tmp / name), "placeholder");
    EXPECT_EQ(test::listDir(tmp.path()).size(), 1u) << name;
  }
}

TEST(InitCaTest, RefusesSymlinkAtKeyPath) {
  TempDir tmp;
  TempDir elsewhere;
  const std::string target = elsewhere / "stolen.key";
  // Dangling: following it would create the key where the link points.
  ASSERT_EQ(::symlink(target.c_str(), (tmp / "ca.key").c_str()), 0);
  auto r = initCa(tmp.path(), {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("symlink"), std::string::npos) << r.message();
  EXPECT_EQ(fileMode(target), -1) << "followed the symlink";
  // Pointing at an existing file: it must stay untouched.
  test::writeFile(target, "victim", 0644);
  r = initCa(tmp.path(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(readFile(target), "victim");
  EXPECT_EQ(test::listDir(tmp.path()), (std::vector<std::string>{"ca.key"}));
}

TEST(InitCaTest, RefusesDirectoryWritableByOthers) {
  TempDir tmp;
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0777), 0);
  auto r = initCa(tmp.path(), {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("chmod 700"), std::string::npos) << r.message();
  EXPECT_TRUE(test::listDir(tmp.path()).empty());
}

TEST(InitCaTest, MissingParentIsNamed) {
  TempDir tmp;
  auto r = initCa(tmp / "no/such", {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find(tmp / "no/such"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("parent"), std::string::npos) << r.message();
}

TEST(InitCaTest, RejectsBadOptionsBeforeTouchingDisk) {
  TempDir tmp;
  CaOptions days;
  days.validity_days = 0;
  CaOptions control;
  control.common_name = "bad\nname";
  CaOptions long_name;
  long_name.common_name = std::string(65, 'x');
  CaOptions wildcard;
  wildcard.permitted_dns = {"*.example.test"};
  for (const CaOptions& o : {days, control, long_name, wildcard}) {
    auto r = initCa(tmp / "ca", o);
    EXPECT_FALSE(r);
    EXPECT_EQ(fileMode(tmp / "ca"), -1) << r.message();
  }
}

TEST(InitCaTest, CertificateIsAProperCa) {
  TempDir tmp;
  const time_t now = ::time(nullptr);
  auto files = initCa(tmp.path(), {});
  ASSERT_TRUE(files) << files.message();
  X509Ptr x = test::parsePem(readFile(tmp / "ca.crt"));
  ASSERT_TRUE(x);

  EXPECT_EQ(X509_get_version(x.get()), X509_VERSION_3);
  EXPECT_EQ(X509_check_ca(x.get()), 1);
  // Self-signed: issuer == subject and the signature verifies with its key.
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(x.get()), X509_get_subject_name(x.get())), 0);
  EXPECT_EQ(X509_verify(x.get(), X509_get0_pubkey(x.get())), 1);
  EXPECT_EQ(X509_get_signature_nid(x.get()), NID_ecdsa_with_SHA256);
  EVP_PKEY* pub = X509_get0_pubkey(x.get());
  EXPECT_TRUE(EVP_PKEY_is_a(pub, "EC"));
  EXPECT_EQ(EVP_PKEY_get_bits(pub), 256);

  int crit = -1;
  CPtr<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free> bc(
      test::extension<BASIC_CONSTRAINTS>(x.get(), NID_basic_constraints, &crit));
  ASSERT_TRUE(bc);
  EXPECT_EQ(crit, 1);
  EXPECT_TRUE(bc->ca);
  ASSERT_NE(bc->pathlen, nullptr);
  EXPECT_EQ(ASN1_INTEGER_get(bc->pathlen), 0);

  CPtr<ASN1_BIT_STRING, ASN1_BIT_STRING_free> ku(
      test::extension<ASN1_BIT_STRING>(x.get(), NID_key_usage, &crit));
  ASSERT_TRUE(ku);
  EXPECT_EQ(crit, 1);
  EXPECT_EQ(X509_get_key_usage(x.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));

  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(x.get());
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(x.get());
  ASSERT_NE(ski, nullptr);
  ASSERT_NE(aki, nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(ski, aki), 0);
  EXPECT_EQ(X509_get_ext_by_NID(x.get(), NID_name_constraints, -1), -1);

  EXPECT_EQ(test::serialBits(x.get()), 128);

  EXPECT_NEAR(static_cast<double>(test::notBefore(x.get())), static_cast<double>(now - 3600), 5);
  EXPECT_NEAR(static_cast<double>(test::notAfter(x.get())),
              static_cast<double>(now + 3650L * 86400), 5);
  EXPECT_EQ(files->cert.not_after, test::notAfter(x.get()));

  // Default subject: "CN=tollgate sandbox CA <host> <date>", at most 64 bytes.
  EXPECT_EQ(files->cert.subject.rfind("CN=tollgate sandbox CA ", 0), 0u) << files->cert.subject;
  EXPECT_LE(files->cert.subject.size() - 3, 64u);
  // Fingerprint: 32 upper-case hex bytes joined by colons.
  EXPECT_EQ(files->cert.fingerprint_sha256.size(), 32u * 3 - 1);
  EXPECT_EQ(files->cert.fingerprint_sha256.find_first_not_of("0123456789ABCDEF:"),
            std::string::npos);
}

TEST(InitCaTest, SerialsDifferBetweenCas) {
  TempDir a;
  TempDir b;
  ASSERT_TRUE(initCa(a.path(), {}));
  ASSERT_TRUE(initCa(b.path(), {}));
  X509Ptr xa = test::parsePem(readFile(a / "ca.crt"));
  X509Ptr xb = test::parsePem(readFile(b / "ca.crt"));
  EXPECT_NE(test::serialHex(xa.get()), test::serialHex(xb.get()));
}

TEST(InitCaTest, NameAndDaysAreHonoured) {
  TempDir tmp;
  CaOptions o;
  o.common_name = "Acme sandboxes \xc3\xa9t\xc3\xa9";
  o.validity_days = 30;
  const time_t now = ::time(nullptr);
  auto files = initCa(tmp.path(), o);
  ASSERT_TRUE(files) << files.message();
  EXPECT_EQ(files->cert.subject, "CN=" + o.common_name);
  EXPECT_NEAR(static_cast<double>(files->cert.not_after), static_cast<double>(now + 30 * 86400), 5);
}

struct RsaCase {
  KeyType type;
  int bits;
};

class InitCaRsaTest : public testing::TestWithParam<RsaCase> {};

TEST_P(InitCaRsaTest, RsaKeysWork) {
  TempDir tmp;
  CaOptions o;
  o.key_type = GetParam().type;
  auto files = initCa(tmp.path(), o);
  ASSERT_TRUE(files) << files.message();
  EXPECT_EQ(files->key_type, GetParam().type);
  X509Ptr x = test::parsePem(readFile(tmp / "ca.crt"));
  ASSERT_TRUE(x);
  EXPECT_TRUE(EVP_PKEY_is_a(X509_get0_pubkey(x.get()), "RSA"));
  EXPECT_EQ(EVP_PKEY_get_bits(X509_get0_pubkey(x.get())), GetParam().bits);
  EXPECT_EQ(X509_get_signature_nid(x.get()), NID_sha256WithRSAEncryption);
  EXPECT_EQ(X509_check_ca(x.get()), 1);
  auto ca = Authority::loadDir(tmp.path());
  ASSERT_TRUE(ca) << ca.message();
  auto minter = LeafMinter::create(*ca);
  ASSERT_TRUE(minter) << minter.message();
  auto leaf = (*minter)->leafFor("rsa.example.test");
  ASSERT_TRUE(leaf) << leaf.message();
  EXPECT_EQ(test::verifyLeaf((*leaf)->cert(), {(*ca)->cert()}, {"rsa.example.test", ""}),
            X509_V_OK);
  EXPECT_EQ(X509_get_signature_nid((*leaf)->cert()), NID_sha256WithRSAEncryption);
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, InitCaRsaTest,
                         testing::Values(RsaCase{KeyType::kRsa2048, 2048},
                                         RsaCase{KeyType::kRsa3072, 3072}));

TEST(KeyTypeTest, NamesRoundTrip) {
  for (KeyType t : {KeyType::kEcdsaP256, KeyType::kRsa2048, KeyType::kRsa3072}) {
    EXPECT_EQ(parseKeyType(keyTypeName(t)), t);
  }
  EXPECT_EQ(parseKeyType("ecdsa-p384"), std::nullopt);
  EXPECT_EQ(parseKeyType(""), std::nullopt);
}

TEST(NameConstraintsTest, LeavesOutsideThePermittedNamesFail) {
  TempDir tmp;
  CaOptions o;
  o.permitted_dns = {"example.test", "other.test"};
  ASSERT_TRUE(initCa(tmp.path(), o));
  auto ca = Authority::loadDir(tmp.path());
  ASSERT_TRUE(ca) << ca.message();
  int crit = -1;
  CPtr<NAME_CONSTRAINTS, NAME_CONSTRAINTS_free> nc(
      test::extension<NAME_CONSTRAINTS>((*ca)->cert(), NID_name_constraints, &crit));
  ASSERT_TRUE(nc);
  EXPECT_EQ(crit, 1);
  EXPECT_EQ(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), 2);
  EXPECT_EQ(sk_GENERAL_SUBTREE_num(nc->excludedSubtrees), 2);

  auto minter = LeafMinter::create(*ca);
  ASSERT_TRUE(minter) << minter.message();
  auto verify = [&](const std::string& name, const test::VerifyTarget& t) {
    auto leaf = (*minter)->leafFor(name);
    EXPECT_TRUE(leaf) << leaf.message();
    return leaf ? test::verifyLeaf((*leaf)->cert(), {(*ca)->cert()}, t) : -1;
  };
  EXPECT_EQ(verify("example.test", {"example.test", ""}), X509_V_OK);
  EXPECT_EQ(verify("api.example.test", {"api.example.test", ""}), X509_V_OK);
  EXPECT_EQ(verify("x.other.test", {"x.other.test", ""}), X509_V_OK);
  EXPECT_EQ(verify("evil.test", {"evil.test", ""}), X509_V_ERR_PERMITTED_VIOLATION);
  EXPECT_EQ(verify("notexample.test", {"notexample.test", ""}), X509_V_ERR_PERMITTED_VIOLATION);
  EXPECT_NE(verify("192.0.2.7", {"", "192.0.2.7"}), X509_V_OK);
  EXPECT_NE(verify("2001:db8::7", {"", "2001:db8::7"}), X509_V_OK);
}

}  // namespace
}  // namespace tollgate::ca
