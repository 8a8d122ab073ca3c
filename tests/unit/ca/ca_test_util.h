// Helpers for the ca/ unit tests: throw-away directories, file facts, and
// chain verification with the OpenSSL verifier.
#pragma once

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "ca/ca.h"

namespace tollgate::ca::test {

// mkdtemp'd directory, removed recursively on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Permission bits (07777) of `path` (lstat), or -1 if it does not exist.
int fileMode(const std::string& path);
std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& bytes, mode_t mode);
// Names in a directory, sorted, without "." and "..".
std::vector<std::string> listDir(const std::string& path);

X509Ptr parsePem(const std::string& pem);
std::string keyPem(EVP_PKEY* key);

struct VerifyTarget {
  std::string host;  // X509_VERIFY_PARAM_set1_host when non-empty
  std::string ip;    // X509_VERIFY_PARAM_set1_ip_asc when non-empty
};
// X509_verify_cert of `leaf` against `roots` as trust anchors, purpose
// sslserver. Returns X509_V_OK or the verification error.
int verifyLeaf(X509* leaf, const std::vector<X509*>& roots, const VerifyTarget& target);

// The value of one extension, decoded (X509_get_ext_d2i); `critical` set to
// -1 when absent.
template <typename T>
T* extension(X509* x, int nid, int* critical) {
  return static_cast<T*>(X509_get_ext_d2i(x, nid, critical, nullptr));
}

// Bits of the (positive) serial, or -1 when negative.
int serialBits(X509* x);
std::string serialHex(X509* x);
time_t notBefore(X509* x);
time_t notAfter(X509* x);

}  // namespace tollgate::ca::test
