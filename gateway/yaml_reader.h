// Internal to gateway/config.cc: typed, position-aware reading of yaml-cpp
// nodes. Every reader reports what is wrong (with the 1-based line and column
// of the node) and returns nullopt instead of throwing; the config validator
// is built from these. Not a public interface of gateway/.
#pragma once

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/cidr.h"
#include "gateway/config.h"
#include "gateway/host_pattern.h"

namespace tollgate::gateway::yaml {

// Thrown by Reader only; whoever calls the readers catches them at the edge.
struct NodeBudgetExceeded {};
struct TooManyErrors {};

struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// The entries of a map that passed key checks, in document order.
struct MapView {
  YAML::Mark mark;
  std::vector<Entry> entries;

  const Entry* find(std::string_view key) const {
    for (const Entry& e : entries) {
      if (e.key == key) {
        return &e;
      }
    }
    return nullptr;
  }
};

template <typename E>
using EnumTable = std::initializer_list<std::pair<std::string_view, E>>;

std::string lower(std::string_view s);
// The closest candidate when it is close enough to be a plausible typo.
std::optional<std::string> suggest(std::string_view word,
                                   const std::vector<std::string>& candidates);
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");
// 'text', control characters escaped, cut at 60 characters.
std::string quoteShort(std::string_view s);
// What a node is, for "expected X, got Y" messages.
std::string describe(const YAML::Node& node);
// Decimal digits only, at most 10 of them.
std::optional<uint64_t> parseUnsigned(std::string_view s);
bool hasControlChar(std::string_view s);

class Reader {
 public:
  // `node_budget` caps the nodes visited (counting every use of an alias);
  // past it readers throw NodeBudgetExceeded. Past kMaxErrors errors, fail()
  // throws TooManyErrors.
  static constexpr size_t kMaxErrors = 200;
  Reader(std::string path, size_t node_budget)
      : path_(std::move(path)), node_budget_(node_budget) {}

  const std::string& path() const { return path_; }
  std::vector<ConfigError>& errors() { return errors_; }
  size_t nodeBudget() const { return node_budget_; }

  // --- diagnostics -----------------------------------------------------------
  void fail(const YAML::Mark& mark, std::string message);
  // Where to point for a value: the value itself, or (when it is empty or has
  // no position) the fallback, normally its key.
  static YAML::Mark at(const YAML::Node& node, const YAML::Mark& fallback);
  // Counts one node against the budget.
  void visit();

  // --- readers: `what` names the field in messages ("gateway.listen_port") ---
  // A map whose keys must come from `allowed` (any key when nullopt); unknown
  // and duplicate keys are reported (with a did-you-mean) and left out.
  std::optional<MapView> readMap(const YAML::Node& node, const YAML::Mark& fallback,
                                 const std::string& what,
                                 std::optional<std::vector<std::string>> allowed);
  std::optional<std::vector<YAML::Node>> readList(const YAML::Node& node,
                                                  const YAML::Mark& fallback,
                                                  const std::string& what,
                                                  std::string_view example);
  // A non-empty list (an empty one is almost always a mistake that would
  // silently change what a rule matches).
  std::optional<std::vector<YAML::Node>> readNonEmptyList(const YAML::Node& node,
                                                          const YAML::Mark& fallback,
                                                          const std::string& what,
                                                          std::string_view example);
  // A non-empty scalar without NUL bytes.
  std::optional<std::string> readString(const YAML::Node& node, const YAML::Mark& fallback,
                                        const std::string& what);
  std::optional<uint64_t> readUnsigned(const YAML::Node& node, const YAML::Mark& fallback,
                                       const std::string& what, uint64_t lo, uint64_t hi);
  std::optional<std::string> readAbsPath(const YAML::Node& node, const YAML::Mark& fallback,
                                         const std::string& what);
  std::optional<Cidr> readCidr(const YAML::Node& node, const YAML::Mark& fallback,
                               const std::string& what);
  // A non-empty list of CIDRs; nullopt if the list or any entry is bad. The
  // position of each entry goes to `marks` when given.
  std::optional<std::vector<Cidr>> readCidrList(const YAML::Node& node, const YAML::Mark& fallback,
                                                const std::string& what,
                                                std::vector<YAML::Mark>* marks = nullptr);
  // 443 or "8000-8100"; ports 1-65535.
  std::optional<PortRange> readPortRange(const YAML::Node& node, const YAML::Mark& fallback,
                                         const std::string& what);
  std::optional<std::vector<PortRange>> readPortList(const YAML::Node& node,
                                                     const YAML::Mark& fallback,
                                                     const std::string& what);
  std::optional<HostPattern> readHostPattern(const YAML::Node& node, const YAML::Mark& fallback,
                                             const std::string& what);
  std::optional<std::vector<HostPattern>> readHostList(const YAML::Node& node,
                                                       const YAML::Mark& fallback,
                                                       const std::string& what);
  // One of the table's names; a did-you-mean for near misses.
  template <typename E>
  std::optional<E> readEnum(const YAML::Node& node, const YAML::Mark& fallback,
                            const std::string& what, EnumTable<E> table) {
    std::vector<std::string> names;
    for (const auto& [name, value] : table) {
      names.emplace_back(name);
    }
    if (node.IsScalar()) {
      for (const auto& [name, value] : table) {
        if (node.Scalar() == name) {
          return value;
        }
      }
    }
    std::string msg = fmt::format("{}: {} is not one of: {}", what, describe(node), join(names));
    if (node.IsScalar()) {
      if (auto s = suggest(node.Scalar(), names)) {
        msg += fmt::format("; did you mean '{}'?", *s);
      }
    }
    fail(at(node, fallback), msg);
    return std::nullopt;
  }

 private:
  std::string path_;
  std::vector<ConfigError> errors_;
  size_t nodes_ = 0;
  size_t node_budget_;
};

}  // namespace tollgate::gateway::yaml
