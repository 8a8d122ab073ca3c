// Operational log to stderr: one line per event, journald-friendly
// ("<N>" priority prefixes when under systemd), never a secret.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <memory>

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

}  // namespace tollgate::gateway::log
