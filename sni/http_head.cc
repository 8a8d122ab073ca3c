#include "sni/http_head.h"

#include <cstddef>

namespace tollgate::sni {
namespace {

constexpr uint16_t kHttpDefaultPort = 80;

Error fail(const char* reason) { return makeError(reason); }

bool isUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
// "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
bool isTchar(char c) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return isDigit(c) || isUpper(c) || (c >= 'a' && c <= 'z') ||
         (c != '\0' && kSymbols.find(c) != std::string_view::npos);
}

// RFC 5234 CTL (%x00-1F / %x7F), except HTAB which is whitespace in a field
// line. NUL, CR and LF are among these: RFC 9110 §5.5 makes them invalid in
// field values, and they have no place in the request line either.
bool isForbiddenControl(char c) {
  auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && c != '\t') || u == 0x7f;
}

// Request-target bytes: RFC 3986 characters are all VCHAR (%x21-7E);
// anything else must be percent-encoded by the client.
bool isTargetChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x21 && u <= 0x7e;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') {
      x = static_cast<char>(x - 'A' + 'a');
    }
    if (y >= 'A' && y <= 'Z') {
      y = static_cast<char>(y - 'A' + 'a');
    }
    if (x != y) {
      return false;
    }
  }
  return true;
}

bool startsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && equalsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

// RFC 9110 §5.6.3: OWS = *( SP / HTAB )
std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Takes the next line off `rest`. RFC 9112 §2.2: lines end in CRLF; a bare
// LF is rejected rather than tolerated, so no component behind us can read a
// different head than we did. The line itself may hold no control character
// but HTAB (a lone CR, NUL, ...).
Result<void> takeLine(std::string_view& rest, std::string_view& out_line) {
  size_t lf = rest.find('\n');
  if (lf == std::string_view::npos) {
    return fail("http_incomplete_head");
  }
  if (lf == 0 || rest[lf - 1] != '\r') {
    return fail("http_bad_line_ending");
  }
  std::string_view line = rest.substr(0, lf - 1);
  for (char c : line) {
    if (isForbiddenControl(c)) {
      return fail("http_bad_char");
    }
  }
  out_line = line;
  rest = rest.substr(lf + 1);
  return {};
}

struct RequestLine {
  std::string_view method;
  std::string_view target;
  std::string_view version;
  int minor = 0;
};

// RFC 9112 §3: request-line = method SP request-target SP HTTP-version
//              HTTP-version = "HTTP/" DIGIT "." DIGIT      (§2.3)
// The method is what Peeker classified on: upper-case letters only.
Result<void> parseRequestLine(std::string_view line, RequestLine& out) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    return fail("http_bad_request_line");
  }
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    return fail("http_bad_request_line");
  }
  out.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  out.version = line.substr(sp2 + 1);
  if (out.method.empty() || out.method.size() > kMaxHttpMethodLen) {
    return fail("http_bad_method");
  }
  for (char c : out.method) {
    if (!isUpper(c)) {
      return fail("http_bad_method");
    }
  }
  if (out.target.empty()) {
    return fail("http_bad_target");
  }
  for (char c : out.target) {
    if (!isTargetChar(c)) {
      return fail("http_bad_target");
    }
  }
  const std::string_view v = out.version;
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !isDigit(v[5]) || v[6] != '.' ||
      !isDigit(v[7])) {
    return fail("http_bad_request_line");
  }
  if (v[5] != '1') {
    return fail("http_version_unsupported");  // e.g. the HTTP/2 preface "PRI * HTTP/2.0"
  }
  out.minor = v[7] - '0';
  return {};
}

// RFC 9112 §3.2.2: absolute-form = absolute-URI; only the http scheme is
// accepted ("http" "://" authority [ path-abempty ] [ "?" query ]). RFC 9110
// §4.2.4: userinfo is deprecated and a classic host-confusion trick, so an
// authority holding "@" is rejected.
std::optional<HostPort> absoluteFormHost(std::string_view target) {
  constexpr std::string_view kScheme = "http://";
  if (!startsWithIgnoreCase(target, kScheme)) {
    return std::nullopt;
  }
  std::string_view rest = target.substr(kScheme.size());
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) {
    return std::nullopt;
  }
  return parseHostPort(authority);
}

uint16_t effectivePort(const HostPort& hp) { return hp.port.value_or(kHttpDefaultPort); }

}  // namespace

Result<void> parseRequestHead(std::string_view head, HttpInfo& out) {
  std::string_view rest = head;
  std::string_view line;
  RequestLine request;
  if (auto r = takeLine(rest, line); !r) {
    return r;
  }
  if (auto r = parseRequestLine(line, request); !r) {
    return r;
  }
  if (request.method == "CONNECT") {
    return fail("http_connect_unsupported");  // authority-form (RFC 9112 §3.2.3)
  }

  // RFC 9112 §3.2: the four forms of request-target.
  std::optional<HostPort> target_host;
  if (request.target.front() == '/') {
    // origin-form
  } else if (request.target == "*" && request.method == "OPTIONS") {
    // asterisk-form
  } else {
    target_host = absoluteFormHost(request.target);
    if (!target_host) {
      return fail("http_bad_target");
    }
  }

  // RFC 9112 §5: field-line = field-name ":" OWS field-value OWS
  size_t host_fields = 0;
  std::optional<HostPort> header_host;
  while (true) {
    if (auto r = takeLine(rest, line); !r) {
      return r;
    }
    if (line.empty()) {
      break;  // end of the head
    }
    if (line.front() == ' ' || line.front() == '\t') {
      return fail("http_obs_fold");  // RFC 9112 §5.2: obsolete line folding
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return fail("http_bad_header");
    }
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!isTchar(c)) {
        return fail("http_bad_header");  // includes whitespace before ':' (RFC 9112 §5.1)
      }
    }
    if (!equalsIgnoreCase(name, "host")) {
      continue;
    }
    // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status
    // code to any HTTP/1.1 request message that lacks a Host header field and
    // to any request message that contains more than one Host header field
    // line or a Host header field with an invalid field value."
    if (++host_fields > 1) {
      return fail("http_duplicate_host");
    }
    std::string_view value = trimOws(line.substr(colon + 1));
    if (value.empty()) {
      continue;  // an empty Host counts as no Host
    }
    header_host = parseHostPort(value);
    if (!header_host) {
      return fail("http_bad_host");
    }
  }
  if (!rest.empty()) {
    return fail("http_trailing_data");
  }

  if (request.minor >= 1 && host_fields == 0) {
    return fail("http_no_host");
  }
  if (target_host) {
    // RFC 9112 §3.2.2 lets a server ignore Host for absolute-form; a gateway
    // must not let the two disagree, or policy and upstream could see
    // different hosts.
    if (host_fields > 0 && (!header_host || header_host->host != target_host->host ||
                            effectivePort(*header_host) != effectivePort(*target_host))) {
      return fail("http_host_mismatch");
    }
    out.host = target_host->host;
    out.host_port = target_host->port;
  } else if (header_host) {
    out.host = header_host->host;
    out.host_port = header_host->port;
  }
  if (request.minor >= 1 && !out.host) {
    return fail("http_no_host");  // "Host:" with an empty value
  }
  out.method = request.method;
  out.target = request.target;
  out.version = request.version;
  return {};
}

}  // namespace tollgate::sni
