// initCa / rotateCa: a new CA built in memory, then written into the CA
// directory without ever exposing the key or replacing an existing file.
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>

#include "base/handles.h"
#include "ca/ca.h"
#include "ca/safe_file.h"
#include "ca/x509_util.h"

namespace tollgate::ca {

using detail::Dir;
using detail::sslError;
using detail::TempFile;

std::string_view keyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kEcdsaP256:
      return "ecdsa-p256";
    case KeyType::kRsa2048:
      return "rsa-2048";
    case KeyType::kRsa3072:
      return "rsa-3072";
  }
  return "unknown";
}

std::optional<KeyType> parseKeyType(std::string_view name) {
  for (KeyType t : {KeyType::kEcdsaP256, KeyType::kRsa2048, KeyType::kRsa3072}) {
    if (name == keyTypeName(t)) {
      return t;
    }
  }
  return std::nullopt;
}

namespace {

using detail::kBackdate;
using detail::kMaxCommonName;

constexpr int kMaxValidityDays = 36500;

// "tollgate sandbox CA <hostname> <YYYY-MM-DD>", within 64 bytes; with
// `with_time`, "... <YYYY-MM-DD> <HH:MM:SS>" (UTC).
std::string defaultCommonName(time_t now, bool with_time) {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) {
    host[0] = '\0';
  }
  std::string h;
  for (const char* c = host.data(); *c != '\0'; ++c) {
    const bool keep = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == '_';
    if (keep) {
      h += *c;
    }
  }
  if (h.empty()) {
    h = "localhost";
  }
  struct tm tm {};
  std::array<char, 32> date{};
  if (gmtime_r(&now, &tm) == nullptr ||
      std::strftime(date.data(), date.size(), with_time ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d", &tm) ==
          0) {
    date[0] = '\0';
  }
  const std::string prefix = "tollgate sandbox CA ";
  const std::string suffix = std::string(" ") + date.data();
  const size_t room = kMaxCommonName - prefix.size() - suffix.size();
  if (h.size() > room) {
    h.resize(room);
  }
  return prefix + h + suffix;
}

Result<void> validateOptions(const CaOptions& o) {
  if (o.validity_days < 1 || o.validity_days > kMaxValidityDays) {
    return makeError("CA validity must be 1.." + std::to_string(kMaxValidityDays) + " days, not " +
                     std::to_string(o.validity_days));
  }
  if (o.common_name.size() > kMaxCommonName) {
    return makeError("CA name is " + std::to_string(o.common_name.size()) +
                     " bytes; an X.509 common name holds at most 64");
  }
  for (unsigned char c : o.common_name) {
    if (c < 0x20 || c == 0x7f) {
      return makeError("CA name contains a control character");
    }
  }
  for (const auto& n : o.permitted_dns) {
    if (!detail::isNormalizedDnsName(n)) {
      return makeError("permitted DNS name \"" + n +
                       "\" must be a lower-case DNS name such as example.com (no wildcard or "
                       "trailing dot: a name also permits every name below it)");
    }
  }
  return {};
}

// permittedSubtrees: DNS names; excludedSubtrees: all of IPv4 and IPv6.
Result<void> addNameConstraints(X509* x, const std::vector<std::string>& dns) {
  NameConstraintsPtr nc(NAME_CONSTRAINTS_new());
  if (!nc) {
    return sslError("building nameConstraints failed");
  }
  // The stacks are owned by nc and freed with it.
  nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
  nc->excludedSubtrees = sk_GENERAL_SUBTREE_new_null();
  if (nc->permittedSubtrees == nullptr || nc->excludedSubtrees == nullptr) {
    return sslError("building nameConstraints failed");
  }
  // Pushes one subtree whose base is (type, value); takes ownership of value.
  auto push = [](STACK_OF(GENERAL_SUBTREE) * stack, int type, void* value) -> bool {
    GeneralSubtreePtr st(GENERAL_SUBTREE_new());
    if (!st) {
      return false;
    }
    if (st->base == nullptr) {
      st->base = GENERAL_NAME_new();  // owned by st
      if (st->base == nullptr) {
        return false;
      }
    }
    GENERAL_NAME_set0_value(st->base, type, value);  // st->base owns value now
    if (sk_GENERAL_SUBTREE_push(stack, st.get()) == 0) {
      return false;
    }
    (void)st.release();  // the stack owns the subtree
    return true;
  };
  for (const auto& n : dns) {
    Ia5Ptr ia5(ASN1_IA5STRING_new());
    if (!ia5 || ASN1_STRING_set(ia5.get(), n.data(), static_cast<int>(n.size())) != 1) {
      return sslError("building nameConstraints failed");
    }
    if (!push(nc->permittedSubtrees, GEN_DNS, ia5.get())) {
      return sslError("building nameConstraints failed");
    }
    (void)ia5.release();  // owned by the subtree
  }
  // iPAddress constraints are address || mask: 0.0.0.0/0 and ::/0.
  for (size_t len : {size_t{8}, size_t{32}}) {
    const std::array<unsigned char, 32> zeros{};
    OctetPtr oct(ASN1_OCTET_STRING_new());
    if (!oct || ASN1_OCTET_STRING_set(oct.get(), zeros.data(), static_cast<int>(len)) != 1) {
      return sslError("building nameConstraints failed");
    }
    if (!push(nc->excludedSubtrees, GEN_IPADD, oct.get())) {
      return sslError("building nameConstraints failed");
    }
    (void)oct.release();  // owned by the subtree
  }
  // Encodes a copy into x; nc stays ours. Critical, as RFC 5280 requires.
  if (X509_add1_ext_i2d(x, NID_name_constraints, nc.get(), 1, X509V3_ADD_DEFAULT) != 1) {
    return sslError("adding nameConstraints failed");
  }
  return {};
}

struct NewCa {
  PkeyPtr key;
  X509Ptr cert;
  std::string key_pem;  // cleansed on destruction
  std::string cert_pem;

  NewCa() = default;
  NewCa(NewCa&&) = default;
  NewCa& operator=(NewCa&&) = delete;
  NewCa(const NewCa&) = delete;
  NewCa& operator=(const NewCa&) = delete;
  ~NewCa() { OPENSSL_cleanse(key_pem.data(), key_pem.size()); }
};

// `avoid_cn`: the CN of the CA being rotated away. Two trusted CAs with one
// subject but different keys confuse some clients' chain building, so a
// default name that would repeat it gets the time of day as well.
Result<NewCa> buildCa(const CaOptions& o, const std::string& avoid_cn = "") {
  ERR_clear_error();
  if (auto v = validateOptions(o); !v) {
    return v.error();
  }
  const time_t now = o.now != 0 ? o.now : ::time(nullptr);
  std::string cn = o.common_name;
  if (cn.empty()) {
    cn = defaultCommonName(now, false);
    if (cn == avoid_cn) {
      cn = defaultCommonName(now, true);
    }
  }

  NewCa ca;
  auto key = detail::generateKey(o.key_type);
  if (!key) {
    return key.error();
  }
  ca.key = std::move(*key);

  ca.cert.reset(X509_new());  // owned
  if (!ca.cert) {
    return sslError("allocating a certificate failed");
  }
  X509* x = ca.cert.get();
  if (X509_set_version(x, X509_VERSION_3) != 1) {
    return sslError("setting the certificate version failed");
  }
  if (auto r = detail::setRandomSerial(x); !r) {
    return r.error();
  }
  // get0: the subject name is owned by x; filled in place.
  X509_NAME* subject = X509_get_subject_name(x);
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.data()),
                                 static_cast<int>(cn.size()), -1, 0) != 1) {
    return sslError("CA name \"" + cn + "\" is not valid UTF-8 of 1-64 characters");
  }
  // set1: x copies the name.
  if (X509_set_issuer_name(x, subject) != 1) {
    return sslError("setting the issuer name failed");
  }
  const time_t not_after = now + static_cast<time_t>(o.validity_days) * 86400;
  if (auto r = detail::setValidity(x, now - kBackdate, not_after); !r) {
    return r.error();
  }
  // x keeps its own copy/reference of the public key.
  if (X509_set_pubkey(x, ca.key.get()) != 1) {
    return sslError("setting the public key failed");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);  // self-signed: issuer = subject = x
  // Fixed strings only; SKI must precede AKI, which copies it (self-signed).
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    if (auto r = detail::addConfExtension(x, &ctx, nid, value); !r) {
      return r.error();
    }
  }
  if (!o.permitted_dns.empty()) {
    if (auto r = addNameConstraints(x, o.permitted_dns); !r) {
      return r.error();
    }
  }
  if (X509_sign(x, ca.key.get(), EVP_sha256()) <= 0) {
    return sslError("signing the CA certificate failed");
  }

  // The key PEM goes through a secure-memory BIO, cleansed when freed.
  BioPtr key_bio(BIO_new(BIO_s_secmem()));
  if (!key_bio || PEM_write_bio_PKCS8PrivateKey(key_bio.get(), ca.key.get(), nullptr, nullptr, 0,
                                                nullptr, nullptr) != 1) {
    return sslError("encoding the CA key as PKCS#8 failed");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(key_bio.get(), &data);  // get0: owned by key_bio
  if (len <= 0 || data == nullptr) {
    return sslError("encoding the CA key as PKCS#8 failed");
  }
  ca.key_pem.assign(data, static_cast<size_t>(len));

  auto info = detail::describe(x, "");
  if (!info) {
    return info.error();
  }
  ca.cert_pem = info->pem;
  return ca;
}

Error existsError(const Dir& dir, const char* name, const struct stat& st) {
  std::string what =
      S_ISLNK(st.st_mode) ? " exists (as a symlink, which is never followed)" : " exists";
  return makeError(dir.pathOf(name) + what +
                   "; refusing to overwrite a CA: use `tollgate ca rotate --dir " + dir.path() +
                   "` to replace it, or remove it by hand");
}

// The new pair written to temporary files in the CA directory (removed again
// unless committed).
struct Staged {
  TempFile key;
  TempFile cert;
};

Result<Staged> stage(const Dir& dir, const NewCa& ca) {
  auto key = TempFile::create(dir, kKeyFile, 0600);
  if (!key) {
    return key.error();
  }
  if (auto r = key->writeAll(ca.key_pem.data(), ca.key_pem.size()); !r) {
    return r.error();
  }
  auto cert = TempFile::create(dir, kCertFile, 0644);
  if (!cert) {
    return cert.error();
  }
  if (auto r = cert->writeAll(ca.cert_pem.data(), ca.cert_pem.size()); !r) {
    return r.error();
  }
  return Staged{std::move(*key), std::move(*cert)};
}

// Gives the staged files their final names, never replacing one; on failure
// neither name is left pointing at a new file.
Result<void> commit(const Dir& dir, Staged& staged) {
  if (auto r = staged.key.commitNoReplace(kKeyFile); !r) {
    return r.error();
  }
  if (auto r = staged.cert.commitNoReplace(kCertFile); !r) {
    if (staged.key.isOurs(kKeyFile)) {
      ::unlinkat(dir.fd(), kKeyFile, 0);
    }
    return r.error();
  }
  return {};
}

Result<CaFiles> describeNew(const Dir& dir, const NewCa& ca, KeyType type) {
  auto info = detail::describe(ca.cert.get(), dir.pathOf(kCertFile));
  if (!info) {
    return info.error();
  }
  CaFiles files;
  files.cert = std::move(*info);
  files.key_path = dir.pathOf(kKeyFile);
  files.key_type = type;
  return files;
}

Result<void> renameEntry(const Dir& dir, const char* from, const char* to) {
  if (::renameat(dir.fd(), from, dir.fd(), to) != 0) {
    return makeError(dir.pathOf(from) + ": cannot rename to " + to + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace

Result<CaFiles> initCa(const std::string& dir_path, const CaOptions& options) {
  if (auto v = validateOptions(options); !v) {
    return v.error();
  }
  auto dir = Dir::openOrCreate(dir_path);
  if (!dir) {
    return dir.error();
  }
  for (const char* name : {kCertFile, kKeyFile}) {
    auto st = dir->entry(name);
    if (!st) {
      return st.error();
    }
    if (st->has_value()) {
      return existsError(*dir, name, **st);
    }
  }
  auto ca = buildCa(options);
  if (!ca) {
    return ca.error();
  }
  auto staged = stage(*dir, *ca);
  if (!staged) {
    return staged.error();
  }
  if (auto r = commit(*dir, *staged); !r) {
    return makeError(r.message() + ": use `tollgate ca rotate --dir " + dir_path + "`");
  }
  if (auto r = dir->sync(); !r) {
    return r.error();
  }
  return describeNew(*dir, *ca, options.key_type);
}

Result<CaFiles> rotateCa(const std::string& dir_path, const CaOptions& options) {
  if (auto v = validateOptions(options); !v) {
    return v.error();
  }
  auto dir = Dir::open(dir_path);
  if (!dir) {
    return dir.error();
  }
  for (const char* name : {kCertFile, kKeyFile}) {
    auto st = dir->entry(name);
    if (!st) {
      return st.error();
    }
    if (!st->has_value()) {
      return makeError(dir->pathOf(name) +
                       " does not exist: there is no CA to rotate; create one "
                       "with `tollgate ca init --dir " +
                       dir_path + "`");
    }
    if (!S_ISREG((*st)->st_mode)) {
      return makeError(dir->pathOf(name) +
                       " is not a regular file (a symlink?); refusing to "
                       "rotate it: fix it by hand");
    }
  }
  std::string old_cn;
  if (auto old = detail::readCertFile(dir->pathOf(kCertFile)); old) {
    std::array<char, 256> buf{};
    // get0: the subject is owned by the certificate.
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(old->get()), NID_commonName, buf.data(),
                                  static_cast<int>(buf.size())) > 0) {
      old_cn = buf.data();
    }
  }
  ERR_clear_error();
  auto ca = buildCa(options, old_cn);
  if (!ca) {
    return ca.error();
  }
  // Stage the new files first, so a failure to write them changes nothing.
  auto staged = stage(*dir, *ca);
  if (!staged) {
    return staged.error();
  }
  // rename(2) atomically replaces an older prev pair; the key keeps its 0600.
  if (auto r = renameEntry(*dir, kCertFile, kPrevCertFile); !r) {
    return r.error();
  }
  if (auto r = renameEntry(*dir, kKeyFile, kPrevKeyFile); !r) {
    (void)::renameat2(dir->fd(), kPrevCertFile, dir->fd(), kCertFile, RENAME_NOREPLACE);
    return r.error();
  }
  if (auto r = commit(*dir, *staged); !r) {
    // Someone created ca.* meanwhile: put the old CA back if the names are
    // free, and report.
    (void)::renameat2(dir->fd(), kPrevKeyFile, dir->fd(), kKeyFile, RENAME_NOREPLACE);
    (void)::renameat2(dir->fd(), kPrevCertFile, dir->fd(), kCertFile, RENAME_NOREPLACE);
    return makeError(r.message() + " (the CA directory changed during rotation; check " + dir_path +
                     " by hand)");
  }
  if (auto r = dir->sync(); !r) {
    return r.error();
  }
  auto files = describeNew(*dir, *ca, options.key_type);
  if (!files) {
    return files.error();
  }
  files->prev_key_path = dir->pathOf(kPrevKeyFile);
  // Best effort: the old certificate may be unreadable, which is why it is
  // being rotated away.
  if (auto prev = detail::readCertFile(dir->pathOf(kPrevCertFile)); prev) {
    if (auto info = detail::describe(prev->get(), dir->pathOf(kPrevCertFile)); info) {
      files->prev = std::move(*info);
    }
  }
  ERR_clear_error();
  return files;
}

}  // namespace tollgate::ca
