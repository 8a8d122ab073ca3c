#include "gateway/metrics.h"

#include <fmt/format.h>

namespace tollgate::gateway {
namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, std::string_view name, std::string_view labels, double v) {
  if (labels.empty()) {
    out += fmt::format("{} {}\n", name, v);
  } else {
    out += fmt::format("{}{{{}}} {}\n", name, labels, v);
  }
}

}  // namespace

std::string renderMetrics(const MetricsSnapshot& s) {
  const Counters& c = *s.counters;
  auto v = [&](Counter k) { return static_cast<double>(c.get(k)); };
  std::string out;
  family(out, "tollgate_flows_total", "counter", "TCP flows accepted from sandboxes.");
  sample(out, "tollgate_flows_total", "", v(Counter::kFlowsAccepted));
  family(out, "tollgate_flows_active", "gauge", "TCP flows open now.");
  sample(out, "tollgate_flows_active", "", v(Counter::kFlowsActive));
  family(out, "tollgate_decisions_total", "counter", "Policy decisions by action.");
  sample(out, "tollgate_decisions_total", "action=\"passthrough\"", v(Counter::kDecisionPassthrough));
  sample(out, "tollgate_decisions_total", "action=\"deny\"", v(Counter::kDecisionDeny));
  sample(out, "tollgate_decisions_total", "action=\"mitm\"", v(Counter::kDecisionMitm));
  family(out, "tollgate_decided_at_accept_total", "counter",
         "Flows decided without waiting for client bytes (name-independent destinations).");
  sample(out, "tollgate_decided_at_accept_total", "", v(Counter::kDecidedEarly));
  family(out, "tollgate_peeks_total", "counter", "First bytes of flows, by what they were.");
  sample(out, "tollgate_peeks_total", "result=\"tls\"", v(Counter::kPeekTls));
  sample(out, "tollgate_peeks_total", "result=\"http\"", v(Counter::kPeekHttp));
  sample(out, "tollgate_peeks_total", "result=\"opaque\"", v(Counter::kPeekOpaque));
  sample(out, "tollgate_peeks_total", "result=\"invalid\"", v(Counter::kPeekInvalid));
  sample(out, "tollgate_peeks_total", "result=\"timeout\"", v(Counter::kPeekTimeout));
  family(out, "tollgate_sni_missing_total", "counter", "TLS flows without SNI.");
  sample(out, "tollgate_sni_missing_total", "", v(Counter::kSniMissing));
  family(out, "tollgate_upstream_failures_total", "counter",
         "Allowed flows that could not be served, by cause.");
  sample(out, "tollgate_upstream_failures_total", "cause=\"resolve\"", v(Counter::kResolveFailed));
  sample(out, "tollgate_upstream_failures_total", "cause=\"deny_cidrs\"", v(Counter::kUpstreamDenied));
  sample(out, "tollgate_upstream_failures_total", "cause=\"connect\"",
         v(Counter::kUpstreamConnectFailed));
  family(out, "tollgate_relay_errors_total", "counter", "Relays ended by a reset or error.");
  sample(out, "tollgate_relay_errors_total", "", v(Counter::kRelayErrors));
  family(out, "tollgate_bytes_total", "counter", "Bytes relayed, by direction (up = to upstream).");
  sample(out, "tollgate_bytes_total", "direction=\"up\"", v(Counter::kBytesUp));
  sample(out, "tollgate_bytes_total", "direction=\"down\"", v(Counter::kBytesDown));
  family(out, "tollgate_dns_queries_total", "counter", "Sandbox DNS queries by verdict.");
  sample(out, "tollgate_dns_queries_total", "verdict=\"answered\"", v(Counter::kDnsAnswered));
  sample(out, "tollgate_dns_queries_total", "verdict=\"refused\"", v(Counter::kDnsRefused));
  family(out, "tollgate_udp_admissions_total", "counter",
         "UDP flows and ICMP echo requests decided through NFQUEUE, by verdict.");
  sample(out, "tollgate_udp_admissions_total", "verdict=\"admitted\"", v(Counter::kUdpAdmitted));
  sample(out, "tollgate_udp_admissions_total", "verdict=\"denied\"", v(Counter::kUdpDenied));
  if (s.leaves) {
    family(out, "tollgate_leaf_cache_total", "counter", "Leaf certificate cache look-ups.");
    sample(out, "tollgate_leaf_cache_total", "result=\"hit\"", static_cast<double>(s.leaves->hits));
    sample(out, "tollgate_leaf_cache_total", "result=\"miss\"",
           static_cast<double>(s.leaves->misses));
    family(out, "tollgate_leaf_cache_entries", "gauge", "Leaf certificates cached.");
    sample(out, "tollgate_leaf_cache_entries", "", static_cast<double>(s.leaves->entries));
  }
  family(out, "tollgate_reloads_total", "counter", "Configuration reloads by result.");
  sample(out, "tollgate_reloads_total", "result=\"ok\"", static_cast<double>(s.reloads_ok));
  sample(out, "tollgate_reloads_total", "result=\"failed\"", static_cast<double>(s.reloads_failed));
  family(out, "tollgate_uptime_seconds", "gauge", "Seconds since tollgate became ready.");
  sample(out, "tollgate_uptime_seconds", "", s.uptime_seconds);
  return out;
}

}  // namespace tollgate::gateway
