#include "gateway/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

namespace tollgate::gateway {
namespace {

std::string rfc3339Ms(std::chrono::system_clock::time_point tp) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[40];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace

std::string pathWithoutQuery(std::string_view target) {
  // Absolute form: drop scheme and authority.
  if (auto scheme = target.find("://"); scheme != std::string_view::npos && target.front() != '/') {
    auto slash = target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  auto cut = target.find_first_of("?#");
  return std::string(target.substr(0, cut));
}

std::string formatRecord(const FlowRecord& r) {
  nlohmann::ordered_json j;
  j["ts"] = rfc3339Ms(r.ts);
  j["event"] = r.event;
  j["sandbox"] = r.sandbox;
  j["src"] = r.src;
  j["dst"] = r.dst;
  j["proto"] = r.proto;
  j["sni"] = r.sni;
  j["host"] = r.host;
  j["action"] = r.action;
  j["reason"] = r.reason;
  j["rule"] = r.rule;
  j["upstream"] = r.upstream;
  j["bytes_up"] = r.bytes_up;
  j["bytes_down"] = r.bytes_down;
  j["duration_ms"] = r.duration_ms;
  if (r.has_tls) {
    j["tls"] = {{"version", r.tls_version}, {"alpn", r.tls_alpn}, {"ech", r.tls_ech}};
  }
  if (r.has_http) {
    j["http"] = {{"method", r.http_method}, {"path", r.http_path}, {"status", r.http_status}};
  }
  j["credentials"] = r.credentials;
  // Untrusted strings (SNI, Host, paths) may hold invalid UTF-8: replace, never throw.
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

FlowRecord redactRecord(FlowRecord r, std::span<const NamedPlaceholder> list) {
  if (list.empty()) {
    return r;
  }
  for (std::string* field :
       {&r.event, &r.sandbox, &r.src, &r.dst, &r.proto, &r.sni, &r.host, &r.action, &r.reason,
        &r.rule, &r.upstream, &r.tls_version, &r.http_method, &r.http_path}) {
    *field = redactPlaceholders(*field, list);
  }
  for (std::vector<std::string>* list_field : {&r.tls_alpn, &r.credentials}) {
    for (std::string& s : *list_field) {
      s = redactPlaceholders(s, list);
    }
  }
  return r;
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path) {
  std::unique_ptr<AuditLog> log(new AuditLog(path));
  if (path == "-") {
    log->raw_fd_ = STDOUT_FILENO;
    return log;
  }
  if (auto r = log->reopen(); !r) {
    return r.error();
  }
  return log;
}

Result<void> AuditLog::reopen() {
  if (path_ == "-") {
    return {};
  }
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) {
    return makeError("audit_log " + path_ + ": cannot open for append: " + std::strerror(errno) +
                     " (create its directory or fix permissions)");
  }
  std::lock_guard lock(mu_);
  fd_.reset(fd);
  raw_fd_ = fd;
  return {};
}

void AuditLog::write(const FlowRecord& r) {
  auto list = redact_.current();
  // No placeholders: the record as it is, without a copy per field.
  std::string line = formatRecord(list && !list->empty() ? redactRecord(r, *list) : r);
  std::lock_guard lock(mu_);
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(raw_fd_, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return;  // an audit sink that fails must not stop traffic handling
    }
    off += static_cast<size_t>(n);
  }
}

}  // namespace tollgate::gateway
