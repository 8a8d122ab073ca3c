// mitm/ owns everything after a `mitm` (or `http-403`) decision; this header:
// how a session toward a sandbox ended, as one enum the gateway
// switches on (counters, logs), and the one table that names each outcome
// for the audit `reason` field. The names are a stable contract (tests and
// operators rely on them).
#pragma once

#include <cstdint>
#include <string_view>

namespace tollgate::mitm {

enum class Outcome : uint8_t {
  kClean,                        // ""  (the connection ended normally)
  kClientTlsTimeout,             // client_tls_timeout
  kClientClosedDuringHandshake,  // client_closed_during_handshake
  kClientRejectedCertificate,    // client_rejected_certificate (does not trust the CA)
  kClientTlsFailed,              // client_tls_failed
  kClientError,                  // client_error
  kUpstreamConnectFailed,        // upstream_connect_failed
  kUpstreamTlsFailed,            // upstream_tls_failed
  kUpstreamCertInvalid,          // upstream_cert_invalid
  kUpstreamTlsTimeout,           // upstream_tls_timeout
  kUpstreamClosed,               // upstream_closed
  kIdleTimeout,                  // idle_timeout
  kLeafMintFailed,               // leaf_mint_failed
  kInternalError,                // internal_error
  // Tollgate answered a request itself (403, 421, 502 ...) or a peer broke
  // HTTP: the reason is the one the answer or the parser named (mitm/http1.h,
  // mitm/credentials.h, or the gateway's upstream error), kept as detail.
  kAnswered,
};

// The audit reason of `o`; for kAnswered, `detail`.
std::string_view reasonName(Outcome o, std::string_view detail = {});

// The upstream TLS handshake failed (counted as mitm_upstream_failed).
inline bool isUpstreamFailure(Outcome o) {
  return o == Outcome::kUpstreamCertInvalid || o == Outcome::kUpstreamTlsFailed;
}

}  // namespace tollgate::mitm
