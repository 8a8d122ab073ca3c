// ca: tollgate's certificate authority for MITM flows. Creates, rotates and
// loads the CA kept on disk, and mints per-host leaf certificates from it.
// The only header other modules include from ca/.
//
// Files in a CA directory (DESIGN.md "CLI"):
//   ca.crt       0644  the CA certificate: what sandboxes trust
//   ca.key       0600  its private key, PEM PKCS#8; never leaves the host
//   ca.prev.crt  0644  the CA replaced by the last `rotateCa`, trusted during
//   ca.prev.key  0600  the overlap, then removed by the operator
#pragma once

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/handles.h"
#include "base/result.h"

namespace tollgate::ca {

inline constexpr const char* kCertFile = "ca.crt";
inline constexpr const char* kKeyFile = "ca.key";
inline constexpr const char* kPrevCertFile = "ca.prev.crt";
inline constexpr const char* kPrevKeyFile = "ca.prev.key";

enum class KeyType { kEcdsaP256, kRsa2048, kRsa3072 };

// "ecdsa-p256", "rsa-2048", "rsa-3072" (the CLI's --key-type values).
std::string_view keyTypeName(KeyType type);
std::optional<KeyType> parseKeyType(std::string_view name);

struct CaOptions {
  KeyType key_type = KeyType::kEcdsaP256;
  int validity_days = 3650;  // 1..36500; notBefore is backdated 1 h for clock skew
  // Subject CN, 1-64 bytes of UTF-8 without control characters. Empty:
  // "tollgate sandbox CA <hostname> <YYYY-MM-DD>".
  std::string common_name;
  // Non-empty: a critical nameConstraints extension permitting only these DNS
  // names and their subdomains (normalised names: lower-case LDH labels, no
  // wildcard, no trailing dot) and excluding every IP address, so a leaked
  // key cannot impersonate anything else to a client that honours it.
  std::vector<std::string> permitted_dns;
  time_t now = 0;  // test seam: issue as if the clock read this; 0 = time(nullptr)
};

struct CertInfo {
  std::string path;                // file it was read from or written to
  std::string subject;             // RFC 2253, e.g. "CN=tollgate sandbox CA host 2025-01-31"
  std::string fingerprint_sha256;  // "AB:01:..." as `openssl x509 -noout -fingerprint -sha256`
  time_t not_before = 0;
  time_t not_after = 0;
  std::string pem;  // "-----BEGIN CERTIFICATE-----\n..."
};

struct CaFiles {
  CertInfo cert;  // DIR/ca.crt
  std::string key_path;
  KeyType key_type = KeyType::kEcdsaP256;
  std::optional<CertInfo> prev;  // rotateCa only: the CA now in DIR/ca.prev.crt
  std::string prev_key_path;     // rotateCa only
};

// Creates DIR (0700) if missing and writes a new self-signed CA into it:
// X.509 v3, random 128-bit serial, basicConstraints critical CA:TRUE
// pathlen:0, keyUsage critical keyCertSign+cRLSign, SKI, AKI and, when asked
// for, nameConstraints. The key file is 0600 from its first byte (temp file
// created O_EXCL|O_NOFOLLOW in DIR, fsync'd, then linked into place without
// ever replacing a name), and DIR is fsync'd after both files are in place.
// Fails (and changes nothing) when ca.crt or ca.key exists, even as a
// dangling symlink, or when DIR is writable by others.
Result<CaFiles> initCa(const std::string& dir, const CaOptions& options);

// Replaces the CA in DIR: ca.crt/ca.key (which must exist) become
// ca.prev.crt/ca.prev.key, replacing an older prev pair, and a new CA is
// written as by initCa from `options` alone (nothing, not even
// nameConstraints, is carried over from the old CA; a default subject gets
// the time of day when it would repeat the old one). The old CA is not loaded
// or checked, so an expired or broken one can be rotated away. Overlap: put ca.crt and ca.prev.crt
// in the sandboxes' trust bundle, restart tollgate so leaves come from the new CA, and once every
// sandbox trusts the new one remove ca.prev.* everywhere.
Result<CaFiles> rotateCa(const std::string& dir, const CaOptions& options);

// A loaded CA: certificate plus private key, immutable after load and safe to
// share between threads (every accessor is const and returns a borrowed
// pointer valid while the Authority lives).
class Authority {
 public:
  // Loads a CA. Refuses (message names the file and the fix):
  // - a key file that is not a regular file, is group/world accessible
  //   (mode & 077) or is not owned by the effective uid;
  // - a key that is not RSA >= 2048 bits or EC >= 256 bits, or that does not
  //   match the certificate;
  // - a certificate that is not a CA (X509_check_ca != 1, or keyUsage lacks
  //   keyCertSign), is expired or not yet valid.
  // `prev_cert_path`, if non-empty and the file exists, is read as the
  // previous CA (informational: for status output; nothing is minted from it).
  static Result<std::shared_ptr<const Authority>> load(const std::string& cert_path,
                                                       const std::string& key_path,
                                                       const std::string& prev_cert_path = "");
  // load(DIR/ca.crt, DIR/ca.key, DIR/ca.prev.crt).
  static Result<std::shared_ptr<const Authority>> loadDir(const std::string& dir);

  Authority(const Authority&) = delete;
  Authority& operator=(const Authority&) = delete;
  Authority(Authority&&) = default;
  Authority& operator=(Authority&&) = default;
  ~Authority() = default;

  // get0: owned by this Authority. Callers that keep it longer take their own
  // reference (X509_up_ref; SSL_add1_chain_cert does that itself).
  X509* cert() const { return cert_.get(); }
  const CertInfo& info() const { return info_; }
  const std::string& fingerprintSha256() const { return info_.fingerprint_sha256; }
  time_t notAfter() const { return info_.not_after; }
  const std::string& subject() const { return info_.subject; }
  const std::string& certPem() const { return info_.pem; }

  // The previous CA (ca.prev.crt) when one was loaded; null/nullopt otherwise.
  X509* prevCert() const { return prev_cert_.get(); }
  const std::optional<CertInfo>& prevInfo() const { return prev_info_; }

 private:
  friend class LeafMinter;
  Authority() = default;
  // get0: the CA private key; only LeafMinter signs with it.
  EVP_PKEY* key() const { return key_.get(); }

  X509Ptr cert_;
  PkeyPtr key_;
  CertInfo info_;
  X509Ptr prev_cert_;
  std::optional<CertInfo> prev_info_;
};

// One minted leaf: certificate, the minter's shared key pair and the CA for
// the chain. Immutable and safe to share between threads; it keeps what it
// points to alive, so it may outlive the LeafMinter that made it.
class Leaf {
 public:
  // get0 accessors, valid while this Leaf lives. SSL_use_certificate,
  // SSL_use_PrivateKey and SSL_add1_chain_cert each take their own reference,
  // so an SSL configured from a Leaf does not need the Leaf afterwards.
  X509* cert() const { return cert_.get(); }
  EVP_PKEY* key() const { return key_.get(); }
  X509* caCert() const { return ca_->cert(); }

  const std::string& name() const { return name_; }
  time_t notBefore() const { return not_before_; }
  time_t notAfter() const { return not_after_; }
  // When the cache stops serving it: once less than 1/4 of the lifetime it
  // had when minted (mint time to notAfter) remains.
  time_t refreshAt() const { return refresh_at_; }

  // Makes `ssl` (a server-side SSL, before the handshake) present this leaf:
  // SSL_use_certificate + SSL_use_PrivateKey, then the CA as the only chain
  // certificate (any chain already set on `ssl` is replaced). The SSL takes
  // its own references. On failure the OpenSSL error queue is drained into
  // the message.
  Result<void> useOn(SSL* ssl) const;

 private:
  friend class LeafMinter;
  Leaf(std::string name, X509Ptr cert, std::shared_ptr<EVP_PKEY> key,
       std::shared_ptr<const Authority> ca, time_t not_before, time_t not_after, time_t refresh_at);

  std::string name_;
  X509Ptr cert_;                         // owned
  std::shared_ptr<EVP_PKEY> key_;        // shared by every leaf of one minter
  std::shared_ptr<const Authority> ca_;  // issuer, sent as the chain
  time_t not_before_;
  time_t not_after_;
  time_t refresh_at_;
};

struct LeafOptions {
  KeyType key_type = KeyType::kEcdsaP256;   // of the one key pair all leaves share
  std::chrono::seconds ttl{7 * 24 * 3600};  // notAfter - now; clamped to the CA's notAfter
  size_t max_entries = 10000;               // cache cap (>= 1); least recently used goes first
  std::function<time_t()> clock;            // test seam; empty = time(nullptr)
};

struct LeafStats {
  uint64_t hits = 0;       // served from the cache (including waits on another thread's mint)
  uint64_t coalesced = 0;  // of the hits: waited for a mint already in flight
  uint64_t misses = 0;     // no fresh leaf cached: this request minted
  uint64_t mints = 0;      // leaves minted successfully
  uint64_t mint_failures = 0;
  uint64_t evictions = 0;  // removed by the size cap
  size_t entries = 0;      // names currently cached
};

// Mints leaf certificates for MITM: one per normalised host name or IP
// literal, signed by the Authority, cached. Thread-safe: leafFor may be called
// from any number of threads; concurrent first requests for one name mint
// once and the others wait for that result. Minting runs outside the cache
// lock, so different names mint in parallel.
class LeafMinter {
 public:
  // Generates the leaf key pair. Fails on bad options (ttl <= 0,
  // max_entries == 0) or if key generation fails.
  static Result<std::unique_ptr<LeafMinter>> create(std::shared_ptr<const Authority> ca,
                                                    LeafOptions options = {});
  ~LeafMinter();
  LeafMinter(const LeafMinter&) = delete;
  LeafMinter& operator=(const LeafMinter&) = delete;

  // A leaf for `name`: a lower-case ASCII DNS name (A-labels, no trailing
  // dot, 1-253 bytes) -> SAN DNS:name, or a canonical IPv4/IPv6 literal (no
  // brackets) -> SAN IP:addr. Subject CN = name (first 64 bytes). Validity:
  // now - 1 h .. now + ttl, within the CA's own validity. A cached leaf is
  // returned while it has more than 1/4 of its lifetime left; after that the
  // next request re-mints (other threads keep getting the old one meanwhile).
  // Fails for a name that is not in that form, when the CA has expired, or
  // when OpenSSL fails (the failure is not cached: the next call retries).
  // Synchronous: a miss blocks the caller for one signature by the CA key
  // (tens of microseconds for ECDSA P-256, milliseconds for RSA), and a
  // request racing a first mint of the same name blocks until it is done.
  Result<std::shared_ptr<const Leaf>> leafFor(const std::string& name);

  LeafStats stats() const;
  const Authority& authority() const { return *ca_; }

 private:
  struct Cache;
  struct Templates;
  LeafMinter(std::shared_ptr<const Authority> ca, LeafOptions options,
             std::shared_ptr<EVP_PKEY> key, std::unique_ptr<Templates> templates);
  time_t now() const;
  // `ip` is the 4/16-byte address for an IP literal, empty for a DNS name.
  Result<std::shared_ptr<const Leaf>> mint(const std::string& name, const std::string& ip) const;

  std::shared_ptr<const Authority> ca_;
  LeafOptions options_;
  std::shared_ptr<EVP_PKEY> key_;
  std::unique_ptr<Templates> templates_;  // extensions shared by every leaf
  std::unique_ptr<Cache> cache_;
};

}  // namespace tollgate::ca
