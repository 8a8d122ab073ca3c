// LeafMinter: per-host leaf certificates from the Authority, cached (LRU with
// a size cap and refresh before expiry), minted once per name even when many
// threads ask at the same moment.
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "base/handles.h"
#include "ca/ca.h"
#include "ca/x509_util.h"

namespace tollgate::ca {

using detail::kBackdate;
using detail::kMaxCommonName;
using detail::sslError;

namespace {

using LeafResult = Result<std::shared_ptr<const Leaf>>;

// For messages: the name if it is short printable ASCII, else its length.
std::string quoted(const std::string& name) {
  if (name.size() <= 253) {
    bool printable = true;
    for (unsigned char c : name) {
      printable = printable && c >= 0x21 && c < 0x7f && c != '"';
    }
    if (printable) {
      return "\"" + name + "\"";
    }
  }
  return "(" + std::to_string(name.size()) + "-byte name)";
}

// subjectAltName with one entry: iPAddress for `ip` (4/16 bytes), else dNSName.
Result<void> addSan(X509* x, const std::string& name, const std::string& ip) {
  GeneralNamesPtr names(GENERAL_NAMES_new());
  GeneralNamePtr gn(GENERAL_NAME_new());
  if (!names || !gn) {
    return sslError("building subjectAltName failed");
  }
  if (!ip.empty()) {
    OctetPtr oct(ASN1_OCTET_STRING_new());
    if (!oct || ASN1_OCTET_STRING_set(oct.get(), reinterpret_cast<const unsigned char*>(ip.data()),
                                      static_cast<int>(ip.size())) != 1) {
      return sslError("building subjectAltName failed");
    }
    GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, oct.release());  // gn owns the octets
  } else {
    Ia5Ptr ia5(ASN1_IA5STRING_new());
    if (!ia5 || ASN1_STRING_set(ia5.get(), name.data(), static_cast<int>(name.size())) != 1) {
      return sslError("building subjectAltName failed");
    }
    GENERAL_NAME_set0_value(gn.get(), GEN_DNS, ia5.release());  // gn owns the string
  }
  if (sk_GENERAL_NAME_push(names.get(), gn.get()) == 0) {
    return sslError("building subjectAltName failed");
  }
  (void)gn.release();  // names owns gn
  // Encodes a copy into x. Not critical: the subject (CN) is not empty.
  if (X509_add1_ext_i2d(x, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return sslError("adding subjectAltName failed");
  }
  return {};
}

}  // namespace

struct LeafMinter::Templates {
  std::vector<ExtensionPtr> extensions;  // added (copied) to every leaf
  // The leaf key for X509_set_pubkey only (detail::legacyCopy); null: use
  // the minter's key itself.
  PkeyPtr spki_key;
};

struct LeafMinter::Cache {
  struct Entry {
    std::shared_ptr<const Leaf> leaf;        // last good leaf; may be null
    std::shared_future<LeafResult> pending;  // valid() while a mint is in flight
    uint64_t pending_id = 0;                 // which mint owns `pending`
    std::list<std::string>::iterator lru;
  };

  std::mutex mu;
  std::unordered_map<std::string, Entry> map;  // guarded by mu
  std::list<std::string> lru;                  // front = most recently used; guarded by mu
  uint64_t next_id = 0;                        // guarded by mu

  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> coalesced{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> mints{0};
  std::atomic<uint64_t> mint_failures{0};
  std::atomic<uint64_t> evictions{0};

  void erase(std::unordered_map<std::string, Entry>::iterator it) {
    lru.erase(it->second.lru);
    map.erase(it);
  }
};

Leaf::Leaf(std::string name, X509Ptr cert, std::shared_ptr<EVP_PKEY> key,
           std::shared_ptr<const Authority> ca, time_t not_before, time_t not_after,
           time_t refresh_at)
    : name_(std::move(name)),
      cert_(std::move(cert)),
      key_(std::move(key)),
      ca_(std::move(ca)),
      not_before_(not_before),
      not_after_(not_after),
      refresh_at_(refresh_at) {}

Result<void> Leaf::useOn(SSL* ssl) const {
  ERR_clear_error();
  // Each call takes its own reference (up_ref); the Leaf keeps its own.
  if (SSL_use_certificate(ssl, cert_.get()) != 1) {
    return sslError("SSL_use_certificate for " + name_ + " failed");
  }
  if (SSL_use_PrivateKey(ssl, key_.get()) != 1) {
    return sslError("SSL_use_PrivateKey for " + name_ + " failed");
  }
  // The chain is exactly the CA: clear what may be there, then add1 (the SSL
  // up-refs the CA certificate).
  if (SSL_clear_chain_certs(ssl) != 1 || SSL_add1_chain_cert(ssl, ca_->cert()) != 1) {
    return sslError("setting the certificate chain for " + name_ + " failed");
  }
  return {};
}

Result<std::unique_ptr<LeafMinter>> LeafMinter::create(std::shared_ptr<const Authority> ca,
                                                       LeafOptions options) {
  ERR_clear_error();
  if (!ca) {
    return makeError("LeafMinter needs a loaded CA");
  }
  if (options.ttl.count() <= 0) {
    return makeError("leaf certificate lifetime must be positive");
  }
  if (options.max_entries == 0) {
    return makeError("leaf cache size must be at least 1");
  }
  auto generated = detail::generateKey(options.key_type);
  if (!generated) {
    return generated.error();
  }
  // Shared by the minter and every Leaf it hands out; freed with the last.
  std::shared_ptr<EVP_PKEY> key(generated->release(), EVP_PKEY_free);

  // Extensions common to every leaf; SKI is the same for all (one key pair)
  // and AKI is the CA's key id.
  X509Ptr subject(X509_new());  // stands in for the leaves when computing SKI
  if (!subject || X509_set_pubkey(subject.get(), key.get()) != 1) {
    return sslError("preparing the leaf template failed");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca->cert(), subject.get(), nullptr, nullptr, 0);  // borrowed, read only
  const bool rsa = options.key_type != KeyType::kEcdsaP256;
  auto templates = std::make_unique<Templates>();
  for (auto [nid, value] : {
           std::pair{NID_basic_constraints, "critical,CA:FALSE"},
           std::pair{NID_key_usage, rsa ? "critical,digitalSignature,keyEncipherment"
                                        : "critical,digitalSignature"},
           std::pair{NID_ext_key_usage, "serverAuth"},
           std::pair{NID_subject_key_identifier, "hash"},
       }) {
    auto ext = detail::confExtension(&ctx, nid, value);
    if (!ext) {
      return ext.error();
    }
    templates->extensions.push_back(std::move(*ext));
  }
  auto aki = detail::confExtension(&ctx, NID_authority_key_identifier, "keyid:always");
  if (!aki) {
    // A CA without subjectKeyIdentifier (not one of ours): name it by
    // issuer and serial instead.
    aki = detail::confExtension(&ctx, NID_authority_key_identifier, "issuer:always");
    if (!aki) {
      return aki.error();
    }
  }
  templates->extensions.push_back(std::move(*aki));
  templates->spki_key = detail::legacyCopy(key.get());
  ERR_clear_error();
  return std::unique_ptr<LeafMinter>(
      new LeafMinter(std::move(ca), std::move(options), std::move(key), std::move(templates)));
}

LeafMinter::LeafMinter(std::shared_ptr<const Authority> ca, LeafOptions options,
                       std::shared_ptr<EVP_PKEY> key, std::unique_ptr<Templates> templates)
    : ca_(std::move(ca)),
      options_(std::move(options)),
      key_(std::move(key)),
      templates_(std::move(templates)),
      cache_(std::make_unique<Cache>()) {}

LeafMinter::~LeafMinter() = default;

time_t LeafMinter::now() const { return options_.clock ? options_.clock() : ::time(nullptr); }

LeafStats LeafMinter::stats() const {
  LeafStats s;
  s.hits = cache_->hits.load(std::memory_order_relaxed);
  s.coalesced = cache_->coalesced.load(std::memory_order_relaxed);
  s.misses = cache_->misses.load(std::memory_order_relaxed);
  s.mints = cache_->mints.load(std::memory_order_relaxed);
  s.mint_failures = cache_->mint_failures.load(std::memory_order_relaxed);
  s.evictions = cache_->evictions.load(std::memory_order_relaxed);
  std::lock_guard lock(cache_->mu);
  s.entries = cache_->map.size();
  return s;
}

Result<std::shared_ptr<const Leaf>> LeafMinter::mint(const std::string& name,
                                                     const std::string& ip) const {
  ERR_clear_error();
  const Authority& ca = *ca_;
  const time_t now = this->now();
  const time_t not_before = std::max(now - kBackdate, ca.info().not_before);
  const time_t not_after = std::min(now + static_cast<time_t>(options_.ttl.count()), ca.notAfter());
  if (not_after <= now) {
    return makeError(ca.info().path + ": the CA has expired; run `tollgate ca rotate` and restart");
  }
  // Re-mint once less than a quarter of the remaining lifetime is left.
  const time_t refresh_at = not_after - (not_after - now) / 4;

  X509Ptr x(X509_new());  // owned
  if (!x) {
    return sslError("allocating a certificate failed");
  }
  if (X509_set_version(x.get(), X509_VERSION_3) != 1) {
    return sslError("setting the certificate version failed");
  }
  if (auto r = detail::setRandomSerial(x.get()); !r) {
    return r.error();
  }
  // set1: x copies the CA's subject as its issuer.
  if (X509_set_issuer_name(x.get(), X509_get_subject_name(ca.cert())) != 1) {
    return sslError("setting the issuer name failed");
  }
  const std::string cn = name.substr(0, kMaxCommonName);
  // get0: the subject name is owned by x; filled in place.
  if (X509_NAME_add_entry_by_txt(X509_get_subject_name(x.get()), "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(cn.data()),
                                 static_cast<int>(cn.size()), -1, 0) != 1) {
    return sslError("setting the subject of " + quoted(name) + " failed");
  }
  if (auto r = detail::setValidity(x.get(), not_before, not_after); !r) {
    return r.error();
  }
  // x keeps its own copy of the (shared) leaf key's public part.
  EVP_PKEY* spki = templates_->spki_key ? templates_->spki_key.get() : key_.get();
  if (X509_set_pubkey(x.get(), spki) != 1) {
    return sslError("setting the leaf public key failed");
  }
  for (const auto& ext : templates_->extensions) {
    if (X509_add_ext(x.get(), ext.get(), -1) != 1) {  // copies ext
      return sslError("adding a leaf extension failed");
    }
  }
  if (auto r = addSan(x.get(), name, ip); !r) {
    return r.error();
  }
  if (X509_sign(x.get(), ca_->key(), EVP_sha256()) <= 0) {
    return sslError("signing the leaf for " + quoted(name) + " failed");
  }
  // Fill the extension cache now, while x is ours alone, rather than lazily
  // in whichever thread first uses the published leaf. From here on x is
  // only read (i2d re-encodes from the fields without writing to x).
  (void)X509_check_purpose(x.get(), -1, 0);
  ERR_clear_error();
  return std::shared_ptr<const Leaf>(
      new Leaf(name, std::move(x), key_, ca_, not_before, not_after, refresh_at));
}

Result<std::shared_ptr<const Leaf>> LeafMinter::leafFor(const std::string& name) {
  // Checked before the cache sees it: a bad name must not evict good ones.
  const std::string ip = detail::canonicalIpBytes(name);
  if (ip.empty() && !detail::isNormalizedDnsName(name)) {
    return makeError("cannot mint a certificate for " + quoted(name) +
                     ": not a normalised host name (lower-case A-labels, no trailing dot) or "
                     "canonical IP literal");
  }
  Cache& c = *cache_;
  const time_t now = this->now();
  std::promise<LeafResult> promise;
  uint64_t id = 0;
  {
    std::unique_lock lock(c.mu);
    auto it = c.map.find(name);
    if (it != c.map.end()) {
      Cache::Entry& e = it->second;
      c.lru.splice(c.lru.begin(), c.lru, e.lru);
      if (e.leaf && now < e.leaf->refreshAt()) {
        c.hits.fetch_add(1, std::memory_order_relaxed);
        return e.leaf;
      }
      if (e.pending.valid()) {
        if (e.leaf && now < e.leaf->notAfter()) {
          // Another thread is re-minting; the old leaf is still valid.
          c.hits.fetch_add(1, std::memory_order_relaxed);
          return e.leaf;
        }
        std::shared_future<LeafResult> wait = e.pending;
        lock.unlock();
        c.hits.fetch_add(1, std::memory_order_relaxed);
        c.coalesced.fetch_add(1, std::memory_order_relaxed);
        return wait.get();
      }
    } else {
      c.lru.push_front(name);
      Cache::Entry fresh;
      fresh.lru = c.lru.begin();
      it = c.map.emplace(name, std::move(fresh)).first;
      while (c.map.size() > options_.max_entries) {
        // The new entry is at the front, so never the victim (max_entries >= 1).
        // An evicted in-flight mint still completes for its waiters.
        c.erase(c.map.find(c.lru.back()));
        c.evictions.fetch_add(1, std::memory_order_relaxed);
      }
    }
    id = ++c.next_id;
    it->second.pending = promise.get_future().share();
    it->second.pending_id = id;
    c.misses.fetch_add(1, std::memory_order_relaxed);
  }

  LeafResult minted = mint(name, ip);  // outside the lock: other names go on in parallel

  {
    std::lock_guard lock(c.mu);
    auto it = c.map.find(name);
    if (it != c.map.end() && it->second.pending_id == id) {
      Cache::Entry& e = it->second;
      e.pending = {};
      e.pending_id = 0;
      if (minted) {
        e.leaf = *minted;
      } else if (!e.leaf || now >= e.leaf->notAfter()) {
        c.erase(it);  // do not cache failures: the next request retries
      }
    }
  }
  (minted ? c.mints : c.mint_failures).fetch_add(1, std::memory_order_relaxed);
  promise.set_value(minted);
  return minted;
}

}  // namespace tollgate::ca
