#include "mitm/credentials.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "mitm/chars.h"

namespace tollgate::mitm {
namespace {

constexpr std::string_view kScopeViolation = "credential_scope_violation";
constexpr std::string_view kInternalError = "credential_internal_error";
constexpr std::string_view kValueToken = "{value}";
constexpr char kHex[] = "0123456789ABCDEF";

bool allUnreserved(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return chars::isUnreserved(static_cast<uint8_t>(c));
  });
}

// Why a credential does not apply to this request ("" when it does).
std::string_view whyNot(const CredentialSpec& c, const RequestView& head,
                        const RewriteContext& ctx) {
  if (ctx.attached != nullptr &&
      std::find(ctx.attached->begin(), ctx.attached->end(), c.name) == ctx.attached->end()) {
    return "not_attached";
  }
  const bool in_scope = std::any_of(c.scope.begin(), c.scope.end(),
                                    [&](const HostMatcher& m) { return m && m(ctx.host); });
  if (!in_scope) {
    return "out_of_scope";
  }
  if (!ctx.upstream_verified_tls) {
    return "cleartext_upstream";
  }
  // The request's own authority must name the host the connection was
  // verified for: otherwise a server hosting several names (a CDN) could be
  // asked, inside the verified session, to route the secret elsewhere.
  if (head.authority && (head.authority->host.is_ip || head.authority->host.name != ctx.host)) {
    return "host_mismatch";
  }
  if (c.value == nullptr || c.value->empty()) {
    return "no_value";
  }
  return {};
}

// RFC 3986 §2.1 percent-decoding, once. The parser has checked every "%"
// starts a valid triplet; a malformed one is copied as is.
std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = chars::hexValue(static_cast<uint8_t>(s[i + 1]));
      const int lo = chars::hexValue(static_cast<uint8_t>(s[i + 2]));
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// RFC 3986 §2.1: every byte but unreserved as "%" HEXDIG HEXDIG, written
// straight into secret memory.
Result<SecretBuffer> percentEncodeSecret(std::string_view value) {
  size_t n = 0;
  for (char c : value) {
    n += chars::isUnreserved(static_cast<uint8_t>(c)) ? 1 : 3;
  }
  auto buf = SecretBuffer::allocate(n);
  if (!buf) {
    return buf.error();
  }
  std::span<char> out = buf->writable();
  size_t pos = 0;
  for (char c : value) {
    const auto u = static_cast<uint8_t>(c);
    if (chars::isUnreserved(u)) {
      out[pos++] = c;
    } else {
      out[pos++] = '%';
      out[pos++] = kHex[u >> 4];
      out[pos++] = kHex[u & 0xf];
    }
  }
  return buf;
}

struct Range {
  size_t begin = 0;
  size_t end = 0;
};

// Query parameters of a request-target (RFC 3986 §3.4, split as
// application/x-www-form-urlencoded: "&" between pairs, "=" inside one).
struct QueryParam {
  Range name;
  Range value;  // empty at name.end when there is no "="
};

std::vector<QueryParam> queryParams(std::string_view target) {
  std::vector<QueryParam> out;
  const size_t q = target.find('?');
  if (q == std::string_view::npos) {
    return out;
  }
  size_t pos = q + 1;
  while (pos <= target.size()) {
    size_t end = target.find('&', pos);
    if (end == std::string_view::npos) {
      end = target.size();
    }
    const std::string_view pair = target.substr(pos, end - pos);
    const size_t eq = pair.find('=');
    QueryParam p;
    if (eq == std::string_view::npos) {
      p.name = {pos, end};
      p.value = {end, end};
    } else {
      p.name = {pos, pos + eq};
      p.value = {pos + eq + 1, end};
    }
    out.push_back(p);
    pos = end + 1;
  }
  return out;
}

std::vector<Range> allowedQueryRanges(std::string_view target, std::string_view param) {
  std::vector<Range> out;
  for (const QueryParam& p : queryParams(target)) {
    if (target.substr(p.name.begin, p.name.end - p.name.begin) == param) {
      out.push_back(p.value);
    }
  }
  return out;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Where a placeholder was found where it may not be, or "".
std::string findViolation(const CredentialSpec& c, bool applies, const RequestView& head) {
  const std::string_view p = c.placeholder;
  if (contains(head.method, p)) {
    return "method";
  }
  // Request-target: raw occurrences must lie inside an allowed query value.
  std::vector<Range> allowed;
  if (applies && !c.inject_query.empty()) {
    allowed = allowedQueryRanges(head.target, c.inject_query);
  }
  std::string scratch = head.target;
  for (size_t pos = head.target.find(p); pos != std::string::npos;
       pos = head.target.find(p, pos + 1)) {
    const bool inside = std::any_of(allowed.begin(), allowed.end(), [&](const Range& r) {
      return pos >= r.begin && pos + p.size() <= r.end;
    });
    if (!inside) {
      return "target";
    }
    // Mask the allowed occurrence: a placeholder holds no control byte, so
    // the mask cannot be part of an occurrence after decoding.
    std::fill_n(scratch.begin() + static_cast<std::ptrdiff_t>(pos), p.size(), '\x01');
  }
  if (contains(percentDecode(scratch), p)) {
    return "target (percent-encoded)";
  }
  for (const HeaderField& f : head.headers.fields) {
    if (contains(f.name, p)) {
      return "header name";  // the name itself holds the placeholder: not logged
    }
    if (!contains(f.value, p)) {
      continue;
    }
    if (!(applies && !c.inject_header.empty() &&
          chars::equalsIgnoreCase(f.name, c.inject_header))) {
      constexpr size_t kMaxLoggedName = 64;  // names come from the sandbox: bound the log line
      return "header " + f.name.substr(0, kMaxLoggedName);
    }
  }
  return {};
}

// `text` with every occurrence of `from` replaced by `to`, built in one
// allocation (so no partial copy of a secret is left behind by growth).
std::string replaceAll(std::string_view text, std::string_view from, std::string_view to) {
  size_t count = 0;
  for (size_t pos = text.find(from); pos != std::string_view::npos;
       pos = text.find(from, pos + from.size())) {
    ++count;
  }
  std::string out;
  out.reserve(text.size() - count * from.size() + count * to.size());
  size_t start = 0;
  for (size_t pos = text.find(from); pos != std::string_view::npos;
       pos = text.find(from, pos + from.size())) {
    out.append(text.substr(start, pos - start));
    out.append(to);
    start = pos + from.size();
  }
  out.append(text.substr(start));
  return out;
}

// Header injection; true when the value went in.
bool injectHeader(const CredentialSpec& c, RequestView& head) {
  const std::string_view value = c.value->view();
  bool present = false;
  bool injected = false;
  for (HeaderField& f : head.headers.fields) {
    if (!chars::equalsIgnoreCase(f.name, c.inject_header)) {
      continue;
    }
    present = true;
    if (contains(f.value, c.placeholder)) {
      f.value = replaceAll(f.value, c.placeholder, value);
      injected = true;
    }
  }
  if (!present) {
    head.headers.add(c.inject_header, replaceAll(c.format, kValueToken, value));
    injected = true;
  }
  return injected;
}

// Query injection; true when the value went in.
bool injectQuery(const CredentialSpec& c, std::string_view encoded, RequestView& head) {
  if (head.form == TargetForm::Asterisk) {
    return false;
  }
  const std::string_view target = head.target;
  const std::vector<Range> values = allowedQueryRanges(target, c.inject_query);
  if (values.empty()) {
    const bool has_query = target.find('?') != std::string_view::npos;
    const bool needs_amp = has_query && target.back() != '?' && target.back() != '&';
    std::string out;
    out.reserve(target.size() + 2 + c.inject_query.size() + 1 + encoded.size());
    out.append(target);
    out.append(has_query ? (needs_amp ? "&" : "") : "?");
    out.append(c.inject_query);
    out.push_back('=');
    out.append(encoded);
    head.target = std::move(out);
    return true;
  }
  size_t count = 0;
  for (const Range& r : values) {
    std::string_view v = target.substr(r.begin, r.end - r.begin);
    for (size_t pos = v.find(c.placeholder); pos != std::string_view::npos;
         pos = v.find(c.placeholder, pos + c.placeholder.size())) {
      ++count;
    }
  }
  if (count == 0) {
    return false;
  }
  std::string out;
  out.reserve(target.size() - count * c.placeholder.size() + count * encoded.size());
  size_t start = 0;
  for (const Range& r : values) {
    out.append(target.substr(start, r.begin - start));
    out.append(replaceAll(target.substr(r.begin, r.end - r.begin), c.placeholder, encoded));
    start = r.end;
  }
  out.append(target.substr(start));
  head.target = std::move(out);
  return true;
}

void wipe(std::string& s) {
  if (!s.empty()) {
    ::explicit_bzero(s.data(), s.size());
  }
  s.clear();
}

}  // namespace

RequestView viewOf(RequestHead& head) {
  return RequestView{head.method, head.target, head.form, head.authority, head.headers};
}

RewriteOutcome rewriteCredentials(RequestHead& head, const RewriteContext& ctx,
                                  std::span<const CredentialSpec> table) {
  RequestView view = viewOf(head);
  return rewriteCredentials(view, ctx, table);
}

RewriteOutcome rewriteCredentials(RequestView& head, const RewriteContext& ctx,
                                  std::span<const CredentialSpec> table) {
  // Phase 1, on the head as received: who applies, and is every placeholder
  // where it may be? Nothing is changed before the verdict.
  std::vector<bool> applies(table.size(), false);
  for (size_t i = 0; i < table.size(); ++i) {
    const CredentialSpec& c = table[i];
    if (!allUnreserved(c.placeholder)) {
      // A spec the config check would have refused: never let it wave a
      // placeholder through.
      return Refused{std::string(kInternalError), c.name, "invalid placeholder in spec"};
    }
    const std::string_view why = whyNot(c, head, ctx);
    applies[i] = why.empty();
    std::string where = findViolation(c, applies[i], head);
    if (!where.empty()) {
      return Refused{std::string(kScopeViolation), c.name,
                     std::string(why.empty() ? "wrong_place" : why) + ": " + where};
    }
  }

  // Phase 2: secret memory for encoded values, before the head is touched.
  Injected result;
  std::vector<std::optional<size_t>> encoded(table.size());  // index into result.derived
  for (size_t i = 0; i < table.size(); ++i) {
    const CredentialSpec& c = table[i];
    if (!applies[i] || c.inject_query.empty() || allUnreserved(c.value->view())) {
      continue;
    }
    auto buf = percentEncodeSecret(c.value->view());
    if (!buf) {
      return Refused{std::string(kInternalError), c.name, "secret memory: " + buf.message()};
    }
    encoded[i] = result.derived.size();
    result.derived.push_back(std::move(*buf));
  }
  // Every form an echo may give each value back in (scrubber.h), made now:
  // nothing may fail once the head is being changed.
  std::vector<std::vector<ScrubPair>> forms(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    if (!applies[i]) {
      continue;
    }
    const CredentialSpec& c = table[i];
    if (auto r = addScrubForms(c.value->view(), c.placeholder, result.derived, forms[i]); !r) {
      return Refused{std::string(kInternalError), c.name, "secret memory: " + r.message()};
    }
  }

  // Phase 3: inject.
  for (size_t i = 0; i < table.size(); ++i) {
    if (!applies[i]) {
      continue;
    }
    const CredentialSpec& c = table[i];
    bool injected = false;
    if (!c.inject_header.empty()) {
      injected = injectHeader(c, head);
    } else if (!c.inject_query.empty()) {
      const std::string_view enc =
          encoded[i] ? result.derived[*encoded[i]].view() : c.value->view();
      injected = injectQuery(c, enc, head);
    }
    if (injected) {
      result.credentials.push_back(c.name);
      result.scrub.insert(result.scrub.end(), forms[i].begin(), forms[i].end());
    }
  }
  if (!result.credentials.empty()) {
    // RFC 9110 §12.5.3: identity only, so the response body is scrubbable.
    head.headers.set("Accept-Encoding", "identity");
    result.identity_encoding = true;
    // A range of an echo is a slice of the secret, and slices a byte
    // scrubber cannot recognise: the response to a credentialed request is
    // always whole (RFC 9110 §14.2: a server may ignore Range anyway).
    result.range_removed = head.headers.remove("Range") + head.headers.remove("If-Range") > 0;
  }
  return result;
}

Result<void> validateSecretValue(std::string_view value, std::string_view placeholder) {
  if (value.empty()) {
    return makeError("credential value is empty");
  }
  for (char c : value) {
    const auto u = static_cast<uint8_t>(c);
    if (u < 0x20 || u == 0x7f) {
      return makeError(
          "credential value contains a control byte (CR, LF, NUL, TAB, ...): it cannot go into "
          "a header; strip the trailing newline of the source");
    }
  }
  if (value.front() == ' ' || value.back() == ' ') {
    return makeError("credential value starts or ends with a space");
  }
  if (!placeholder.empty() && (contains(value, placeholder) || contains(placeholder, value))) {
    return makeError("credential value and its placeholder contain one another");
  }
  return {};
}

Result<void> checkPlaceholder(std::string_view placeholder) {
  if (!allUnreserved(placeholder)) {
    return makeError("only letters, digits and '-._~' are allowed");
  }
  return {};
}

Result<void> checkInjectHeader(std::string_view name) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
        return chars::isTchar(static_cast<uint8_t>(c));
      })) {
    return makeError("is not a valid header name");
  }
  for (std::string_view reserved : kReservedInjectHeaders) {
    if (chars::equalsIgnoreCase(name, reserved)) {
      return makeError("frames or routes the request and cannot carry a credential");
    }
  }
  return {};
}

Result<void> checkInjectQuery(std::string_view name) {
  if (!allUnreserved(name)) {
    return makeError("is not a plain parameter name (letters, digits, '-._~')");
  }
  return {};
}

Result<void> checkInjectFormat(std::string_view format) {
  const size_t at = format.find(kValueToken);
  if (at == std::string_view::npos || format.find(kValueToken, at + 1) != std::string_view::npos) {
    return makeError("must contain {value} exactly once, e.g. \"Bearer {value}\"");
  }
  for (char c : format) {
    const auto u = static_cast<uint8_t>(c);
    if (u < 0x20 || u == 0x7f) {
      return makeError("control characters (CR, LF, ...) are not allowed");
    }
  }
  return {};
}

Result<void> validateCredentialSpec(const CredentialSpec& spec) {
  if (spec.name.empty()) {
    return makeError("credential without a name");
  }
  const std::string who = "credential " + spec.name + ": ";
  if (auto r = checkPlaceholder(spec.placeholder); !r) {
    return makeError(who + "placeholder: " + r.message());
  }
  if (spec.scope.empty()) {
    return makeError(who + "no hosts in scope");
  }
  if (spec.inject_header.empty() == spec.inject_query.empty()) {
    return makeError(who + "exactly one of inject header / query must be set");
  }
  if (!spec.inject_header.empty()) {
    if (auto r = checkInjectHeader(spec.inject_header); !r) {
      return makeError(who + "inject header " + spec.inject_header + " " + r.message());
    }
  } else if (auto r = checkInjectQuery(spec.inject_query); !r) {
    return makeError(who + "inject query " + r.message());
  }
  if (auto r = checkInjectFormat(spec.format); !r) {
    return makeError(who + "format " + r.message());
  }
  return {};
}

bool holdsPlaceholder(std::string_view text, std::span<const CredentialSpec> table) {
  const std::string decoded = percentDecode(text);
  for (const CredentialSpec& c : table) {
    if (!c.placeholder.empty() &&
        (contains(text, c.placeholder) || contains(decoded, c.placeholder))) {
      return true;
    }
  }
  return false;
}

std::string auditPath(const RequestHead& head, std::span<const CredentialSpec> table) {
  const std::string_view path = head.path();
  return holdsPlaceholder(path, table) ? "<redacted>" : std::string(path);
}

void wipeSecrets(RequestHead& head) {
  wipe(head.method);
  wipe(head.target);
  for (HeaderField& f : head.headers.fields) {
    wipe(f.name);
    wipe(f.value);
  }
  head = RequestHead{};
}

}  // namespace tollgate::mitm
