// tollgate: internal to ca/
// Internal to ca/: OpenSSL helpers shared by CA creation, loading and leaf
// minting. Every function leaves the OpenSSL error queue empty on return.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <string>
#include <string_view>

#include "base/handles.h"
#include "base/result.h"
#include "ca/ca.h"

namespace tollgate::ca::detail {

inline constexpr time_t kBackdate = 3600;     // notBefore = now - this: clients a little behind
inline constexpr size_t kMaxCommonName = 64;  // RFC 5280 ub-common-name

// Drains the OpenSSL error queue of this thread into one line.
std::string drainErrors();
// "what (OpenSSL: ...)"; drains the queue.
Error sslError(std::string_view what);

Result<PkeyPtr> generateKey(KeyType type);

// A legacy (EC_KEY / RSA backed) EVP_PKEY holding the same key as `key`, or
// null when OpenSSL cannot make one. Why: OpenSSL 3.0 runs X509_set_pubkey
// for a provider-native key through its generic encoder, ~170-300 us per call
// and most of a leaf mint; a legacy key takes the ASN.1 method path (~5 us).
// Use it only to fill in certificates' SubjectPublicKeyInfo; TLS keeps
// signing with the provider-native key.
PkeyPtr legacyCopy(EVP_PKEY* key);

// Random positive serial of exactly 128 bits (top bit set, so 17 DER content
// bytes at most; RFC 5280 allows 20).
Result<void> setRandomSerial(X509* x);

Result<void> setValidity(X509* x, time_t not_before, time_t not_after);

// X509V3_EXT_conf_nid for a fixed, trusted `value` (never untrusted text:
// the config syntax has its own escaping rules).
Result<ExtensionPtr> confExtension(X509V3_CTX* ctx, int nid, const char* value);
Result<void> addConfExtension(X509* x, X509V3_CTX* ctx, int nid, const char* value);

Result<time_t> toTimeT(const ASN1_TIME* t);

// Subject (RFC 2253), SHA-256 fingerprint, validity and PEM of `x`.
Result<CertInfo> describe(X509* x, std::string path);

// Parses one PEM certificate.
Result<X509Ptr> parseCertPem(std::string_view pem, const std::string& what);

// Reads a whole file of at most `max_len` bytes. Does not check ownership.
Result<std::string> readSmallFile(const std::string& path, size_t max_len);

// Reads and parses a PEM certificate file.
Result<X509Ptr> readCertFile(const std::string& path);

// Whether `name` is a normalised DNS name: lower-case LDH labels of 1-63
// bytes, not starting or ending with '-', 1-253 bytes in total, no trailing
// dot, last label neither all digits nor a 0x hex number. Does not accept
// IP literals.
bool isNormalizedDnsName(std::string_view name);

// The 4- or 16-byte address of a canonical IPv4/IPv6 literal (exactly what
// inet_ntop prints), or empty if `text` is not one.
std::string canonicalIpBytes(const std::string& text);

}  // namespace tollgate::ca::detail
