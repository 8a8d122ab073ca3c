#include "gateway/config.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace tollgate::gateway {
namespace {

// Line 1-2.
const std::string kG = "gateway:\n  interfaces: [br0]\n";
// Line 3-5 when following kG; rules (if any) start on line 6.
const std::string kS = "sandboxes:\n  - name: a\n    sources: [10.77.0.0/24]\n";
// A valid credential section, 6 lines.
const std::string kC =
    "credentials:\n"
    "  k:\n"
    "    source: { env: K }\n"
    "    placeholder: tgph_k_0123456789abcdef01234\n"
    "    hosts: [api.example.com]\n"
    "    inject: { header: Authorization, format: \"Bearer {value}\" }\n";

std::string dataPath(const std::string& name) {
  return std::string(TOLLGATE_TEST_DATA) + "/config/" + name;
}

std::string dump(const std::vector<ConfigError>& errors) {
  std::string all;
  for (const ConfigError& e : errors) {
    all += e.toString() + "\n";
  }
  return all;
}

Config mustParse(const std::string& yaml) {
  auto r = parseConfig(yaml, "test.yaml");
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&r)) {
    ADD_FAILURE() << "config does not parse:\n" << dump(*errors) << "---\n" << yaml;
    return Config{};
  }
  return std::get<Config>(std::move(r));
}

std::vector<ConfigError> mustFail(const std::string& yaml) {
  auto r = parseConfig(yaml, "test.yaml");
  if (std::holds_alternative<Config>(r)) {
    ADD_FAILURE() << "config parses but should not:\n" << yaml;
    return {};
  }
  return std::get<std::vector<ConfigError>>(std::move(r));
}

// --- one test per validation: exact position and message ---------------------

struct ErrorCase {
  std::string what;
  std::string yaml;
  int line;
  int column;
  std::string message_part;
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.what; }

class ConfigErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrorTest, ReportsPositionAndMessage) {
  const ErrorCase& c = GetParam();
  std::vector<ConfigError> errors = mustFail(c.yaml);
  bool found = false;
  for (const ConfigError& e : errors) {
    EXPECT_EQ(e.file, "test.yaml");
    if (e.line == c.line && e.column == c.column &&
        e.message.find(c.message_part) != std::string::npos) {
      found = true;
    }
  }
  EXPECT_TRUE(found) << c.what << ": wanted test.yaml:" << c.line << ":" << c.column << ": ..."
                     << c.message_part << "...\ngot:\n"
                     << dump(errors) << "---\n"
                     << c.yaml;
}

std::string rules(const std::string& body) { return kG + kS + "    rules:\n" + body; }

// A few KB that name 100 sandboxes x 100 rules x 100 hosts through aliases.
std::string aliasBomb() {
  std::string hosts = "[a.example";
  for (int i = 1; i < 100; ++i) {
    hosts += ", a.example";
  }
  hosts += "]";
  std::string yaml = kG +
                     "sandboxes:\n  - &s\n    name: a\n    sources: [10.77.0.0/24]\n"
                     "    rules:\n      - &r\n        hosts: " +
                     hosts + "\n        action: deny\n";
  for (int i = 1; i < 100; ++i) {
    yaml += "      - *r\n";
  }
  for (int i = 1; i < 100; ++i) {
    yaml += "  - *s\n";
  }
  return yaml;
}

INSTANTIATE_TEST_SUITE_P(
    Structure, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"syntax error", "gateway:\n  interfaces: [br0\n", 3, 1, "YAML syntax error"},
        ErrorCase{"unquoted wildcard is an alias",
                  rules("      - hosts: [*.example.com]\n        action: deny\n"), 7, 17,
                  "quote host patterns: \"*.example.com\""},
        ErrorCase{"empty file", "", 1, 1, "config is empty"},
        ErrorCase{"comments only", "# nothing\n", 1, 1, "config is empty"},
        ErrorCase{"two documents", kG + kS + "---\n" + kG, 6, 1, "more than one YAML document"},
        ErrorCase{"syntax error in a second document", kG + kS + "---\na: [\n", 8, 1,
                  "YAML syntax error"},
        ErrorCase{"document markers only", "---\n...\n", 1, 1, "config is empty"},
        // yaml-cpp 0.7 LoadAll() never returns on this one (upstream PR #1319).
        ErrorCase{"lone comma", ",\n", 1, 1, "the document has no readable content"},
        ErrorCase{"top level list", "- gateway\n", 1, 1, "config: expected a map"},
        ErrorCase{"missing gateway", kS, 1, 1, "missing required section 'gateway'"},
        ErrorCase{"missing sandboxes", kG, 1, 1, "missing required section 'sandboxes'"},
        ErrorCase{"unknown top-level key with suggestion",
                  kG + "sandboxs:\n  - name: a\n    sources: [10.77.0.0/24]\n", 3, 1,
                  "unknown key 'sandboxs'; did you mean 'sandboxes'?"},
        ErrorCase{"unknown gateway key with suggestion",
                  "gateway:\n  interfaces: [br0]\n  listen_prot: 15001\n" + kS, 3, 3,
                  "gateway: unknown key 'listen_prot'; did you mean 'listen_port'?"},
        ErrorCase{"unknown key without suggestion lists keys",
                  "gateway:\n  interfaces: [br0]\n  frobnicate: 1\n" + kS, 3, 3,
                  "unknown key 'frobnicate'; expected one of: interfaces, capture, listen_port"},
        ErrorCase{"unknown key, wrong case", "gateway:\n  Interfaces: [br0]\n" + kS, 2, 3,
                  "did you mean 'interfaces'?"},
        ErrorCase{"unknown sandbox key",
                  kG + "sandboxes:\n  - name: a\n    sources: [10.77.0.0/24]\n    defualt: deny\n",
                  6, 5, "sandboxes[0]: unknown key 'defualt'; did you mean 'default'?"},
        ErrorCase{"unknown rule key", rules("      - host: [a.example]\n        action: deny\n"), 7,
                  9, "sandboxes[0].rules[0]: unknown key 'host'; did you mean 'hosts'?"},
        ErrorCase{"duplicate key", "gateway:\n  interfaces: [br0]\n  interfaces: [br1]\n" + kS, 3,
                  3, "gateway: duplicate key 'interfaces' (first on line 2)"},
        ErrorCase{"non-scalar key", "gateway:\n  interfaces: [br0]\n  ? [a]\n  : 1\n" + kS, 3, 5,
                  "keys must be plain strings"},
        ErrorCase{"gateway is a list", "gateway: [br0]\n" + kS, 1, 10,
                  "gateway: expected a map (key: value), got a list"},
        ErrorCase{"sandboxes empty", kG + "sandboxes: []\n", 3, 12, "sandboxes: empty list"},
        ErrorCase{"NUL in a string", "gateway:\n  interfaces: [\"br\\0x\"]\n" + kS, 2, 16,
                  "contains a NUL byte"},
        ErrorCase{"alias bomb", aliasBomb(), 1, 1, "config too large"}));

INSTANTIATE_TEST_SUITE_P(
    Gateway, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"interfaces missing", "gateway:\n  capture: redirect\n" + kS, 2, 3,
                  "gateway: missing required key 'interfaces'"},
        ErrorCase{"interfaces empty", "gateway:\n  interfaces: []\n" + kS, 2, 15,
                  "gateway.interfaces: empty list"},
        ErrorCase{"interfaces null", "gateway:\n  interfaces:\n" + kS, 2, 3,
                  "gateway.interfaces: expected a list, e.g. [br0], got nothing"},
        ErrorCase{"interfaces scalar", "gateway:\n  interfaces: br0\n" + kS, 2, 15,
                  "gateway.interfaces: expected a list, e.g. [br0], got 'br0'"},
        ErrorCase{"interface name too long",
                  "gateway:\n  interfaces: [br0, this-is-too-long0]\n" + kS, 2, 21,
                  "gateway.interfaces[1]: 'this-is-too-long0' is not a valid interface name"},
        ErrorCase{"interface name with slash", "gateway:\n  interfaces: [br/0]\n" + kS, 2, 16,
                  "is not a valid interface name"},
        ErrorCase{"interface twice", "gateway:\n  interfaces: [br0, br0]\n" + kS, 2, 21,
                  "interface 'br0' is listed twice (first on line 2)"},
        ErrorCase{"capture enum", kG + "  capture: nat\n" + kS, 3, 12,
                  "gateway.capture: 'nat' is not one of: redirect, tproxy"},
        ErrorCase{"capture enum typo", kG + "  capture: tprxy\n" + kS, 3, 12,
                  "did you mean 'tproxy'?"},
        ErrorCase{"listen_port 0", kG + "  listen_port: 0\n" + kS, 3, 16,
                  "gateway.listen_port: 0 is out of range 1-65535"},
        ErrorCase{"listen_port too big", kG + "  listen_port: 65536\n" + kS, 3, 16,
                  "65536 is out of range 1-65535"},
        ErrorCase{"listen_port not a number", kG + "  listen_port: http\n" + kS, 3, 16,
                  "gateway.listen_port: expected an integer 1-65535, got 'http'"},
        ErrorCase{"listen_port negative", kG + "  listen_port: -1\n" + kS, 3, 16,
                  "expected an integer 1-65535"},
        ErrorCase{"listen_port 53", kG + "  listen_port: 53\n" + kS, 3, 16,
                  "53 is taken by tollgate's DNS service"},
        ErrorCase{"ipv6 enum", kG + "  ipv6: open\n" + kS, 3, 9,
                  "gateway.ipv6: 'open' is not one of: capture, block"},
        ErrorCase{"on_exit enum", kG + "  on_exit: drop\n" + kS, 3, 12,
                  "gateway.on_exit: 'drop' is not one of: block, open"},
        ErrorCase{"deny_style enum", kG + "  deny_style: 403\n" + kS, 3, 15,
                  "gateway.deny_style: '403' is not one of: tls-alert, http-403"},
        ErrorCase{"state_dir relative", kG + "  state_dir: var/lib/tollgate\n" + kS, 3, 14,
                  "gateway.state_dir: 'var/lib/tollgate' must be an absolute path"},
        ErrorCase{"control relative", kG + "  control: control.sock\n" + kS, 3, 12,
                  "must be an absolute path"},
        ErrorCase{"audit_log relative", kG + "  audit_log: audit.jsonl\n" + kS, 3, 14,
                  "must be an absolute path"},
        ErrorCase{"upstream_ca relative", kG + "  upstream_ca: bundle.pem\n" + kS, 3, 16,
                  "gateway.upstream_ca ('system' or a PEM bundle path): 'bundle.pem' must be an "
                  "absolute path"},
        ErrorCase{"ca needs both", kG + "  ca: { cert: /x/ca.crt }\n" + kS, 3, 7,
                  "gateway.ca: needs both cert: and key:"},
        ErrorCase{"ca unknown key", kG + "  ca: { cert: /x/ca.crt, keyfile: /x/ca.key }\n" + kS, 3,
                  26, "gateway.ca: unknown key 'keyfile'"},
        ErrorCase{"resolvers word", kG + "  resolvers: google\n" + kS, 3, 14,
                  "gateway.resolvers: expected 'system' or a list of IP addresses, got 'google'"},
        ErrorCase{"resolvers name", kG + "  resolvers: [192.0.2.53, dns.google]\n" + kS, 3, 27,
                  "gateway.resolvers[1]: 'dns.google' is not an IP address"},
        ErrorCase{"resolvers empty", kG + "  resolvers: []\n" + kS, 3, 14,
                  "gateway.resolvers: empty list"},
        ErrorCase{"resolvers port 0", kG + "  resolvers: [\"192.0.2.53:0\"]\n" + kS, 3, 15,
                  "port 0 is not a valid port"},
        ErrorCase{"static_hosts value not an IP",
                  kG + "  static_hosts:\n    api.example.test: [example.com]\n" + kS, 4, 24,
                  "gateway.static_hosts.api.example.test: 'example.com' is not an IP address"},
        ErrorCase{"static_hosts key is an IP",
                  kG + "  static_hosts:\n    192.0.2.1: [192.0.2.1]\n" + kS, 4, 5,
                  "'192.0.2.1' is an IP literal; keys are host names"},
        ErrorCase{"static_hosts key wildcard",
                  kG + "  static_hosts:\n    \"*.example.test\": [192.0.2.1]\n" + kS, 4, 5,
                  "is not a valid host name"},
        ErrorCase{"static_hosts same name twice",
                  kG +
                      "  static_hosts:\n    api.example.test: [192.0.2.1]\n"
                      "    API.Example.Test.: [192.0.2.2]\n" +
                      kS,
                  5, 5, "is the same name as the key on line 4"},
        ErrorCase{"static_hosts empty list", kG + "  static_hosts:\n    a.example: []\n" + kS, 4,
                  16, "empty list"},
        ErrorCase{"static_hosts not a map", kG + "  static_hosts: [a.example]\n" + kS, 3, 17,
                  "gateway.static_hosts: expected a map"},
        ErrorCase{"metrics host name", kG + "  metrics: localhost:9464\n" + kS, 3, 12,
                  "gateway.metrics: 'localhost:9464' is not IP:PORT"},
        ErrorCase{"metrics relative unix", kG + "  metrics: unix:metrics.sock\n" + kS, 3, 12,
                  "needs an absolute socket path after 'unix:'"},
        ErrorCase{"user invalid", kG + "  user: \"a b\"\n" + kS, 3, 9,
                  "gateway.user: 'a b' is not a valid user name"},
        ErrorCase{"peek_timeout_ms too small", kG + "  peek_timeout_ms: 5\n" + kS, 3, 20,
                  "gateway.peek_timeout_ms: 5 is out of range 10-60000"},
        ErrorCase{"opaque_wait_ms above peek",
                  kG + "  peek_timeout_ms: 100\n  opaque_wait_ms: 200\n" + kS, 4, 19,
                  "gateway.opaque_wait_ms: 200 must not exceed peek_timeout_ms (100)"},
        ErrorCase{"opaque_wait_ms above default peek", kG + "  opaque_wait_ms: 3001\n" + kS, 3, 19,
                  "3001 must not exceed peek_timeout_ms (3000)"},
        ErrorCase{"opaque_wait_ms out of range", kG + "  opaque_wait_ms: 60001\n" + kS, 3, 19,
                  "60001 is out of range 0-60000"}));

INSTANTIATE_TEST_SUITE_P(
    DenyCidrs, ConfigErrorTest,
    ::testing::Values(ErrorCase{"deny_cidrs word", kG + "deny_cidrs: none\n" + kS, 3, 13,
                                "deny_cidrs: expected 'default' or a list of CIDRs, got 'none'"},
                      ErrorCase{"deny_cidrs host bits",
                                kG + "deny_cidrs: [default, 10.0.0.1/8]\n" + kS, 3, 23,
                                "deny_cidrs[1]: '10.0.0.1/8': host bits set; did you mean "
                                "10.0.0.0/8"},
                      ErrorCase{"deny_cidrs map", kG + "deny_cidrs: {a: 1}\n" + kS, 3, 13,
                                "expected 'default' or a list of CIDRs, got a map"}));

INSTANTIATE_TEST_SUITE_P(
    Sandboxes, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"sandbox without name", kG + "sandboxes:\n  - sources: [10.77.0.0/24]\n", 4, 5,
                  "sandboxes[0]: missing required key 'name'"},
        ErrorCase{"sandbox without sources", kG + "sandboxes:\n  - name: a\n", 4, 5,
                  "sandboxes[0]: missing required key 'sources'"},
        ErrorCase{"sandbox name invalid",
                  kG + "sandboxes:\n  - name: \"my sandbox\"\n    sources: [10.77.0.0/24]\n", 4, 11,
                  "sandboxes[0].name: 'my sandbox' must be"},
        ErrorCase{"duplicate sandbox names", kG + kS + "  - name: a\n    sources: [10.78.0.0/24]\n",
                  6, 11, "sandboxes[1].name: sandbox 'a' is already defined on line 4"},
        ErrorCase{"sources empty", kG + "sandboxes:\n  - name: a\n    sources: []\n", 5, 14,
                  "sandboxes[0].sources: empty list"},
        ErrorCase{"sources scalar", kG + "sandboxes:\n  - name: a\n    sources: 10.77.0.0/24\n", 5,
                  14, "sandboxes[0].sources: expected a list"},
        ErrorCase{"source prefix too long",
                  kG + "sandboxes:\n  - name: a\n    sources: [10.77.0.0/33]\n", 5, 15,
                  "sandboxes[0].sources[0]: '10.77.0.0/33': prefix length 33 is larger than 32"},
        ErrorCase{"source host bits set",
                  kG + "sandboxes:\n  - name: a\n    sources: [10.77.0.1/24]\n", 5, 15,
                  "host bits set; did you mean 10.77.0.0/24"},
        ErrorCase{"overlapping sandboxes",
                  kG + kS + "  - name: b\n    sources: [192.0.2.0/24, 10.0.0.0/8]\n", 7, 29,
                  "sandboxes[1].sources: 10.0.0.0/8 of sandbox 'b' overlaps 10.77.0.0/24 of "
                  "sandbox 'a' (line 5)"},
        ErrorCase{"overlapping sandboxes, identical",
                  kG + kS + "  - name: b\n    sources: [10.77.0.0/24]\n", 7, 15,
                  "10.77.0.0/24 of sandbox 'b' overlaps 10.77.0.0/24 of sandbox 'a'"},
        ErrorCase{"overlapping sandboxes, mapped IPv6",
                  kG + kS + "  - name: b\n    sources: [\"::ffff:10.77.0.0/120\"]\n", 7, 15,
                  "::ffff:10.77.0.0/120 of sandbox 'b' overlaps 10.77.0.0/24 of sandbox 'a'"},
        ErrorCase{"overlapping IPv6 sandboxes around an IPv4 one",
                  kG + kS + "  - name: b\n    sources: [\"::/0\"]\n" +
                      "  - name: c\n    sources: [\"fd77::/64\"]\n",
                  9, 15, "fd77::/64 of sandbox 'c' overlaps ::/0 of sandbox 'b' (line 7)"},
        ErrorCase{"overlapping sandboxes, earlier is narrower",
                  kG + kS + "  - name: b\n    sources: [10.77.0.128/25]\n", 7, 15,
                  "10.77.0.128/25 of sandbox 'b' overlaps 10.77.0.0/24 of sandbox 'a'"},
        ErrorCase{"default enum", kG + kS + "    default: allow\n", 6, 14,
                  "sandboxes[0].default: 'allow' is not one of: passthrough, deny, mitm"},
        ErrorCase{"dns enum", kG + kS + "    dns: closed\n", 6, 10,
                  "sandboxes[0].dns: 'closed' is not one of: policy, open"},
        ErrorCase{"rules is a map", kG + kS + "    rules: {}\n", 6, 12,
                  "sandboxes[0].rules: expected a list"},
        ErrorCase{"udp entry empty", kG + kS + "    udp: [{}]\n", 6, 11,
                  "sandboxes[0].udp[0]: needs cidrs:, ports: or both"},
        ErrorCase{"udp bad port", kG + kS + "    udp: [{ports: [0]}]\n", 6, 20,
                  "sandboxes[0].udp[0].ports[0]: '0' is not a port"},
        ErrorCase{"udp unknown key", kG + kS + "    udp: [{cidr: [192.0.2.0/24]}]\n", 6, 12,
                  "did you mean 'cidrs'?"}));

INSTANTIATE_TEST_SUITE_P(
    Rules, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"rule without selectors", rules("      - action: deny\n"), 7, 9,
                  "sandboxes[0].rules[0]: a rule needs at least one of hosts:, cidrs:, ports: (it "
                  "would match every flow); set the sandbox's default: instead"},
        ErrorCase{"rule without action", rules("      - hosts: [a.example]\n"), 7, 9,
                  "sandboxes[0].rules[0]: missing required key 'action'"},
        ErrorCase{"action enum", rules("      - hosts: [a.example]\n        action: allow\n"), 8,
                  17,
                  "sandboxes[0].rules[0].action: 'allow' is not one of: passthrough, deny, "
                  "mitm"},
        ErrorCase{"action typo", rules("      - hosts: [a.example]\n        action: passthru\n"), 8,
                  17, "did you mean 'passthrough'?"},
        ErrorCase{"hosts empty", rules("      - hosts: []\n        action: deny\n"), 7, 16,
                  "sandboxes[0].rules[0].hosts: empty list"},
        ErrorCase{"host entry is a map", rules("      - hosts: [{a: 1}]\n        action: deny\n"),
                  7, 17, "sandboxes[0].rules[0].hosts[0]: expected a string, got a map"},
        ErrorCase{"host star alone", rules("      - hosts: [\"*\"]\n        action: deny\n"), 7, 17,
                  "'*' would match every host"},
        ErrorCase{"host wildcard in the middle",
                  rules("      - hosts: [a.example, \"a.*.example\"]\n        action: deny\n"), 7,
                  28,
                  "sandboxes[0].rules[0].hosts[1]: 'a.*.example': a wildcard is allowed only "
                  "as the whole leftmost label"},
        ErrorCase{"host partial wildcard",
                  rules("      - hosts: [\"*foo.example\"]\n        action: deny\n"), 7, 17,
                  "only as the whole leftmost label"},
        ErrorCase{"host IPv4 literal", rules("      - hosts: [192.0.2.1]\n        action: deny\n"),
                  7, 17,
                  "'192.0.2.1' is an IP literal; host patterns match names only, use cidrs: "
                  "[192.0.2.1/32]"},
        ErrorCase{"host IPv6 literal",
                  rules("      - hosts: [\"2001:db8::1\"]\n        action: deny\n"), 7, 17,
                  "use cidrs: [2001:db8::1/128]"},
        ErrorCase{"host invalid",
                  rules("      - hosts: [\"exa mple.com\"]\n        action: deny\n"), 7, 17,
                  "'exa mple.com' is not a valid host name"},
        ErrorCase{"cidrs invalid", rules("      - cidrs: [not-a-cidr]\n        action: deny\n"), 7,
                  17, "sandboxes[0].rules[0].cidrs[0]: 'not-a-cidr' is not a CIDR"},
        ErrorCase{"cidrs host bits",
                  rules("      - cidrs: [203.0.113.1/24]\n        action: deny\n"), 7, 17,
                  "host bits set; did you mean 203.0.113.0/24"},
        ErrorCase{"port 0", rules("      - ports: [0]\n        action: deny\n"), 7, 17,
                  "sandboxes[0].rules[0].ports[0]: '0' is not a port 1-65535"},
        ErrorCase{"port too big", rules("      - ports: [443, 70000]\n        action: deny\n"), 7,
                  22, "'70000' is not a port 1-65535"},
        ErrorCase{"port range reversed",
                  rules("      - ports: [\"9000-8000\"]\n        action: deny\n"), 7, 17,
                  "range '9000-8000' starts above its end; did you mean \"8000-9000\"?"},
        ErrorCase{"port range open", rules("      - ports: [\"8000-\"]\n        action: deny\n"), 7,
                  17, "is not a port 1-65535 or a range"},
        ErrorCase{"port name", rules("      - ports: [https]\n        action: deny\n"), 7, 17,
                  "'https' is not a port 1-65535 or a range"},
        ErrorCase{"port list", rules("      - ports: [[1]]\n        action: deny\n"), 7, 17,
                  "expected a port (443) or a range"},
        ErrorCase{"ports empty", rules("      - ports: []\n        action: deny\n"), 7, 16,
                  "sandboxes[0].rules[0].ports: empty list"},
        ErrorCase{"ports scalar", rules("      - ports: 443\n        action: deny\n"), 7, 16,
                  "sandboxes[0].rules[0].ports: expected a list"},
        ErrorCase{"rule name numeric",
                  rules("      - name: \"7\"\n        ports: [1]\n        action: deny\n"), 7, 15,
                  "not only digits"},
        ErrorCase{"rule name twice",
                  rules("      - name: x\n        ports: [1]\n        action: deny\n"
                        "      - name: x\n        ports: [2]\n        action: deny\n"),
                  10, 9, "sandboxes[0].rules[1]: rule name 'x' is already used on line 7"}));

INSTANTIATE_TEST_SUITE_P(
    Credentials, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"unknown credential with suggestion",
                  kC + rules("      - hosts: [api.example.com]\n        action: mitm\n"
                             "        credentials: [kk]\n"),
                  15, 23,
                  "sandboxes[0].rules[0].credentials[0]: unknown credential 'kk'; did "
                  "you mean 'k'?"},
        ErrorCase{"unknown credential, no section",
                  rules("      - hosts: [api.example.com]\n        action: mitm\n"
                        "        credentials: [openai]\n"),
                  9, 23, "unknown credential 'openai' (there is no credentials: section)"},
        ErrorCase{"unknown credential lists defined",
                  kC + rules("      - hosts: [api.example.com]\n        action: mitm\n"
                             "        credentials: [github]\n"),
                  15, 23, "unknown credential 'github' (defined: k)"},
        ErrorCase{"credential on a passthrough rule",
                  kC + rules("      - hosts: [api.example.com]\n        action: passthrough\n"
                             "        credentials: [k]\n"),
                  15, 9, "credentials need action: mitm; a passthrough rule never sees requests"},
        ErrorCase{"credential listed twice",
                  kC + rules("      - hosts: [api.example.com]\n        action: mitm\n"
                             "        credentials: [k, k]\n"),
                  15, 26, "credential 'k' is listed twice"},
        ErrorCase{"credential scope misses every rule host",
                  kC + rules("      - hosts: [other.example.com, \"*.example.org\"]\n"
                             "        action: mitm\n        credentials: [k]\n"),
                  15, 23,
                  "credential 'k' may only go to [api.example.com], none of which this "
                  "rule's hosts [other.example.com, *.example.org] cover"},
        ErrorCase{"credential name invalid",
                  "credentials:\n  \"my key\":\n    placeholder: x\n" + kG + kS, 2, 3,
                  "credentials: name 'my key' must be"},
        ErrorCase{"credential not a map", "credentials:\n  k: token\n" + kG + kS, 2, 6,
                  "credentials.k: expected a map"},
        ErrorCase{"credential unknown key",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholders: tgph_k_0123456789abcdef01234\n" +
                      kG + kS,
                  4, 5, "credentials.k: unknown key 'placeholders'; did you mean 'placeholder'?"},
        ErrorCase{"credential missing placeholder",
                  "credentials:\n  k:\n    source: { env: K }\n    hosts: [a.example]\n"
                  "    inject: { header: X-Key }\n" +
                      kG + kS,
                  3, 5, "credentials.k: missing required key 'placeholder'"},
        ErrorCase{"placeholder too short",
                  "credentials:\n  k:\n    source: { env: K }\n    placeholder: tgph_short\n"
                  "    hosts: [a.example]\n    inject: { header: X-Key }\n" +
                      kG + kS,
                  4, 18, "credentials.k.placeholder: 10 characters is too short (at least 24)"},
        ErrorCase{"placeholder bad characters",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: \"tgph k 0123456789abcdef01234\"\n"
                  "    hosts: [a.example]\n    inject: { header: X-Key }\n" +
                      kG + kS,
                  4, 18, "only letters, digits and '-._~' are allowed"},
        ErrorCase{
            "placeholder shared",
            kC +
                "  j:\n    source: { env: J }\n    placeholder: tgph_k_0123456789abcdef01234\n"
                "    hosts: [a.example]\n    inject: { header: X-Key }\n" +
                kG + kS,
            9, 18,
            "credentials.j.placeholder: is the same as the placeholder of credential "
            "'k'"},
        ErrorCase{"placeholder contains another",
                  kC +
                      "  j:\n    source: { env: J }\n"
                      "    placeholder: tgph_k_0123456789abcdef01234_more\n"
                      "    hosts: [a.example]\n    inject: { header: X-Key }\n" +
                      kG + kS,
                  9, 18, "contains the placeholder of credential 'k'"},
        ErrorCase{"placeholder inside another",
                  kC +
                      "  j:\n    source: { env: J }\n"
                      "    placeholder: tgph_k_0123456789abcdef0123\n"
                      "    hosts: [a.example]\n    inject: { header: X-Key }\n" +
                      kG + kS,
                  9, 18, "is part of the placeholder of credential 'k'"},
        ErrorCase{"credential hosts empty",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: []\n"
                  "    inject: { header: X-Key }\n" +
                      kG + kS,
                  5, 12, "credentials.k.hosts: empty list"},
        ErrorCase{"credential host IP",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [192.0.2.1]\n"
                  "    inject: { header: X-Key }\n" +
                      kG + kS,
                  5, 13, "credentials.k.hosts[0]: '192.0.2.1' is an IP literal"},
        ErrorCase{"inject neither header nor query",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { format: \"{value}\" }\n" +
                      kG + kS,
                  6, 13, "credentials.k.inject: needs exactly one of header: or query:"},
        ErrorCase{"inject both header and query",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: X-Key, query: key }\n" +
                      kG + kS,
                  6, 13, "needs exactly one of header: or query:"},
        ErrorCase{"inject unknown key",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: X-Key, formt: \"{value}\" }\n" +
                      kG + kS,
                  6, 30, "credentials.k.inject: unknown key 'formt'; did you mean 'format'?"},
        ErrorCase{"format without {value}",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: Authorization, format: Bearer }\n" +
                      kG + kS,
                  6, 46, "credentials.k.inject.format: must contain {value} exactly once"},
        ErrorCase{"format with {value} twice",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: X, format: \"{value}{value}\" }\n" +
                      kG + kS,
                  6, 34, "must contain {value} exactly once"},
        ErrorCase{"format with CRLF",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: X, format: \"{value}\\r\\nX-Evil: 1\" }\n" +
                      kG + kS,
                  6, 34, "control characters"},
        ErrorCase{"inject header forbidden",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: Content-Length }\n" +
                      kG + kS,
                  6, 23, "'Content-Length' frames or routes the request"},
        // The union with the engine's list (mitm::kReservedInjectHeaders).
        ErrorCase{"inject header expect",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: Expect }\n" +
                      kG + kS,
                  6, 23, "'Expect' frames or routes the request"},
        ErrorCase{"inject header accept-encoding",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: Accept-Encoding }\n" +
                      kG + kS,
                  6, 23, "'Accept-Encoding' frames or routes the request"},
        ErrorCase{"inject header invalid",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: \"X Key:\" }\n" +
                      kG + kS,
                  6, 23, "'X Key:' is not a valid header name"},
        ErrorCase{"inject query invalid",
                  "credentials:\n  k:\n    source: { env: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { query: \"a&b\" }\n" +
                      kG + kS,
                  6, 22, "'a&b' is not a plain parameter name"},
        ErrorCase{"source neither env nor file",
                  "credentials:\n  k:\n    source: {}\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: X-Key }\n" +
                      kG + kS,
                  3, 13, "credentials.k.source: needs exactly one of env:, file: or credential:"},
        ErrorCase{"source both env and file",
                  "credentials:\n  k:\n    source: { env: K, file: /run/k }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: X-Key }\n" +
                      kG + kS,
                  3, 13, "needs exactly one of env:, file: or credential:"},
        ErrorCase{"source unknown key",
                  "credentials:\n  k:\n    source: { enw: K }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: X-Key }\n" +
                      kG + kS,
                  3, 15, "credentials.k.source: unknown key 'enw'; did you mean 'env'?"},
        ErrorCase{"source env invalid",
                  "credentials:\n  k:\n    source: { env: 1KEY }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: X-Key }\n" +
                      kG + kS,
                  3, 20, "credentials.k.source.env: '1KEY' is not an environment variable name"},
        ErrorCase{"source file relative",
                  "credentials:\n  k:\n    source: { file: secrets/k }\n"
                  "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [a.example]\n"
                  "    inject: { header: X-Key }\n" +
                      kG + kS,
                  3, 21, "credentials.k.source.file: 'secrets/k' must be an absolute path"}));

TEST(ConfigErrorTest, ReportsEveryErrorSortedByPosition) {
  std::vector<ConfigError> errors = mustFail(
      "gateway:\n  interfaces: []\n  listen_port: 0\n  capture: nat\n"
      "sandboxes:\n  - name: a\n    sources: [10.0.0.1/8]\n    rules:\n      - action: deny\n");
  ASSERT_EQ(errors.size(), 5u) << dump(errors);
  EXPECT_EQ(errors[0].line, 2);
  EXPECT_EQ(errors[1].line, 3);
  EXPECT_EQ(errors[2].line, 4);
  EXPECT_EQ(errors[3].line, 7);
  EXPECT_EQ(errors[4].line, 9);
}

TEST(ConfigErrorTest, InvalidCredentialIsNotAlsoReportedAsUnknown) {
  std::vector<ConfigError> errors = mustFail(
      "credentials:\n  k:\n    source: { env: K }\n    placeholder: short\n"
      "    hosts: [api.example.com]\n    inject: { header: X-Key }\n" +
      rules("      - hosts: [api.example.com]\n        action: mitm\n        credentials: [k]\n"));
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_NE(errors[0].message.find("too short"), std::string::npos);
}

TEST(ConfigErrorTest, AliasedMistakeIsReportedOnce) {
  std::vector<ConfigError> errors =
      mustFail(kG +
               "sandboxes:\n  - name: a\n    sources: [10.77.0.0/24]\n    rules:\n"
               "      - hosts: &h [\"*\"]\n        action: deny\n"
               "      - hosts: *h\n        action: passthrough\n");
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
}

TEST(ConfigErrorTest, ManyErrorsAreCapped) {
  std::string yaml = kG + kS + "    rules:\n";
  for (int i = 0; i < 500; ++i) {
    yaml += "      - ports: [0]\n        action: deny\n";
  }
  std::vector<ConfigError> errors = mustFail(yaml);
  ASSERT_LE(errors.size(), 201u);
  EXPECT_NE(errors.back().message.find("too many errors"), std::string::npos) << dump(errors);
}

TEST(ConfigErrorTest, ToStringIsFileLineColumnMessage) {
  ConfigError e{"/etc/tollgate.yaml", 3, 14, "gateway.listen_port: 0 is out of range 1-65535"};
  EXPECT_EQ(e.toString(),
            "/etc/tollgate.yaml:3:14: gateway.listen_port: 0 is out of range 1-65535");
}

// --- loading files and what a valid config holds ---------------------------------

TEST(LoadConfigTest, MissingFileIsOneError) {
  auto r = loadConfig("/nonexistent/tollgate.yaml");
  ASSERT_TRUE(std::holds_alternative<std::vector<ConfigError>>(r));
  const auto& errors = std::get<std::vector<ConfigError>>(r);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].toString(),
            "/nonexistent/tollgate.yaml:0:0: cannot read: No such file or directory");
}

TEST(LoadConfigTest, DirectoryIsOneError) {
  auto r = loadConfig(std::string(TOLLGATE_TEST_DATA));
  ASSERT_TRUE(std::holds_alternative<std::vector<ConfigError>>(r));
  const auto& errors = std::get<std::vector<ConfigError>>(r);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].toString(),
            std::string(TOLLGATE_TEST_DATA) + ":0:0: cannot read: Is a directory");
}

Config mustLoad(const std::string& name) {
  auto r = loadConfig(dataPath(name));
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&r)) {
    ADD_FAILURE() << name << " does not load:\n" << dump(*errors);
    return Config{};
  }
  return std::get<Config>(std::move(r));
}

TEST(LoadConfigTest, FullDesignExampleLoads) {
  Config c = mustLoad("full.yaml");
  EXPECT_EQ(c.path, dataPath("full.yaml"));
  const GatewayConfig& g = c.gateway;
  EXPECT_EQ(g.interfaces, std::vector<std::string>{"br0"});
  EXPECT_EQ(g.capture, CaptureMode::Redirect);
  EXPECT_EQ(g.listen_port, 15001);
  EXPECT_EQ(g.ipv6, Ipv6Mode::Capture);
  EXPECT_EQ(g.state_dir, "/var/lib/tollgate");
  EXPECT_EQ(g.ca_cert, "/var/lib/tollgate/ca.crt");
  EXPECT_EQ(g.ca_key, "/var/lib/tollgate/ca.key");
  EXPECT_EQ(g.upstream_ca, "system");
  EXPECT_TRUE(g.resolvers_system);
  EXPECT_TRUE(g.resolvers.empty());
  ASSERT_EQ(g.static_hosts.size(), 1u);
  ASSERT_EQ(g.static_hosts.at("api.example.test").size(), 1u);
  EXPECT_EQ(g.static_hosts.at("api.example.test")[0].ip(), "198.51.100.2");
  EXPECT_EQ(g.audit_log, "/var/log/tollgate/audit.jsonl");
  EXPECT_EQ(g.metrics, "127.0.0.1:9464");
  EXPECT_EQ(g.control, "/run/tollgate/control.sock");
  EXPECT_EQ(g.user, std::optional<std::string>("tollgate"));
  EXPECT_EQ(g.on_exit, OnExit::Block);
  EXPECT_EQ(g.peek_timeout_ms, 3000u);
  EXPECT_EQ(g.opaque_wait_ms, 300u);
  EXPECT_EQ(g.deny_style, DenyStyle::TlsAlert);
  EXPECT_EQ(c.deny_cidrs, defaultDenyCidrs());

  ASSERT_EQ(c.sandboxes.size(), 1u);
  const Sandbox& s = c.sandboxes[0];
  EXPECT_EQ(s.name, "agents");
  ASSERT_EQ(s.sources.size(), 1u);
  EXPECT_EQ(s.sources[0].toString(), "10.77.0.0/24");
  EXPECT_EQ(s.default_action, Action::Deny);
  EXPECT_EQ(s.dns, DnsMode::Policy);
  EXPECT_TRUE(s.udp.empty());
  ASSERT_EQ(s.rules.size(), 4u);
  EXPECT_EQ(s.rules[0].index, 0u);
  EXPECT_EQ(s.rules[0].label(), "0");
  EXPECT_EQ(s.rules[0].hosts, (std::vector<HostPattern>{{"api.openai.com", false}}));
  EXPECT_EQ(s.rules[0].action, Action::Mitm);
  EXPECT_EQ(s.rules[0].credentials, std::vector<std::string>{"openai"});
  EXPECT_EQ(s.rules[1].hosts,
            (std::vector<HostPattern>{{"github.com", true}, {"github.com", false}}));
  EXPECT_EQ(s.rules[1].action, Action::Passthrough);
  ASSERT_EQ(s.rules[2].cidrs.size(), 1u);
  EXPECT_EQ(s.rules[2].cidrs[0].toString(), "203.0.113.0/24");
  EXPECT_EQ(s.rules[2].ports, (std::vector<PortRange>{{22, 22}}));
  EXPECT_EQ(s.rules[3].action, Action::Deny);
  EXPECT_EQ(s.rules[3].index, 3u);

  ASSERT_EQ(c.credentials.size(), 1u);
  const Credential& k = c.credentials.at("openai");
  EXPECT_EQ(k.name, "openai");
  EXPECT_EQ(k.source.kind, CredentialSource::Env);
  EXPECT_EQ(k.source.ref, "OPENAI_API_KEY");
  EXPECT_EQ(k.placeholder, "tgph_openai_9c1f2b7e4d8a6c3f5e1b0a9d");
  EXPECT_EQ(k.hosts, (std::vector<HostPattern>{{"api.openai.com", false}}));
  EXPECT_EQ(k.inject_header, "Authorization");
  EXPECT_EQ(k.inject_query, "");
  EXPECT_EQ(k.format, "Bearer {value}");
}

TEST(LoadConfigTest, InvalidExampleGivesExactDiagnostics) {
  const std::string path = dataPath("invalid.yaml");
  auto r = loadConfig(path);
  ASSERT_TRUE(std::holds_alternative<std::vector<ConfigError>>(r));
  std::vector<std::string> lines;
  for (const ConfigError& e : std::get<std::vector<ConfigError>>(r)) {
    lines.push_back(e.toString());
  }
  EXPECT_EQ(lines,
            (std::vector<std::string>{
                path + ":4:3: gateway: unknown key 'listen_prot'; did you mean 'listen_port'?",
                path + ":7:15: sandboxes[0].sources[0]: '10.77.0.1/24': host bits set; did you "
                       "mean 10.77.0.0/24",
                path + ":9:17: sandboxes[0].rules[0].hosts[0]: '*' would match every host; use "
                       "the sandbox 'default:' or a cidrs: rule",
                path + ":10:17: sandboxes[0].rules[0].action: 'passthru' is not one of: "
                       "passthrough, deny, mitm; did you mean 'passthrough'?"}));
}

TEST(LoadConfigTest, MinimalTakesDefaults) {
  Config c = mustLoad("minimal.yaml");
  const GatewayConfig& g = c.gateway;
  EXPECT_EQ(g.capture, CaptureMode::Redirect);
  EXPECT_EQ(g.listen_port, 15001);
  EXPECT_EQ(g.ipv6, Ipv6Mode::Capture);
  EXPECT_EQ(g.state_dir, "/var/lib/tollgate");
  EXPECT_EQ(g.ca_cert, "/var/lib/tollgate/ca.crt");
  EXPECT_EQ(g.ca_key, "/var/lib/tollgate/ca.key");
  EXPECT_EQ(g.upstream_ca, "system");
  EXPECT_TRUE(g.resolvers_system);
  EXPECT_TRUE(g.static_hosts.empty());
  EXPECT_EQ(g.audit_log, "-");
  EXPECT_EQ(g.metrics, "");
  EXPECT_EQ(g.control, "/run/tollgate/control.sock");
  EXPECT_FALSE(g.user.has_value());
  EXPECT_EQ(g.on_exit, OnExit::Block);
  EXPECT_EQ(g.peek_timeout_ms, 3000u);
  EXPECT_EQ(g.opaque_wait_ms, 300u);
  EXPECT_EQ(g.deny_style, DenyStyle::TlsAlert);
  EXPECT_EQ(c.deny_cidrs, defaultDenyCidrs());
  ASSERT_EQ(c.sandboxes.size(), 1u);
  EXPECT_EQ(c.sandboxes[0].default_action, Action::Deny);
  EXPECT_EQ(c.sandboxes[0].dns, DnsMode::Policy);
  EXPECT_TRUE(c.sandboxes[0].rules.empty());
  EXPECT_TRUE(c.sandboxes[0].udp.empty());
  EXPECT_TRUE(c.credentials.empty());
}

TEST(LoadConfigTest, EveryOptionAtANonDefaultValue) {
  Config c = mustLoad("everything.yaml");
  const GatewayConfig& g = c.gateway;
  EXPECT_EQ(g.interfaces, (std::vector<std::string>{"br-sbx0", "br-sbx1"}));
  EXPECT_EQ(g.capture, CaptureMode::Tproxy);
  EXPECT_EQ(g.listen_port, 15443);
  EXPECT_EQ(g.ipv6, Ipv6Mode::Block);
  EXPECT_EQ(g.state_dir, "/srv/tollgate/");
  EXPECT_EQ(g.ca_cert, "/srv/tollgate/ca.crt");
  EXPECT_EQ(g.ca_key, "/srv/tollgate/ca.key");
  EXPECT_EQ(g.upstream_ca, "/etc/ssl/certs/ca-certificates.crt");
  EXPECT_FALSE(g.resolvers_system);
  ASSERT_EQ(g.resolvers.size(), 3u);
  EXPECT_EQ(g.resolvers[0].toString(), "192.0.2.53:53");
  EXPECT_EQ(g.resolvers[1].toString(), "[2001:db8::53]:5353");
  EXPECT_EQ(g.resolvers[2].toString(), "198.51.100.53:5353");
  ASSERT_EQ(g.static_hosts.size(), 2u);
  ASSERT_EQ(g.static_hosts.at("api.example.test").size(), 2u);
  EXPECT_EQ(g.static_hosts.at("api.example.test")[1].ip(), "2001:db8::2");
  ASSERT_EQ(g.static_hosts.at("xn--bcher-kva.example").size(), 1u);
  EXPECT_EQ(g.static_hosts.at("xn--bcher-kva.example")[0].ip(), "198.51.100.3");
  EXPECT_EQ(g.audit_log, "-");
  EXPECT_EQ(g.metrics, "unix:/run/tollgate/metrics.sock");
  EXPECT_EQ(g.control, "/run/tg/control.sock");
  EXPECT_EQ(g.on_exit, OnExit::Open);
  EXPECT_EQ(g.peek_timeout_ms, 500u);
  EXPECT_EQ(g.opaque_wait_ms, 0u);
  EXPECT_EQ(g.deny_style, DenyStyle::Http403);

  std::vector<Cidr> deny = defaultDenyCidrs();
  deny.push_back(*Cidr::parse("192.0.2.128/25"));
  deny.push_back(*Cidr::parse("2001:db8:dead::/48"));
  EXPECT_EQ(c.deny_cidrs, deny);

  ASSERT_EQ(c.sandboxes.size(), 2u);
  const Sandbox& s = c.sandboxes[0];
  EXPECT_EQ(s.default_action, Action::Passthrough);
  EXPECT_EQ(s.dns, DnsMode::Open);
  ASSERT_EQ(s.sources.size(), 2u);
  EXPECT_EQ(s.sources[1].toString(), "fd77::/64");
  ASSERT_EQ(s.rules.size(), 3u);
  EXPECT_EQ(s.rules[0].label(), "openai");
  EXPECT_EQ(s.rules[0].credentials, (std::vector<std::string>{"openai", "openai-org"}));
  EXPECT_EQ(s.rules[1].ports, (std::vector<PortRange>{{22, 22}, {2200, 2299}}));
  EXPECT_EQ(s.rules[1].ports[1].toString(), "2200-2299");
  EXPECT_EQ(s.rules[2].label(), "2");
  EXPECT_EQ(s.rules[2].hosts, (std::vector<HostPattern>{{"xn--bcher-kva.example", true}}));
  ASSERT_EQ(s.udp.size(), 2u);
  EXPECT_EQ(s.udp[0].cidrs.size(), 1u);
  EXPECT_EQ(s.udp[0].ports, (std::vector<PortRange>{{443, 443}}));
  EXPECT_TRUE(s.udp[1].cidrs.empty());
  EXPECT_EQ(s.udp[1].ports, (std::vector<PortRange>{{60000, 61000}}));
  EXPECT_EQ(c.sandboxes[1].name, "builders");
  EXPECT_EQ(c.sandboxes[1].default_action, Action::Deny);

  ASSERT_EQ(c.credentials.size(), 3u);
  const Credential& org = c.credentials.at("openai-org");
  EXPECT_EQ(org.source.kind, CredentialSource::File);
  EXPECT_EQ(org.source.ref, "/run/secrets/openai-org");
  EXPECT_EQ(org.inject_header, "OpenAI-Organization");
  EXPECT_EQ(org.format, "{value}");
  const Credential& maps = c.credentials.at("maps");
  EXPECT_EQ(maps.inject_query, "key");
  EXPECT_EQ(maps.inject_header, "");
}

TEST(ParseConfigTest, AnchorsAndAliasesAreFine) {
  Config c = mustParse(kG +
                       "sandboxes:\n  - name: a\n    sources: &src [10.77.0.0/24]\n"
                       "    rules:\n      - hosts: &gh [github.com, \"*.github.com\"]\n"
                       "        ports: [443]\n        action: passthrough\n"
                       "      - hosts: *gh\n        action: deny\n");
  ASSERT_EQ(c.sandboxes[0].rules.size(), 2u);
  EXPECT_EQ(c.sandboxes[0].rules[1].hosts.size(), 2u);
}

TEST(ParseConfigTest, LargeConfigWithoutAliasesIsNotTooLarge) {
  std::string yaml = kG + kS + "    rules:\n";
  for (int i = 0; i < 2000; ++i) {
    yaml += fmt::format(
        "      - hosts: [h{0}.example, \"*.h{0}.example\", x{0}.example]\n"
        "        ports: [443, 80]\n        action: passthrough\n",
        i);
  }
  Config c = mustParse(yaml);
  EXPECT_EQ(c.sandboxes[0].rules.size(), 2000u);
}

TEST(ParseConfigTest, QuotedNumbersAndCaseOfKeywords) {
  Config c = mustParse("gateway:\n  interfaces: [br0]\n  listen_port: \"15002\"\n" + kS +
                       "    rules:\n      - ports: [\"443\", 80]\n        action: deny\n");
  EXPECT_EQ(c.gateway.listen_port, 15002);
  EXPECT_EQ(c.sandboxes[0].rules[0].ports, (std::vector<PortRange>{{443, 443}, {80, 80}}));
}

TEST(ParseConfigTest, ShortPeekTimeoutShrinksDefaultOpaqueWait) {
  Config c = mustParse(kG + "  peek_timeout_ms: 100\n" + kS);
  EXPECT_EQ(c.gateway.peek_timeout_ms, 100u);
  EXPECT_EQ(c.gateway.opaque_wait_ms, 100u);
}

TEST(ParseConfigTest, EmptyDenyListIsExplicit) {
  Config c = mustParse(kG + "deny_cidrs: []\n" + kS);
  EXPECT_TRUE(c.deny_cidrs.empty());
}

TEST(ParseConfigTest, MitmRuleCredentialScopeOverlaps) {
  // Wildcard credential scope covering an exact rule host, and a cidrs-only
  // mitm rule (any host) are both fine.
  Config c = mustParse(
      "credentials:\n  k:\n    source: { file: /run/k }\n"
      "    placeholder: tgph_k_0123456789abcdef01234\n    hosts: [\"*.example.com\"]\n"
      "    inject: { query: key }\n" +
      rules("      - hosts: [api.example.com, other.example.org]\n        action: mitm\n"
            "        credentials: [k]\n"
            "      - cidrs: [192.0.2.0/24]\n        action: mitm\n        credentials: [k]\n"));
  EXPECT_EQ(c.sandboxes[0].rules[0].credentials, std::vector<std::string>{"k"});
  EXPECT_EQ(c.sandboxes[0].rules[1].credentials, std::vector<std::string>{"k"});
}

TEST(ParseConfigTest, AllOfIpv6DoesNotOverlapIpv4Sandboxes) {
  Config c = mustParse(kG + kS + "  - name: v6\n    sources: [\"::/0\"]\n");
  EXPECT_EQ(c.sandboxes.size(), 2u);
}

TEST(ParseConfigTest, SandboxesWithDisjointSourcesInEitherFamily) {
  Config c = mustParse(kG + kS +
                       "  - name: b\n    sources: [10.77.1.0/24, \"fd77::/64\"]\n"
                       "  - name: c\n    sources: [\"fd78::/64\", 10.76.0.0/16]\n");
  EXPECT_EQ(c.sandboxes.size(), 3u);
}

// sandboxes[].ports: bridge ports (or routed interfaces) a sandbox is bound to.
INSTANTIATE_TEST_SUITE_P(
    Ports, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"ports empty", kG + kS + "    ports: []\n", 6, 12, "ports: empty list"},
        ErrorCase{"port star alone", kG + kS + "    ports: [tap0, \"*\"]\n", 6, 19,
                  "\"*\" would claim every bridge port of the host"},
        ErrorCase{"star inside a port", kG + kS + "    ports: [\"ta*p\"]\n", 6, 13,
                  "'ta*p' is not an interface name"},
        ErrorCase{"port name too long", kG + kS + "    ports: [tap-0123456789ab]\n", 6, 13,
                  "is not an interface name (1-15 characters"},
        ErrorCase{"port listed twice", kG + kS + "    ports: [tap0, tap*]\n", 6, 19,
                  "'tap*' is already matched by 'tap0'"},
        ErrorCase{"port of two sandboxes",
                  kG + kS +
                      "    ports: [tap-a*]\n  - name: b\n    sources: [10.78.0.0/24]\n"
                      "    ports: [tap-a1]\n",
                  9, 13, "'tap-a1' of sandbox 'b' also matches 'tap-a*' of sandbox 'a' (line 6)"}));

TEST(ParseConfigTest, PortsBindSandboxes) {
  Config c =
      mustParse(kG + kS + "    ports: [tap-a*, veth0]\n  - name: b\n    sources: [10.78.0.0/24]\n" +
                "    ports: [tap-b*]\n  - name: c\n    sources: [10.79.0.0/24]\n");
  ASSERT_EQ(c.sandboxes.size(), 3u);
  EXPECT_EQ(c.sandboxes[0].ports, (std::vector<std::string>{"tap-a*", "veth0"}));
  EXPECT_EQ(c.sandboxes[1].ports, (std::vector<std::string>{"tap-b*"}));
  EXPECT_TRUE(c.sandboxes[2].ports.empty());
  // Prefixes that cannot match the same name are fine: tap-a* vs tap-ab0 overlaps, tap-a* vs tap-b0
  // not.
  mustParse(kG + kS + "    ports: [tap-a*]\n  - name: b\n    sources: [10.78.0.0/24]\n" +
            "    ports: [tap-b0, tap-ba*]\n");
}

TEST(ParseConfigTest, UnboundSandboxesAreNamedOnlyWhenThereIsAPolicyToBorrow) {
  EXPECT_FALSE(unboundSandboxesWarning(mustParse(kG + kS)));  // one sandbox
  auto two = unboundSandboxesWarning(
      mustParse(kG + kS + "    ports: [tap-a*]\n  - name: b\n    sources: [10.78.0.0/24]\n"));
  ASSERT_TRUE(two);
  EXPECT_NE(two->find("sandboxes without ports (b)"), std::string::npos) << *two;
  EXPECT_FALSE(unboundSandboxesWarning(mustParse(kG + kS +
                                                 "    ports: [tap-a*]\n  - name: b\n    sources: "
                                                 "[10.78.0.0/24]\n    ports: [tap-b*]\n")));
}

TEST(ActionNameTest, Names) {
  EXPECT_EQ(actionName(Action::Passthrough), "passthrough");
  EXPECT_EQ(actionName(Action::Deny), "deny");
  EXPECT_EQ(actionName(Action::Mitm), "mitm");
}

}  // namespace
}  // namespace tollgate::gateway

// --- per-sandbox limits -------------------------------------------------------

namespace tollgate::gateway {
namespace {

TEST(ConfigLimitsTest, DefaultsGatewayValuesAndPerSandboxOverrides) {
  Config d = mustParse(kG + kS);
  EXPECT_EQ(d.gateway.max_flows_per_sandbox, 1024u);
  EXPECT_EQ(d.gateway.max_mitm_flows_per_sandbox, 64u);
  EXPECT_EQ(d.gateway.idle_timeout_s, 3600u);
  EXPECT_EQ(d.gateway.deny_leaves_per_minute, 60u);
  EXPECT_FALSE(d.sandboxes.at(0).max_flows.has_value());
  Config c = mustParse(kG +
                       "  max_flows_per_sandbox: 10\n  max_mitm_flows_per_sandbox: 2\n"
                       "  idle_timeout_s: 0\n  deny_leaves_per_minute: 0\n" +
                       kS + "    max_flows: 5\n    max_mitm_flows: 1\n");
  EXPECT_EQ(c.gateway.max_flows_per_sandbox, 10u);
  EXPECT_EQ(c.gateway.max_mitm_flows_per_sandbox, 2u);
  EXPECT_EQ(c.gateway.idle_timeout_s, 0u);
  EXPECT_EQ(c.gateway.deny_leaves_per_minute, 0u);
  EXPECT_EQ(c.sandboxes.at(0).max_flows, 5u);
  EXPECT_EQ(c.sandboxes.at(0).max_mitm_flows, 1u);
}

TEST(ConfigLimitsTest, OutOfRangeLimitsAreErrors) {
  for (const std::string& bad :
       {kG + "  max_flows_per_sandbox: 0\n" + kS, kG + "  max_mitm_flows_per_sandbox: 0\n" + kS,
        kG + "  idle_timeout_s: 604801\n" + kS, kG + "  deny_leaves_per_minute: -1\n" + kS,
        kG + kS + "    max_flows: 0\n", kG + kS + "    max_mitm_flows: 2000000\n"}) {
    auto errors = mustFail(bad);
    ASSERT_EQ(errors.size(), 1u) << bad << dump(errors);
    const std::string& m = errors[0].message;
    EXPECT_TRUE(m.find("out of range") != std::string::npos ||
                m.find("expected an integer") != std::string::npos)
        << dump(errors);
  }
}

}  // namespace
}  // namespace tollgate::gateway
