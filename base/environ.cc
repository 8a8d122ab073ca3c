#include "base/environ.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace tollgate {

Result<SecretBuffer> takeEnvSecret(std::string_view name) {
  if (name.empty() || name.find('=') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return makeError("environment variable name '" + std::string(name) + "' is not valid");
  }
  // Every "NAME=..." entry, not just the first: execve(2) accepts duplicates,
  // and each one is visible in /proc/PID/environ.
  std::vector<char*> entries;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, name.data(), name.size()) == 0 && (*e)[name.size()] == '=') {
      entries.push_back(*e);
    }
  }
  if (entries.empty()) {
    return makeError("environment variable " + std::string(name) + " is not set");
  }
  const char* value = entries.front() + name.size() + 1;
  auto secret = SecretBuffer::copyOf(std::string_view(value));
  if (!secret) {
    // Leave the environment as it was: the caller reports the failure and
    // the value has not been copied anywhere.
    return makeError("environment variable " + std::string(name) + ": " + secret.message());
  }
  // Unlink first (unsetenv compares names, so the strings must still be
  // intact), then wipe the storage we kept pointers to. glibc's unsetenv only
  // drops pointers from the array; it never frees the strings.
  ::unsetenv(std::string(name).c_str());
  for (char* entry : entries) {
    ::explicit_bzero(entry, std::strlen(entry));
  }
  return std::move(*secret);
}

}  // namespace tollgate
