#include "gateway/stats.h"

namespace tollgate::gateway {

void LabeledCounter::add(const std::string& labels, uint64_t n) {
  std::lock_guard lock(mu_);
  values_[labels] += n;
}

std::map<std::string, uint64_t> LabeledCounter::snapshot() const {
  std::lock_guard lock(mu_);
  return values_;
}

void SandboxCounters::flow(const std::string& sandbox, std::string_view action, uint64_t up,
                           uint64_t down) {
  std::lock_guard lock(mu_);
  SandboxTotals& t = totals_[sandbox];
  ++t.flows;
  if (action == "passthrough") {
    ++t.passthrough;
  } else if (action == "mitm") {
    ++t.mitm;
  } else if (action == "deny") {
    ++t.denied;
  }
  t.bytes_up += up;
  t.bytes_down += down;
}

void SandboxCounters::dns(const std::string& sandbox, bool answered) {
  std::lock_guard lock(mu_);
  SandboxTotals& t = totals_[sandbox];
  ++(answered ? t.dns_answered : t.dns_refused);
}

std::map<std::string, SandboxTotals> SandboxCounters::snapshot() const {
  std::lock_guard lock(mu_);
  return totals_;
}

void Histogram::observe(std::chrono::nanoseconds d) {
  double s = std::chrono::duration<double>(d).count();
  size_t i = 0;
  while (i < kBounds.size() && s > kBounds[i]) {
    ++i;
  }
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::max<int64_t>(d.count(), 0)),
                    std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
  }
  s.count = count_.load(std::memory_order_relaxed);
  s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

std::string promLabels(std::initializer_list<std::pair<const char*, std::string_view>> labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) {
      out += ',';
    }
    out += k;
    out += "=\"";
    for (char c : v) {
      if (c == '\\' || c == '"') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  return out;
}

}  // namespace tollgate::gateway
