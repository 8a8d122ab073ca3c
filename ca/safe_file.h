// tollgate: internal to ca/
// Internal to ca/: files in the CA directory, written so that a key is never
// readable by others (not even for a moment) and an existing name is never
// replaced behind the operator's back.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique.h"

namespace tollgate::ca::detail {

// "0644": the permission bits of `mode`, for messages.
std::string modeText(mode_t mode);

// An open directory; every file operation goes through its fd (*at calls),
// so a rename of the path while we work cannot redirect us elsewhere.
class Dir {
 public:
  // Opens `path`, creating it 0700 when missing (the parent must exist).
  // Refuses a directory that group or others may write (unless sticky) or
  // that belongs to another non-root user: they could swap the key.
  static Result<Dir> openOrCreate(const std::string& path);
  // Same checks, but the directory must exist.
  static Result<Dir> open(const std::string& path);

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  std::string pathOf(std::string_view name) const;

  // lstat of an entry: nullopt when there is none (a dangling symlink is an
  // entry).
  Result<std::optional<struct stat>> entry(const char* name) const;

  Result<void> sync() const;

 private:
  Dir(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  static Result<Dir> openChecked(const std::string& path, bool created);

  UniqueFd fd_;
  std::string path_;
};

// A new file in a Dir under a random temporary name, created with
// O_CREAT|O_EXCL|O_NOFOLLOW and exactly `mode` from the start. Removed on
// destruction unless committed.
class TempFile {
 public:
  static Result<TempFile> create(const Dir& dir, std::string_view final_name, mode_t mode);
  TempFile(TempFile&& o) noexcept;
  TempFile& operator=(TempFile&&) = delete;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile();

  // Writes everything, fsyncs and closes.
  Result<void> writeAll(const void* data, size_t len);

  // Gives the file its final name; fails with EEXIST-style message if that
  // name exists (renameat2 RENAME_NOREPLACE, or link+unlink where the file
  // system lacks it). Never replaces anything.
  Result<void> commitNoReplace(const char* final_name);

  // Whether DIR/name is (still) the file this TempFile created.
  bool isOurs(const char* name) const;

 private:
  TempFile(const Dir& dir, std::string name, UniqueFd fd, dev_t dev, ino_t ino)
      : dir_(&dir), name_(std::move(name)), fd_(std::move(fd)), dev_(dev), ino_(ino) {}

  const Dir* dir_;
  std::string name_;  // temporary name; empty once committed
  UniqueFd fd_;
  dev_t dev_;
  ino_t ino_;
};

}  // namespace tollgate::ca::detail
