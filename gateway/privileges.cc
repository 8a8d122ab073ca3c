#include "gateway/privileges.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "base/handles.h"

namespace tollgate::gateway {
namespace {

// The only capability the daemon uses after start-up (see privileges.h).
constexpr cap_value_t kKept[] = {CAP_NET_ADMIN};

// `err` is errno saved right after the failed call: building `what` may
// call functions that change errno.
std::string errnoText(int err, const std::string& what) { return what + ": " + std::strerror(err); }

bool isKept(cap_value_t cap) {
  for (cap_value_t k : kKept) {
    if (k == cap) {
      return true;
    }
  }
  return false;
}

std::string capName(cap_value_t cap) {
  CapText name(cap_to_name(cap));
  return name ? std::string(name.get()) : "cap_" + std::to_string(cap);
}

// "Threads:" of /proc/self/status; 0 if it cannot be read.
int threadCount() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) {
      return std::atoi(line.c_str() + 8);
    }
  }
  return 0;
}

struct Account {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

Result<Account> lookUpUser(const std::string& user) {
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? static_cast<size_t>(hint) : 16384);
  while (true) {
    passwd pw{};
    passwd* found = nullptr;
    int rc = getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0) {
      return makeError("gateway.user: cannot look up user '" + user + "': " + std::strerror(rc));
    }
    if (found == nullptr) {
      return makeError("gateway.user: no such user '" + user +
                       "' (create a system user for tollgate, e.g. `useradd --system "
                       "--no-create-home --shell /usr/sbin/nologin " +
                       user + "`)");
    }
    return Account{user, pw.pw_uid, pw.pw_gid};
  }
}

// Raises RLIMIT_MEMLOCK to kLockedMemoryLimit where allowed (raising the hard
// limit needs CAP_SYS_RESOURCE), else the soft limit to the hard one. Best
// effort: a SecretBuffer that cannot be locked records it, it does not fail.
// Returns the soft limit now in force.
rlim_t raiseLockedMemoryLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
    return 0;
  }
  auto atLeast = [](rlim_t v) {
    return v == RLIM_INFINITY || v >= kLockedMemoryLimit ? v
                                                         : static_cast<rlim_t>(kLockedMemoryLimit);
  };
  rlimit want{atLeast(rl.rlim_cur), atLeast(rl.rlim_max)};
  if (want.rlim_cur != rl.rlim_cur || want.rlim_max != rl.rlim_max) {
    if (setrlimit(RLIMIT_MEMLOCK, &want) == 0) {
      return want.rlim_cur;
    }
    rlimit soft{rl.rlim_max, rl.rlim_max};
    if (rl.rlim_cur != rl.rlim_max && setrlimit(RLIMIT_MEMLOCK, &soft) == 0) {
      return soft.rlim_cur;
    }
  }
  return rl.rlim_cur;
}

std::string sizeText(rlim_t v) {
  return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v >> 20) + " MiB";
}

bool holds(cap_value_t cap) {
  CapPtr now(cap_get_proc());
  cap_flag_value_t v = CAP_CLEAR;
  return now && cap_get_flag(now.get(), cap, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET;
}

// Bounding set = kept set, so no later execve (or file capability) can bring
// anything else back.
Result<void> clearBoundingSet() {
  for (cap_value_t c = 0; c < cap_max_bits(); ++c) {
    if (isKept(c) || cap_get_bound(c) != 1) {
      continue;
    }
    if (cap_drop_bound(c) != 0) {
      const int err = errno;
      return makeError(errnoText(err, "cannot drop " + capName(c) + " from the bounding set"));
    }
  }
  return {};
}

// Effective = permitted = `kept`; inheritable and ambient empty.
Result<void> setCapabilities(const std::vector<cap_value_t>& kept) {
  CapPtr caps(cap_init());
  if (!caps) {
    const int err = errno;
    return makeError(errnoText(err, "cap_init"));
  }
  if (!kept.empty()) {
    if (cap_set_flag(caps.get(), CAP_PERMITTED, static_cast<int>(kept.size()), kept.data(),
                     CAP_SET) != 0 ||
        cap_set_flag(caps.get(), CAP_EFFECTIVE, static_cast<int>(kept.size()), kept.data(),
                     CAP_SET) != 0) {
      const int err = errno;
      return makeError(errnoText(err, "cap_set_flag"));
    }
  }
  if (cap_set_proc(caps.get()) != 0) {
    const int err = errno;
    return makeError(errnoText(err, "cannot set capabilities (cap_set_proc)"));
  }
  if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() != 0) {
    const int err = errno;
    return makeError(errnoText(err, "cannot clear the ambient capabilities"));
  }
  return {};
}

Result<void> switchUser(const Account& account) {
  // Permitted capabilities survive the uid change only with KEEPCAPS; the
  // effective set is emptied by the kernel and rebuilt by setCapabilities().
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
    const int err = errno;
    return makeError(errnoText(err, "prctl(PR_SET_KEEPCAPS)"));
  }
  if (setgroups(0, nullptr) != 0) {
    const int err = errno;
    return makeError(errnoText(err, "cannot drop supplementary groups (setgroups)"));
  }
  if (setresgid(account.gid, account.gid, account.gid) != 0) {
    const int err = errno;
    return makeError(errnoText(err, "cannot switch to gid " + std::to_string(account.gid)));
  }
  if (setresuid(account.uid, account.uid, account.uid) != 0) {
    const int err = errno;
    return makeError(errnoText(err, "cannot switch to user " + account.name));
  }
  (void)prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  return {};
}

// What the kernel now says, not what we asked for.
Result<void> verify(const std::optional<Account>& account, const std::vector<cap_value_t>& kept) {
  if (account) {
    uid_t r = 0, e = 0, s = 0;
    gid_t rg = 0, eg = 0, sg = 0;
    if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0 || r != account->uid ||
        e != account->uid || s != account->uid || rg != account->gid || eg != account->gid ||
        sg != account->gid || getgroups(0, nullptr) != 0) {
      return makeError("user and groups are not what was set");
    }
    if (account->uid != 0 && setuid(0) == 0) {
      return makeError("setuid(0) still succeeds after dropping to " + account->name);
    }
  }
  CapPtr now(cap_get_proc());
  if (!now) {
    const int err = errno;
    return makeError(errnoText(err, "cap_get_proc"));
  }
  for (cap_value_t c = 0; c < cap_max_bits(); ++c) {
    bool want = std::find(kept.begin(), kept.end(), c) != kept.end();
    for (cap_flag_t flag : {CAP_EFFECTIVE, CAP_PERMITTED, CAP_INHERITABLE}) {
      cap_flag_value_t v = CAP_CLEAR;
      if (cap_get_flag(now.get(), c, flag, &v) != 0) {
        const int err = errno;
        return makeError(errnoText(err, "cap_get_flag"));
      }
      bool expected = want && flag != CAP_INHERITABLE;
      if ((v == CAP_SET) != expected) {
        return makeError(capName(c) + " is " + (v == CAP_SET ? "still" : "not") +
                         " in a capability set after the drop");
      }
    }
  }
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return makeError("no_new_privs or dumpable is not what was set");
  }
  return {};
}

Result<std::optional<Account>> targetAccount(const std::optional<std::string>& user) {
  if (!user) {
    return std::optional<Account>();
  }
  auto a = lookUpUser(*user);
  if (!a) {
    return a.error();
  }
  if (geteuid() != 0) {
    return makeError("gateway.user: switching to user '" + *user +
                     "' needs tollgate to start as root");
  }
  return std::optional<Account>(*a);
}

}  // namespace

Result<void> checkPrivilegeDrop(const std::optional<std::string>& user) {
  if (auto a = targetAccount(user); !a) {
    return a.error();
  }
  return {};
}

Result<DropOutcome> dropPrivileges(const PrivilegeDrop& spec) {
  if (int n = threadCount(); n != 1) {
    return makeError("privileges must be dropped while tollgate has one thread (it has " +
                     std::to_string(n) + "): capabilities are per thread");
  }
  auto target = targetAccount(spec.user);
  if (!target) {
    return target.error();
  }
  const std::optional<Account> account = *target;
  DropOutcome out;

  // Keep only what the process actually holds: asking for more would fail.
  std::vector<cap_value_t> kept;
  {
    CapPtr now(cap_get_proc());
    if (!now) {
      const int err = errno;
      return makeError(errnoText(err, "cap_get_proc"));
    }
    for (cap_value_t c : kKept) {
      cap_flag_value_t v = CAP_CLEAR;
      if (cap_get_flag(now.get(), c, CAP_PERMITTED, &v) == 0 && v == CAP_SET) {
        kept.push_back(c);
      } else {
        out.warnings.push_back(capName(c) +
                               " was not held at start; stopping (on_exit) and "
                               "reload cannot change nftables");
      }
    }
  }

  const rlim_t memlock = raiseLockedMemoryLimit();

  if (account) {
    for (const std::string& path : spec.hand_over) {
      if (path.empty() || path == "-") {
        continue;
      }
      if (fchownat(AT_FDCWD, path.c_str(), account->uid, account->gid, AT_SYMLINK_NOFOLLOW) != 0) {
        const int err = errno;
        return makeError(errnoText(err, "cannot give " + path + " to user " + account->name));
      }
    }
  }

  // Dropping from the bounding set needs CAP_SETPCAP. Switching users needs
  // root anyway; a start without root and without it keeps its bounding set.
  bool bounding_cleared = account.has_value() || holds(CAP_SETPCAP);
  if (bounding_cleared) {
    if (auto r = clearBoundingSet(); !r) {
      return r.error();
    }
  } else {
    out.warnings.push_back(
        "the capability bounding set is unchanged: clearing it needs "
        "CAP_SETPCAP");
  }
  if (account) {
    if (auto r = switchUser(*account); !r) {
      return r.error();
    }
  }
  if (auto r = setCapabilities(kept); !r) {
    return r.error();
  }
  // A uid change resets dumpable (to fs.suid_dumpable): say it again.
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    const int err = errno;
    return makeError(errnoText(err, "prctl(PR_SET_DUMPABLE, 0)"));
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    const int err = errno;
    return makeError(errnoText(err, "prctl(PR_SET_NO_NEW_PRIVS, 1)"));
  }
  if (auto r = verify(account, kept); !r) {
    return makeError("privilege drop did not take: " + r.message());
  }

  for (const std::string& path : spec.reread) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      const int err = errno;
      out.warnings.push_back(path + " is not readable after the privilege drop (" +
                             std::strerror(err) + "): reload will fail until it is readable by " +
                             (account ? "user " + account->name : "this process"));
    }
  }

  std::string caps;
  for (cap_value_t c : kept) {
    caps += (caps.empty() ? "" : ",") + capName(c);
  }
  if (caps.empty()) {
    caps = "none";
  }
  out.summary = (account ? "privileges dropped: now user " + account->name + " (uid " +
                               std::to_string(account->uid) + ", gid " +
                               std::to_string(account->gid) + ", no supplementary groups)"
                         : "privileges dropped: staying uid " + std::to_string(getuid()) +
                               " (gateway.user not set)") +
                "; capabilities kept: " + caps + " (every other one dropped" +
                (bounding_cleared ? ", bounding set too" : "") +
                "); no_new_privs; not dumpable; locked-memory limit " + sizeText(memlock);
  return out;
}

}  // namespace tollgate::gateway
