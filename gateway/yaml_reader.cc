#include "gateway/yaml_reader.h"

#include <algorithm>
#include <map>

namespace tollgate::gateway::yaml {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

namespace {

// Optimal string alignment distance (Levenshtein plus adjacent transposition).
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) {
    d[i][0] = i;
  }
  for (size_t j = 0; j <= b.size(); ++j) {
    d[0][j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::optional<std::string> suggest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
  if (word.size() > 64) {
    return std::nullopt;
  }
  std::string w = lower(word);
  std::optional<std::string> best;
  size_t best_distance = SIZE_MAX;
  for (const std::string& c : candidates) {
    size_t dist = editDistance(w, lower(c));
    size_t limit = std::max<size_t>(1, c.size() / 3);
    if (dist <= limit && dist < best_distance) {
      best = c;
      best_distance = dist;
    }
  }
  return best;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out += sep;
    }
    out += items[i];
  }
  return out;
}

std::string quoteShort(std::string_view s) {
  constexpr size_t kMax = 60;
  std::string out;
  for (char c : s.substr(0, kMax)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out.push_back(c);
    }
  }
  if (s.size() > kMax) {
    out += "...";
  }
  return "'" + out + "'";
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return quoteShort(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

std::optional<uint64_t> parseUnsigned(std::string_view s) {
  if (s.empty() || s.size() > 10) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

bool hasControlChar(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// --- diagnostics ---------------------------------------------------------
void Reader::fail(const YAML::Mark& mark, std::string message) {
  if (errors_.size() >= kMaxErrors) {
    throw TooManyErrors{};
  }
  int line = mark.line >= 0 ? mark.line + 1 : 1;
  int column = mark.column >= 0 ? mark.column + 1 : 1;
  errors_.push_back(ConfigError{path_, line, column, std::move(message)});
}

// Where to point for a value: the value itself, or (when it is empty or has
// no position) the fallback, normally its key.
YAML::Mark Reader::at(const YAML::Node& node, const YAML::Mark& fallback) {
  if (!node.IsDefined() || node.IsNull() || node.Mark().is_null()) {
    return fallback;
  }
  return node.Mark();
}

void Reader::visit() {
  if (++nodes_ > node_budget_) {
    throw NodeBudgetExceeded{};
  }
}

// --- structure -----------------------------------------------------------
// A map whose keys must come from `allowed`; unknown and duplicate keys are
// reported (with a did-you-mean) and dropped from the view.
std::optional<MapView> Reader::readMap(const YAML::Node& node, const YAML::Mark& fallback,
                                       const std::string& what,
                                       std::optional<std::vector<std::string>> allowed) {
  if (!node.IsMap()) {
    fail(at(node, fallback),
         fmt::format("{}: expected a map (key: value), got {}", what, describe(node)));
    return std::nullopt;
  }
  MapView view{at(node, fallback), {}};
  std::map<std::string, YAML::Mark> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    visit();
    // Copies: `it->first` lives in a proxy that dies with this statement.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      fail(at(key, view.mark), fmt::format("{}: keys must be plain strings", what));
      continue;
    }
    const std::string& k = key.Scalar();
    if (auto prev = seen.find(k); prev != seen.end()) {
      fail(key.Mark(), fmt::format("{}: duplicate key {} (first on line {})", what, quoteShort(k),
                                   prev->second.line + 1));
      continue;
    }
    seen.emplace(k, key.Mark());
    if (allowed && std::find(allowed->begin(), allowed->end(), k) == allowed->end()) {
      if (auto s = suggest(k, *allowed)) {
        fail(key.Mark(),
             fmt::format("{}: unknown key {}; did you mean '{}'?", what, quoteShort(k), *s));
      } else {
        fail(key.Mark(), fmt::format("{}: unknown key {}; expected one of: {}", what, quoteShort(k),
                                     join(*allowed)));
      }
      continue;
    }
    view.entries.push_back(Entry{k, key, value});
  }
  return view;
}

std::optional<std::vector<YAML::Node>> Reader::readList(const YAML::Node& node,
                                                        const YAML::Mark& fallback,
                                                        const std::string& what,
                                                        std::string_view example) {
  if (!node.IsSequence()) {
    fail(at(node, fallback),
         fmt::format("{}: expected a list, e.g. {}, got {}", what, example, describe(node)));
    return std::nullopt;
  }
  std::vector<YAML::Node> out;
  for (auto it = node.begin(); it != node.end(); ++it) {
    visit();
    out.push_back(*it);
  }
  return out;
}

// A non-empty list (an empty one is almost always a mistake that would
// silently change what a rule matches).
std::optional<std::vector<YAML::Node>> Reader::readNonEmptyList(const YAML::Node& node,
                                                                const YAML::Mark& fallback,
                                                                const std::string& what,
                                                                std::string_view example) {
  auto items = readList(node, fallback, what, example);
  if (items && items->empty()) {
    fail(at(node, fallback),
         fmt::format("{}: empty list; list at least one entry, e.g. {}", what, example));
    return std::nullopt;
  }
  return items;
}

std::optional<std::string> Reader::readString(const YAML::Node& node, const YAML::Mark& fallback,
                                              const std::string& what) {
  if (!node.IsScalar()) {
    fail(at(node, fallback), fmt::format("{}: expected a string, got {}", what, describe(node)));
    return std::nullopt;
  }
  if (node.Scalar().empty()) {
    fail(at(node, fallback), fmt::format("{}: must not be empty", what));
    return std::nullopt;
  }
  if (node.Scalar().find('\0') != std::string::npos) {
    fail(at(node, fallback), fmt::format("{}: contains a NUL byte", what));
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<uint64_t> Reader::readUnsigned(const YAML::Node& node, const YAML::Mark& fallback,
                                             const std::string& what, uint64_t lo, uint64_t hi) {
  if (!node.IsScalar()) {
    fail(at(node, fallback),
         fmt::format("{}: expected an integer {}-{}, got {}", what, lo, hi, describe(node)));
    return std::nullopt;
  }
  auto v = parseUnsigned(node.Scalar());
  if (!v) {
    fail(at(node, fallback),
         fmt::format("{}: expected an integer {}-{}, got {}", what, lo, hi, describe(node)));
    return std::nullopt;
  }
  if (*v < lo || *v > hi) {
    fail(at(node, fallback), fmt::format("{}: {} is out of range {}-{}", what, *v, lo, hi));
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> Reader::readAbsPath(const YAML::Node& node, const YAML::Mark& fallback,
                                               const std::string& what) {
  auto s = readString(node, fallback, what);
  if (!s) {
    return std::nullopt;
  }
  if (s->front() != '/' || s->find('\0') != std::string::npos || hasControlChar(*s)) {
    fail(at(node, fallback),
         fmt::format("{}: {} must be an absolute path (starting with '/')", what, quoteShort(*s)));
    return std::nullopt;
  }
  return s;
}

std::optional<Cidr> Reader::readCidr(const YAML::Node& node, const YAML::Mark& fallback,
                                     const std::string& what) {
  auto s = readString(node, fallback, what);
  if (!s) {
    return std::nullopt;
  }
  auto c = Cidr::parseDetailed(*s);
  if (!c) {
    fail(at(node, fallback), fmt::format("{}: {}", what, c.message()));
    return std::nullopt;
  }
  return *c;
}

// A non-empty list of CIDRs; nullopt if the list or any entry is bad.
std::optional<std::vector<Cidr>> Reader::readCidrList(const YAML::Node& node,
                                                      const YAML::Mark& fallback,
                                                      const std::string& what,
                                                      std::vector<YAML::Mark>* marks) {
  auto items = readNonEmptyList(node, fallback, what, "[10.0.0.0/8]");
  if (!items) {
    return std::nullopt;
  }
  std::vector<Cidr> out;
  bool ok = true;
  for (size_t i = 0; i < items->size(); ++i) {
    auto c = readCidr((*items)[i], at(node, fallback), fmt::format("{}[{}]", what, i));
    if (!c) {
      ok = false;
      continue;
    }
    out.push_back(*c);
    if (marks != nullptr) {
      marks->push_back(at((*items)[i], fallback));
    }
  }
  if (!ok) {
    return std::nullopt;
  }
  return out;
}

std::optional<PortRange> Reader::readPortRange(const YAML::Node& node, const YAML::Mark& fallback,
                                               const std::string& what) {
  if (!node.IsScalar() || node.Scalar().empty()) {
    fail(at(node, fallback),
         fmt::format("{}: expected a port (443) or a range (\"8000-8100\"), got {}", what,
                     describe(node)));
    return std::nullopt;
  }
  const std::string& s = node.Scalar();
  auto port = [](std::string_view p) -> std::optional<uint16_t> {
    auto v = parseUnsigned(p);
    if (!v || *v < 1 || *v > 65535) {
      return std::nullopt;
    }
    return static_cast<uint16_t>(*v);
  };
  size_t dash = s.find('-');
  std::string_view lo_text =
      dash == std::string::npos ? std::string_view(s) : std::string_view(s).substr(0, dash);
  std::string_view hi_text =
      dash == std::string::npos ? std::string_view(s) : std::string_view(s).substr(dash + 1);
  auto lo = port(lo_text);
  auto hi = port(hi_text);
  if (!lo || !hi) {
    fail(at(node, fallback),
         fmt::format("{}: {} is not a port 1-65535 or a range like \"8000-8100\"", what,
                     quoteShort(s)));
    return std::nullopt;
  }
  if (*lo > *hi) {
    fail(at(node, fallback),
         fmt::format("{}: range {} starts above its end; did you mean \"{}-{}\"?", what,
                     quoteShort(s), *hi, *lo));
    return std::nullopt;
  }
  return PortRange{*lo, *hi};
}

std::optional<std::vector<PortRange>> Reader::readPortList(const YAML::Node& node,
                                                           const YAML::Mark& fallback,
                                                           const std::string& what) {
  auto items = readNonEmptyList(node, fallback, what, "[443, \"8000-8100\"]");
  if (!items) {
    return std::nullopt;
  }
  std::vector<PortRange> out;
  bool ok = true;
  for (size_t i = 0; i < items->size(); ++i) {
    auto r = readPortRange((*items)[i], at(node, fallback), fmt::format("{}[{}]", what, i));
    if (!r) {
      ok = false;
      continue;
    }
    out.push_back(*r);
  }
  if (!ok) {
    return std::nullopt;
  }
  return out;
}

std::optional<HostPattern> Reader::readHostPattern(const YAML::Node& node,
                                                   const YAML::Mark& fallback,
                                                   const std::string& what) {
  auto s = readString(node, fallback, what);
  if (!s) {
    return std::nullopt;
  }
  auto p = HostPattern::parse(*s);
  if (!p) {
    fail(at(node, fallback), fmt::format("{}: {}", what, p.message()));
    return std::nullopt;
  }
  return *p;
}

std::optional<std::vector<HostPattern>> Reader::readHostList(const YAML::Node& node,
                                                             const YAML::Mark& fallback,
                                                             const std::string& what) {
  auto items = readNonEmptyList(node, fallback, what, "[api.example.com, \"*.example.com\"]");
  if (!items) {
    return std::nullopt;
  }
  std::vector<HostPattern> out;
  bool ok = true;
  for (size_t i = 0; i < items->size(); ++i) {
    auto p = readHostPattern((*items)[i], at(node, fallback), fmt::format("{}[{}]", what, i));
    if (!p) {
      ok = false;
      continue;
    }
    out.push_back(std::move(*p));
  }
  if (!ok) {
    return std::nullopt;
  }
  return out;
}

}  // namespace tollgate::gateway::yaml
