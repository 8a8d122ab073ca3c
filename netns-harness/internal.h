// Internal helpers of netns-harness shared by its .cc files. Not part of the
// public API (harness.h).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique.h"

namespace tollgate::harness::internal {

inline constexpr char kNetnsRunDir[] = "/run/netns";
inline constexpr char kNetnsEtcDir[] = "/etc/netns";

// "/run/netns/<name>" after checking the name is a plain file name.
Result<std::string> netnsPath(const std::string& name);
// Opens /run/netns/<name> (O_RDONLY | O_CLOEXEC) for setns().
Result<UniqueFd> openNetns(const std::string& name);

// Makes /run/netns a shared mount point like iproute2 does, so namespace
// mounts propagate into mount namespaces made by `ip netns exec`.
Result<void> prepareNetnsRunDir();
// On the calling thread: creates /run/netns/<name> exclusively (fails if it
// exists), unshare(CLONE_NEWNET) and bind-mounts the new namespace there.
// The calling thread stays in the new namespace. Use a throw-away thread.
Result<void> createNetnsOnThisThread(const std::string& name);
// umount2(MNT_DETACH) + unlink of /run/netns/<name>, and removal of
// /etc/netns/<name>. Missing pieces are not errors.
Result<void> deleteNetns(const std::string& name);
// SIGKILLs every process (other than this one) whose network namespace is
// one of `names`, and waits up to `timeout_ms` for them to be gone.
void killProcessesIn(const std::vector<std::string>& names, int timeout_ms);

// Writes value to a /proc/sys path in the calling thread's namespace.
Result<void> writeProcSys(const std::string& path, const std::string& value);
// Reads the first line of a file (for /proc/sys).
Result<std::string> readFirstLine(const std::string& path);
// Writes a whole file atomically (temp file + rename), mode 0644.
Result<void> writeFileAtomically(const std::string& path, const std::string& content);
// Removes a directory tree; missing is fine.
void removeTree(const std::string& path);

// Resolves a program name through PATH, then /usr/local/sbin, /usr/sbin,
// /sbin; a name with '/' is returned as is when executable. "" if not found.
std::string findExecutable(const std::string& name);

std::string errnoText(int err);

}  // namespace tollgate::harness::internal
