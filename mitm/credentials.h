// mitm/ owns everything after a `mitm` (or `http-403`) decision; this header:
// The credential rewriter (DESIGN.md "Credential semantics"): swaps the
// placeholders a sandbox holds for real values in a request (a protocol-neutral
// view: method, target, authority, header list), and
// refuses a request that carries a placeholder anywhere a value may not go.
// Pure: no I/O; table-tested.
//
// For each credential, in table order, the credential *applies* to a request
// when all of these hold (otherwise Refused::detail starts with the first that fails):
//   attached      ctx.attached is null or lists the credential's name (the
//                 matched rule's `credentials:`)           else "not_attached"
//   in scope      a scope matcher accepts ctx.host         else "out_of_scope"
//   verified TLS  ctx.upstream_verified_tls                else "cleartext_upstream"
//   same host     the request's own authority (Host, or absolute-form) names
//                 ctx.host, or the request has none (HTTP/1.0)
//                                                          else "host_mismatch"
//   a value       the SecretBuffer is set and non-empty    else "no_value"
//
// Detection runs first, over the head as received: every occurrence of every
// credential's placeholder in the method, the request-target (raw, and once
// percent-decoded: an encoded placeholder is still a placeholder), every
// field name and every field value. An occurrence is allowed only
//   - in the value of a field named inject_header of a credential that applies;
//   - in the raw value of a query parameter named inject_query of a credential
//     that applies.
// Any other occurrence refuses the whole request (nothing is injected):
// Refused{reason "credential_scope_violation", credential, detail}. The
// engine answers 403 and audits the reason; `detail` is for the debug log
// (it names a place and a cause, never a value).
//
// Injection, for each credential that applies:
//   inject_header: every placeholder occurrence in every field of that name is
//     replaced by the value; if no such field exists, one is appended with
//     `format` ("{value}" replaced). A field present without the placeholder
//     is left alone (the sandbox's own credential), and the credential is not
//     counted as injected.
//   inject_query: in every parameter of that name, placeholder occurrences
//     are replaced by the percent-encoded value (RFC 3986 §2.1, everything but
//     unreserved encoded); if there is no such parameter, "name=value" is
//     appended to the query. Asterisk-form requests get nothing.
// When anything was injected, Accept-Encoding is set to "identity" so the
// response body can be scrubbed (identity_encoding), and Range / If-Range
// are removed (range_removed): an echoing upstream could otherwise return
// the secret in slices too short to recognise, one request at a time; the
// sandbox gets the whole (scrubbed) representation, 200 instead of 206.
//
// Secrets in the head: after injection, field values / the target hold real
// values in ordinary heap strings. The engine serialises the head straight
// into a SecretBuffer (serializeTo) and calls wipeSecrets(head) at once.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "base/secret.h"
#include "mitm/http1.h"
#include "mitm/scrubber.h"

namespace tollgate::mitm {

// Decides whether a normalised host name (normalizeHostName form) is in
// a credential's scope. The gateway passes its HostPattern::matches.
using HostMatcher = std::function<bool(std::string_view normalized_host)>;

struct CredentialSpec {
  std::string name;
  // What the sandbox holds: 1+ bytes of [A-Za-z0-9._~-] (the config requires
  // >= 24), unique, and no placeholder a substring of another.
  std::string placeholder;
  std::vector<HostMatcher> scope;  // in scope when any matcher accepts
  std::string inject_header;       // exactly one of inject_header / inject_query
  std::string inject_query;
  std::string format = "{value}";       // header text when the header is absent
  const SecretBuffer* value = nullptr;  // not owned; outlives the request and its scrubber
};

struct RewriteContext {
  std::string_view host;               // the name the upstream connection is for
  bool upstream_verified_tls = false;  // TLS to the upstream, certificate verified for `host`
  // The matched rule's `credentials:` names; nullptr: every credential may apply.
  const std::vector<std::string>* attached = nullptr;
};

struct Injected {
  std::vector<std::string> credentials;  // names injected, table order: audit `credentials`
  bool identity_encoding = false;        // Accept-Encoding was set to identity
  bool range_removed = false;            // Range / If-Range were dropped
  // For the response Scrubber: each injected value and every encoded form
  // of it (addScrubForms) -> placeholder. Views into the specs'
  // SecretBuffers and into `derived`.
  std::vector<ScrubPair> scrub;
  std::vector<SecretBuffer> derived;  // owns encoded forms referenced by `scrub`
};

struct Refused {
  std::string reason;      // "credential_scope_violation" (audit reason)
  std::string credential;  // the credential's name
  std::string detail;      // e.g. "out_of_scope: header X-Api-Key", "wrong_place: target"
};

using RewriteOutcome = std::variant<Injected, Refused>;

// A request as the rewriter sees it, whatever the protocol carried it: an
// HTTP/1.1 head (viewOf) or, for an HTTP/2 stream, :method, :path (target,
// origin-form), :authority and the regular fields. The rewriter edits
// `target` and `headers` in place; `method`, `form` and `authority` are read.
struct RequestView {
  std::string_view method;
  std::string& target;
  TargetForm form = TargetForm::Origin;
  std::optional<HostPort> authority;  // Host / :authority; nullopt: none sent
  Headers& headers;
};
RequestView viewOf(RequestHead& head);

// Rewrites `request` in place (on Refused it is left untouched). See above.
[[nodiscard]] RewriteOutcome rewriteCredentials(RequestView& request, const RewriteContext& ctx,
                                                std::span<const CredentialSpec> table);
// The same on an HTTP/1.1 head (through viewOf).
[[nodiscard]] RewriteOutcome rewriteCredentials(RequestHead& head, const RewriteContext& ctx,
                                                std::span<const CredentialSpec> table);

// Config-time check of a real value before it is put in a SecretBuffer:
// non-empty; no CR, LF, NUL or other control byte (HTAB included: it would
// be trimmed from a header); no leading or trailing space; and not a
// substring of its placeholder nor containing it. A file source's one
// trailing "\n" (or "\r\n") is the loader's to strip. Error messages never
// hold value bytes.
Result<void> validateSecretValue(std::string_view value, std::string_view placeholder);

// Config-time check of a spec: placeholder alphabet, exactly one injection
// target (header a token and not one that frames or routes the message:
// Host, Content-Length, Transfer-Encoding, Connection, Upgrade, Expect, ...;
// query name 1+ bytes of [A-Za-z0-9._~-]), a non-empty scope, format with
// exactly one "{value}" and no control byte. The one validator of these
// rules: the config loader calls the field checks below, each error at its
// own line; messages hold no placeholder or value bytes.
Result<void> validateCredentialSpec(const CredentialSpec& spec);
// 1+ characters of [A-Za-z0-9._~-] (the loader also bounds the length).
Result<void> checkPlaceholder(std::string_view placeholder);
// A token (RFC 9110 §5.1) and none of the fields that frame, route or steer
// the message (kReservedInjectHeaders, compared without case).
Result<void> checkInjectHeader(std::string_view name);
// 1+ characters of [A-Za-z0-9._~-].
Result<void> checkInjectQuery(std::string_view name);
// "{value}" exactly once, no control byte.
Result<void> checkInjectFormat(std::string_view format);

// Lower case. Host and the framing fields would let a placeholder steer
// request smuggling; the rest are rewritten by the engine itself.
inline constexpr std::string_view kReservedInjectHeaders[] = {
    "host",       "content-length", "transfer-encoding",
    "connection", "keep-alive",     "proxy-connection",
    "te",         "trailer",        "upgrade",
    "expect",     "accept-encoding"};

// Overwrites every string in the head (explicit_bzero) and clears it.
void wipeSecrets(RequestHead& head);

// The audit `http.path` of a request: head.path() (no query), or
// "<redacted>" when it holds a placeholder of the table, raw or
// percent-encoded (the audit log never carries placeholders).
std::string auditPath(const RequestHead& head, std::span<const CredentialSpec> table);
// True when `text` holds a placeholder of the table, raw or once
// percent-decoded (the test behind auditPath, for paths read elsewhere).
bool holdsPlaceholder(std::string_view text, std::span<const CredentialSpec> table);

}  // namespace tollgate::mitm
