// Prometheus text exposition (format 0.0.4) of tollgate's counters. Pure:
// the daemon serves the string on gateway.metrics (loopback or a unix
// socket, never an address sandboxes can reach).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ca/ca.h"
#include "gateway/counters.h"
#include "gateway/limits.h"
#include "gateway/stats.h"

namespace tollgate::gateway {

struct MetricsSnapshot {
  const Counters* counters = nullptr;
  std::optional<ca::LeafStats> leaves;  // when tollgate's CA is loaded
  double uptime_seconds = 0;
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  struct UpstreamTlsStats {
    uint64_t sessions_cached = 0;
    uint64_t resumed = 0;
  };
  std::optional<UpstreamTlsStats> upstream_tls;  // when some rule is mitm
  const Stats* stats = nullptr;                  // labelled counters and histograms
  // Drops by sandboxes[].ports since start, per sandbox and check
  // ("source", "neighbour", "routed_source", "foreign_port"; see
  // nat/binding_counters.h). Absent: no sandbox has or had ports.
  struct BindingDrop {
    std::string sandbox;
    std::string check;
    uint64_t packets = 0;
  };
  std::optional<std::vector<BindingDrop>> binding_drops = std::nullopt;
  const SandboxLimits* limits = nullptr;  // flows open per sandbox, against their limits
};

std::string renderMetrics(const MetricsSnapshot& s);

}  // namespace tollgate::gateway
