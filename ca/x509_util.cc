#include "ca/x509_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tollgate::ca::detail {

std::string drainErrors() {
  std::string out;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    std::array<char, 256> buf{};
    ERR_error_string_n(e, buf.data(), buf.size());
    if (!out.empty()) {
      out += "; ";
    }
    out += buf.data();
  }
  return out.empty() ? "no detail" : out;
}

Error sslError(std::string_view what) {
  return makeError(std::string(what) + " (OpenSSL: " + drainErrors() + ")");
}

Result<PkeyPtr> generateKey(KeyType type) {
  EVP_PKEY* raw = nullptr;
  switch (type) {
    case KeyType::kEcdsaP256:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyType::kRsa2048:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
      break;
    case KeyType::kRsa3072:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(3072));
      break;
  }
  PkeyPtr key(raw);  // owns the new key
  if (!key) {
    return sslError("generating a " + std::string(keyTypeName(type)) + " key failed");
  }
  return key;
}

PkeyPtr legacyCopy(EVP_PKEY* key) {
  PkeyPtr out(EVP_PKEY_new());
  if (!out) {
    ERR_clear_error();
    return nullptr;
  }
  bool ok = false;
  // These EC_KEY/RSA calls are deprecated in 3.0 but still the only way to a
  // legacy EVP_PKEY; see the header for why it is worth it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  if (EVP_PKEY_is_a(key, "EC")) {
    EC_KEY* ec = EVP_PKEY_get1_EC_KEY(key);                            // a reference we own
    ok = ec != nullptr && EVP_PKEY_assign_EC_KEY(out.get(), ec) == 1;  // out owns ec
    if (!ok) {
      EC_KEY_free(ec);
    }
  } else if (EVP_PKEY_is_a(key, "RSA")) {
    RSA* rsa = EVP_PKEY_get1_RSA(key);                                // a reference we own
    ok = rsa != nullptr && EVP_PKEY_assign_RSA(out.get(), rsa) == 1;  // out owns rsa
    if (!ok) {
      RSA_free(rsa);
    }
  }
#pragma GCC diagnostic pop
  ERR_clear_error();
  return ok ? std::move(out) : nullptr;
}

Result<void> setRandomSerial(X509* x) {
  BnPtr bn(BN_new());
  // BN_RAND_TOP_ONE: the top bit is set, so the serial is exactly 128 bits,
  // never zero, and positive (BIGNUMs from BN_rand are non-negative).
  if (!bn || BN_rand(bn.get(), 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1) {
    return sslError("generating a random serial number failed");
  }
  // X509_get_serialNumber is get0 (owned by x); BN_to_ASN1_INTEGER writes
  // into it in place.
  if (BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x)) == nullptr) {
    return sslError("setting the serial number failed");
  }
  return {};
}

Result<void> setValidity(X509* x, time_t not_before, time_t not_after) {
  // X509_getm_notBefore/After are get0 (owned by x), set in place.
  if (ASN1_TIME_set(X509_getm_notBefore(x), not_before) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(x), not_after) == nullptr) {
    return sslError("setting the validity period failed");
  }
  return {};
}

Result<ExtensionPtr> confExtension(X509V3_CTX* ctx, int nid, const char* value) {
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));  // owned by us
  if (!ext) {
    return sslError(std::string("building the ") + OBJ_nid2sn(nid) + " extension failed");
  }
  return ext;
}

Result<void> addConfExtension(X509* x, X509V3_CTX* ctx, int nid, const char* value) {
  auto ext = confExtension(ctx, nid, value);
  if (!ext) {
    return ext.error();
  }
  // X509_add_ext copies the extension; ours is freed by ExtensionPtr.
  if (X509_add_ext(x, ext->get(), -1) != 1) {
    return sslError(std::string("adding the ") + OBJ_nid2sn(nid) + " extension failed");
  }
  return {};
}

Result<time_t> toTimeT(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return sslError("unreadable certificate time");
  }
  return timegm(&tm);
}

namespace {

Result<std::string> bioString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // get0: owned by the BIO
  if (len < 0 || (len > 0 && data == nullptr)) {
    return sslError("reading a memory BIO failed");
  }
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

Result<CertInfo> describe(X509* x, std::string path) {
  CertInfo info;
  info.path = std::move(path);

  BioPtr subject(BIO_new(BIO_s_mem()));
  // RFC 2253 order and escaping, but UTF-8 kept as is rather than \XX.
  if (!subject || X509_NAME_print_ex(subject.get(), X509_get_subject_name(x), 0,
                                     XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    return sslError("printing the certificate subject failed");
  }
  auto s = bioString(subject.get());
  if (!s) {
    return s.error();
  }
  info.subject = std::move(*s);

  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int md_len = 0;
  if (X509_digest(x, EVP_sha256(), md.data(), &md_len) != 1) {
    return sslError("computing the certificate fingerprint failed");
  }
  for (unsigned int i = 0; i < md_len; ++i) {
    std::array<char, 4> hex{};
    std::snprintf(hex.data(), hex.size(), "%02X", md[i]);
    if (i != 0) {
      info.fingerprint_sha256 += ':';
    }
    info.fingerprint_sha256 += hex.data();
  }

  auto nb = toTimeT(X509_get0_notBefore(x));
  auto na = toTimeT(X509_get0_notAfter(x));
  if (!nb || !na) {
    return (!nb ? nb : na).error();
  }
  info.not_before = *nb;
  info.not_after = *na;

  BioPtr pem(BIO_new(BIO_s_mem()));
  if (!pem || PEM_write_bio_X509(pem.get(), x) != 1) {
    return sslError("encoding the certificate as PEM failed");
  }
  auto p = bioString(pem.get());
  if (!p) {
    return p.error();
  }
  info.pem = std::move(*p);
  return info;
}

Result<X509Ptr> parseCertPem(std::string_view pem, const std::string& what) {
  if (pem.size() > static_cast<size_t>(INT32_MAX)) {
    return makeError(what + ": too large to be a certificate");
  }
  // Read-only BIO over `pem` (not copied, not owned).
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) {
    return sslError(what + ": out of memory");
  }
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));  // owned
  if (!cert) {
    return sslError(what + ": not a PEM certificate");
  }
  return cert;
}

Result<std::string> readSmallFile(const std::string& path, size_t max_len) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    return makeError(path + ": cannot open: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return makeError(path + ": cannot stat: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return makeError(path + ": not a regular file");
  }
  std::string out(max_len + 1, '\0');
  size_t len = 0;
  while (len < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + len, out.size() - len);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return makeError(path + ": read failed: " + std::strerror(errno));
    }
    if (n == 0) {
      break;
    }
    len += static_cast<size_t>(n);
  }
  if (len > max_len) {
    return makeError(path + ": larger than " + std::to_string(max_len) +
                     " bytes; not a certificate file");
  }
  out.resize(len);
  return out;
}

Result<X509Ptr> readCertFile(const std::string& path) {
  auto pem = readSmallFile(path, 1 << 20);
  if (!pem) {
    return pem.error();
  }
  return parseCertPem(*pem, path);
}

bool isNormalizedDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) {
    return false;
  }
  size_t label_len = 0;
  char prev = '.';
  for (char c : name) {
    if (c == '.') {
      if (label_len == 0 || prev == '-') {
        return false;
      }
      label_len = 0;
    } else {
      const bool ldh = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      if (!ldh || (label_len == 0 && c == '-') || ++label_len > 63) {
        return false;
      }
    }
    prev = c;
  }
  if (label_len == 0 || prev == '-') {
    return false;
  }
  // A numeric last label ("1.2.3.04", "10.0x7f") is an IP address in some
  // parsers' eyes, never a DNS name; canonical IP literals go through
  // canonicalIpBytes instead.
  std::string_view last = name.substr(name.size() - label_len);
  bool digits = last.find_first_not_of("0123456789") == std::string_view::npos;
  bool hex = last.size() > 2 && last.substr(0, 2) == "0x" &&
             last.find_first_not_of("0123456789abcdef", 2) == std::string_view::npos;
  return !digits && !hex;
}

std::string canonicalIpBytes(const std::string& text) {
  std::array<unsigned char, 16> addr{};
  std::array<char, INET6_ADDRSTRLEN> back{};
  for (int family : {AF_INET, AF_INET6}) {
    if (inet_pton(family, text.c_str(), addr.data()) == 1 &&
        inet_ntop(family, addr.data(), back.data(), back.size()) != nullptr &&
        text == back.data()) {
      return std::string(reinterpret_cast<const char*>(addr.data()), family == AF_INET ? 4 : 16);
    }
  }
  return {};
}

}  // namespace tollgate::ca::detail
