#include "gateway/log.h"

#include <unistd.h>

#include <atomic>

namespace tollgate::gateway::log {
namespace {
std::atomic<bool> g_journal{false};
PlaceholderRedactor g_redact;

const char* levelName(Level l) {
  switch (l) {
    case Level::Error:
      return "error";
    case Level::Warn:
      return "warning";
    case Level::Info:
      return "info";
    case Level::Debug:
      return "debug";
  }
  return "info";
}
}  // namespace

void setJournalPrefixes(bool on) { g_journal = on; }

void setPlaceholders(std::shared_ptr<const PlaceholderList> list) { g_redact.set(std::move(list)); }

void write(Level level, const std::string& raw) {
  const std::string msg = g_redact(raw);
  std::string line = g_journal ? fmt::format("<{}>{}\n", static_cast<int>(level), msg)
                               : fmt::format("tollgate: {}: {}\n", levelName(level), msg);
  // One write per line so lines from several threads never interleave.
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

bool Throttle::admit(Clock::time_point now, uint64_t* suppressed) {
  std::lock_guard lock(mu_);
  if (written_ && now - last_ < window_) {
    ++held_;
    return false;
  }
  *suppressed = held_;
  held_ = 0;
  written_ = true;
  last_ = now;
  return true;
}

std::string Throttle::suffix(uint64_t suppressed) const {
  if (suppressed == 0) {
    return "";
  }
  return fmt::format(" ({} more in the last {} s)", suppressed,
                     std::chrono::duration_cast<std::chrono::seconds>(window_).count());
}

}  // namespace tollgate::gateway::log
