#include "mitm/http1.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "mitm/chars.h"

namespace tollgate::mitm {
namespace {

using chars::equalsIgnoreCase;
using chars::isBadControl;
using chars::isTchar;
using chars::isWs;
using chars::trimOws;

constexpr uint16_t kBadRequest = 400;
constexpr uint16_t kFieldsTooLarge = 431;
constexpr uint16_t kNotImplemented = 501;
constexpr uint16_t kVersionNotSupported = 505;
constexpr uint16_t kBadGateway = 502;

constexpr uint16_t kHttpPort = 80;
constexpr uint16_t kHttpsPort = 443;

// What a request answers for each reason (see the list in http1.h).
uint16_t requestStatusFor(std::string_view reason) {
  if (reason == "http_head_too_large" || reason == "http_too_many_headers" ||
      reason == "http_trailer_too_large") {
    return kFieldsTooLarge;
  }
  if (reason == "http_te_unsupported" || reason == "http_connect_unsupported") {
    return kNotImplemented;
  }
  if (reason == "http_version_unsupported") {
    return kVersionNotSupported;
  }
  return kBadRequest;
}

uint8_t byteAt(std::string_view s, size_t i) { return static_cast<uint8_t>(s[i]); }

// ---------------------------------------------------------------------------
// Line structure, byte by byte (RFC 9112 §2.2): every line ends in CRLF; a
// bare CR or bare LF is refused, not tolerated, so nothing behind us can see
// a different line structure than we did. NUL is refused anywhere.

enum class LineByte { Ordinary, LineEnd };

std::string_view scanLineByte(uint8_t c, bool& prev_cr, LineByte& out) {
  out = LineByte::Ordinary;
  if (c == 0) {
    return "http_nul";
  }
  if (prev_cr) {
    if (c != '\n') {
      return "http_bare_cr";
    }
    prev_cr = false;
    out = LineByte::LineEnd;
    return {};
  }
  if (c == '\n') {
    return "http_bare_lf";
  }
  prev_cr = c == '\r';
  return {};
}

// Appends head bytes from `in` to buf until the empty line that ends the
// head. Returns Done with consumed = bytes of `in` used, NeedMore, or Invalid.
HeadResult scanHead(std::span<const uint8_t> in, size_t cap, std::string_view too_large,
                    std::string& buf, bool& prev_cr, size_t& line_start) {
  for (size_t i = 0; i < in.size(); ++i) {
    if (buf.size() >= cap) {
      return {Status::Invalid, 0, too_large, 0};
    }
    const uint8_t c = in[i];
    LineByte kind = LineByte::Ordinary;
    if (std::string_view reason = scanLineByte(c, prev_cr, kind); !reason.empty()) {
      return {Status::Invalid, 0, reason, 0};
    }
    buf.push_back(static_cast<char>(c));
    if (kind == LineByte::LineEnd) {
      const size_t line_len = buf.size() - line_start - 2;  // without CRLF
      line_start = buf.size();
      if (line_len == 0) {
        return {Status::Done, i + 1, {}, 0};
      }
    }
  }
  return {Status::NeedMore, in.size(), {}, 0};
}

// Splits a complete head (CRLF line endings only, final empty line
// included) into its lines, without their CRLF, the empty line excluded.
std::vector<std::string_view> splitLines(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    size_t crlf = head.find("\r\n");
    if (crlf == std::string_view::npos || crlf == 0) {
      break;
    }
    lines.push_back(head.substr(0, crlf));
    head.remove_prefix(crlf + 2);
  }
  return lines;
}

// The empty line ends the head; an empty first line is an empty start line.
bool startLineEmpty(std::string_view head) { return head.substr(0, 2) == "\r\n"; }

std::string_view checkControls(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (isBadControl(byteAt(line, i))) {
      return "http_bad_char";
    }
  }
  return {};
}

// RFC 9112 §5: field-line = field-name ":" OWS field-value OWS
//   field-name  = token (RFC 9110 §5.1)
//   field-value = *field-content; field-content = field-vchar
//                 [ 1*( SP / HTAB / field-vchar ) field-vchar ]   (RFC 9110 §5.5)
// With controls already refused, every remaining byte is a field-vchar, SP
// or HTAB, so the value needs only trimming.
std::string_view parseFieldLine(std::string_view line, Headers& out) {
  if (std::string_view reason = checkControls(line); !reason.empty()) {
    return reason;
  }
  if (isWs(byteAt(line, 0))) {
    return "http_obs_fold";  // §5.2 obs-fold; §2.2 whitespace after the start line
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return "http_bad_field_line";
  }
  const std::string_view name = line.substr(0, colon);
  if (name.empty()) {
    return "http_bad_field_name";
  }
  if (isWs(byteAt(name, name.size() - 1))) {
    // §5.1: "No whitespace is allowed between the field name and colon ...
    // a server MUST reject ... with a response status code of 400".
    return "http_space_before_colon";
  }
  for (size_t i = 0; i < name.size(); ++i) {
    if (!isTchar(byteAt(name, i))) {
      return "http_bad_field_name";
    }
  }
  // A framing field spelled with "_" is one name to us and, to a server that
  // maps names to CGI-style variables, the real one: refuse the ambiguity.
  if (name.find('_') != std::string_view::npos) {
    std::string dashed(name);
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    if (equalsIgnoreCase(dashed, "transfer-encoding") ||
        equalsIgnoreCase(dashed, "content-length")) {
      return "http_bad_field_name";
    }
  }
  if (out.fields.size() >= kMaxHeaders) {
    return "http_too_many_headers";
  }
  out.add(std::string(name), std::string(trimOws(line.substr(colon + 1))));
  return {};
}

std::string_view parseFieldLines(std::span<const std::string_view> lines, Headers& out) {
  for (std::string_view line : lines) {
    if (std::string_view reason = parseFieldLine(line, out); !reason.empty()) {
      return reason;
    }
  }
  return {};
}

// RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT. Only 1.0 and
// 1.1 are spoken here.
std::string_view parseVersion(std::string_view v, std::string_view malformed, int& out_minor) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !chars::isDigit(byteAt(v, 5)) || v[6] != '.' ||
      !chars::isDigit(byteAt(v, 7))) {
    return malformed;
  }
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) {
    return "http_version_unsupported";
  }
  out_minor = v[7] - '0';
  return {};
}

// Request-target bytes (RFC 3986 via RFC 9112 §3.2): VCHAR only (anything
// else must be percent-encoded by the client), no fragment (§3.2: a
// request-target carries none), and pct-encoded = "%" HEXDIG HEXDIG.
bool targetBytesValid(std::string_view target) {
  for (size_t i = 0; i < target.size(); ++i) {
    const uint8_t c = byteAt(target, i);
    if (!chars::isVchar(c) || c == '#') {
      return false;
    }
    if (c == '%') {
      if (i + 2 >= target.size() || chars::hexValue(byteAt(target, i + 1)) < 0 ||
          chars::hexValue(byteAt(target, i + 2)) < 0) {
        return false;
      }
    }
  }
  return true;
}

struct AbsoluteTarget {
  HostPort authority;
  uint16_t default_port = kHttpPort;
  size_t path_offset = 0;  // where path-abempty [ "?" query ] starts in the target
};

// RFC 9112 §3.2.2 absolute-form = absolute-URI, for the http and https
// schemes: scheme "://" authority path-abempty [ "?" query ]. Userinfo
// (RFC 9110 §4.2.4, deprecated) is a host-confusion trick: refused.
std::optional<AbsoluteTarget> parseAbsoluteTarget(std::string_view target) {
  AbsoluteTarget out;
  size_t scheme_len = 0;
  if (target.size() >= 7 && equalsIgnoreCase(target.substr(0, 7), "http://")) {
    scheme_len = 7;
    out.default_port = kHttpPort;
  } else if (target.size() >= 8 && equalsIgnoreCase(target.substr(0, 8), "https://")) {
    scheme_len = 8;
    out.default_port = kHttpsPort;
  } else {
    return std::nullopt;
  }
  const std::string_view rest = target.substr(scheme_len);
  const size_t end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos) {
    return std::nullopt;
  }
  auto hp = parseHostPort(authority);
  if (!hp) {
    return std::nullopt;
  }
  out.authority = std::move(*hp);
  out.path_offset = end == std::string_view::npos ? target.size() : scheme_len + end;
  return out;
}

// RFC 9112 §6.1-§6.3 for Transfer-Encoding and Content-Length. `request`
// selects the request rule for a message with both (rule 3: refuse; a
// response: Transfer-Encoding wins, the connection is not reused).
struct Framing {
  BodyFraming body;
  bool both_te_and_cl = false;
};

std::string_view parseFraming(Headers& headers, int minor, bool request, Framing& out) {
  HeaderField* te = nullptr;
  HeaderField* cl = nullptr;
  size_t te_count = 0;
  size_t cl_count = 0;
  for (HeaderField& f : headers.fields) {
    if (equalsIgnoreCase(f.name, "transfer-encoding")) {
      te = &f;
      ++te_count;
    } else if (equalsIgnoreCase(f.name, "content-length")) {
      cl = &f;
      ++cl_count;
    }
  }
  if (te_count > 1) {
    return "http_duplicate_transfer_encoding";
  }
  if (cl_count > 1) {
    return "http_multiple_content_length";
  }
  if (te != nullptr) {
    // §6.1: "A server or client that receives an HTTP/1.0 message containing
    // a Transfer-Encoding header field MUST treat the message as if the
    // framing is faulty".
    if (minor == 0) {
      return "http_te_in_http10";
    }
    // transfer-coding list (RFC 9110 §5.6.1: empty members are ignored).
    // Only "chunked" alone is spoken: any other coding is refused rather
    // than guessed at.
    size_t codings = 0;
    size_t chunked_at = 0;
    size_t chunked_seen = 0;
    bool other = false;
    chars::forEachListMember(te->value, [&](std::string_view member) {
      if (member.empty()) {
        return true;
      }
      ++codings;
      if (equalsIgnoreCase(member, "chunked")) {
        ++chunked_seen;
        chunked_at = codings;
      } else {
        other = true;
      }
      return true;
    });
    if (chunked_seen > 1 || (chunked_seen == 1 && chunked_at != codings)) {
      // §6.3 rule 4: chunked must be the final coding, applied once (§7).
      return "http_te_chunked_not_final";
    }
    if (codings == 0 || other) {
      return "http_te_unsupported";
    }
    if (cl != nullptr) {
      if (request) {
        return "http_te_and_cl";  // §6.3 rule 3: the smuggling shape
      }
      out.both_te_and_cl = true;
    }
    te->value = "chunked";
    out.body = {BodyKind::Chunked, 0};
    return {};
  }
  if (cl != nullptr) {
    // RFC 9110 §8.6: Content-Length = 1*DIGIT; a list of identical values
    // may be taken as that value (§6.3 rule 5), differing ones never.
    std::optional<uint64_t> value;
    bool bad = false;
    chars::forEachListMember(cl->value, [&](std::string_view member) {
      uint64_t v = 0;
      if (member.empty()) {
        bad = true;
        return false;
      }
      for (size_t i = 0; i < member.size(); ++i) {
        const uint8_t c = byteAt(member, i);
        if (!chars::isDigit(c) || v > (kMaxBodyLength - (c - '0')) / 10) {
          bad = true;
          return false;
        }
        v = v * 10 + (c - '0');
      }
      if (value && *value != v) {
        bad = true;
        return false;
      }
      value = v;
      return true;
    });
    if (bad || !value) {
      return "http_bad_content_length";
    }
    cl->value = std::to_string(*value);
    out.body = {BodyKind::Length, *value};
    return {};
  }
  out.body = {};
  return {};
}

// RFC 9112 §9.3: persistence.
bool persistent(const Headers& headers, int minor) {
  if (headers.hasToken("connection", "close")) {
    return false;
  }
  if (minor >= 1) {
    return true;
  }
  return headers.hasToken("connection", "keep-alive");
}

uint16_t effectivePort(const HostPort& hp, uint16_t default_port) {
  return hp.port.value_or(default_port);
}

// RFC 9112 §3: request-line = method SP request-target SP HTTP-version
std::string_view parseRequest(std::string_view text, RequestHead& out) {
  out = RequestHead{};
  if (startLineEmpty(text)) {
    return "http_bad_request_line";
  }
  const std::vector<std::string_view> lines = splitLines(text);
  const std::string_view line = lines.front();
  if (std::string_view reason = checkControls(line); !reason.empty()) {
    return reason;
  }
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp1 == 0) {
    return "http_bad_request_line";
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (method.size() > kMaxMethodBytes) {
    return "http_bad_method";
  }
  for (size_t i = 0; i < method.size(); ++i) {
    if (!isTchar(byteAt(method, i))) {
      return "http_bad_method";
    }
  }
  if (target.empty()) {
    return "http_bad_request_line";
  }
  if (std::string_view reason = parseVersion(version, "http_bad_request_line", out.minor);
      !reason.empty()) {
    return reason;
  }
  if (method == "CONNECT") {
    return "http_connect_unsupported";  // authority-form (§3.2.3): no tunnels through MITM
  }
  if (!targetBytesValid(target)) {
    return "http_bad_target";
  }
  // §3.2: origin-form / absolute-form / asterisk-form.
  std::optional<AbsoluteTarget> absolute;
  if (target.front() == '/') {
    out.form = TargetForm::Origin;
  } else if (target == "*") {
    if (method != "OPTIONS") {
      return "http_bad_target";  // §3.2.4: asterisk-form is for OPTIONS only
    }
    out.form = TargetForm::Asterisk;
  } else {
    absolute = parseAbsoluteTarget(target);
    if (!absolute) {
      return "http_bad_target";
    }
    out.form = TargetForm::Absolute;
  }
  out.method = std::string(method);
  out.target = std::string(target);

  if (std::string_view reason = parseFieldLines(std::span(lines).subspan(1), out.headers);
      !reason.empty()) {
    return reason;
  }

  // §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
  // HTTP/1.1 request message that lacks a Host header field and to any
  // request message that contains more than one Host header field line or a
  // Host header field with an invalid field value."
  const size_t host_fields = out.headers.count("host");
  if (host_fields > 1) {
    return "http_duplicate_host";
  }
  std::optional<HostPort> host;
  if (host_fields == 1) {
    const std::string_view value = out.headers.find("host")->value;
    if (!value.empty()) {
      host = parseHostPort(value);
      if (!host) {
        return "http_bad_host";
      }
    }
  }
  if (out.minor >= 1 && !host) {
    return "http_no_host";
  }
  if (absolute) {
    // §3.2.2 lets an origin server ignore Host for absolute-form; a gateway
    // must not let the two name different hosts.
    if (host && (host->host != absolute->authority.host ||
                 effectivePort(*host, absolute->default_port) !=
                     effectivePort(absolute->authority, absolute->default_port))) {
      return "http_host_mismatch";
    }
    out.authority = host ? host : absolute->authority;
  } else {
    out.authority = host;
  }

  Framing framing;
  if (std::string_view reason = parseFraming(out.headers, out.minor, true, framing);
      !reason.empty()) {
    return reason;
  }
  out.body = framing.body;
  out.keep_alive = persistent(out.headers, out.minor);
  // RFC 9110 §10.1.1: a 100-continue expectation in HTTP/1.0 is ignored.
  out.expect_continue = out.minor >= 1 && out.headers.hasToken("expect", "100-continue");
  // RFC 6455 §4.1 opening handshake; RFC 9110 §7.8 Upgrade.
  out.upgrade_websocket = out.method == "GET" && out.minor >= 1 &&
                          out.headers.hasToken("upgrade", "websocket") &&
                          out.headers.hasToken("connection", "upgrade");
  return {};
}

// RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
// A missing SP after the code (seen in the wild) is accepted with an empty
// reason; the re-emitted line always has it.
std::string_view parseResponse(std::string_view text, const ResponseContext& context,
                               ResponseHead& out) {
  out = ResponseHead{};
  if (startLineEmpty(text)) {
    return "http_bad_status_line";
  }
  const std::vector<std::string_view> lines = splitLines(text);
  const std::string_view line = lines.front();
  if (std::string_view reason = checkControls(line); !reason.empty()) {
    return reason;
  }
  if (line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' ')) {
    return "http_bad_status_line";
  }
  if (std::string_view reason = parseVersion(line.substr(0, 8), "http_bad_status_line", out.minor);
      !reason.empty()) {
    return reason;
  }
  uint16_t status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (!chars::isDigit(byteAt(line, i))) {
      return "http_bad_status_line";
    }
    status = static_cast<uint16_t>(status * 10 + (line[i] - '0'));
  }
  if (status < 100 || status > 599) {
    return "http_bad_status";
  }
  out.status = status;
  out.reason = line.size() > 12 ? std::string(line.substr(13)) : std::string();

  if (std::string_view reason = parseFieldLines(std::span(lines).subspan(1), out.headers);
      !reason.empty()) {
    return reason;
  }
  Framing framing;
  if (std::string_view reason = parseFraming(out.headers, out.minor, false, framing);
      !reason.empty()) {
    return reason;
  }
  out.keep_alive = persistent(out.headers, out.minor);
  // §6.3 rule 1 (and RFC 9110 §15.2.2 for 101).
  if (status == 101) {
    if (!context.upgrade_requested || !out.headers.hasToken("upgrade", "websocket")) {
      return "http_unexpected_101";
    }
    out.body = {BodyKind::Tunnel, 0};
    out.keep_alive = false;
    return {};
  }
  if (context.head_request || (status >= 100 && status < 200) || status == 204 || status == 304) {
    out.body = {BodyKind::None, 0};
    return {};
  }
  if (framing.body.kind == BodyKind::None) {
    // §6.3 rule 8: no Transfer-Encoding, no Content-Length: until close.
    out.body = {BodyKind::UntilClose, 0};
    out.keep_alive = false;
    return {};
  }
  out.body = framing.body;
  if (framing.both_te_and_cl) {
    out.keep_alive = false;  // §6.3 rule 3: do not reuse a connection that sent both
  }
  return {};
}

template <typename Head>
void appendFields(std::string& out, const Head& head) {
  for (const HeaderField& f : head.headers.fields) {
    out.append(f.name);
    out.append(": ");
    out.append(f.value);
    out.append("\r\n");
  }
  out.append("\r\n");
}

size_t fieldsSize(const Headers& headers) {
  size_t n = 2;
  for (const HeaderField& f : headers.fields) {
    n += f.name.size() + 2 + f.value.size() + 2;
  }
  return n;
}

}  // namespace

// ---------------------------------------------------------------------------
// Headers

const HeaderField* Headers::find(std::string_view name) const {
  for (const HeaderField& f : fields) {
    if (equalsIgnoreCase(f.name, name)) {
      return &f;
    }
  }
  return nullptr;
}

size_t Headers::count(std::string_view name) const {
  return static_cast<size_t>(std::count_if(fields.begin(), fields.end(), [&](const HeaderField& f) {
    return equalsIgnoreCase(f.name, name);
  }));
}

void Headers::add(std::string name, std::string value) {
  fields.push_back(HeaderField{std::move(name), std::move(value)});
}

void Headers::set(std::string_view name, std::string value) {
  auto first = std::find_if(fields.begin(), fields.end(),
                            [&](const HeaderField& f) { return equalsIgnoreCase(f.name, name); });
  if (first == fields.end()) {
    add(std::string(name), std::move(value));
    return;
  }
  first->value = std::move(value);
  const size_t keep = static_cast<size_t>(first - fields.begin());
  size_t i = 0;
  std::erase_if(fields, [&](const HeaderField& f) {
    const bool drop = i != keep && equalsIgnoreCase(f.name, name);
    ++i;
    return drop;
  });
}

size_t Headers::remove(std::string_view name) {
  return std::erase_if(fields,
                       [&](const HeaderField& f) { return equalsIgnoreCase(f.name, name); });
}

bool Headers::hasToken(std::string_view name, std::string_view token) const {
  bool found = false;
  for (const HeaderField& f : fields) {
    if (!equalsIgnoreCase(f.name, name)) {
      continue;
    }
    chars::forEachListMember(f.value, [&](std::string_view member) {
      found = equalsIgnoreCase(member, token);
      return !found;
    });
    if (found) {
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------
// Heads

std::string_view RequestHead::path() const {
  std::string_view t = target;
  if (form == TargetForm::Asterisk) {
    return t;
  }
  if (form == TargetForm::Absolute) {
    const size_t scheme_end = t.find("://");
    const size_t path = t.find_first_of("/?", scheme_end + 3);
    if (path == std::string_view::npos || t[path] == '?') {
      return "/";
    }
    t.remove_prefix(path);
  }
  return t.substr(0, t.find('?'));
}

ResponseContext ResponseContext::of(const RequestHead& request) {
  return ResponseContext{request.method == "HEAD", request.upgrade_websocket};
}

HeadResult RequestHeadParser::feed(std::span<const uint8_t> in) {
  if (final_) {
    HeadResult again = *final_;
    again.consumed = 0;
    return again;
  }
  HeadResult r = scanHead(in, kMaxHeadBytes, "http_head_too_large", buf_, prev_cr_, line_start_);
  if (r.status == Status::Done) {
    if (std::string_view reason = parseRequest(buf_, head_); !reason.empty()) {
      r = {Status::Invalid, 0, reason, 0};
    }
  }
  if (r.status == Status::Invalid) {
    r.http_status = requestStatusFor(r.reason);
  }
  if (r.status != Status::NeedMore) {
    final_ = r;
  }
  return r;
}

void RequestHeadParser::reset() {
  buf_.clear();
  prev_cr_ = false;
  line_start_ = 0;
  final_.reset();
  head_ = RequestHead{};
}

HeadResult ResponseHeadParser::feed(std::span<const uint8_t> in) {
  if (final_) {
    HeadResult again = *final_;
    again.consumed = 0;
    return again;
  }
  HeadResult r = scanHead(in, kMaxHeadBytes, "http_head_too_large", buf_, prev_cr_, line_start_);
  if (r.status == Status::Done) {
    if (std::string_view reason = parseResponse(buf_, context_, head_); !reason.empty()) {
      r = {Status::Invalid, 0, reason, 0};
    }
  }
  if (r.status == Status::Invalid) {
    r.http_status = kBadGateway;
  }
  if (r.status != Status::NeedMore) {
    final_ = r;
  }
  return r;
}

void ResponseHeadParser::reset(ResponseContext context) {
  context_ = context;
  buf_.clear();
  prev_cr_ = false;
  line_start_ = 0;
  final_.reset();
  head_ = ResponseHead{};
}

std::string serialize(const RequestHead& head) {
  std::string out;
  out.reserve(serializedSize(head));
  out.append(head.method);
  out.push_back(' ');
  out.append(head.target);
  out.append(head.minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  appendFields(out, head);
  return out;
}

size_t serializedSize(const RequestHead& head) {
  return head.method.size() + 1 + head.target.size() + 11 + fieldsSize(head.headers);
}

void serializeTo(const RequestHead& head, std::span<char> out) {
  size_t pos = 0;
  auto put = [&](std::string_view s) {
    const size_t n = std::min(s.size(), out.size() - pos);
    std::memcpy(out.data() + pos, s.data(), n);
    pos += n;
  };
  put(head.method);
  put(" ");
  put(head.target);
  put(head.minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  for (const HeaderField& f : head.headers.fields) {
    put(f.name);
    put(": ");
    put(f.value);
    put("\r\n");
  }
  put("\r\n");
}

std::string serialize(const ResponseHead& head) {
  std::string out;
  out.reserve(13 + head.reason.size() + 2 + fieldsSize(head.headers));
  out.append(head.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
  out.append(std::to_string(head.status));
  out.push_back(' ');
  out.append(head.reason);
  out.append("\r\n");
  appendFields(out, head);
  return out;
}

void removeHopByHop(Headers& headers, bool keep_websocket_upgrade,
                    std::span<const std::string_view> protect) {
  // Fields named by Connection (RFC 9110 §7.6.1). Framing fields and Host
  // are never removed that way: a client could otherwise make us drop the
  // framing we re-emit.
  std::vector<std::string> named;
  for (const HeaderField& f : headers.fields) {
    if (!equalsIgnoreCase(f.name, "connection")) {
      continue;
    }
    chars::forEachListMember(f.value, [&](std::string_view member) {
      const bool protected_name =
          std::any_of(protect.begin(), protect.end(),
                      [&](std::string_view p) { return equalsIgnoreCase(member, p); });
      if (!member.empty() && !protected_name && !equalsIgnoreCase(member, "content-length") &&
          !equalsIgnoreCase(member, "transfer-encoding") && !equalsIgnoreCase(member, "host")) {
        named.emplace_back(member);
      }
      return true;
    });
  }
  for (const std::string& name : named) {
    headers.remove(name);
  }
  for (std::string_view name :
       {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}) {
    headers.remove(name);
  }
  if (keep_websocket_upgrade) {
    headers.add("Upgrade", "websocket");
    headers.add("Connection", "Upgrade");
  }
}

void setFraming(Headers& headers, const BodyFraming& framing) {
  headers.remove("content-length");
  headers.remove("transfer-encoding");
  if (framing.kind == BodyKind::Length) {
    headers.add("Content-Length", std::to_string(framing.length));
  } else if (framing.kind == BodyKind::Chunked) {
    headers.add("Transfer-Encoding", "chunked");
  }
}

// ---------------------------------------------------------------------------
// Bodies

BodyDecoder::BodyDecoder(BodyFraming framing) {
  switch (framing.kind) {
    case BodyKind::Length:
      state_ = framing.length == 0 ? State::Done : State::Length;
      remaining_ = framing.length;
      break;
    case BodyKind::Chunked:
      state_ = State::SizeFirst;
      break;
    case BodyKind::UntilClose:
      state_ = State::UntilClose;
      break;
    case BodyKind::None:
    case BodyKind::Tunnel:
      state_ = State::Done;
      break;
  }
}

BodyResult BodyDecoder::fail(std::string_view reason, size_t consumed) {
  state_ = State::Invalid;
  reason_ = reason;
  trailer_buf_.clear();
  return {Status::Invalid, consumed, {}, reason};
}

// RFC 9112 §7.1:
//   chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//   chunk-size     = 1*HEXDIG
//   last-chunk     = 1*("0") [ chunk-ext ] CRLF
//   chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )   (§7.1.1)
//   chunk-ext-name = token
//   chunk-ext-val  = token / quoted-string
//   quoted-string  = DQUOTE *( qdtext / quoted-pair ) DQUOTE                        (RFC 9110
//   §5.6.4)
// Extensions are checked and dropped; the line is bounded by kMaxChunkLineBytes.
std::string_view BodyDecoder::sizeLineByte(uint8_t c) {
  if (++line_len_ > kMaxChunkLineBytes) {
    return "http_chunk_line_too_long";
  }
  constexpr std::string_view kBadExt = "http_chunk_bad_extension";
  const bool ws = isWs(c);
  switch (state_) {
    case State::SizeFirst: {
      const int v = chars::hexValue(c);
      if (v < 0) {
        return "http_chunk_bad_size";
      }
      chunk_size_ = static_cast<uint64_t>(v);
      state_ = State::Size;
      return {};
    }
    case State::Size: {
      const int v = chars::hexValue(c);
      if (v >= 0) {
        if (chunk_size_ > (kMaxBodyLength - static_cast<uint64_t>(v)) / 16) {
          return "http_chunk_size_overflow";
        }
        chunk_size_ = chunk_size_ * 16 + static_cast<uint64_t>(v);
      } else if (c == ';') {
        state_ = State::ExtNameStart;
      } else if (ws) {
        state_ = State::ExtPreSemi;
      } else if (c == '\r') {
        state_ = State::SizeLf;
      } else {
        return "http_chunk_bad_size";
      }
      return {};
    }
    case State::ExtPreSemi:
      if (c == ';') {
        state_ = State::ExtNameStart;
      } else if (!ws) {
        return kBadExt;
      }
      return {};
    case State::ExtNameStart:
      if (isTchar(c)) {
        state_ = State::ExtName;
      } else if (!ws) {
        return kBadExt;
      }
      return {};
    case State::ExtName:
      if (isTchar(c)) {
        return {};
      }
      if (ws) {
        state_ = State::ExtPostName;
      } else if (c == '=') {
        state_ = State::ExtValueStart;
      } else if (c == ';') {
        state_ = State::ExtNameStart;
      } else if (c == '\r') {
        state_ = State::SizeLf;
      } else {
        return kBadExt;
      }
      return {};
    case State::ExtPostName:
      if (c == '=') {
        state_ = State::ExtValueStart;
      } else if (c == ';') {
        state_ = State::ExtNameStart;
      } else if (!ws) {
        return kBadExt;
      }
      return {};
    case State::ExtValueStart:
      if (isTchar(c)) {
        state_ = State::ExtValueToken;
      } else if (c == '"') {
        state_ = State::ExtQuoted;
      } else if (!ws) {
        return kBadExt;
      }
      return {};
    case State::ExtValueToken:
      if (isTchar(c)) {
        return {};
      }
      if (ws) {
        state_ = State::ExtPreSemi;
      } else if (c == ';') {
        state_ = State::ExtNameStart;
      } else if (c == '\r') {
        state_ = State::SizeLf;
      } else {
        return kBadExt;
      }
      return {};
    case State::ExtQuoted:
      // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
      if (c == '"') {
        state_ = State::ExtAfterQuoted;
      } else if (c == '\\') {
        state_ = State::ExtQuotedPair;
      } else if (!(ws || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) ||
                   chars::isObsText(c))) {
        return kBadExt;
      }
      return {};
    case State::ExtQuotedPair:
      // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
      if (!(ws || chars::isVchar(c) || chars::isObsText(c))) {
        return kBadExt;
      }
      state_ = State::ExtQuoted;
      return {};
    case State::ExtAfterQuoted:
      if (ws) {
        state_ = State::ExtPreSemi;
      } else if (c == ';') {
        state_ = State::ExtNameStart;
      } else if (c == '\r') {
        state_ = State::SizeLf;
      } else {
        return kBadExt;
      }
      return {};
    case State::SizeLf:
      if (c != '\n') {
        return "http_chunk_missing_crlf";
      }
      if (chunk_size_ == 0) {
        state_ = State::Trailer;
        trailer_buf_.clear();
        trailer_line_start_ = 0;
        trailer_prev_cr_ = false;
        return {};
      }
      if (received_ > kMaxBodyLength - chunk_size_) {
        return "http_chunk_size_overflow";
      }
      remaining_ = chunk_size_;
      state_ = State::Data;
      return {};
    default:
      return "http_chunk_bad_size";  // not reached: only size-line states come here
  }
}

// RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ), then the final
// CRLF. Bounded by kMaxTrailerBytes, parsed like head field lines.
std::string_view BodyDecoder::trailerByte(uint8_t c) {
  if (trailer_buf_.size() >= kMaxTrailerBytes) {
    return "http_trailer_too_large";
  }
  LineByte kind = LineByte::Ordinary;
  if (std::string_view reason = scanLineByte(c, trailer_prev_cr_, kind); !reason.empty()) {
    return reason;
  }
  trailer_buf_.push_back(static_cast<char>(c));
  if (kind != LineByte::LineEnd) {
    return {};
  }
  const size_t line_len = trailer_buf_.size() - trailer_line_start_ - 2;
  trailer_line_start_ = trailer_buf_.size();
  if (line_len != 0) {
    return {};
  }
  // Trailer section complete: every line before the empty one is a field line.
  std::vector<std::string_view> lines;
  std::string_view rest(trailer_buf_);
  while (rest.size() > 2) {
    const size_t crlf = rest.find("\r\n");
    if (crlf == std::string_view::npos || crlf == 0) {
      break;  // not reached: every line in the buffer ends in CRLF, only the last is empty
    }
    lines.push_back(rest.substr(0, crlf));
    rest.remove_prefix(crlf + 2);
  }
  if (std::string_view reason = parseFieldLines(lines, trailers_); !reason.empty()) {
    return reason;
  }
  trailer_buf_.clear();
  trailer_buf_.shrink_to_fit();
  state_ = State::Done;
  return {};
}

BodyResult BodyDecoder::feed(std::span<const uint8_t> in) {
  switch (state_) {
    case State::Done:
      return {Status::Done, 0, {}, {}};
    case State::Invalid:
      return {Status::Invalid, 0, {}, reason_};
    case State::Length: {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
      remaining_ -= n;
      received_ += n;
      if (remaining_ == 0) {
        state_ = State::Done;
        return {Status::Done, n, in.first(n), {}};
      }
      return {Status::NeedMore, n, in.first(n), {}};
    }
    case State::UntilClose:
      received_ += in.size();
      return {Status::NeedMore, in.size(), in, {}};
    default:
      break;
  }
  for (size_t i = 0; i < in.size(); ++i) {
    switch (state_) {
      case State::Data: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - i));
        remaining_ -= n;
        received_ += n;
        if (remaining_ == 0) {
          state_ = State::DataCr;
        }
        return {Status::NeedMore, i + n, in.subspan(i, n), {}};
      }
      case State::DataCr:
        if (in[i] != '\r') {
          return fail("http_chunk_missing_crlf", i);
        }
        state_ = State::DataLf;
        break;
      case State::DataLf:
        if (in[i] != '\n') {
          return fail("http_chunk_missing_crlf", i);
        }
        state_ = State::SizeFirst;
        chunk_size_ = 0;
        line_len_ = 0;
        break;
      case State::Trailer:
        if (std::string_view reason = trailerByte(in[i]); !reason.empty()) {
          return fail(reason, i);
        }
        if (state_ == State::Done) {
          return {Status::Done, i + 1, {}, {}};
        }
        break;
      default:
        if (std::string_view reason = sizeLineByte(in[i]); !reason.empty()) {
          return fail(reason, i);
        }
        break;
    }
  }
  return {Status::NeedMore, in.size(), {}, {}};
}

BodyResult BodyDecoder::finish() {
  if (state_ == State::UntilClose || state_ == State::Done) {
    state_ = State::Done;
    return {Status::Done, 0, {}, {}};
  }
  if (state_ == State::Invalid) {
    return {Status::Invalid, 0, {}, reason_};
  }
  return fail("http_truncated", 0);
}

// ---------------------------------------------------------------------------
// Connection streams

namespace {

Step invalidStep(std::string_view reason, uint16_t status) {
  Step s;
  s.event = Event::Invalid;
  s.reason = reason;
  s.http_status = status;
  return s;
}

}  // namespace

Step RequestReader::fail(const HeadResult& r) {
  state_ = State::Invalid;
  invalid_ = invalidStep(r.reason, r.http_status);
  return invalid_;
}

Step RequestReader::next(std::span<const uint8_t> in) {
  switch (state_) {
    case State::Invalid:
      return invalid_;
    case State::Closed:
      if (in.empty()) {
        return Step{Event::NeedMore, 0, {}, {}, 0};
      }
      state_ = State::Invalid;
      invalid_ = invalidStep("http_message_after_close", kBadRequest);
      return invalid_;
    case State::Head: {
      if (head_done_) {
        head_parser_.reset();  // the previous message's head, kept until now for the caller
        head_done_ = false;
      }
      HeadResult r = head_parser_.feed(in);
      if (r.status == Status::NeedMore) {
        return Step{Event::NeedMore, r.consumed, {}, {}, 0};
      }
      if (r.status == Status::Invalid) {
        return fail(r);
      }
      head_done_ = true;
      body_ = BodyDecoder(head_parser_.head().body);
      state_ = State::Body;
      return Step{Event::Head, r.consumed, {}, {}, 0};
    }
    case State::Body: {
      BodyResult r = body_.done() ? BodyResult{Status::Done, 0, {}, {}} : body_.feed(in);
      if (r.status == Status::Invalid) {
        return fail(HeadResult{Status::Invalid, 0, r.reason, requestStatusFor(r.reason)});
      }
      if (!r.data.empty()) {
        return Step{Event::Body, r.consumed, r.data, {}, 0};
      }
      if (r.status == Status::NeedMore) {
        return Step{Event::NeedMore, r.consumed, {}, {}, 0};
      }
      state_ = head_parser_.head().keep_alive ? State::Head : State::Closed;
      return Step{Event::End, r.consumed, {}, {}, 0};
    }
  }
  return invalid_;
}

Step RequestReader::finish() {
  switch (state_) {
    case State::Invalid:
      return invalid_;
    case State::Closed:
      return Step{Event::NeedMore, 0, {}, {}, 0};
    case State::Head:
      if (head_parser_.buffered() == 0) {
        return Step{Event::NeedMore, 0, {}, {}, 0};
      }
      return fail(HeadResult{Status::Invalid, 0, "http_truncated", kBadRequest});
    case State::Body: {
      BodyResult r = body_.finish();
      if (r.status == Status::Invalid) {
        return fail(HeadResult{Status::Invalid, 0, r.reason, kBadRequest});
      }
      state_ = State::Closed;
      return Step{Event::End, 0, {}, {}, 0};
    }
  }
  return invalid_;
}

void ResponseReader::expect(ResponseContext context) { pending_.push_back(context); }

Step ResponseReader::next(std::span<const uint8_t> in) {
  switch (state_) {
    case State::Invalid:
      return invalid_;
    case State::Tunnel:
      return Step{Event::Tunnel, 0, {}, {}, 0};
    case State::Closed:
      if (in.empty()) {
        return Step{Event::NeedMore, 0, {}, {}, 0};
      }
      state_ = State::Invalid;
      invalid_ = invalidStep("http_message_after_close", kBadGateway);
      return invalid_;
    case State::Head: {
      if (pending_.empty()) {
        if (in.empty()) {
          return Step{Event::NeedMore, 0, {}, {}, 0};
        }
        state_ = State::Invalid;
        invalid_ = invalidStep("http_unsolicited_response", kBadGateway);
        return invalid_;
      }
      if (!parser_armed_) {
        head_parser_.reset(pending_.front());
        parser_armed_ = true;
      }
      HeadResult r = head_parser_.feed(in);
      if (r.status == Status::NeedMore) {
        return Step{Event::NeedMore, r.consumed, {}, {}, 0};
      }
      if (r.status == Status::Invalid) {
        state_ = State::Invalid;
        invalid_ = invalidStep(r.reason, kBadGateway);
        return invalid_;
      }
      const ResponseHead& head = head_parser_.head();
      if (head.body.kind == BodyKind::Tunnel) {
        pending_.pop_front();
        state_ = State::Tunnel;
      } else {
        body_ = BodyDecoder(head.body);
        state_ = State::Body;
      }
      return Step{Event::Head, r.consumed, {}, {}, 0};
    }
    case State::Body: {
      BodyResult r = body_.done() ? BodyResult{Status::Done, 0, {}, {}} : body_.feed(in);
      if (r.status == Status::Invalid) {
        state_ = State::Invalid;
        invalid_ = invalidStep(r.reason, kBadGateway);
        return invalid_;
      }
      if (!r.data.empty()) {
        return Step{Event::Body, r.consumed, r.data, {}, 0};
      }
      if (r.status == Status::NeedMore) {
        return Step{Event::NeedMore, r.consumed, {}, {}, 0};
      }
      parser_armed_ = false;
      const ResponseHead& head = head_parser_.head();
      if (head.interim()) {
        state_ = State::Head;  // the same request still waits for its final response
      } else {
        pending_.pop_front();
        state_ = head.keep_alive ? State::Head : State::Closed;
      }
      return Step{Event::End, r.consumed, {}, {}, 0};
    }
  }
  return invalid_;
}

Step ResponseReader::finish() {
  switch (state_) {
    case State::Invalid:
      return invalid_;
    case State::Tunnel:
      return Step{Event::Tunnel, 0, {}, {}, 0};
    case State::Closed:
      return Step{Event::NeedMore, 0, {}, {}, 0};
    case State::Head:
      if (!parser_armed_ || head_parser_.buffered() == 0) {
        return Step{Event::NeedMore, 0, {}, {}, 0};
      }
      state_ = State::Invalid;
      invalid_ = invalidStep("http_truncated", kBadGateway);
      return invalid_;
    case State::Body: {
      BodyResult r = body_.finish();
      if (r.status == Status::Invalid) {
        state_ = State::Invalid;
        invalid_ = invalidStep(r.reason, kBadGateway);
        return invalid_;
      }
      parser_armed_ = false;
      if (!pending_.empty()) {
        pending_.pop_front();
      }
      state_ = State::Closed;
      return Step{Event::End, 0, {}, {}, 0};
    }
  }
  return invalid_;
}

}  // namespace tollgate::mitm
