#include "ca/safe_file.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace tollgate::ca::detail {
namespace {

Error sysError(const std::string& path, const std::string& what) {
  return makeError(path + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

std::string modeText(mode_t mode) {
  std::array<char, 8> buf{};
  std::snprintf(buf.data(), buf.size(), "%04o", static_cast<unsigned>(mode & 07777));
  return buf.data();
}

Result<Dir> Dir::openOrCreate(const std::string& path) {
  if (path.empty()) {
    return makeError("the CA directory path is empty");
  }
  bool created = false;
  if (::mkdir(path.c_str(), 0700) == 0) {
    created = true;
  } else if (errno != EEXIST) {
    if (errno == ENOENT) {
      return makeError(path +
                       ": cannot create the CA directory: its parent does not exist; "
                       "create the parent first (mkdir -p)");
    }
    return sysError(path, "cannot create the CA directory");
  }
  return openChecked(path, created);
}

Result<Dir> Dir::open(const std::string& path) {
  if (path.empty()) {
    return makeError("the CA directory path is empty");
  }
  return openChecked(path, false);
}

Result<Dir> Dir::openChecked(const std::string& path, bool created) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      return makeError(path + ": no such directory; create the CA with `tollgate ca init --dir " +
                       path + "`");
    }
    return sysError(path, "cannot open the CA directory");
  }
  if (created && ::fchmod(fd.get(), 0700) != 0) {  // exact mode, whatever the umask
    return sysError(path, "cannot set mode 0700");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return sysError(path, "cannot stat the CA directory");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    return makeError(path + ": the CA directory is writable by group or others (mode " +
                     modeText(st.st_mode) + "), who could replace the key; run `chmod 700 " + path +
                     "`");
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return makeError(path + ": the CA directory belongs to uid " + std::to_string(st.st_uid) +
                     ", not to uid " + std::to_string(::geteuid()) +
                     " that runs tollgate; use a directory of your own or chown it");
  }
  return Dir(std::move(fd), path);
}

std::string Dir::pathOf(std::string_view name) const {
  std::string out = path_;
  if (out.back() != '/') {
    out += '/';
  }
  out += name;
  return out;
}

Result<std::optional<struct stat>> Dir::entry(const char* name) const {
  struct stat st {};
  if (::fstatat(fd_.get(), name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    return std::optional<struct stat>(st);
  }
  if (errno == ENOENT) {
    return std::optional<struct stat>();
  }
  return sysError(pathOf(name), "cannot stat");
}

Result<void> Dir::sync() const {
  if (::fsync(fd_.get()) != 0) {
    return sysError(path_, "fsync of the directory failed");
  }
  return {};
}

Result<TempFile> TempFile::create(const Dir& dir, std::string_view final_name, mode_t mode) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::array<unsigned char, 6> rnd{};
    if (RAND_bytes(rnd.data(), static_cast<int>(rnd.size())) != 1) {
      return makeError(dir.path() + ": no randomness for a temporary file name");
    }
    std::string name = "." + std::string(final_name) + ".tmp-";
    for (unsigned char b : rnd) {
      std::array<char, 3> hex{};
      std::snprintf(hex.data(), hex.size(), "%02x", b);
      name += hex.data();
    }
    // 0600/0644 from the first byte: the mode is given at creation (the umask
    // may only remove bits; fchmod below makes it exact). O_EXCL|O_NOFOLLOW:
    // never open something planted under this name.
    UniqueFd fd(::openat(dir.fd(), name.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd) {
      if (errno == EEXIST) {
        continue;
      }
      return sysError(dir.pathOf(name), "cannot create");
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
      Error err = sysError(dir.pathOf(name), "cannot stat");
      ::unlinkat(dir.fd(), name.c_str(), 0);
      return err;
    }
    TempFile file(dir, std::move(name), std::move(fd), st.st_dev, st.st_ino);
    if (::fchmod(file.fd_.get(), mode) != 0) {
      return sysError(dir.pathOf(file.name_), "cannot set mode " + modeText(mode));
    }
    return file;
  }
  return makeError(dir.path() + ": cannot find a free temporary file name");
}

TempFile::TempFile(TempFile&& o) noexcept
    : dir_(o.dir_),
      name_(std::exchange(o.name_, std::string())),
      fd_(std::move(o.fd_)),
      dev_(o.dev_),
      ino_(o.ino_) {}

TempFile::~TempFile() {
  if (!name_.empty()) {
    ::unlinkat(dir_->fd(), name_.c_str(), 0);
  }
}

Result<void> TempFile::writeAll(const void* data, size_t len) {
  const auto* p = static_cast<const unsigned char*>(data);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::write(fd_.get(), p + done, len - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return sysError(dir_->pathOf(name_), "write failed");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd_.get()) != 0) {
    return sysError(dir_->pathOf(name_), "fsync failed");
  }
  if (::close(fd_.release()) != 0) {
    return sysError(dir_->pathOf(name_), "close failed");
  }
  return {};
}

Result<void> TempFile::commitNoReplace(const char* final_name) {
  const std::string target = dir_->pathOf(final_name);
  if (::renameat2(dir_->fd(), name_.c_str(), dir_->fd(), final_name, RENAME_NOREPLACE) == 0) {
    name_.clear();
    return {};
  }
  if (errno == EEXIST) {
    return makeError(target + " exists; refusing to replace it");
  }
  if (errno != EINVAL && errno != ENOSYS) {
    return sysError(target, "cannot move the new file into place");
  }
  // File system without RENAME_NOREPLACE: link(2) never replaces either.
  if (::linkat(dir_->fd(), name_.c_str(), dir_->fd(), final_name, 0) != 0) {
    if (errno == EEXIST) {
      return makeError(target + " exists; refusing to replace it");
    }
    return sysError(target, "cannot link the new file into place");
  }
  ::unlinkat(dir_->fd(), name_.c_str(), 0);
  name_.clear();
  return {};
}

bool TempFile::isOurs(const char* name) const {
  struct stat st {};
  return ::fstatat(dir_->fd(), name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == dev_ &&
         st.st_ino == ino_;
}

}  // namespace tollgate::ca::detail
