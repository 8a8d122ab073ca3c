// Operational log to stderr: one line per event, journald-friendly
// ("<N>" priority prefixes when under systemd), never a secret.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>

#include "gateway/redact.h"

namespace tollgate::gateway::log {

enum class Level { Error = 3, Warn = 4, Info = 6, Debug = 7 };

void setJournalPrefixes(bool on);
// Placeholders to redact from every line (host names, SNI and paths reach
// the log from sandboxes); set at start and on every reload.
void setPlaceholders(std::shared_ptr<const PlaceholderList> list);
void write(Level level, const std::string& msg);

template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::Error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::Warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::Info, fmt::format(f, std::forward<Args>(args)...));
}

// For a line that can repeat in a tight loop (a failing accept, a peer
// flooding errors): the first is written, the repeats within `window` are
// only counted, and the next one after the window is written with
// " (N more in the last 10 s)". Thread-safe; one per call site, e.g.
//   static log::Throttle throttle;
//   throttle.warn("accept: {}", std::strerror(errno));
class Throttle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Throttle(Clock::duration window = std::chrono::seconds(10)) : window_(window) {}

  // Whether a line may be written at `now`; if so, `*suppressed` is how many
  // were held back since the last one written.
  bool admit(Clock::time_point now, uint64_t* suppressed);
  // " (N more in the last S s)" for N > 0, else "".
  std::string suffix(uint64_t suppressed) const;

  template <typename... Args>
  void warn(fmt::format_string<Args...> f, Args&&... args) {
    emit(Level::Warn, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void error(fmt::format_string<Args...> f, Args&&... args) {
    emit(Level::Error, f, std::forward<Args>(args)...);
  }

 private:
  template <typename... Args>
  void emit(Level level, fmt::format_string<Args...> f, Args&&... args) {
    uint64_t suppressed = 0;
    if (admit(Clock::now(), &suppressed)) {  // formats nothing when held back
      write(level, fmt::format(f, std::forward<Args>(args)...) + suffix(suppressed));
    }
  }

  const Clock::duration window_;
  std::mutex mu_;
  bool written_ = false;
  Clock::time_point last_;
  uint64_t held_ = 0;
};

}  // namespace tollgate::gateway::log
