// The daemon: lifecycle of `tollgate run` (DESIGN.md "Lifecycle").
//   start: config -> listeners bound on the interface addresses -> nftables
//   capture table (one batch, replacing a stale one) -> ready.
//   SIGHUP: reload policy for new flows; SIGUSR1: reopen the audit log;
//   SIGTERM/SIGINT: stop accepting, drain (bounded), then leave a blocking
//   table (on_exit: block) or remove it (on_exit: open).
#pragma once

#include <string>

namespace tollgate::gateway {

// Runs until stopped by a signal. Returns the process exit code.
int runDaemon(const std::string& config_path);

}  // namespace tollgate::gateway
