// Placeholder redaction for everything tollgate writes about traffic: audit
// records, log lines, metric labels. A sandbox holds placeholders and may put
// them anywhere (a path, a DNS name, an SNI); whoever reads the logs must not
// learn them from there. Pure; table-tested.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tollgate::gateway {

struct NamedPlaceholder {
  std::string name;         // the credential's name (config text, not secret)
  std::string placeholder;  // what the sandbox holds
};
using PlaceholderList = std::vector<NamedPlaceholder>;

// Every occurrence of a placeholder in `text` becomes "<placeholder:NAME>".
// An occurrence is matched in any letter case (DNS names are lower-cased on
// the way in, placeholders may hold upper case), and each of its characters
// may also be written as a percent escape "%HH" (either hex case: a path) or
// a DNS presentation escape "\DDD" (a name with '~' or a '.' inside a label).
// Placeholders are tried in list order at each position; text without any
// comes back unchanged.
std::string redactPlaceholders(std::string_view text, std::span<const NamedPlaceholder> list);

// The list currently in force, shared between threads: set at start and on
// every reload, read for every record and line.
class PlaceholderRedactor {
 public:
  void set(std::shared_ptr<const PlaceholderList> list) { list_.store(std::move(list)); }
  std::shared_ptr<const PlaceholderList> current() const { return list_.load(); }
  std::string operator()(std::string_view text) const {
    auto list = list_.load();
    return list ? redactPlaceholders(text, *list) : std::string(text);
  }

 private:
  std::atomic<std::shared_ptr<const PlaceholderList>> list_;
};

}  // namespace tollgate::gateway
