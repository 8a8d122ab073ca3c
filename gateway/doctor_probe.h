// `tollgate doctor`: the probing half. Reads /proc/sys, the kernel config,
// the interfaces, nftables (a netlink dump, read-only), the CA files and the
// control socket, and changes nothing. gateway/doctor.h turns the facts into
// findings.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "gateway/doctor.h"

namespace tollgate::gateway::doctor {

inline constexpr const char* kDefaultConfigPath = "/etc/tollgate/config.yaml";

struct ProbeOptions {
  std::string config_path = kDefaultConfigPath;
  bool config_given = false;  // --config was passed: a missing file is a failure
  // Bound on the control-socket exchange and on each netlink receive.
  std::chrono::milliseconds timeout{2000};
  // Where tollgate.service and its drop-ins are looked for (credential
  // checks); a test seam.
  std::vector<std::string> unit_dirs = {"/etc/systemd/system", "/run/systemd/system",
                                        "/usr/lib/systemd/system", "/lib/systemd/system"};
};

// Collects the facts of the calling thread's network namespace and the
// filesystem. Never fails: what cannot be read is left unset in HostFacts.
HostFacts probeHost(const ProbeOptions& options);

}  // namespace tollgate::gateway::doctor
