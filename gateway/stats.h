// Labelled counters and latency histograms for the Prometheus exposition:
// flows by sandbox/action/reason, bytes by sandbox and direction, credential
// injections by name, DNS answers by sandbox and verdict; handshake and
// upstream-connect latency. Thread-safe; cheap enough to update once per flow
// or exchange (a short mutex for labelled counters, atomics for histograms).
// Label values come from the config (sandbox and credential names) and from
// tollgate's own fixed reason strings, so cardinality stays bounded.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace tollgate::gateway {

class LabeledCounter {
 public:
  // `labels` is the Prometheus label set without braces, already escaped
  // (see promLabels()).
  void add(const std::string& labels, uint64_t n = 1);
  std::map<std::string, uint64_t> snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> values_;
};

// Fixed buckets (seconds), cumulative on render.
class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
  void observe(std::chrono::nanoseconds d);
  struct Snapshot {
    std::array<uint64_t, kBounds.size() + 1> buckets{};  // last: +Inf (not cumulative)
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot snapshot() const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

// Per-sandbox totals for `tollgate status`.
struct SandboxTotals {
  uint64_t flows = 0;
  uint64_t passthrough = 0;
  uint64_t mitm = 0;
  uint64_t denied = 0;
  uint64_t bytes_up = 0;
  uint64_t bytes_down = 0;
  uint64_t dns_answered = 0;
  uint64_t dns_refused = 0;
};

class SandboxCounters {
 public:
  void flow(const std::string& sandbox, std::string_view action, uint64_t up, uint64_t down);
  void dns(const std::string& sandbox, bool answered);
  std::map<std::string, SandboxTotals> snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, SandboxTotals> totals_;
};

struct Stats {
  SandboxCounters sandboxes;
  LabeledCounter flows;        // sandbox, action, reason
  LabeledCounter bytes;        // sandbox, direction
  LabeledCounter injections;   // credential
  LabeledCounter dns;          // sandbox, action, reason
  LabeledCounter limits;       // sandbox, limit: refusals by per-sandbox limits
  Histogram upstream_connect;  // TCP connect to the upstream
  Histogram sandbox_handshake; // MITM: TLS handshake with the sandbox
  Histogram upstream_handshake;  // MITM: TLS handshake with the upstream
};

// `k1="v1",k2="v2"` with values escaped per the exposition format.
std::string promLabels(std::initializer_list<std::pair<const char*, std::string_view>> labels);

}  // namespace tollgate::gateway
