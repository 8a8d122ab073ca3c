#include "mitm/outcome.h"

namespace tollgate::mitm {

std::string_view reasonName(Outcome o, std::string_view detail) {
  switch (o) {
    case Outcome::kClean:
      return "";
    case Outcome::kClientTlsTimeout:
      return "client_tls_timeout";
    case Outcome::kClientClosedDuringHandshake:
      return "client_closed_during_handshake";
    case Outcome::kClientRejectedCertificate:
      return "client_rejected_certificate";
    case Outcome::kClientTlsFailed:
      return "client_tls_failed";
    case Outcome::kClientError:
      return "client_error";
    case Outcome::kUpstreamConnectFailed:
      return "upstream_connect_failed";
    case Outcome::kUpstreamTlsFailed:
      return "upstream_tls_failed";
    case Outcome::kUpstreamCertInvalid:
      return "upstream_cert_invalid";
    case Outcome::kUpstreamTlsTimeout:
      return "upstream_tls_timeout";
    case Outcome::kUpstreamClosed:
      return "upstream_closed";
    case Outcome::kIdleTimeout:
      return "idle_timeout";
    case Outcome::kLeafMintFailed:
      return "leaf_mint_failed";
    case Outcome::kInternalError:
      return "internal_error";
    case Outcome::kAnswered:
      return detail;
  }
  return "internal_error";
}

}  // namespace tollgate::mitm
