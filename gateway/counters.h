// A counter for every outcome, so metrics come for free and tests can assert
// outcomes rather than log text. Lock-free; shared by all workers.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace tollgate::gateway {

enum class Counter : size_t {
  kFlowsAccepted,
  kFlowsActive,  // gauge: incremented on accept, decremented at the end
  kDecisionPassthrough,
  kDecisionDeny,
  kDecisionMitm,
  kDecidedEarly,
  kPeekTls,
  kPeekHttp,
  kPeekOpaque,
  kPeekInvalid,
  kPeekTimeout,
  kSniMissing,
  kResolveFailed,
  kUpstreamDenied,
  kUpstreamConnectFailed,
  kRelayErrors,
  kBytesUp,
  kBytesDown,
  kDnsAnswered,
  kDnsRefused,
  kHttpExchanges,
  kCredentialInjections,
  kMitmUpstreamFailed,
  kMitmClientRejectedCert,
  kResolvedFromDnsAnswers,
  kUdpAdmitted,  // UDP flows / echo requests admitted through NFQUEUE
  kUdpDenied,    // queued packets dropped (denied, or not parseable)
  kLimitRefusals,  // flows refused, or answered with an alert, by a per-sandbox limit
  kAcceptPauses,   // listeners paused: out of file descriptors (EMFILE/ENFILE)
  kIdleTimeouts,   // relayed flows closed after gateway.idle_timeout_s without a byte
  kCount,
};

inline constexpr std::array<std::string_view, static_cast<size_t>(Counter::kCount)> kCounterNames =
    {
        "flows_accepted", "flows_active",    "decision_passthrough",
        "decision_deny",  "decision_mitm",   "decided_early",
        "peek_tls",       "peek_http",       "peek_opaque",
        "peek_invalid",   "peek_timeout",    "sni_missing",
        "resolve_failed", "upstream_denied", "upstream_connect_failed",
        "relay_errors",   "bytes_up",        "bytes_down",
        "dns_answered",   "dns_refused",     "http_exchanges",
        "credential_injections", "mitm_upstream_failed", "mitm_client_rejected_cert",
        "resolved_from_dns_answers", "udp_admitted", "udp_denied",
        "limit_refusals", "accept_pauses", "idle_timeouts",
};

class Counters {
 public:
  void add(Counter c, int64_t n = 1) {
    values_[static_cast<size_t>(c)].fetch_add(n, std::memory_order_relaxed);
  }
  int64_t get(Counter c) const {
    return values_[static_cast<size_t>(c)].load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<int64_t>, static_cast<size_t>(Counter::kCount)> values_{};
};

}  // namespace tollgate::gateway
