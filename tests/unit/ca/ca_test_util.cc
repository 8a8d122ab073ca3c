#include "ca_test_util.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tollgate::ca::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "tollgate-ca-test.XXXXXX").string();
  char* made = ::mkdtemp(tmpl.data());
  if (made == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int fileMode(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return -1;
  }
  return static_cast<int>(st.st_mode & 07777);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void writeFile(const std::string& path, const std::string& bytes, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(path)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

X509Ptr parsePem(const std::string& pem) {
  CPtr<BIO, BIO_free> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

std::string keyPem(EVP_PKEY* key) {
  CPtr<BIO, BIO_free> bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

int verifyLeaf(X509* leaf, const std::vector<X509*>& roots, const VerifyTarget& target) {
  CPtr<X509_STORE, X509_STORE_free> store(X509_STORE_new());
  for (X509* r : roots) {
    X509_STORE_add_cert(store.get(), r);  // store takes its own reference
  }
  CPtr<X509_STORE_CTX, X509_STORE_CTX_free> ctx(X509_STORE_CTX_new());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr) != 1) {
    return -1;
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());  // get0: owned by ctx
  if (!target.host.empty()) {
    X509_VERIFY_PARAM_set1_host(param, target.host.c_str(), target.host.size());
  }
  if (!target.ip.empty()) {
    X509_VERIFY_PARAM_set1_ip_asc(param, target.ip.c_str());
  }
  int rc = X509_verify_cert(ctx.get());
  int err = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  if (rc == 1) {
    return X509_V_OK;
  }
  return err == X509_V_OK ? -1 : err;
}

int serialBits(X509* x) {
  CPtr<BIGNUM, BN_free> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr));
  if (!bn || BN_is_negative(bn.get())) {
    return -1;
  }
  return BN_num_bits(bn.get());
}

std::string serialHex(X509* x) {
  CPtr<BIGNUM, BN_free> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr));
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex;
  OPENSSL_free(hex);
  return out;
}

namespace {
time_t toTime(const ASN1_TIME* t) {
  struct tm tm {};
  ASN1_TIME_to_tm(t, &tm);
  return timegm(&tm);
}
}  // namespace

time_t notBefore(X509* x) { return toTime(X509_get0_notBefore(x)); }
time_t notAfter(X509* x) { return toTime(X509_get0_notAfter(x)); }

}  // namespace tollgate::ca::test
