// Audit log: one JSON object per line, written when a flow (or an exchange or
// DNS query inside it) ends. Field names are a stable contract (DESIGN.md).
// Never carries header values, query strings, secrets or placeholders (every
// string field goes through redactPlaceholders on the way out).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique.h"
#include "gateway/redact.h"

namespace tollgate::gateway {

struct FlowRecord {
  std::chrono::system_clock::time_point ts;
  std::string event = "flow";
  std::string sandbox;
  std::string src;
  std::string dst;
  std::string proto;  // tls | http | opaque
  std::string sni;
  std::string host;
  std::string action;
  std::string reason;
  std::string rule;
  std::string upstream;
  uint64_t bytes_up = 0;
  uint64_t bytes_down = 0;
  uint64_t duration_ms = 0;
  // tls
  std::string tls_version;
  std::vector<std::string> tls_alpn;
  bool tls_ech = false;
  bool has_tls = false;
  // http
  std::string http_method;
  std::string http_path;  // without query string
  int http_status = 0;
  bool has_http = false;
  std::vector<std::string> credentials;
};

// Serialises a record as one JSON line (with trailing newline).
std::string formatRecord(const FlowRecord& r);
// `r` with every placeholder of `list` in every string field redacted.
FlowRecord redactRecord(FlowRecord r, std::span<const NamedPlaceholder> list);
// "/v1/x?key=secret" -> "/v1/x"; absolute-form targets keep only the path.
std::string pathWithoutQuery(std::string_view target);

class AuditLog {
 public:
  // "-" writes to stdout; otherwise the file is opened for append (created 0640).
  static Result<std::unique_ptr<AuditLog>> open(const std::string& path);
  // Redacts the placeholders of the current list, then writes.
  void write(const FlowRecord& r);
  // The placeholders to redact from now on (start and every reload: the
  // writer outlives the credential tables).
  void setPlaceholders(std::shared_ptr<const PlaceholderList> list) {
    redact_.set(std::move(list));
  }
  // Reopens the file (for logrotate); no-op for stdout.
  Result<void> reopen();

 private:
  explicit AuditLog(std::string path) : path_(std::move(path)) {}
  std::string path_;
  PlaceholderRedactor redact_;
  std::mutex mu_;
  UniqueFd fd_;
  int raw_fd_ = -1;  // fd_ or stdout
};

}  // namespace tollgate::gateway
