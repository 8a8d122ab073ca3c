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

void labeled(std::string& out, std::string_view name, std::string_view help,
             const LabeledCounter& c) {
  family(out, name, "counter", help);
  for (const auto& [labels, n] : c.snapshot()) {
    sample(out, name, labels, static_cast<double>(n));
  }
}

void histogram(std::string& out, std::string_view name, std::string_view labels,
               const Histogram& h) {
  Histogram::Snapshot s = h.snapshot();
  std::string prefix = labels.empty() ? std::string() : std::string(labels) + ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    cumulative += s.buckets[i];
    sample(out, std::string(name) + "_bucket",
           prefix + fmt::format("le=\"{}\"", Histogram::kBounds[i]), static_cast<double>(cumulative));
  }
  cumulative += s.buckets.back();
  sample(out, std::string(name) + "_bucket", prefix + "le=\"+Inf\"", static_cast<double>(cumulative));
  sample(out, std::string(name) + "_sum", labels, s.sum_seconds);
  sample(out, std::string(name) + "_count", labels, static_cast<double>(s.count));
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
  family(out, "tollgate_idle_timeouts_total", "counter",
         "Relayed flows closed after gateway.idle_timeout_s without a byte either way.");
  sample(out, "tollgate_idle_timeouts_total", "", v(Counter::kIdleTimeouts));
  family(out, "tollgate_accept_pauses_total", "counter",
         "Times a worker paused accepting because tollgate ran out of file descriptors "
         "(EMFILE/ENFILE).");
  sample(out, "tollgate_accept_pauses_total", "", v(Counter::kAcceptPauses));
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
  family(out, "tollgate_http_exchanges_total", "counter",
         "HTTP exchanges inside MITM flows (requests answered or relayed).");
  sample(out, "tollgate_http_exchanges_total", "", v(Counter::kHttpExchanges));
  family(out, "tollgate_mitm_failures_total", "counter",
         "MITM flows that failed TLS: the upstream (unverified or unreachable), or the sandbox "
         "rejecting the leaf (it does not trust tollgate's CA).");
  sample(out, "tollgate_mitm_failures_total", "side=\"upstream\"", v(Counter::kMitmUpstreamFailed));
  sample(out, "tollgate_mitm_failures_total", "side=\"sandbox\"",
         v(Counter::kMitmClientRejectedCert));
  if (s.upstream_tls) {
    family(out, "tollgate_upstream_tls_resumed_total", "counter",
           "Upstream TLS handshakes (MITM) that resumed a cached session.");
    sample(out, "tollgate_upstream_tls_resumed_total", "",
           static_cast<double>(s.upstream_tls->resumed));
    family(out, "tollgate_upstream_tls_sessions", "gauge",
           "Upstream TLS sessions cached for resumption.");
    sample(out, "tollgate_upstream_tls_sessions", "",
           static_cast<double>(s.upstream_tls->sessions_cached));
  }
  if (s.stats) {
    labeled(out, "tollgate_sandbox_flows_total",
            "Flows by sandbox, action and reason, counted when they end.", s.stats->flows);
    labeled(out, "tollgate_sandbox_bytes_total", "Bytes relayed by sandbox and direction.",
            s.stats->bytes);
    labeled(out, "tollgate_credential_injections_total",
            "Requests a real credential was injected into, by credential name.",
            s.stats->injections);
    labeled(out, "tollgate_limit_refusals_total",
            "Flows refused by a per-sandbox limit, by sandbox and limit (flows, mitm_flows; "
            "deny_leaves: a denial answered with the TLS alert instead of an HTTP 403).",
            s.stats->limits);
    labeled(out, "tollgate_sandbox_dns_queries_total",
            "Sandbox DNS queries by sandbox, verdict (action) and reason.", s.stats->dns);
    family(out, "tollgate_upstream_connect_seconds", "histogram",
           "Time to establish the TCP connection to the upstream.");
    histogram(out, "tollgate_upstream_connect_seconds", "", s.stats->upstream_connect);
    family(out, "tollgate_mitm_handshake_seconds", "histogram",
           "MITM TLS handshakes, from the decision to the handshake's end, by side.");
    histogram(out, "tollgate_mitm_handshake_seconds", "side=\"sandbox\"",
              s.stats->sandbox_handshake);
    histogram(out, "tollgate_mitm_handshake_seconds", "side=\"upstream\"",
              s.stats->upstream_handshake);
  }
  if (s.binding_drops) {
    family(out, "tollgate_binding_drops_total", "counter",
           "Packets and frames dropped by sandboxes[].ports, by sandbox and check (source: a "
           "foreign source or ARP sender from its bridge port; neighbour: a neighbour "
           "advertisement for a foreign address; routed_source: a foreign source from its routed "
           "port; foreign_port: its source from a port not its own).");
    for (const MetricsSnapshot::BindingDrop& d : *s.binding_drops) {
      sample(out, "tollgate_binding_drops_total",
             promLabels({{"sandbox", d.sandbox}, {"check", d.check}}),
             static_cast<double>(d.packets));
    }
  }
  if (s.limits) {
    auto open = [&](std::string_view name, std::string_view help, const FlowSlots& slots) {
      family(out, name, "gauge", help);
      for (const auto& [sandbox, n] : slots.snapshot()) {
        sample(out, name, promLabels({{"sandbox", sandbox.empty() ? "none" : sandbox}}),
               static_cast<double>(n));
      }
    };
    open("tollgate_sandbox_flows_open",
         "TCP flows open now by sandbox (limit: gateway.max_flows_per_sandbox).", s.limits->flows);
    open("tollgate_sandbox_mitm_flows_open",
         "MITM sessions open now by sandbox (limit: gateway.max_mitm_flows_per_sandbox).",
         s.limits->mitm_flows);
  }
  family(out, "tollgate_reloads_total", "counter", "Configuration reloads by result.");
  sample(out, "tollgate_reloads_total", "result=\"ok\"", static_cast<double>(s.reloads_ok));
  sample(out, "tollgate_reloads_total", "result=\"failed\"", static_cast<double>(s.reloads_failed));
  family(out, "tollgate_uptime_seconds", "gauge", "Seconds since tollgate became ready.");
  sample(out, "tollgate_uptime_seconds", "", s.uptime_seconds);
  return out;
}

}  // namespace tollgate::gateway
