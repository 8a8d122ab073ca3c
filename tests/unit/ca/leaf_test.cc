// LeafMinter: what a minted leaf contains and that it verifies only for its
// own name; Leaf::useOn on an SSL.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <set>
#include <vector>

#include "ca/ca.h"
#include "ca_test_util.h"

namespace tollgate::ca {
namespace {

using test::TempDir;
using test::VerifyTarget;

class LeafTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(initCa(dir_.path(), {}));
    auto ca = Authority::loadDir(dir_.path());
    ASSERT_TRUE(ca) << ca.message();
    ca_ = *ca;
    auto minter = LeafMinter::create(ca_);
    ASSERT_TRUE(minter) << minter.message();
    minter_ = std::move(*minter);
  }

  std::shared_ptr<const Leaf> leaf(const std::string& name) {
    auto l = minter_->leafFor(name);
    EXPECT_TRUE(l) << l.message();
    return l ? *l : nullptr;
  }
  int verify(const Leaf& l, const VerifyTarget& t) {
    return test::verifyLeaf(l.cert(), {ca_->cert()}, t);
  }

  TempDir dir_;
  std::shared_ptr<const Authority> ca_;
  std::unique_ptr<LeafMinter> minter_;
};

TEST_F(LeafTest, VerifiesForItsNameOnly) {
  auto l = leaf("api.example.test");
  ASSERT_TRUE(l);
  EXPECT_EQ(verify(*l, {"api.example.test", ""}), X509_V_OK);
  EXPECT_EQ(verify(*l, {"API.Example.Test", ""}), X509_V_OK);  // host checks ignore case
  EXPECT_EQ(verify(*l, {"other.example.test", ""}), X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_EQ(verify(*l, {"example.test", ""}), X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_EQ(verify(*l, {"x.api.example.test", ""}), X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_EQ(verify(*l, {"", "192.0.2.1"}), X509_V_ERR_IP_ADDRESS_MISMATCH);
  // A different CA does not vouch for it.
  TempDir other;
  ASSERT_TRUE(initCa(other.path(), {}));
  auto other_ca = Authority::loadDir(other.path());
  ASSERT_TRUE(other_ca);
  EXPECT_NE(test::verifyLeaf(l->cert(), {(*other_ca)->cert()}, {"api.example.test", ""}),
            X509_V_OK);
}

TEST_F(LeafTest, IpLiteralsGetIpSans) {
  for (const std::string ip : {"192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"}) {
    auto l = leaf(ip);
    ASSERT_TRUE(l) << ip;
    EXPECT_EQ(verify(*l, {"", ip}), X509_V_OK) << ip;
    EXPECT_EQ(verify(*l, {"", "192.0.2.2"}), X509_V_ERR_IP_ADDRESS_MISMATCH) << ip;
    // No dNSName in the SAN: a host-name check falls back to the CN (the same
    // text), so only other names fail.
    EXPECT_EQ(verify(*l, {"ip.example.test", ""}), X509_V_ERR_HOSTNAME_MISMATCH) << ip;
    CPtr<GENERAL_NAMES, GENERAL_NAMES_free> san(
        test::extension<GENERAL_NAMES>(l->cert(), NID_subject_alt_name, nullptr));
    ASSERT_TRUE(san);
    ASSERT_EQ(sk_GENERAL_NAME_num(san.get()), 1);
    EXPECT_EQ(sk_GENERAL_NAME_value(san.get(), 0)->type, GEN_IPADD);
  }
}

TEST_F(LeafTest, HasTheSpecifiedContents) {
  const time_t now = ::time(nullptr);
  auto l = leaf("api.example.test");
  ASSERT_TRUE(l);
  X509* x = l->cert();
  EXPECT_EQ(X509_get_version(x), X509_VERSION_3);
  EXPECT_EQ(X509_check_ca(x), 0);
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca_->cert())), 0);
  EXPECT_EQ(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
  EXPECT_TRUE(EVP_PKEY_is_a(l->key(), "EC"));
  EXPECT_EQ(EVP_PKEY_get_bits(l->key()), 256);
  EXPECT_EQ(X509_check_private_key(x, l->key()), 1);
  EXPECT_EQ(l->caCert(), ca_->cert());
  EXPECT_EQ(l->name(), "api.example.test");

  // Subject: exactly CN=name.
  X509_NAME* subject = X509_get_subject_name(x);
  ASSERT_EQ(X509_NAME_entry_count(subject), 1);
  char cn[256] = {};
  ASSERT_GT(X509_NAME_get_text_by_NID(subject, NID_commonName, cn, sizeof cn), 0);
  EXPECT_STREQ(cn, "api.example.test");

  int crit = -1;
  CPtr<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free> bc(
      test::extension<BASIC_CONSTRAINTS>(x, NID_basic_constraints, &crit));
  ASSERT_TRUE(bc);
  EXPECT_EQ(crit, 1);
  EXPECT_FALSE(bc->ca);
  EXPECT_EQ(bc->pathlen, nullptr);

  CPtr<ASN1_BIT_STRING, ASN1_BIT_STRING_free> ku(
      test::extension<ASN1_BIT_STRING>(x, NID_key_usage, &crit));
  ASSERT_TRUE(ku);
  EXPECT_EQ(crit, 1);
  EXPECT_EQ(X509_get_key_usage(x), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));

  CPtr<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free> eku(
      test::extension<EXTENDED_KEY_USAGE>(x, NID_ext_key_usage, &crit));
  ASSERT_TRUE(eku);
  EXPECT_EQ(crit, 0);
  ASSERT_EQ(sk_ASN1_OBJECT_num(eku.get()), 1);
  EXPECT_EQ(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), 0)), NID_server_auth);

  CPtr<GENERAL_NAMES, GENERAL_NAMES_free> san(
      test::extension<GENERAL_NAMES>(x, NID_subject_alt_name, &crit));
  ASSERT_TRUE(san);
  ASSERT_EQ(sk_GENERAL_NAME_num(san.get()), 1);
  const GENERAL_NAME* gn = sk_GENERAL_NAME_value(san.get(), 0);
  ASSERT_EQ(gn->type, GEN_DNS);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                        static_cast<size_t>(ASN1_STRING_length(gn->d.dNSName))),
            "api.example.test");

  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(x);
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(x);
  ASSERT_NE(ski, nullptr);
  ASSERT_NE(aki, nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(ca_->cert())), 0);
  EXPECT_NE(ASN1_OCTET_STRING_cmp(ski, aki), 0);

  EXPECT_EQ(test::serialBits(x), 128);
  EXPECT_NEAR(static_cast<double>(test::notBefore(x)), static_cast<double>(now - 3600), 5);
  EXPECT_NEAR(static_cast<double>(test::notAfter(x)), static_cast<double>(now + 7 * 86400), 5);
  EXPECT_EQ(l->notBefore(), test::notBefore(x));
  EXPECT_EQ(l->notAfter(), test::notAfter(x));
  EXPECT_NEAR(static_cast<double>(l->refreshAt()),
              static_cast<double>(l->notAfter() - 7 * 86400 / 4), 5);
}

TEST_F(LeafTest, SerialsDifferAndTheKeyIsShared) {
  std::set<std::string> serials;
  std::set<EVP_PKEY*> keys;
  for (int i = 0; i < 32; ++i) {
    auto l = leaf("host" + std::to_string(i) + ".example.test");
    ASSERT_TRUE(l);
    serials.insert(test::serialHex(l->cert()));
    keys.insert(l->key());
  }
  EXPECT_EQ(serials.size(), 32u);
  EXPECT_EQ(keys.size(), 1u);
}

TEST_F(LeafTest, LongNamesKeepTheFullSanAndATruncatedCn) {
  // 63 + 1 + 63 + 1 + 10 = 138 bytes.
  const std::string name = std::string(63, 'a') + "." + std::string(63, 'b') + ".example.t";
  auto l = leaf(name);
  ASSERT_TRUE(l);
  char cn[256] = {};
  ASSERT_EQ(
      X509_NAME_get_text_by_NID(X509_get_subject_name(l->cert()), NID_commonName, cn, sizeof cn),
      64);
  EXPECT_EQ(std::string(cn), name.substr(0, 64));
  EXPECT_EQ(verify(*l, {name, ""}), X509_V_OK);
}

TEST_F(LeafTest, RejectsNamesThatAreNotNormalised) {
  const std::vector<std::string> bad_names = {"",
                                              "API.example.test",
                                              "example.test.",
                                              ".example.test",
                                              "a..b",
                                              "*.example.test",
                                              "exa mple.test",
                                              "under_score.test",
                                              "-lead.test",
                                              "trail-.test",
                                              "1.2.3.04",
                                              "10.0x7f",
                                              "[::1]",
                                              "2001:DB8::1",
                                              "2001:db8:0::1",
                                              "::ffff:c000:201",
                                              std::string("nul\0x", 5),
                                              "b\xc3\xbc"
                                              "cher.test",
                                              std::string(64, 'a') + ".test",
                                              std::string(254, 'a')};
  for (const std::string& bad : bad_names) {
    auto l = minter_->leafFor(bad);
    EXPECT_FALSE(l) << "accepted: " << bad;
  }
  EXPECT_EQ(minter_->stats().entries, 0u);
  EXPECT_EQ(minter_->stats().misses, 0u);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_F(LeafTest, TtlIsClampedToTheCaExpiry) {
  TempDir short_dir;
  CaOptions o;
  o.validity_days = 2;
  ASSERT_TRUE(initCa(short_dir.path(), o));
  auto ca = Authority::loadDir(short_dir.path());
  ASSERT_TRUE(ca);
  auto minter = LeafMinter::create(*ca);  // default TTL 7 days > 2 days
  ASSERT_TRUE(minter);
  auto l = (*minter)->leafFor("api.example.test");
  ASSERT_TRUE(l) << l.message();
  EXPECT_EQ((*l)->notAfter(), (*ca)->notAfter());
  EXPECT_EQ(test::verifyLeaf((*l)->cert(), {(*ca)->cert()}, {"api.example.test", ""}), X509_V_OK);
}

TEST_F(LeafTest, RsaLeavesAddKeyEncipherment) {
  LeafOptions o;
  o.key_type = KeyType::kRsa2048;
  auto minter = LeafMinter::create(ca_, o);
  ASSERT_TRUE(minter) << minter.message();
  auto l = (*minter)->leafFor("rsa.example.test");
  ASSERT_TRUE(l) << l.message();
  EXPECT_TRUE(EVP_PKEY_is_a((*l)->key(), "RSA"));
  EXPECT_EQ(EVP_PKEY_get_bits((*l)->key()), 2048);
  EXPECT_EQ(X509_get_key_usage((*l)->cert()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
  // Still signed by the ECDSA CA.
  EXPECT_EQ(X509_get_signature_nid((*l)->cert()), NID_ecdsa_with_SHA256);
  EXPECT_EQ(test::verifyLeaf((*l)->cert(), {ca_->cert()}, {"rsa.example.test", ""}), X509_V_OK);
}

TEST_F(LeafTest, BadOptionsAreRefused) {
  LeafOptions zero_ttl;
  zero_ttl.ttl = std::chrono::seconds(0);
  EXPECT_FALSE(LeafMinter::create(ca_, zero_ttl));
  LeafOptions no_cache;
  no_cache.max_entries = 0;
  EXPECT_FALSE(LeafMinter::create(ca_, no_cache));
  EXPECT_FALSE(LeafMinter::create(nullptr));
}

TEST_F(LeafTest, UseOnSetsCertKeyAndChain) {
  auto l = leaf("api.example.test");
  ASSERT_TRUE(l);
  CPtr<SSL_CTX, SSL_CTX_free> ctx(SSL_CTX_new(TLS_server_method()));
  ASSERT_TRUE(ctx);
  CPtr<SSL, SSL_free> ssl(SSL_new(ctx.get()));
  ASSERT_TRUE(ssl);
  auto r = l->useOn(ssl.get());
  ASSERT_TRUE(r) << r.message();
  EXPECT_EQ(SSL_get_certificate(ssl.get()), l->cert());
  EXPECT_EQ(SSL_get_privatekey(ssl.get()), l->key());
  EXPECT_EQ(SSL_check_private_key(ssl.get()), 1);
  STACK_OF(X509)* chain = nullptr;
  ASSERT_EQ(SSL_get0_chain_certs(ssl.get(), &chain), 1);
  ASSERT_NE(chain, nullptr);
  ASSERT_EQ(sk_X509_num(chain), 1);
  EXPECT_EQ(sk_X509_value(chain, 0), ca_->cert());
  // Applying it again (or another leaf) does not grow the chain.
  auto other = leaf("other.example.test");
  ASSERT_TRUE(other && other->useOn(ssl.get()));
  ASSERT_EQ(SSL_get0_chain_certs(ssl.get(), &chain), 1);
  EXPECT_EQ(sk_X509_num(chain), 1);
  EXPECT_EQ(SSL_get_certificate(ssl.get()), other->cert());
  // The SSL holds its own references: it outlives the Leaf.
  l.reset();
  other.reset();
  minter_.reset();
  EXPECT_EQ(SSL_check_private_key(ssl.get()), 1);
}

TEST_F(LeafTest, LeavesOutliveTheMinterAndAuthority) {
  auto l = leaf("api.example.test");
  ASSERT_TRUE(l);
  X509* ca_cert = ca_->cert();
  minter_.reset();
  ca_.reset();
  EXPECT_EQ(l->caCert(), ca_cert);
  EXPECT_EQ(test::verifyLeaf(l->cert(), {l->caCert()}, {"api.example.test", ""}), X509_V_OK);
}

}  // namespace
}  // namespace tollgate::ca
