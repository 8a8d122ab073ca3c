#include "gateway/config.h"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include "gateway/yaml_reader.h"
#include "mitm/credentials.h"

namespace tollgate::gateway {
namespace {

using yaml::describe;
using yaml::Entry;
using yaml::EnumTable;
using yaml::hasControlChar;
using yaml::join;
using yaml::lower;
using yaml::quoteShort;
using yaml::suggest;

// Upper bound on YAML nodes visited, counting every alias expansion: anchors
// let a few lines name an exponential number of nodes. Without aliases every
// node takes at least two bytes of text, so base + one per byte never limits
// a config that does not use aliases, and keeps the work linear in its size.
constexpr size_t kNodeBudgetBase = 10000;
constexpr size_t kMaxFileSize = size_t{16} << 20;
constexpr size_t kMinPlaceholderLen = 24;
constexpr size_t kMaxPlaceholderLen = 512;
constexpr size_t kMaxNameLen = 64;
constexpr size_t kMaxIfNameLen = 15;  // IFNAMSIZ - 1
constexpr uint32_t kMinPeekTimeoutMs = 10;
constexpr uint32_t kMaxTimeoutMs = 60000;
constexpr uint16_t kDnsPort = 53;
constexpr uint32_t kMaxFlowLimit = 1000000;
constexpr uint32_t kMaxIdleTimeoutS = 7 * 24 * 3600;

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

// Names of sandboxes, rules and credentials appear in audit records and
// metrics labels: keep them plain.
bool isPlainName(std::string_view s) {
  return !s.empty() && s.size() <= kMaxNameLen && std::all_of(s.begin(), s.end(), isNameChar);
}

bool isAllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool isEnvName(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Linux dev_valid_name(): 1-15 bytes, not "." or "..", no '/', ':' or space.
bool isInterfaceName(std::string_view s) {
  if (s.empty() || s.size() > kMaxIfNameLen || s == "." || s == "..") {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '/' && c != ':';
  });
}

// nat::kMaxBindings: one skb mark per sandbox with ports.
constexpr size_t kMaxBoundSandboxes = 255;

// sandboxes[].ports: an interface name, or a prefix ending in '*' as nft
// matches it; "*" alone would claim every bridge port of the host.
bool isPortPattern(std::string_view s) {
  const bool prefix = !s.empty() && s.back() == '*';
  return isInterfaceName(prefix ? s.substr(0, s.size() - 1) : s) &&
         (prefix ? s.size() > 1 : true) && s.find('*') >= s.size() - 1;
}

// Whether some interface name matches both port patterns.
bool portPatternsOverlap(std::string_view a, std::string_view b) {
  auto stem = [](std::string_view p) { return p.ends_with('*') ? p.substr(0, p.size() - 1) : p; };
  if (!a.ends_with('*') && !b.ends_with('*')) {
    return a == b;
  }
  // A prefix pattern matches every name starting with its stem.
  const std::string_view sa = stem(a), sb = stem(b);
  if (a.ends_with('*') && b.ends_with('*')) {
    return sa.starts_with(sb) || sb.starts_with(sa);
  }
  return a.ends_with('*') ? b.starts_with(sa) : a.starts_with(sb);
}

// systemd LoadCredential= names a file in $CREDENTIALS_DIRECTORY: a single
// path component, so it can never point outside that directory.
bool isCredentialFileName(std::string_view s) {
  if (s.empty() || s.size() > 255 || s == "." || s == "..") {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u != 0x7f && c != '/';
  });
}

bool isUserName(std::string_view s) {
  return !s.empty() && s.size() <= 32 && s[0] != '-' &&
         std::all_of(s.begin(), s.end(), [](char c) { return isNameChar(c) || c == '$'; });
}

std::string pathSlash(const std::string& dir, std::string_view file) {
  if (!dir.empty() && dir.back() == '/') {
    return dir + std::string(file);
  }
  return dir + "/" + std::string(file);
}

std::string syntaxErrorMessage(const YAML::ParserException& e) {
  std::string msg = "YAML syntax error: " + e.msg;
  if (e.msg == YAML::ErrorMsg::UNKNOWN_ANCHOR) {
    msg +=
        " (a value starting with '*' is an alias in YAML; quote host patterns: "
        "\"*.example.com\")";
  }
  return msg;
}

// Something other than blank lines, comments and document markers.
bool hasContent(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? text.npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line[first] == '#') {
      continue;
    }
    std::string_view rest = line.substr(first);
    if (rest.starts_with("---") || rest.starts_with("...")) {
      continue;
    }
    return true;
  }
  return false;
}

// Only notes where documents start.
class DocumentCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (count_++ == 1) {
      second_ = mark;
    }
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  const std::optional<YAML::Mark>& second() const { return second_; }

 private:
  int count_ = 0;
  std::optional<YAML::Mark> second_;
};

// Where a second YAML document starts, if there is one. Reads at most two
// documents. Throws YAML::ParserException for a syntax error in either.
std::optional<YAML::Mark> secondDocument(std::string_view text) {
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  DocumentCounter counter;
  for (int i = 0; i < 2 && parser.HandleNextDocument(counter); ++i) {
  }
  return counter.second();
}

// The keys each map of the document accepts. Unknown keys are errors (with a
// did-you-mean); knownConfigKeys() exposes these tables so docs/config.md
// can be checked against them.
const std::vector<std::string> kRootKeys = {"gateway", "deny_cidrs", "sandboxes", "credentials"};
const std::vector<std::string> kGatewayKeys = {
    "interfaces",  "capture",   "listen_port",     "ipv6",           "state_dir",  "ca",
    "upstream_ca", "resolvers", "static_hosts",    "audit_log",      "metrics",    "control",
    "user",        "on_exit",   "peek_timeout_ms", "opaque_wait_ms", "deny_style", "dns_port",
    "leaf_key",    "max_flows_per_sandbox", "max_mitm_flows_per_sandbox", "idle_timeout_s",
    "deny_leaves_per_minute"};
const std::vector<std::string> kCaKeys = {"cert", "key"};
const std::vector<std::string> kSandboxKeys = {"name", "sources", "default",   "rules",
                                               "dns",  "udp",     "ports",     "max_flows",
                                               "max_mitm_flows"};
const std::vector<std::string> kRuleKeys = {"name",  "hosts",  "cidrs",
                                            "ports", "action", "credentials"};
const std::vector<std::string> kUdpKeys = {"cidrs", "ports"};
const std::vector<std::string> kCredentialKeys = {"source", "placeholder", "hosts", "inject"};
const std::vector<std::string> kSourceKeys = {"env", "file", "credential"};
const std::vector<std::string> kInjectKeys = {"header", "query", "format"};

const EnumTable<Action> kActions = {
    {"passthrough", Action::Passthrough}, {"deny", Action::Deny}, {"mitm", Action::Mitm}};

// The validator: walks the document section by section, collecting every
// error it can find, and builds the Config as it goes.
class Parser : private yaml::Reader {
 public:
  Parser(std::string path, std::string_view text)
      : yaml::Reader(std::move(path), kNodeBudgetBase + text.size()), text_(text) {}

  // Never throws yaml-cpp or parser exceptions.
  std::variant<Config, std::vector<ConfigError>> run();

 private:
  void parseDocument();
  // --- sections ------------------------------------------------------------
  void parseGateway(const YAML::Node& node, const YAML::Mark& key_mark);
  void parseResolvers(const Entry& e);
  void parseStaticHosts(const Entry& e);
  void parseMetrics(const Entry& e);
  void parseDenyCidrs(const Entry& e);
  void parseCredentials(const Entry& e);
  std::optional<Credential> parseCredential(const std::string& name, const YAML::Node& node,
                                            const YAML::Mark& key_mark);
  void parseSandboxes(const Entry& e);
  std::optional<Sandbox> parseSandbox(const YAML::Node& node, const YAML::Mark& fallback,
                                      const std::string& what, size_t index);
  std::optional<Rule> parseRule(const YAML::Node& node, const YAML::Mark& fallback,
                                const std::string& what, size_t index);
  std::optional<UdpRule> parseUdpRule(const YAML::Node& node, const YAML::Mark& fallback,
                                      const std::string& what);
  void checkSandboxOverlap();
  void checkPortOverlap();
  void checkPlaceholders();
  std::string sandboxLabel(size_t index) const {
    auto it = sandbox_name_by_index_.find(index);
    if (it == sandbox_name_by_index_.end()) {
      return fmt::format("sandboxes[{}]", index);
    }
    return "'" + it->second + "'";
  }

  struct SourceRef {
    Cidr cidr;
    size_t sandbox;
    YAML::Mark mark;
  };
  struct PortRef {
    std::string pattern;
    size_t sandbox;
    YAML::Mark mark;
  };

  std::string_view text_;
  Config config_;
  std::vector<SourceRef> sources_;
  std::vector<PortRef> ports_;
  std::map<std::string, YAML::Mark> sandbox_names_;
  std::map<size_t, std::string> sandbox_name_by_index_;
  std::set<std::string> credential_keys_;  // every key under credentials:, valid or not
  std::map<std::string, YAML::Mark> placeholder_marks_;
};

void Parser::parseGateway(const YAML::Node& node, const YAML::Mark& key_mark) {
  auto map = readMap(node, key_mark, "gateway", kGatewayKeys);
  if (!map) {
    return;
  }
  GatewayConfig& gw = config_.gateway;
  auto where = [](const Entry& e) { return "gateway." + e.key; };

  if (const Entry* e = map->find("interfaces")) {
    auto items = readNonEmptyList(e->value, e->key_node.Mark(), where(*e), "[br0]");
    std::map<std::string, YAML::Mark> seen;
    for (size_t i = 0; items && i < items->size(); ++i) {
      const YAML::Node& item = (*items)[i];
      std::string what = fmt::format("gateway.interfaces[{}]", i);
      auto name = readString(item, e->key_node.Mark(), what);
      if (!name) {
        continue;
      }
      if (!isInterfaceName(*name)) {
        fail(item.Mark(), fmt::format("{}: {} is not a valid interface name (1-15 characters, "
                                      "no '/', ':' or spaces)",
                                      what, quoteShort(*name)));
        continue;
      }
      if (auto prev = seen.find(*name); prev != seen.end()) {
        fail(item.Mark(), fmt::format("{}: interface {} is listed twice (first on line {})", what,
                                      quoteShort(*name), prev->second.line + 1));
        continue;
      }
      seen.emplace(*name, item.Mark());
      gw.interfaces.push_back(*name);
    }
  } else {
    fail(map->mark,
         "gateway: missing required key 'interfaces' (the sandbox-facing bridge(s), "
         "e.g. interfaces: [br0])");
  }

  if (const Entry* e = map->find("capture")) {
    if (auto v = readEnum<CaptureMode>(
            e->value, e->key_node.Mark(), where(*e),
            {{"redirect", CaptureMode::Redirect}, {"tproxy", CaptureMode::Tproxy}})) {
      gw.capture = *v;
    }
  }
  if (const Entry* e = map->find("listen_port")) {
    if (auto v = readUnsigned(e->value, e->key_node.Mark(), where(*e), 1, 65535)) {
      if (*v == kDnsPort) {
        fail(at(e->value, e->key_node.Mark()),
             "gateway.listen_port: 53 is taken by tollgate's DNS service; pick another port");
      } else {
        gw.listen_port = static_cast<uint16_t>(*v);
      }
    }
  }
  if (const Entry* e = map->find("dns_port")) {
    if (auto v = readUnsigned(e->value, e->key_node.Mark(), where(*e), 1, 65535)) {
      if (*v == kDnsPort) {
        fail(at(e->value, e->key_node.Mark()),
             "gateway.dns_port: sandbox DNS to port 53 is redirected to this port; pick another "
             "(default 15053)");
      } else {
        gw.dns_port = static_cast<uint16_t>(*v);
      }
    }
  }
  if (gw.dns_port == gw.listen_port) {
    fail(map->mark, fmt::format("gateway.dns_port and gateway.listen_port are both {}; they must "
                                "differ",
                                gw.dns_port));
  }
  if (const Entry* e = map->find("ipv6")) {
    if (auto v = readEnum<Ipv6Mode>(e->value, e->key_node.Mark(), where(*e),
                                    {{"capture", Ipv6Mode::Capture}, {"block", Ipv6Mode::Block}})) {
      gw.ipv6 = *v;
    }
  }
  if (const Entry* e = map->find("state_dir")) {
    if (auto v = readAbsPath(e->value, e->key_node.Mark(), where(*e))) {
      gw.state_dir = *v;
    }
  }
  gw.ca_cert = pathSlash(gw.state_dir, "ca.crt");
  gw.ca_key = pathSlash(gw.state_dir, "ca.key");
  if (const Entry* e = map->find("ca")) {
    auto ca = readMap(e->value, e->key_node.Mark(), "gateway.ca", kCaKeys);
    if (ca) {
      const Entry* cert = ca->find("cert");
      const Entry* key = ca->find("key");
      if (cert == nullptr || key == nullptr) {
        fail(ca->mark, "gateway.ca: needs both cert: and key: (or drop ca: to use state_dir)");
      }
      if (cert != nullptr) {
        if (auto v = readAbsPath(cert->value, cert->key_node.Mark(), "gateway.ca.cert")) {
          gw.ca_cert = *v;
        }
      }
      if (key != nullptr) {
        if (auto v = readAbsPath(key->value, key->key_node.Mark(), "gateway.ca.key")) {
          gw.ca_key = *v;
        }
      }
    }
  }
  if (const Entry* e = map->find("upstream_ca")) {
    if (e->value.IsScalar() && e->value.Scalar() == "system") {
      gw.upstream_ca = "system";
    } else if (auto v = readAbsPath(e->value, e->key_node.Mark(),
                                    "gateway.upstream_ca ('system' or a PEM bundle path)")) {
      gw.upstream_ca = *v;
    }
  }
  if (const Entry* e = map->find("resolvers")) {
    parseResolvers(*e);
  }
  if (const Entry* e = map->find("static_hosts")) {
    parseStaticHosts(*e);
  }
  if (const Entry* e = map->find("audit_log")) {
    if (e->value.IsScalar() && e->value.Scalar() == "-") {
      gw.audit_log = "-";
    } else if (auto v = readAbsPath(e->value, e->key_node.Mark(),
                                    "gateway.audit_log ('-' for stdout or a file path)")) {
      gw.audit_log = *v;
    }
  }
  if (const Entry* e = map->find("metrics")) {
    parseMetrics(*e);
  }
  if (const Entry* e = map->find("control")) {
    if (auto v = readAbsPath(e->value, e->key_node.Mark(), where(*e))) {
      gw.control = *v;
    }
  }
  if (const Entry* e = map->find("user")) {
    if (auto v = readString(e->value, e->key_node.Mark(), where(*e))) {
      if (!isUserName(*v)) {
        fail(at(e->value, e->key_node.Mark()),
             fmt::format("gateway.user: {} is not a valid user name", quoteShort(*v)));
      } else {
        gw.user = *v;
      }
    }
  }
  if (const Entry* e = map->find("on_exit")) {
    if (auto v = readEnum<OnExit>(e->value, e->key_node.Mark(), where(*e),
                                  {{"block", OnExit::Block}, {"open", OnExit::Open}})) {
      gw.on_exit = *v;
    }
  }
  bool peek_ok = true;
  if (const Entry* e = map->find("peek_timeout_ms")) {
    if (auto v = readUnsigned(e->value, e->key_node.Mark(), where(*e), kMinPeekTimeoutMs,
                              kMaxTimeoutMs)) {
      gw.peek_timeout_ms = static_cast<uint32_t>(*v);
    } else {
      peek_ok = false;
    }
  }
  if (const Entry* e = map->find("opaque_wait_ms")) {
    if (auto v = readUnsigned(e->value, e->key_node.Mark(), where(*e), 0, kMaxTimeoutMs)) {
      if (peek_ok && *v > gw.peek_timeout_ms) {
        fail(at(e->value, e->key_node.Mark()),
             fmt::format("gateway.opaque_wait_ms: {} must not exceed peek_timeout_ms ({})", *v,
                         gw.peek_timeout_ms));
      } else {
        gw.opaque_wait_ms = static_cast<uint32_t>(*v);
      }
    }
  } else if (peek_ok && gw.opaque_wait_ms > gw.peek_timeout_ms) {
    gw.opaque_wait_ms = gw.peek_timeout_ms;  // the default 300 shrinks with a short peek timeout
  }
  if (const Entry* e = map->find("max_flows_per_sandbox")) {
    if (auto v = readUnsigned(e->value, e->key_node.Mark(), where(*e), 1, kMaxFlowLimit)) {
      gw.max_flows_per_sandbox = static_cast<uint32_t>(*v);
    }
  }
  if (const Entry* e = map->find("max_mitm_flows_per_sandbox")) {
    if (auto v = readUnsigned(e->value, e->key_node.Mark(), where(*e), 1, kMaxFlowLimit)) {
      gw.max_mitm_flows_per_sandbox = static_cast<uint32_t>(*v);
    }
  }
  if (const Entry* e = map->find("idle_timeout_s")) {
    if (auto v = readUnsigned(e->value, e->key_node.Mark(), where(*e), 0, kMaxIdleTimeoutS)) {
      gw.idle_timeout_s = static_cast<uint32_t>(*v);
    }
  }
  if (const Entry* e = map->find("deny_leaves_per_minute")) {
    if (auto v = readUnsigned(e->value, e->key_node.Mark(), where(*e), 0, kMaxFlowLimit)) {
      gw.deny_leaves_per_minute = static_cast<uint32_t>(*v);
    }
  }
  if (const Entry* e = map->find("deny_style")) {
    if (auto v = readEnum<DenyStyle>(
            e->value, e->key_node.Mark(), where(*e),
            {{"tls-alert", DenyStyle::TlsAlert}, {"http-403", DenyStyle::Http403}})) {
      gw.deny_style = *v;
    }
  }
  if (const Entry* e = map->find("leaf_key")) {
    if (auto v = readEnum<LeafKey>(
            e->value, e->key_node.Mark(), where(*e),
            {{"ecdsa-p256", LeafKey::EcdsaP256}, {"rsa-2048", LeafKey::Rsa2048}})) {
      gw.leaf_key = *v;
    }
  }
}

void Parser::parseResolvers(const Entry& e) {
  GatewayConfig& gw = config_.gateway;
  const YAML::Mark key_mark = e.key_node.Mark();
  if (e.value.IsScalar() && e.value.Scalar() == "system") {
    gw.resolvers_system = true;
    return;
  }
  if (!e.value.IsSequence()) {
    fail(at(e.value, key_mark),
         fmt::format("gateway.resolvers: expected 'system' or a list of IP addresses, got {}",
                     describe(e.value)));
    return;
  }
  auto items = readNonEmptyList(e.value, key_mark, "gateway.resolvers", "[192.0.2.53]");
  if (!items) {
    return;
  }
  gw.resolvers_system = false;
  for (size_t i = 0; i < items->size(); ++i) {
    std::string what = fmt::format("gateway.resolvers[{}]", i);
    auto s = readString((*items)[i], key_mark, what);
    if (!s) {
      continue;
    }
    std::optional<SockAddr> addr = SockAddr::parseIp(*s, kDnsPort);
    if (!addr) {
      addr = SockAddr::parseIpPort(*s);
      if (addr && addr->port() == 0) {
        fail((*items)[i].Mark(), fmt::format("{}: port 0 is not a valid port", what));
        continue;
      }
    }
    if (!addr) {
      fail((*items)[i].Mark(),
           fmt::format("{}: {} is not an IP address (optionally IP:PORT or [IPv6]:PORT); "
                       "resolvers are addresses, not names",
                       what, quoteShort(*s)));
      continue;
    }
    gw.resolvers.push_back(*addr);
  }
}

void Parser::parseStaticHosts(const Entry& e) {
  auto map = readMap(e.value, e.key_node.Mark(), "gateway.static_hosts", std::nullopt);
  if (!map) {
    return;
  }
  std::map<std::string, YAML::Mark> seen;
  for (const Entry& host : map->entries) {
    std::string what = fmt::format("gateway.static_hosts.{}", host.key);
    auto name = normalizeConfigHostName(host.key);
    if (!name) {
      fail(host.key_node.Mark(), fmt::format("gateway.static_hosts: {}", name.message()));
      continue;
    }
    if (name->is_ip) {
      fail(host.key_node.Mark(),
           fmt::format("gateway.static_hosts: {} is an IP literal; keys are host names",
                       quoteShort(host.key)));
      continue;
    }
    if (auto prev = seen.find(name->name); prev != seen.end()) {
      fail(host.key_node.Mark(),
           fmt::format("gateway.static_hosts: {} is the same name as the key on line {}",
                       quoteShort(host.key), prev->second.line + 1));
      continue;
    }
    seen.emplace(name->name, host.key_node.Mark());
    std::vector<YAML::Node> values;
    if (host.value.IsScalar()) {
      values.push_back(host.value);
    } else if (auto items =
                   readNonEmptyList(host.value, host.key_node.Mark(), what, "[198.51.100.2]")) {
      values = std::move(*items);
    } else {
      continue;
    }
    std::vector<SockAddr> addrs;
    for (size_t i = 0; i < values.size(); ++i) {
      auto s = readString(values[i], host.key_node.Mark(), what);
      if (!s) {
        continue;
      }
      auto addr = SockAddr::parseIp(*s);
      if (!addr) {
        fail(at(values[i], host.key_node.Mark()),
             fmt::format("{}: {} is not an IP address (static_hosts maps names to IP literals)",
                         what, quoteShort(*s)));
        continue;
      }
      addrs.push_back(*addr);
    }
    if (addrs.size() == values.size()) {
      config_.gateway.static_hosts[name->name] = std::move(addrs);
    }
  }
}

void Parser::parseMetrics(const Entry& e) {
  auto s = readString(e.value, e.key_node.Mark(), "gateway.metrics");
  if (!s) {
    return;
  }
  const YAML::Mark mark = at(e.value, e.key_node.Mark());
  if (s->starts_with("unix:")) {
    std::string_view p = std::string_view(*s).substr(5);
    if (p.empty() || p.front() != '/' || hasControlChar(p)) {
      fail(mark, fmt::format("gateway.metrics: {} needs an absolute socket path after 'unix:'",
                             quoteShort(*s)));
      return;
    }
    config_.gateway.metrics = *s;
    return;
  }
  auto addr = SockAddr::parseIpPort(*s);
  if (!addr || addr->port() == 0) {
    fail(mark, fmt::format("gateway.metrics: {} is not IP:PORT (e.g. 127.0.0.1:9464) or "
                           "unix:/path",
                           quoteShort(*s)));
    return;
  }
  config_.gateway.metrics = *s;
}

void Parser::parseDenyCidrs(const Entry& e) {
  const YAML::Mark key_mark = e.key_node.Mark();
  if (e.value.IsScalar() && e.value.Scalar() == "default") {
    config_.deny_cidrs = defaultDenyCidrs();
    return;
  }
  if (!e.value.IsSequence()) {
    fail(at(e.value, key_mark),
         fmt::format("deny_cidrs: expected 'default' or a list of CIDRs, got {}",
                     describe(e.value)));
    return;
  }
  auto items = readList(e.value, key_mark, "deny_cidrs", "[default, 192.0.2.0/24]");
  if (!items) {
    return;
  }
  // An explicit list replaces the default; the entry "default" splices it in.
  std::vector<Cidr> out;
  for (size_t i = 0; i < items->size(); ++i) {
    const YAML::Node& item = (*items)[i];
    if (item.IsScalar() && item.Scalar() == "default") {
      auto d = defaultDenyCidrs();
      out.insert(out.end(), d.begin(), d.end());
      continue;
    }
    if (auto c = readCidr(item, key_mark, fmt::format("deny_cidrs[{}]", i))) {
      out.push_back(*c);
    }
  }
  config_.deny_cidrs = std::move(out);
}

std::optional<Credential> Parser::parseCredential(const std::string& name, const YAML::Node& node,
                                                  const YAML::Mark& key_mark) {
  const std::string what = "credentials." + name;
  auto map = readMap(node, key_mark, what, kCredentialKeys);
  if (!map) {
    return std::nullopt;
  }
  Credential cred;
  cred.name = name;
  bool ok = true;
  auto require = [&](std::string_view key, std::string_view example) -> const Entry* {
    const Entry* e = map->find(key);
    if (e == nullptr) {
      fail(map->mark, fmt::format("{}: missing required key '{}' (e.g. {})", what, key, example));
      ok = false;
    }
    return e;
  };

  if (const Entry* e = require("source", "source: { env: API_KEY }")) {
    auto src = readMap(e->value, e->key_node.Mark(), what + ".source", kSourceKeys);
    if (!src) {
      ok = false;
    } else {
      const Entry* env = src->find("env");
      const Entry* file = src->find("file");
      const Entry* credential = src->find("credential");
      if ((env != nullptr) + (file != nullptr) + (credential != nullptr) != 1) {
        fail(src->mark,
             fmt::format("{}.source: needs exactly one of env:, file: or credential:", what));
        ok = false;
      } else if (credential != nullptr) {
        auto v =
            readString(credential->value, credential->key_node.Mark(), what + ".source.credential");
        if (v && !isCredentialFileName(*v)) {
          fail(at(credential->value, credential->key_node.Mark()),
               fmt::format("{}.source.credential: {} is not a systemd credential name (a plain "
                           "file name in $CREDENTIALS_DIRECTORY: 1-255 bytes, no '/', not '.' "
                           "or '..', no control characters)",
                           what, quoteShort(*v)));
          v.reset();
        }
        ok = ok && v.has_value();
        if (v) {
          cred.source = CredentialSource{CredentialSource::Credential, *v};
        }
      } else if (env != nullptr) {
        auto v = readString(env->value, env->key_node.Mark(), what + ".source.env");
        if (v && !isEnvName(*v)) {
          fail(at(env->value, env->key_node.Mark()),
               fmt::format("{}.source.env: {} is not an environment variable name", what,
                           quoteShort(*v)));
          v.reset();
        }
        ok = ok && v.has_value();
        if (v) {
          cred.source = CredentialSource{CredentialSource::Env, *v};
        }
      } else {
        auto v = readAbsPath(file->value, file->key_node.Mark(), what + ".source.file");
        ok = ok && v.has_value();
        if (v) {
          cred.source = CredentialSource{CredentialSource::File, *v};
        }
      }
    }
  }

  if (const Entry* e =
          require("placeholder", "placeholder: <output of tollgate credential mint>")) {
    auto v = readString(e->value, e->key_node.Mark(), what + ".placeholder");
    const YAML::Mark mark = at(e->value, e->key_node.Mark());
    if (!v) {
      ok = false;
    } else if (v->size() < kMinPlaceholderLen) {
      fail(mark, fmt::format("{}.placeholder: {} characters is too short (at least {}); "
                             "generate one with `tollgate credential mint {}`",
                             what, v->size(), kMinPlaceholderLen, name));
      ok = false;
    } else if (v->size() > kMaxPlaceholderLen) {
      fail(mark,
           fmt::format("{}.placeholder: longer than {} characters", what, kMaxPlaceholderLen));
      ok = false;
    } else if (auto r = mitm::checkPlaceholder(*v); !r) {
      fail(mark, fmt::format("{}.placeholder: {}", what, r.message()));
      ok = false;
    } else {
      cred.placeholder = *v;
      placeholder_marks_[name] = mark;
    }
  }

  if (const Entry* e = require("hosts", "hosts: [api.example.com]")) {
    auto v = readHostList(e->value, e->key_node.Mark(), what + ".hosts");
    ok = ok && v.has_value();
    if (v) {
      cred.hosts = std::move(*v);
    }
  }

  if (const Entry* e = require("inject",
                               "inject: { header: Authorization, format: \"Bearer "
                               "{value}\" }")) {
    auto inj = readMap(e->value, e->key_node.Mark(), what + ".inject", kInjectKeys);
    if (!inj) {
      ok = false;
    } else {
      const Entry* header = inj->find("header");
      const Entry* query = inj->find("query");
      if ((header == nullptr) == (query == nullptr)) {
        fail(inj->mark, fmt::format("{}.inject: needs exactly one of header: or query:", what));
        ok = false;
      } else if (header != nullptr) {
        auto v = readString(header->value, header->key_node.Mark(), what + ".inject.header");
        const YAML::Mark mark = at(header->value, header->key_node.Mark());
        if (auto r = v ? mitm::checkInjectHeader(*v) : Result<void>{}; !r) {
          fail(mark, fmt::format("{}.inject.header: {} {}", what, quoteShort(*v), r.message()));
          v.reset();
        }
        ok = ok && v.has_value();
        if (v) {
          cred.inject_header = *v;
        }
      } else {
        auto v = readString(query->value, query->key_node.Mark(), what + ".inject.query");
        if (auto r = v ? mitm::checkInjectQuery(*v) : Result<void>{}; !r) {
          fail(at(query->value, query->key_node.Mark()),
               fmt::format("{}.inject.query: {} {}", what, quoteShort(*v), r.message()));
          v.reset();
        }
        ok = ok && v.has_value();
        if (v) {
          cred.inject_query = *v;
        }
      }
      if (const Entry* f = inj->find("format")) {
        auto v = readString(f->value, f->key_node.Mark(), what + ".inject.format");
        const YAML::Mark mark = at(f->value, f->key_node.Mark());
        if (auto r = v ? mitm::checkInjectFormat(*v) : Result<void>{}; !r) {
          fail(mark, fmt::format("{}.inject.format: {}", what, r.message()));
          v.reset();
        }
        ok = ok && v.has_value();
        if (v) {
          cred.format = *v;
        }
      }
    }
  }
  if (!ok) {
    return std::nullopt;
  }
  return cred;
}

void Parser::parseCredentials(const Entry& e) {
  auto map = readMap(e.value, e.key_node.Mark(), "credentials", std::nullopt);
  if (!map) {
    return;
  }
  for (const Entry& c : map->entries) {
    credential_keys_.insert(c.key);
    if (!isPlainName(c.key)) {
      fail(c.key_node.Mark(),
           fmt::format("credentials: name {} must be 1-{} letters, digits, '_', '-' or '.'",
                       quoteShort(c.key), kMaxNameLen));
      continue;
    }
    if (auto cred = parseCredential(c.key, c.value, c.key_node.Mark())) {
      config_.credentials.emplace(c.key, std::move(*cred));
    }
  }
}

void Parser::checkPlaceholders() {
  // Ordered by position in the file so the later one is blamed.
  std::vector<std::pair<YAML::Mark, const Credential*>> creds;
  for (const auto& [name, cred] : config_.credentials) {
    creds.emplace_back(placeholder_marks_[name], &cred);
  }
  std::sort(creds.begin(), creds.end(),
            [](const auto& a, const auto& b) { return a.first.pos < b.first.pos; });
  for (size_t i = 0; i < creds.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const Credential& later = *creds[i].second;
      const Credential& earlier = *creds[j].second;
      std::string msg;
      if (later.placeholder == earlier.placeholder) {
        msg = "is the same as the placeholder of credential '" + earlier.name + "'";
      } else if (later.placeholder.find(earlier.placeholder) != std::string::npos) {
        msg = "contains the placeholder of credential '" + earlier.name + "'";
      } else if (earlier.placeholder.find(later.placeholder) != std::string::npos) {
        msg = "is part of the placeholder of credential '" + earlier.name + "'";
      }
      if (!msg.empty()) {
        fail(creds[i].first, fmt::format("credentials.{}.placeholder: {}; every placeholder must "
                                         "be unique and no substring of another",
                                         later.name, msg));
      }
    }
  }
}

std::optional<Rule> Parser::parseRule(const YAML::Node& node, const YAML::Mark& fallback,
                                      const std::string& what, size_t index) {
  auto map = readMap(node, fallback, what, kRuleKeys);
  if (!map) {
    return std::nullopt;
  }
  Rule rule;
  rule.index = index;
  bool ok = true;
  if (const Entry* e = map->find("name")) {
    auto v = readString(e->value, e->key_node.Mark(), what + ".name");
    if (v && (!isPlainName(*v) || isAllDigits(*v))) {
      fail(at(e->value, e->key_node.Mark()),
           fmt::format("{}.name: {} must be 1-{} letters, digits, '_', '-' or '.', and not only "
                       "digits (those are rule indexes)",
                       what, quoteShort(*v), kMaxNameLen));
      v.reset();
    }
    ok = ok && v.has_value();
    if (v) {
      rule.name = *v;
    }
  }
  bool has_selector = false;
  if (const Entry* e = map->find("hosts")) {
    has_selector = true;
    auto v = readHostList(e->value, e->key_node.Mark(), what + ".hosts");
    ok = ok && v.has_value();
    if (v) {
      rule.hosts = std::move(*v);
    }
  }
  if (const Entry* e = map->find("cidrs")) {
    has_selector = true;
    auto v = readCidrList(e->value, e->key_node.Mark(), what + ".cidrs");
    ok = ok && v.has_value();
    if (v) {
      rule.cidrs = std::move(*v);
    }
  }
  if (const Entry* e = map->find("ports")) {
    has_selector = true;
    auto v = readPortList(e->value, e->key_node.Mark(), what + ".ports");
    ok = ok && v.has_value();
    if (v) {
      rule.ports = std::move(*v);
    }
  }
  if (!has_selector) {
    fail(map->mark, fmt::format("{}: a rule needs at least one of hosts:, cidrs:, ports: (it "
                                "would match every flow); set the sandbox's default: instead",
                                what));
    ok = false;
  }
  std::optional<Action> action;
  if (const Entry* e = map->find("action")) {
    action = readEnum(e->value, e->key_node.Mark(), what + ".action", kActions);
    ok = ok && action.has_value();
    if (action) {
      rule.action = *action;
    }
  } else {
    fail(map->mark,
         fmt::format("{}: missing required key 'action' (passthrough, deny or mitm)", what));
    ok = false;
  }
  if (const Entry* e = map->find("credentials")) {
    const std::string cwhat = what + ".credentials";
    if (action && *action != Action::Mitm) {
      fail(e->key_node.Mark(),
           fmt::format("{}: credentials need action: mitm; a {} rule never sees requests", cwhat,
                       actionName(rule.action)));
      ok = false;
    }
    auto items = readNonEmptyList(e->value, e->key_node.Mark(), cwhat, "[openai]");
    ok = ok && items.has_value();
    std::vector<std::string> known;
    for (const auto& [name, cred] : config_.credentials) {
      known.push_back(name);
    }
    for (size_t i = 0; items && i < items->size(); ++i) {
      const std::string iwhat = fmt::format("{}[{}]", cwhat, i);
      auto name = readString((*items)[i], e->key_node.Mark(), iwhat);
      if (!name) {
        ok = false;
        continue;
      }
      const YAML::Mark mark = (*items)[i].Mark();
      if (std::find(rule.credentials.begin(), rule.credentials.end(), *name) !=
          rule.credentials.end()) {
        fail(mark, fmt::format("{}: credential {} is listed twice", iwhat, quoteShort(*name)));
        ok = false;
        continue;
      }
      auto cred = config_.credentials.find(*name);
      if (cred == config_.credentials.end()) {
        ok = false;
        if (credential_keys_.count(*name) != 0) {
          continue;  // defined but invalid: already reported there
        }
        std::string msg = fmt::format("{}: unknown credential {}", iwhat, quoteShort(*name));
        if (auto s = suggest(*name, known)) {
          msg += fmt::format("; did you mean '{}'?", *s);
        } else if (known.empty()) {
          msg += " (there is no credentials: section)";
        } else {
          msg += fmt::format(" (defined: {})", join(known));
        }
        fail(mark, msg);
        continue;
      }
      rule.credentials.push_back(*name);
      // The credential must be able to go to at least one host this rule
      // serves; a name-less (cidrs/ports) rule can serve any host.
      if (!rule.hosts.empty()) {
        bool overlap = false;
        for (const HostPattern& rh : rule.hosts) {
          for (const HostPattern& ch : cred->second.hosts) {
            overlap = overlap || rh.overlaps(ch);
          }
        }
        if (!overlap) {
          std::vector<std::string> ch_names;
          std::vector<std::string> rh_names;
          for (const HostPattern& p : cred->second.hosts) {
            ch_names.push_back(p.toString());
          }
          for (const HostPattern& p : rule.hosts) {
            rh_names.push_back(p.toString());
          }
          fail(mark, fmt::format("{}: credential '{}' may only go to [{}], none of which this "
                                 "rule's hosts [{}] cover",
                                 iwhat, *name, join(ch_names), join(rh_names)));
          ok = false;
        }
      }
    }
  }
  if (!ok) {
    return std::nullopt;
  }
  return rule;
}

std::optional<UdpRule> Parser::parseUdpRule(const YAML::Node& node, const YAML::Mark& fallback,
                                            const std::string& what) {
  auto map = readMap(node, fallback, what, kUdpKeys);
  if (!map) {
    return std::nullopt;
  }
  UdpRule udp;
  bool ok = true;
  const Entry* cidrs = map->find("cidrs");
  const Entry* ports = map->find("ports");
  if (cidrs == nullptr && ports == nullptr) {
    fail(map->mark, fmt::format("{}: needs cidrs:, ports: or both (an empty entry would admit "
                                "all UDP)",
                                what));
    return std::nullopt;
  }
  if (cidrs != nullptr) {
    auto v = readCidrList(cidrs->value, cidrs->key_node.Mark(), what + ".cidrs");
    ok = ok && v.has_value();
    if (v) {
      udp.cidrs = std::move(*v);
    }
  }
  if (ports != nullptr) {
    auto v = readPortList(ports->value, ports->key_node.Mark(), what + ".ports");
    ok = ok && v.has_value();
    if (v) {
      udp.ports = std::move(*v);
    }
  }
  if (!ok) {
    return std::nullopt;
  }
  return udp;
}

std::optional<Sandbox> Parser::parseSandbox(const YAML::Node& node, const YAML::Mark& fallback,
                                            const std::string& what, size_t index) {
  auto map = readMap(node, fallback, what, kSandboxKeys);
  if (!map) {
    return std::nullopt;
  }
  Sandbox sb;
  bool ok = true;
  if (const Entry* e = map->find("name")) {
    auto v = readString(e->value, e->key_node.Mark(), what + ".name");
    const YAML::Mark mark = at(e->value, e->key_node.Mark());
    if (v && !isPlainName(*v)) {
      fail(mark, fmt::format("{}.name: {} must be 1-{} letters, digits, '_', '-' or '.'", what,
                             quoteShort(*v), kMaxNameLen));
      v.reset();
    } else if (v) {
      if (auto prev = sandbox_names_.find(*v); prev != sandbox_names_.end()) {
        fail(mark, fmt::format("{}.name: sandbox '{}' is already defined on line {}", what, *v,
                               prev->second.line + 1));
        v.reset();
      } else {
        sandbox_names_.emplace(*v, mark);
        sandbox_name_by_index_.emplace(index, *v);
      }
    }
    ok = ok && v.has_value();
    if (v) {
      sb.name = *v;
    }
  } else {
    fail(map->mark, fmt::format("{}: missing required key 'name'", what));
    ok = false;
  }
  if (const Entry* e = map->find("sources")) {
    std::vector<YAML::Mark> marks;
    auto v = readCidrList(e->value, e->key_node.Mark(), what + ".sources", &marks);
    ok = ok && v.has_value();
    if (v) {
      for (size_t i = 0; i < v->size(); ++i) {
        sources_.push_back(SourceRef{(*v)[i], index, marks[i]});
      }
      sb.sources = std::move(*v);
    }
  } else {
    fail(map->mark, fmt::format("{}: missing required key 'sources' (the sandbox subnet(s), e.g. "
                                "sources: [10.77.0.0/24])",
                                what));
    ok = false;
  }
  if (const Entry* e = map->find("default")) {
    auto v = readEnum(e->value, e->key_node.Mark(), what + ".default", kActions);
    ok = ok && v.has_value();
    if (v) {
      sb.default_action = *v;
    }
  }
  if (const Entry* e = map->find("rules")) {
    auto items = readList(e->value, e->key_node.Mark(), what + ".rules",
                          "[{hosts: [x], action: "
                          "passthrough}]");
    ok = ok && items.has_value();
    std::map<std::string, YAML::Mark> names;
    for (size_t i = 0; items && i < items->size(); ++i) {
      const std::string rwhat = fmt::format("{}.rules[{}]", what, i);
      auto rule = parseRule((*items)[i], e->key_node.Mark(), rwhat, i);
      if (!rule) {
        ok = false;
        continue;
      }
      if (!rule->name.empty()) {
        auto prev = names.find(rule->name);
        if (prev != names.end()) {
          fail((*items)[i].Mark(), fmt::format("{}: rule name '{}' is already used on line {}",
                                               rwhat, rule->name, prev->second.line + 1));
          ok = false;
          continue;
        }
        names.emplace(rule->name, (*items)[i].Mark());
      }
      sb.rules.push_back(std::move(*rule));
    }
  }
  if (const Entry* e = map->find("dns")) {
    auto v = readEnum<DnsMode>(e->value, e->key_node.Mark(), what + ".dns",
                               {{"policy", DnsMode::Policy}, {"open", DnsMode::Open}});
    ok = ok && v.has_value();
    if (v) {
      sb.dns = *v;
    }
  }
  if (const Entry* e = map->find("udp")) {
    auto items = readList(e->value, e->key_node.Mark(), what + ".udp",
                          "[{cidrs: [192.0.2.0/24], ports: [443]}]");
    ok = ok && items.has_value();
    for (size_t i = 0; items && i < items->size(); ++i) {
      auto udp = parseUdpRule((*items)[i], e->key_node.Mark(), fmt::format("{}.udp[{}]", what, i));
      if (!udp) {
        ok = false;
        continue;
      }
      sb.udp.push_back(std::move(*udp));
    }
  }
  if (const Entry* e = map->find("max_flows")) {
    auto v = readUnsigned(e->value, e->key_node.Mark(), what + ".max_flows", 1, kMaxFlowLimit);
    ok = ok && v.has_value();
    if (v) {
      sb.max_flows = static_cast<uint32_t>(*v);
    }
  }
  if (const Entry* e = map->find("max_mitm_flows")) {
    auto v = readUnsigned(e->value, e->key_node.Mark(), what + ".max_mitm_flows", 1, kMaxFlowLimit);
    ok = ok && v.has_value();
    if (v) {
      sb.max_mitm_flows = static_cast<uint32_t>(*v);
    }
  }
  if (const Entry* e = map->find("ports")) {
    auto items = readNonEmptyList(e->value, e->key_node.Mark(), what + ".ports", "[tap-agents-*]");
    ok = ok && items.has_value();
    for (size_t i = 0; items && i < items->size(); ++i) {
      const YAML::Node& item = (*items)[i];
      const std::string pwhat = fmt::format("{}.ports[{}]", what, i);
      auto v = readString(item, e->key_node.Mark(), pwhat);
      if (!v) {
        ok = false;
        continue;
      }
      if (*v == "*") {
        fail(item.Mark(), pwhat +
                              ": \"*\" would claim every bridge port of the host; list the "
                              "sandbox's ports, or a prefix its ports share (tap-agents-*)");
        ok = false;
        continue;
      }
      if (!isPortPattern(*v)) {
        fail(item.Mark(),
             fmt::format("{}: {} is not an interface name (1-15 characters, no '/', ':' or "
                         "spaces), or a prefix of one ending in '*' (tap-agents-*)",
                         pwhat, quoteShort(*v)));
        ok = false;
        continue;
      }
      ports_.push_back(PortRef{*v, index, item.Mark()});
      sb.ports.push_back(*v);
    }
  }
  if (!ok) {
    return std::nullopt;
  }
  return sb;
}

void Parser::checkPortOverlap() {
  std::set<size_t> bound;
  for (const PortRef& p : ports_) {
    bound.insert(p.sandbox);
  }
  if (bound.size() > kMaxBoundSandboxes && !ports_.empty()) {
    fail(ports_.back().mark, fmt::format("sandboxes: {} sandboxes have ports; at most {} can (one "
                                         "packet mark each)",
                                         bound.size(), kMaxBoundSandboxes));
    return;
  }
  // An interface belongs to one sandbox at most; a few dozen patterns, so
  // pairwise is fine.
  for (size_t j = 0; j < ports_.size(); ++j) {
    for (size_t i = 0; i < j; ++i) {
      const PortRef& a = ports_[i];
      const PortRef& b = ports_[j];
      if (!portPatternsOverlap(a.pattern, b.pattern)) {
        continue;
      }
      fail(
          b.mark,
          a.sandbox == b.sandbox
              ? fmt::format("sandboxes[{}].ports: {} is already matched by {} (line {})", b.sandbox,
                            quoteShort(b.pattern), quoteShort(a.pattern), a.mark.line + 1)
              : fmt::format("sandboxes[{}].ports: {} of sandbox {} also matches {} of sandbox "
                            "{} (line {}); a port belongs to one sandbox",
                            b.sandbox, quoteShort(b.pattern), sandboxLabel(b.sandbox),
                            quoteShort(a.pattern), sandboxLabel(a.sandbox), a.mark.line + 1));
      break;
    }
  }
}

void Parser::parseSandboxes(const Entry& e) {
  auto items = readNonEmptyList(e.value, e.key_node.Mark(), "sandboxes",
                                "[{name: agents, sources: [10.77.0.0/24]}]");
  if (!items) {
    return;
  }
  for (size_t i = 0; i < items->size(); ++i) {
    auto sb = parseSandbox((*items)[i], e.key_node.Mark(), fmt::format("sandboxes[{}]", i), i);
    if (sb) {
      config_.sandboxes.push_back(std::move(*sb));
    }
  }
}

void Parser::checkSandboxOverlap() {
  // CIDRs are aligned blocks: two overlap iff one contains the other. Sorted
  // by family, then network address (shorter prefix first), containment
  // forms chains that a stack walks in O(n log n).
  struct Key {
    Cidr::Family family;
    std::array<uint8_t, 16> addr;
    unsigned bits;
    auto operator<=>(const Key&) const = default;
  };
  auto keyOf = [](const Cidr& c) {
    Cidr n = c.normalized();
    return Key{n.family(), n.bytes(), n.prefixLen()};
  };
  std::vector<const SourceRef*> order;
  for (const SourceRef& s : sources_) {
    order.push_back(&s);
  }
  std::stable_sort(order.begin(), order.end(), [&](const SourceRef* a, const SourceRef* b) {
    return keyOf(a->cidr) < keyOf(b->cidr);
  });
  std::vector<const SourceRef*> stack;
  std::set<std::pair<size_t, size_t>> reported;
  for (const SourceRef* s : order) {
    while (!stack.empty() && !stack.back()->cidr.overlaps(s->cidr)) {
      stack.pop_back();
    }
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
      const SourceRef* other = *it;
      if (other->sandbox == s->sandbox) {
        continue;
      }
      const SourceRef* first = other->sandbox < s->sandbox ? other : s;
      const SourceRef* second = other->sandbox < s->sandbox ? s : other;
      if (reported.insert({first->sandbox, second->sandbox}).second) {
        fail(second->mark,
             fmt::format("sandboxes[{}].sources: {} of sandbox {} overlaps {} of sandbox {} "
                         "(line {}); every source address must select exactly one sandbox",
                         second->sandbox, second->cidr.toString(), sandboxLabel(second->sandbox),
                         first->cidr.toString(), sandboxLabel(first->sandbox),
                         first->mark.line + 1));
      }
      break;
    }
    stack.push_back(s);
  }
}

void Parser::parseDocument() {
  // Not YAML::LoadAll: in yaml-cpp 0.7 it loops forever, allocating, on some
  // malformed input (e.g. a lone ","; upstream PR #1319). Load() reads the
  // first document only; a bounded second pass looks for more.
  YAML::Node doc;
  std::optional<YAML::Mark> second_doc;
  try {
    doc = YAML::Load(std::string(text_));
    second_doc = secondDocument(text_);
  } catch (const YAML::ParserException& e) {
    fail(e.mark, syntaxErrorMessage(e));
    return;
  }
  if (doc.IsNull()) {
    if (hasContent(text_)) {
      fail(YAML::Mark(),
           "YAML syntax error: the document has no readable content (look for a stray ',' or "
           "bracket)");
    } else {
      fail(YAML::Mark(), "config is empty; it needs at least gateway: and sandboxes:");
    }
    return;
  }
  if (second_doc) {
    fail(*second_doc, "more than one YAML document ('---'); tollgate reads exactly one");
  }
  auto root = readMap(doc, doc.Mark(), "config", kRootKeys);
  if (!root) {
    return;
  }
  if (const Entry* e = root->find("gateway")) {
    parseGateway(e->value, e->key_node.Mark());
  } else {
    fail(root->mark,
         "missing required section 'gateway' (at least gateway: { interfaces: [br0] })");
  }
  if (const Entry* e = root->find("deny_cidrs")) {
    parseDenyCidrs(*e);
  }
  // Before sandboxes: rules refer to credentials.
  if (const Entry* e = root->find("credentials")) {
    parseCredentials(*e);
    checkPlaceholders();
  }
  if (const Entry* e = root->find("sandboxes")) {
    parseSandboxes(*e);
  } else {
    fail(root->mark,
         "missing required section 'sandboxes' (which source addresses are sandboxes, and their "
         "rules)");
  }
  checkSandboxOverlap();
  checkPortOverlap();
}

std::variant<Config, std::vector<ConfigError>> Parser::run() {
  config_.path = path();
  config_.deny_cidrs = defaultDenyCidrs();
  std::vector<ConfigError>& errors = this->errors();
  std::optional<ConfigError> last;  // appended after sorting
  try {
    parseDocument();
  } catch (const yaml::NodeBudgetExceeded&) {
    errors.push_back(ConfigError{
        path(), 1, 1,
        fmt::format("config too large: more than {} YAML nodes (counting every use of an alias)",
                    nodeBudget())});
  } catch (const yaml::TooManyErrors&) {
    last =
        ConfigError{path(), 1, 1, fmt::format("too many errors; stopped after {}", errors.size())};
  } catch (const YAML::Exception& e) {
    errors.push_back(ConfigError{path(), std::max(1, e.mark.line + 1),
                                 std::max(1, e.mark.column + 1), e.what()});
  }
  if (errors.empty()) {
    return std::move(config_);
  }
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  // Aliased nodes are validated at every use, under a different path ("rules[0]"
  // then "rules[1]"): report each problem once, where it is first used.
  auto problem = [](const std::string& message) {
    size_t colon = message.find(": ");
    return colon == std::string::npos ? std::string_view(message)
                                      : std::string_view(message).substr(colon + 2);
  };
  errors.erase(std::unique(errors.begin(), errors.end(),
                           [&](const ConfigError& a, const ConfigError& b) {
                             return a.line == b.line && a.column == b.column &&
                                    problem(a.message) == problem(b.message);
                           }),
               errors.end());
  if (last) {
    errors.push_back(std::move(*last));
  }
  return std::move(errors);
}

}  // namespace

std::string_view actionName(Action action) {
  switch (action) {
    case Action::Passthrough:
      return "passthrough";
    case Action::Deny:
      return "deny";
    case Action::Mitm:
      return "mitm";
  }
  return "deny";
}

std::optional<std::string> unboundSandboxesWarning(const Config& c) {
  std::string names;
  for (const Sandbox& sb : c.sandboxes) {
    if (sb.ports.empty()) {
      names += (names.empty() ? "" : ", ") + sb.name;
    }
  }
  if (c.sandboxes.size() < 2 || names.empty()) {
    return std::nullopt;
  }
  return "sandboxes without ports (" + names +
         "): a machine on the same bridge can take their addresses (answer ARP / neighbour "
         "discovery for them) and be given their policy; list the bridge ports each sandbox's "
         "machines attach through in sandboxes[].ports to bind them";
}

std::string PortRange::toString() const {
  if (lo == hi) {
    return std::to_string(lo);
  }
  return std::to_string(lo) + "-" + std::to_string(hi);
}

std::string Rule::label() const { return name.empty() ? std::to_string(index) : name; }

std::string ConfigError::toString() const {
  return fmt::format("{}:{}:{}: {}", file, line, column, message);
}

std::vector<std::string> knownConfigKeys() {
  std::vector<std::string> out;
  auto add = [&](const std::string& prefix, const std::vector<std::string>& keys) {
    for (const std::string& k : keys) {
      out.push_back(prefix + k);
    }
  };
  add("", kRootKeys);
  add("gateway.", kGatewayKeys);
  add("gateway.ca.", kCaKeys);
  add("sandboxes[].", kSandboxKeys);
  add("sandboxes[].rules[].", kRuleKeys);
  add("sandboxes[].udp[].", kUdpKeys);
  add("credentials.NAME.", kCredentialKeys);
  add("credentials.NAME.source.", kSourceKeys);
  add("credentials.NAME.inject.", kInjectKeys);
  return out;
}

std::vector<Cidr> defaultDenyCidrs() {
  static constexpr std::array<std::string_view, 16> kDefault = {
      "0.0.0.0/8",      "10.0.0.0/8",    "100.64.0.0/10", "127.0.0.0/8",
      "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",  "192.168.0.0/16",
      "198.18.0.0/15",  "224.0.0.0/4",   "240.0.0.0/4",   "::/128",
      "::1/128",        "fc00::/7",      "fe80::/10",     "ff00::/8"};
  std::vector<Cidr> out;
  out.reserve(kDefault.size());
  for (std::string_view s : kDefault) {
    out.push_back(*Cidr::parse(s));
  }
  return out;
}

std::variant<Config, std::vector<ConfigError>> parseConfig(std::string_view yaml_text,
                                                           const std::string& path) {
  try {
    return Parser(path, yaml_text).run();
  } catch (const std::exception& e) {
    return std::vector<ConfigError>{
        ConfigError{path, 1, 1, std::string("internal error: ") + e.what()}};
  } catch (...) {
    return std::vector<ConfigError>{ConfigError{path, 1, 1, "internal error"}};
  }
}

std::variant<Config, std::vector<ConfigError>> loadConfig(const std::string& path) {
  auto cannotRead = [&](int err) {
    return std::vector<ConfigError>{ConfigError{
        path, 0, 0, "cannot read: " + std::error_code(err, std::generic_category()).message()}};
  };
  std::unique_ptr<FILE, decltype(&std::fclose)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    return cannotRead(errno);
  }
  std::string text;
  char buf[65536];
  for (;;) {
    size_t n = std::fread(buf, 1, sizeof(buf), f.get());
    text.append(buf, n);
    if (text.size() > kMaxFileSize) {
      return std::vector<ConfigError>{
          ConfigError{path, 0, 0, fmt::format("cannot read: larger than {} bytes", kMaxFileSize)}};
    }
    if (n < sizeof(buf)) {
      if (std::ferror(f.get())) {
        return cannotRead(errno);
      }
      break;
    }
  }
  return parseConfig(text, path);
}

}  // namespace tollgate::gateway
