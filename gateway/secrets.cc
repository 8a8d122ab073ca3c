#include "gateway/secrets.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "base/environ.h"
#include "base/unique.h"

namespace tollgate::gateway {
namespace {

constexpr size_t kMaxSecretFile = 64 * 1024;

// Holds bytes read from a source until they are in a SecretBuffer.
struct Scratch {
  std::string bytes;
  ~Scratch() { explicit_bzero(bytes.data(), bytes.size()); }
};

Result<void> readFile(const std::string& path, Scratch& out) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    return makeError("cannot open " + path + ": " + strerror(errno));
  }
  struct stat st{};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return makeError(path + " is not a regular file");
  }
  out.bytes.resize(kMaxSecretFile + 1);
  size_t got = 0;
  while (got < out.bytes.size()) {
    ssize_t n = read(fd.get(), out.bytes.data() + got, out.bytes.size() - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return makeError("cannot read " + path + ": " + strerror(errno));
    }
    if (n == 0) {
      break;
    }
    got += static_cast<size_t>(n);
  }
  if (got > kMaxSecretFile) {
    return makeError(path + " is larger than 64 KiB");
  }
  out.bytes.resize(got);
  // One trailing newline is the file's, not the secret's.
  if (!out.bytes.empty() && out.bytes.back() == '\n') {
    out.bytes.pop_back();
    if (!out.bytes.empty() && out.bytes.back() == '\r') {
      out.bytes.pop_back();
    }
  }
  return {};
}

}  // namespace

const SecretBuffer* CredentialTable::valueOf(const std::string& name) const {
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].name == name) {
      return values[i].get();
    }
  }
  return nullptr;
}

Result<std::shared_ptr<const CredentialTable>> loadCredentials(const Config& cfg,
                                                               const CredentialTable* previous) {
  auto table = std::make_shared<CredentialTable>();
  for (const auto& [name, cred] : cfg.credentials) {
    auto value = std::make_unique<SecretBuffer>();
    const SecretBuffer* carried = nullptr;
    // Environment values are gone after the first read, and systemd
    // credentials are fixed for the service's lifetime (and root-only after
    // the privilege drop): on reload both carry over. Files are re-read.
    if (previous != nullptr &&
        ((cred.source.kind == CredentialSource::Env && getenv(cred.source.ref.c_str()) == nullptr) ||
         cred.source.kind == CredentialSource::Credential)) {
      carried = previous->valueOf(name);
    }
    if (carried != nullptr) {
      auto copy = SecretBuffer::copyOf(carried->view());
      if (!copy) {
        return makeError("credential " + name + ": " + copy.message());
      }
      *value = std::move(*copy);
    } else {
      Scratch scratch;
      if (cred.source.kind == CredentialSource::Env) {
        // Out of the environment (and /proc/PID/environ) from now on.
        auto taken = takeEnvSecret(cred.source.ref);
        if (!taken) {
          return makeError("credential " + name + ": " + taken.message());
        }
        scratch.bytes.assign(taken->view());
      } else if (cred.source.kind == CredentialSource::Credential) {
        const char* dir = getenv("CREDENTIALS_DIRECTORY");
        if (dir == nullptr || *dir == '\0') {
          return makeError("credential " + name + ": source credential: " + cred.source.ref +
                           " needs $CREDENTIALS_DIRECTORY (set by systemd for units with "
                           "LoadCredential=)");
        }
        if (auto read = readFile(std::string(dir) + "/" + cred.source.ref, scratch); !read) {
          return makeError("credential " + name + ": " + read.message());
        }
      } else if (auto read = readFile(cred.source.ref, scratch); !read) {
        return makeError("credential " + name + ": " + read.message());
      }
      if (auto ok = mitm::validateSecretValue(scratch.bytes, cred.placeholder); !ok) {
        const char* kind = cred.source.kind == CredentialSource::Env          ? "env "
                           : cred.source.kind == CredentialSource::Credential ? "credential "
                                                                              : "file ";
        return makeError("credential " + name + " (" + kind + cred.source.ref + "): " +
                         ok.message());
      }
      auto buf = SecretBuffer::copyOf(scratch.bytes);
      if (!buf) {
        return makeError("credential " + name + ": " + buf.message());
      }
      *value = std::move(*buf);
    }
    mitm::CredentialSpec spec;
    spec.name = name;
    spec.placeholder = cred.placeholder;
    for (const HostPattern& p : cred.hosts) {
      spec.scope.push_back([p](std::string_view host) { return p.matches(host); });
    }
    spec.inject_header = cred.inject_header;
    spec.inject_query = cred.inject_query;
    spec.format = cred.format;
    spec.value = value.get();
    table->specs.push_back(std::move(spec));
    table->values.push_back(std::move(value));
  }
  return std::shared_ptr<const CredentialTable>(std::move(table));
}

}  // namespace tollgate::gateway
