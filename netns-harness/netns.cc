// Named network namespaces (/run/netns/<name>, iproute2's convention) made
// and removed in-process, plus the clean-up of leftovers (down, gc).
#include "netns-harness/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "netns-harness/harness.h"

namespace tollgate::harness {
namespace internal {
namespace {

// Serialises turning /run/netns into a mount point between harness processes.
constexpr char kRunDirLock[] = "/run/tollgate-netns-harness.lock";

bool isPlainName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// Identity of a namespace file: nsfs device and inode.
using NsId = std::pair<dev_t, ino_t>;

std::optional<NsId> nsIdOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return std::nullopt;
  }
  return NsId{st.st_dev, st.st_ino};
}

// Pids (other than ours) whose network namespace is in `ids`.
std::vector<pid_t> pidsIn(const std::set<NsId>& ids) {
  std::vector<pid_t> pids;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) {
    return pids;
  }
  const pid_t self = getpid();
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0 || pid == self) {
      continue;
    }
    std::optional<NsId> id = nsIdOf(std::string("/proc/") + e->d_name + "/ns/net");
    if (id && ids.count(*id) != 0) {
      pids.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(dir);
  return pids;
}

// Generated prefixes look like "tg<pid>x<counter><letters>"; returns <pid>.
std::optional<pid_t> ownerOfGeneratedPrefix(const std::string& prefix) {
  if (prefix.size() < 4 || prefix.compare(0, 2, "tg") != 0) {
    return std::nullopt;
  }
  size_t i = 2;
  while (i < prefix.size() && std::isdigit(static_cast<unsigned char>(prefix[i])) != 0) {
    ++i;
  }
  if (i == 2 || i - 2 > 9 || i >= prefix.size() || prefix[i] != 'x') {
    return std::nullopt;
  }
  return static_cast<pid_t>(std::stol(prefix.substr(2, i - 2)));
}

std::vector<std::string> listDir(const char* path) {
  std::vector<std::string> names;
  DIR* dir = opendir(path);
  if (dir == nullptr) {
    return names;
  }
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') {
      names.emplace_back(e->d_name);
    }
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

bool startsWith(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

Result<std::vector<std::string>> removeNamespaces(const std::vector<std::string>& names) {
  killProcessesIn(names, 2000);
  std::string failures;
  for (const std::string& name : names) {
    Result<void> r = deleteNetns(name);
    if (!r.ok()) {
      failures += (failures.empty() ? "" : "; ") + r.message();
    }
  }
  if (!failures.empty()) {
    return makeError(failures);
  }
  return names;
}

}  // namespace

std::string errnoText(int err) {
  const char* desc = strerrordesc_np(err);
  return desc != nullptr ? std::string(desc) : "errno " + std::to_string(err);
}

Result<std::string> netnsPath(const std::string& name) {
  if (!isPlainName(name)) {
    return makeError("invalid network namespace name '" + name + "'");
  }
  return std::string(kNetnsRunDir) + "/" + name;
}

Result<UniqueFd> openNetns(const std::string& name) {
  Result<std::string> path = netnsPath(name);
  if (!path.ok()) {
    return path.error();
  }
  UniqueFd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return makeError("open " + *path + ": " + errnoText(errno) + " (no such network namespace?)");
  }
  return fd;
}

Result<void> prepareNetnsRunDir() {
  if (::mkdir(kNetnsRunDir, 0755) != 0 && errno != EEXIST) {
    return makeError(std::string("mkdir ") + kNetnsRunDir + ": " + errnoText(errno));
  }
  // Already a mount point (the common case): making it shared again is a no-op.
  if (::mount("", kNetnsRunDir, "none", MS_SHARED | MS_REC, nullptr) == 0) {
    return {};
  }
  if (errno != EINVAL) {
    return makeError(std::string("mount --make-rshared ") + kNetnsRunDir + ": " + errnoText(errno));
  }
  UniqueFd lock(::open(kRunDirLock, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX) != 0) {
    return makeError(std::string("lock ") + kRunDirLock + ": " + errnoText(errno));
  }
  // Same dance as iproute2's `ip netns add`, once per boot.
  bool bound = false;
  while (::mount("", kNetnsRunDir, "none", MS_SHARED | MS_REC, nullptr) != 0) {
    if (errno != EINVAL || bound) {
      return makeError(std::string("mount --make-rshared ") + kNetnsRunDir + ": " + errnoText(errno));
    }
    if (::mount(kNetnsRunDir, kNetnsRunDir, "none", MS_BIND | MS_REC, nullptr) != 0) {
      return makeError(std::string("mount --rbind ") + kNetnsRunDir + ": " + errnoText(errno));
    }
    bound = true;
  }
  return {};
}

Result<void> createNetnsOnThisThread(const std::string& name) {
  Result<std::string> path = netnsPath(name);
  if (!path.ok()) {
    return path.error();
  }
  // O_EXCL: we only ever delete what we created.
  int fd = ::open(path->c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) {
    return makeError("create " + *path + ": " + errnoText(errno));
  }
  ::close(fd);
  if (::unshare(CLONE_NEWNET) != 0) {
    int e = errno;
    ::unlink(path->c_str());
    return makeError("unshare(CLONE_NEWNET): " + errnoText(e));
  }
  if (::mount("/proc/thread-self/ns/net", path->c_str(), "none", MS_BIND, nullptr) != 0) {
    int e = errno;
    ::unlink(path->c_str());
    return makeError("bind-mount netns onto " + *path + ": " + errnoText(e));
  }
  return {};
}

Result<void> deleteNetns(const std::string& name) {
  Result<std::string> path = netnsPath(name);
  if (!path.ok()) {
    return path.error();
  }
  std::string failure;
  if (::umount2(path->c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    failure = "umount " + *path + ": " + errnoText(errno);
  }
  if (::unlink(path->c_str()) != 0 && errno != ENOENT) {
    failure = "unlink " + *path + ": " + errnoText(errno);
  }
  removeTree(std::string(kNetnsEtcDir) + "/" + name);
  if (!failure.empty()) {
    return makeError(failure);
  }
  return {};
}

void killProcessesIn(const std::vector<std::string>& names, int timeout_ms) {
  std::set<NsId> ids;
  for (const std::string& name : names) {
    if (Result<std::string> path = netnsPath(name); path.ok()) {
      if (std::optional<NsId> id = nsIdOf(*path)) {
        ids.insert(*id);
      }
    }
  }
  if (ids.empty()) {
    return;
  }
  // A killed process leaves the namespace when it exits (a zombie has no
  // namespaces), so poll until nothing is left inside.
  for (int waited = 0;; waited += 10) {
    std::vector<pid_t> pids = pidsIn(ids);
    if (pids.empty() || waited >= timeout_ms) {
      return;
    }
    for (pid_t pid : pids) {
      ::kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<void> writeProcSys(const std::string& path, const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) {
    return makeError("open " + path + ": " + errnoText(errno));
  }
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return makeError("write " + path + ": " + errnoText(errno));
  }
  return {};
}

Result<std::string> readFirstLine(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return makeError("open " + path + ": " + errnoText(errno));
  }
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n < 0) {
    return makeError("read " + path + ": " + errnoText(errno));
  }
  std::string s(buf, static_cast<size_t>(n));
  return s.substr(0, s.find('\n'));
}

Result<void> writeFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(gettid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    return makeError("create " + tmp + ": " + errnoText(errno));
  }
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return makeError("write " + tmp + ": " + errnoText(e));
    }
    done += static_cast<size_t>(n);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return makeError("rename " + tmp + " -> " + path + ": " + errnoText(e));
  }
  return {};
}

void removeTree(const std::string& path) {
  // Best effort: whatever cannot be removed is left for `gc`.
  auto remove_one = [](const char* p, const struct stat*, int, FTW*) {
    (void)::remove(p);
    return 0;
  };
  ::nftw(path.c_str(), remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

std::string findExecutable(const std::string& name) {
  auto usable = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.empty()) {
    return {};
  }
  if (name.find('/') != std::string::npos) {
    return usable(name) ? name : std::string();
  }
  std::string dirs;
  if (const char* path = std::getenv("PATH")) {
    dirs = path;
  }
  dirs += ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin";
  std::stringstream ss(dirs);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) {
      continue;
    }
    std::string candidate = dir + "/" + name;
    if (usable(candidate)) {
      return candidate;
    }
  }
  return {};
}

}  // namespace internal

std::vector<std::string> listNamespaces() { return internal::listDir(internal::kNetnsRunDir); }

Result<std::vector<std::string>> removeByPrefix(const std::string& prefix) {
  if (prefix.empty() || !internal::isPlainName(prefix)) {
    return makeError("removeByPrefix: invalid prefix '" + prefix + "'");
  }
  const std::string dash = prefix + "-";
  std::vector<std::string> victims;
  for (const std::string& ns : listNamespaces()) {
    if (internal::startsWith(ns, dash)) {
      victims.push_back(ns);
    }
  }
  Result<std::vector<std::string>> removed = internal::removeNamespaces(victims);
  // /etc/netns dirs whose namespace is already gone.
  for (const std::string& dir : internal::listDir(internal::kNetnsEtcDir)) {
    if (internal::startsWith(dir, dash)) {
      internal::removeTree(std::string(internal::kNetnsEtcDir) + "/" + dir);
    }
  }
  return removed;
}

Result<std::vector<std::string>> collectGarbage() {
  auto dead = [](const std::string& name) {
    std::optional<pid_t> owner = internal::ownerOfGeneratedPrefix(name.substr(0, name.find('-')));
    return owner && ::kill(*owner, 0) != 0 && errno == ESRCH;
  };
  std::vector<std::string> victims;
  for (const std::string& ns : listNamespaces()) {
    if (ns.find('-') != std::string::npos && dead(ns)) {
      victims.push_back(ns);
    }
  }
  Result<std::vector<std::string>> removed = internal::removeNamespaces(victims);
  for (const std::string& dir : internal::listDir(internal::kNetnsEtcDir)) {
    if (dir.find('-') != std::string::npos && dead(dir)) {
      internal::removeTree(std::string(internal::kNetnsEtcDir) + "/" + dir);
    }
  }
  return removed;
}

}  // namespace tollgate::harness
