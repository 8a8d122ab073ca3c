// Privilege drop at the end of start-up (DESIGN.md "Lifecycle": ... bind ->
// drop privileges -> ready).
//
// Everything that needs root is done before: the nftables table is in, every
// socket is bound, the CA key and the secrets are read, the audit log is
// open. What runs afterwards needs exactly one capability, CAP_NET_ADMIN:
// nftables batches on stop (on_exit) and reload, and NFQUEUE verdicts
// (nfnetlink checks it on every message). Not kept, on purpose:
//   CAP_NET_BIND_SERVICE  reload never binds: a change of listen_port,
//                         dns_port, metrics or control needs a restart;
//   CAP_NET_RAW           no raw or packet sockets; IP_TRANSPARENT (tproxy)
//                         is allowed by CAP_NET_ADMIN too;
//   CAP_IPC_LOCK          SecretBuffers are locked within RLIMIT_MEMLOCK,
//                         raised to kLockedMemoryLimit before the drop.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace tollgate::gateway {

// RLIMIT_MEMLOCK (soft and hard) after the drop, if it was lower: room for
// about 16k locked SecretBuffer pages without CAP_IPC_LOCK.
inline constexpr uint64_t kLockedMemoryLimit = 64ull << 20;

struct PrivilegeDrop {
  // gateway.user: switch to this user (and its primary group). Absent: stay
  // the starting user, with every capability but the kept one dropped.
  std::optional<std::string> user;
  // Files created as root during start-up that the daemon keeps reopening
  // (the audit log, on SIGUSR1): given to the user and its group. "-" and
  // "" are skipped. Ignored without `user`.
  std::vector<std::string> hand_over;
  // Files read again later (the config file on reload, secret files): after
  // the drop each is opened once, and one that is not readable any more is
  // reported in DropOutcome::warnings (reload would fail on it).
  std::vector<std::string> reread;
};

struct DropOutcome {
  std::string summary;                // one line for the log: what is left
  std::vector<std::string> warnings;  // each a complete sentence for the log
};

// The checks dropPrivileges() makes before changing anything: `user`, if
// set, exists and tollgate runs as root. For start-up, so a typo in
// gateway.user refuses to start before anything is installed.
Result<void> checkPrivilegeDrop(const std::optional<std::string>& user);

// Drops privileges for good. With `user`: supplementary groups cleared,
// gid and uid (real, effective, saved) set to the user's, capabilities
// carried across the uid change (PR_SET_KEEPCAPS) and then set to exactly
// the kept set. Either way: effective = permitted = kept set, inheritable
// and ambient empty, bounding set = kept set, PR_SET_NO_NEW_PRIVS 1, and
// PR_SET_DUMPABLE 0 re-asserted (a uid change resets it). Checked
// afterwards: the ids, the capability sets, and that setuid(0) fails.
//
// Must be called while the process has one thread: credentials and
// capabilities are per thread in Linux; threads started afterwards inherit
// the dropped state. Fails with a message naming what went wrong (unknown
// user, not root, more than one thread, a failed system call); the process
// may then be half-dropped and must exit.
Result<DropOutcome> dropPrivileges(const PrivilegeDrop& spec);

}  // namespace tollgate::gateway
