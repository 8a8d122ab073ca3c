// Authority::load: a CA from disk, refused unless its key file is private to
// us and the pair is a usable, current CA.
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "base/handles.h"
#include "ca/ca.h"
#include "ca/safe_file.h"
#include "ca/x509_util.h"

namespace tollgate::ca {
namespace {

using detail::modeText;
using detail::sslError;

constexpr size_t kMaxKeyFile = 64 * 1024;

std::string utcText(time_t t) {
  struct tm tm {};
  std::array<char, 32> buf{};
  if (gmtime_r(&t, &tm) == nullptr ||
      std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    return std::to_string(t);
  }
  return buf.data();
}

// Bytes of a key file, wiped when freed.
class SecretBuffer {
 public:
  explicit SecretBuffer(size_t capacity) : bytes_(capacity) {}
  SecretBuffer(const SecretBuffer&) = delete;
  SecretBuffer& operator=(const SecretBuffer&) = delete;
  ~SecretBuffer() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

  char* data() { return bytes_.data(); }
  size_t capacity() const { return bytes_.size(); }

 private:
  std::vector<char> bytes_;
};

// The passphrase callback: none is available, so encrypted keys fail
// instead of prompting on a terminal.
int noPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

// Opens the key file once and checks the very file it then reads (fstat on
// the descriptor: no window between check and use).
Result<PkeyPtr> readKey(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    return makeError(path + ": cannot open the CA key: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return makeError(path + ": cannot stat the CA key: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return makeError(path + ": the CA key is not a regular file");
  }
  const uid_t euid = ::geteuid();
  if (st.st_uid != euid) {
    return makeError(path + ": the CA key belongs to uid " + std::to_string(st.st_uid) +
                     " but tollgate runs as uid " + std::to_string(euid) + "; run `chown " +
                     std::to_string(euid) + " " + path + "` (the key must belong to the user " +
                     "that runs tollgate)");
  }
  if ((st.st_mode & 077) != 0) {
    return makeError(path + ": the CA key has mode " + modeText(st.st_mode) +
                     ", so group or others can read or change it; run `chmod 600 " + path +
                     "`, and if anyone else could read it, treat it as leaked and run "
                     "`tollgate ca rotate`");
  }
  SecretBuffer buf(kMaxKeyFile + 1);
  size_t len = 0;
  while (len < buf.capacity()) {
    ssize_t n = ::read(fd.get(), buf.data() + len, buf.capacity() - len);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return makeError(path + ": cannot read the CA key: " + std::strerror(errno));
    }
    if (n == 0) {
      break;
    }
    len += static_cast<size_t>(n);
  }
  if (len > kMaxKeyFile) {
    return makeError(path + ": larger than " + std::to_string(kMaxKeyFile) +
                     " bytes; not a PEM private key");
  }
  // Read-only BIO over buf (not copied, not owned).
  BioPtr bio(BIO_new_mem_buf(buf.data(), static_cast<int>(len)));
  if (!bio) {
    return sslError(path + ": out of memory");
  }
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr));  // owned
  if (!key) {
    return sslError(path +
                    ": not an unencrypted PEM private key (encrypted keys are not "
                    "supported: the daemon has no one to ask for a passphrase)");
  }
  const int bits = EVP_PKEY_get_bits(key.get());
  if (EVP_PKEY_is_a(key.get(), "RSA")) {
    if (bits < 2048) {
      return makeError(path + ": RSA key of " + std::to_string(bits) +
                       " bits is too weak for a CA; create a new CA with `tollgate ca rotate`");
    }
  } else if (EVP_PKEY_is_a(key.get(), "EC")) {
    if (bits < 256) {
      return makeError(path + ": EC key of " + std::to_string(bits) +
                       " bits is too weak for a CA; create a new CA with `tollgate ca rotate`");
    }
  } else {
    return makeError(path + ": unsupported key type " +
                     std::string(EVP_PKEY_get0_type_name(key.get()) != nullptr
                                     ? EVP_PKEY_get0_type_name(key.get())
                                     : "?") +
                     "; tollgate CAs use ECDSA or RSA");
  }
  return key;
}

}  // namespace

Result<std::shared_ptr<const Authority>> Authority::load(const std::string& cert_path,
                                                         const std::string& key_path,
                                                         const std::string& prev_cert_path) {
  ERR_clear_error();
  std::shared_ptr<Authority> ca(new Authority());

  auto key = readKey(key_path);
  if (!key) {
    return key.error();
  }
  ca->key_ = std::move(*key);

  auto cert = detail::readCertFile(cert_path);
  if (!cert) {
    return cert.error();
  }
  ca->cert_ = std::move(*cert);
  X509* x = ca->cert_.get();

  // X509_check_ca also computes the cached extension data once, here, so
  // later concurrent readers of this X509 find it ready.
  if (X509_check_ca(x) != 1) {
    ERR_clear_error();
    return makeError(cert_path +
                     ": not a CA certificate (needs basicConstraints CA:TRUE and "
                     "keyUsage keyCertSign); use the ca.crt that `tollgate ca init` "
                     "wrote");
  }
  if ((X509_get_extension_flags(x) & EXFLAG_KUSAGE) == 0 ||
      (X509_get_key_usage(x) & KU_KEY_CERT_SIGN) == 0) {
    return makeError(cert_path +
                     ": the CA certificate's keyUsage does not allow keyCertSign; "
                     "create a CA with `tollgate ca init`");
  }
  if (X509_check_private_key(x, ca->key_.get()) != 1) {
    ERR_clear_error();
    return makeError(key_path + ": this key does not belong to the certificate " + cert_path +
                     "; point the config at the matching pair (ca.crt and ca.key from the same "
                     "`tollgate ca init`)");
  }

  auto info = detail::describe(x, cert_path);
  if (!info) {
    return info.error();
  }
  ca->info_ = std::move(*info);
  const time_t now = ::time(nullptr);
  if (ca->info_.not_after <= now) {
    return makeError(cert_path + ": the CA expired at " + utcText(ca->info_.not_after) +
                     "; create a new one with `tollgate ca rotate` and give it to the sandboxes");
  }
  if (ca->info_.not_before > now) {
    return makeError(cert_path + ": the CA is not valid before " + utcText(ca->info_.not_before) +
                     "; check the system clock");
  }

  if (!prev_cert_path.empty()) {
    struct stat st {};
    if (::stat(prev_cert_path.c_str(), &st) == 0) {
      // Informational only: a broken previous CA does not stop the current one.
      if (auto prev = detail::readCertFile(prev_cert_path); prev) {
        if (auto prev_info = detail::describe(prev->get(), prev_cert_path); prev_info) {
          ca->prev_cert_ = std::move(*prev);
          ca->prev_info_ = std::move(*prev_info);
        }
      }
    }
  }
  ERR_clear_error();
  return std::shared_ptr<const Authority>(std::move(ca));
}

Result<std::shared_ptr<const Authority>> Authority::loadDir(const std::string& dir) {
  std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  return load(base + kCertFile, base + kKeyFile, base + kPrevCertFile);
}

}  // namespace tollgate::ca
