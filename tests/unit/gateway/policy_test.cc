#include "gateway/policy.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "gateway/config.h"

namespace tollgate::gateway {
namespace {

Config mustParse(const std::string& yaml) {
  auto r = parseConfig(yaml, "test.yaml");
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&r)) {
    std::string all;
    for (const ConfigError& e : *errors) {
      all += e.toString() + "\n";
    }
    ADD_FAILURE() << "config does not parse:\n" << all << yaml;
    return Config{};
  }
  return std::get<Config>(std::move(r));
}

SockAddr addr(std::string_view ip, uint16_t port = 0) {
  auto a = SockAddr::parseIp(ip, port);
  EXPECT_TRUE(a.has_value()) << ip;
  return a.value_or(SockAddr());
}

std::optional<HostName> name(std::string_view raw) {
  if (raw.empty()) {
    return std::nullopt;
  }
  auto n = normalizeHostName(raw);
  EXPECT_TRUE(n.has_value()) << raw;
  return n;
}

const char* const kPolicyYaml = R"(gateway:
  interfaces: [br0]
sandboxes:
  - name: agents
    sources: [10.77.0.0/24, "fd77::/64"]
    default: deny
    rules:
      - name: openai
        hosts: [api.openai.com]
        ports: [443]
        action: passthrough
      - hosts: ["*.github.com", github.com]
        action: passthrough
      - cidrs: [203.0.113.0/24]
        ports: [22]
        action: passthrough
      - hosts: [blocked.example]
        action: deny
      - hosts: [api.openai.com]
        action: deny
      - cidrs: [198.51.100.0/24, "2001:db8:5::/48"]
        action: mitm
      - ports: ["8000-8100"]
        action: passthrough
      - hosts: [bücher.example]
        action: passthrough
  - name: builders
    sources: [10.78.0.0/16]
    default: passthrough
    rules:
      - hosts: [evil.example]
        action: deny
)";

// --- decide -----------------------------------------------------------------

struct DecideCase {
  std::string what;
  std::string src;
  std::string dst;
  uint16_t port;
  std::string name;  // "" = no name
  Action action;
  std::string reason;
  std::string rule;     // ruleLabel()
  std::string sandbox;  // "" = none
};

void PrintTo(const DecideCase& c, std::ostream* os) { *os << c.what; }

class DecideTest : public ::testing::TestWithParam<DecideCase> {
 protected:
  static void SetUpTestSuite() { config_ = new Config(mustParse(kPolicyYaml)); }
  static void TearDownTestSuite() {
    delete config_;
    config_ = nullptr;
  }
  static Config* config_;
};

Config* DecideTest::config_ = nullptr;

TEST_P(DecideTest, Decides) {
  const DecideCase& c = GetParam();
  FlowFacts facts{addr(c.src, 40000), addr(c.dst, c.port), name(c.name)};
  Decision d = decide(*config_, facts);
  EXPECT_EQ(actionName(d.action), actionName(c.action)) << c.what;
  EXPECT_EQ(d.reason, c.reason) << c.what;
  EXPECT_EQ(d.ruleLabel(), c.rule) << c.what;
  if (c.sandbox.empty()) {
    EXPECT_EQ(d.sandbox, nullptr) << c.what;
  } else {
    ASSERT_NE(d.sandbox, nullptr) << c.what;
    EXPECT_EQ(d.sandbox->name, c.sandbox) << c.what;
  }
  EXPECT_EQ(d.rule == nullptr, c.rule.empty()) << c.what;
}

INSTANTIATE_TEST_SUITE_P(
    All, DecideTest,
    ::testing::Values(
        DecideCase{"named rule first match", "10.77.0.5", "192.0.2.10", 443, "api.openai.com",
                   Action::Passthrough, "rule", "openai", "agents"},
        DecideCase{"name case and trailing dot", "10.77.0.5", "192.0.2.10", 443, "API.OpenAI.com.",
                   Action::Passthrough, "rule", "openai", "agents"},
        DecideCase{"port outside first rule falls to later rule", "10.77.0.5", "192.0.2.10", 80,
                   "api.openai.com", Action::Deny, "rule", "4", "agents"},
        DecideCase{"wildcard one level", "10.77.0.5", "192.0.2.10", 443, "api.github.com",
                   Action::Passthrough, "rule", "1", "agents"},
        DecideCase{"wildcard deep", "10.77.0.5", "192.0.2.10", 443, "a.b.c.github.com",
                   Action::Passthrough, "rule", "1", "agents"},
        DecideCase{"apex listed separately", "10.77.0.5", "192.0.2.10", 22, "github.com",
                   Action::Passthrough, "rule", "1", "agents"},
        DecideCase{"suffix lookalike", "10.77.0.5", "192.0.2.10", 443, "badgithub.com",
                   Action::Deny, "default", "", "agents"},
        DecideCase{"cidrs+ports rule, no name", "10.77.0.5", "203.0.113.5", 22, "",
                   Action::Passthrough, "rule", "2", "agents"},
        DecideCase{"cidrs+ports rule, wrong port", "10.77.0.5", "203.0.113.5", 23, "", Action::Deny,
                   "default", "", "agents"},
        DecideCase{"cidrs rule ignores the name", "10.77.0.5", "203.0.113.5", 22,
                   "whatever.example", Action::Passthrough, "rule", "2", "agents"},
        DecideCase{"cidrs rule with IP-literal SNI", "10.77.0.5", "203.0.113.5", 22, "203.0.113.5",
                   Action::Passthrough, "rule", "2", "agents"},
        DecideCase{"IP-literal SNI never matches hosts", "10.77.0.5", "192.0.2.10", 443,
                   "192.0.2.10", Action::Deny, "default", "", "agents"},
        DecideCase{"no name never matches hosts", "10.77.0.5", "192.0.2.10", 443, "", Action::Deny,
                   "default", "", "agents"},
        DecideCase{"deny rule", "10.77.0.5", "192.0.2.10", 443, "blocked.example", Action::Deny,
                   "rule", "3", "agents"},
        DecideCase{"mitm by cidr", "10.77.0.5", "198.51.100.7", 443, "example.org", Action::Mitm,
                   "rule", "5", "agents"},
        DecideCase{"mitm by v6 cidr", "fd77::9", "2001:db8:5::1", 443, "", Action::Mitm, "rule",
                   "5", "agents"},
        DecideCase{"port range low edge", "10.77.0.5", "192.0.2.1", 8000, "", Action::Passthrough,
                   "rule", "6", "agents"},
        DecideCase{"port range high edge", "10.77.0.5", "192.0.2.1", 8100, "", Action::Passthrough,
                   "rule", "6", "agents"},
        DecideCase{"port range outside", "10.77.0.5", "192.0.2.1", 8101, "", Action::Deny,
                   "default", "", "agents"},
        DecideCase{"IDNA config vs A-label SNI", "10.77.0.5", "192.0.2.1", 443,
                   "xn--bcher-kva.example", Action::Passthrough, "rule", "7", "agents"},
        DecideCase{"second sandbox rule", "10.78.3.3", "192.0.2.1", 443, "evil.example",
                   Action::Deny, "rule", "0", "builders"},
        DecideCase{"second sandbox default", "10.78.3.3", "192.0.2.1", 443, "api.openai.com",
                   Action::Passthrough, "default", "", "builders"},
        DecideCase{"v6 source selects sandbox", "fd77::5", "2001:db8::1", 443, "github.com",
                   Action::Passthrough, "rule", "1", "agents"},
        DecideCase{"v4-mapped source selects sandbox", "::ffff:10.77.0.9", "192.0.2.1", 443,
                   "github.com", Action::Passthrough, "rule", "1", "agents"},
        DecideCase{"unknown source", "10.79.0.1", "192.0.2.1", 443, "github.com", Action::Deny,
                   "no_sandbox", "", ""},
        DecideCase{"unknown v6 source", "fd78::1", "192.0.2.1", 443, "github.com", Action::Deny,
                   "no_sandbox", "", ""}));

TEST(SelectSandboxTest, FirstMatchOnSources) {
  Config config = mustParse(kPolicyYaml);
  ASSERT_EQ(config.sandboxes.size(), 2u);
  EXPECT_EQ(selectSandbox(config, addr("10.77.0.255")), &config.sandboxes[0]);
  EXPECT_EQ(selectSandbox(config, addr("10.78.255.255")), &config.sandboxes[1]);
  EXPECT_EQ(selectSandbox(config, addr("10.77.1.0")), nullptr);
  EXPECT_EQ(selectSandbox(config, SockAddr()), nullptr);
}

TEST(DecideBasicsTest, EmptyConfigDeniesEverything) {
  Config config;
  Decision d = decide(config, FlowFacts{addr("10.0.0.1", 1), addr("192.0.2.1", 443), {}});
  EXPECT_EQ(d.action, Action::Deny);
  EXPECT_EQ(d.reason, "no_sandbox");
}

TEST(DecideBasicsTest, RuleMatchesNeedsEverySelector) {
  Rule r;
  r.hosts = {*HostPattern::parse("a.example")};
  r.cidrs = {*Cidr::parse("192.0.2.0/24")};
  r.ports = {PortRange{443, 443}};
  EXPECT_TRUE(ruleMatches(r, addr("192.0.2.1", 443), name("a.example")));
  EXPECT_FALSE(ruleMatches(r, addr("192.0.2.1", 443), name("b.example")));
  EXPECT_FALSE(ruleMatches(r, addr("192.0.2.1", 80), name("a.example")));
  EXPECT_FALSE(ruleMatches(r, addr("198.51.100.1", 443), name("a.example")));
  EXPECT_FALSE(ruleMatches(r, addr("192.0.2.1", 443), std::nullopt));
}

TEST(DecideBasicsTest, RuleLabelIsNameOrIndex) {
  Rule r;
  r.index = 7;
  EXPECT_EQ(r.label(), "7");
  r.name = "github";
  EXPECT_EQ(r.label(), "github");
  EXPECT_EQ(Decision{}.ruleLabel(), "");
}

// --- decideWithoutName ------------------------------------------------------

const char* const kNoNameYaml = R"(gateway:
  interfaces: [br0]
sandboxes:
  - name: sb
    sources: [10.77.0.0/24]
    default: passthrough
    rules:
      - cidrs: [203.0.113.0/24]
        ports: [22]
        action: passthrough
      - hosts: [a.example]
        ports: [443]
        action: deny
      - hosts: [b.example]
        cidrs: [198.51.100.0/24]
        action: deny
      - ports: [25, "6660-6669"]
        action: deny
      - cidrs: [192.0.2.0/25]
        action: mitm
)";

struct NoNameCase {
  std::string what;
  std::string src;
  std::string dst;
  uint16_t port;
  bool decided;
  Action action;
  std::string reason;
  std::string rule;
};

void PrintTo(const NoNameCase& c, std::ostream* os) { *os << c.what; }

class DecideWithoutNameTest : public ::testing::TestWithParam<NoNameCase> {};

TEST_P(DecideWithoutNameTest, Decides) {
  const NoNameCase& c = GetParam();
  Config config = mustParse(kNoNameYaml);
  auto d = decideWithoutName(config, addr(c.src, 40000), addr(c.dst, c.port));
  ASSERT_EQ(d.has_value(), c.decided) << c.what;
  if (!d) {
    return;
  }
  EXPECT_EQ(actionName(d->action), actionName(c.action)) << c.what;
  EXPECT_EQ(d->reason, c.reason) << c.what;
  EXPECT_EQ(d->ruleLabel(), c.rule) << c.what;
}

INSTANTIATE_TEST_SUITE_P(
    All, DecideWithoutNameTest,
    ::testing::Values(NoNameCase{"no sandbox: deny at once", "10.99.0.1", "203.0.113.5", 22, true,
                                 Action::Deny, "no_sandbox", ""},
                      NoNameCase{"name-less rule matches first", "10.77.0.5", "203.0.113.5", 22,
                                 true, Action::Passthrough, "rule", "0"},
                      NoNameCase{"host rule whose port admits: must peek", "10.77.0.5",
                                 "192.0.2.200", 443, false, Action::Deny, "", ""},
                      NoNameCase{"host rule with cidrs containing dst: must peek", "10.77.0.5",
                                 "198.51.100.1", 80, false, Action::Deny, "", ""},
                      NoNameCase{"host rules that cannot match are skipped", "10.77.0.5",
                                 "192.0.2.200", 80, true, Action::Passthrough, "default", ""},
                      NoNameCase{"later name-less ports rule", "10.77.0.5", "192.0.2.200", 25, true,
                                 Action::Deny, "rule", "3"},
                      NoNameCase{"later name-less range rule", "10.77.0.5", "192.0.2.200", 6667,
                                 true, Action::Deny, "rule", "3"},
                      NoNameCase{"later name-less cidrs rule", "10.77.0.5", "192.0.2.1", 8080, true,
                                 Action::Mitm, "rule", "4"},
                      NoNameCase{"host rule before cidrs rule still forces a peek", "10.77.0.5",
                                 "192.0.2.1", 443, false, Action::Deny, "", ""}));

// Whenever decideWithoutName() answers, no name can change decide()'s answer.
TEST(DecideWithoutNamePropertyTest, AgreesWithDecideForEveryName) {
  Config config = mustParse(kNoNameYaml);
  const std::vector<std::string> dsts = {"203.0.113.5", "198.51.100.1", "192.0.2.1", "192.0.2.200",
                                         "2001:db8::1"};
  const std::vector<uint16_t> ports = {22, 25, 80, 443, 6660, 6669, 6670, 8080};
  const std::vector<std::string> names = {"", "a.example", "b.example", "c.example",
                                          "198.51.100.1"};
  int decided = 0;
  for (const std::string& dst : dsts) {
    for (uint16_t port : ports) {
      auto early = decideWithoutName(config, addr("10.77.0.5", 1), addr(dst, port));
      if (!early) {
        continue;
      }
      ++decided;
      for (const std::string& n : names) {
        Decision full = decide(config, FlowFacts{addr("10.77.0.5", 1), addr(dst, port), name(n)});
        EXPECT_EQ(full.action, early->action) << dst << ":" << port << " " << n;
        EXPECT_EQ(full.rule, early->rule) << dst << ":" << port << " " << n;
        EXPECT_EQ(full.reason, early->reason) << dst << ":" << port << " " << n;
      }
    }
  }
  EXPECT_GT(decided, 10);
}

// --- UDP and DNS helpers --------------------------------------------------------

TEST(DecideUdpTest, AdmitsOnlyListedDestinations) {
  Config config = mustParse(R"(gateway:
  interfaces: [br0]
sandboxes:
  - name: sb
    sources: [10.77.0.0/24]
    default: passthrough
    udp:
      - cidrs: [203.0.113.0/24]
        ports: [443]
      - ports: ["60000-60010"]
      - cidrs: ["2001:db8::/32"]
  - name: quiet
    sources: [10.78.0.0/24]
)");
  auto udp = [&](std::string_view src, std::string_view dst, uint16_t port) {
    return decideUdp(config, addr(src, 5000), addr(dst, port));
  };
  EXPECT_EQ(udp("10.77.0.1", "203.0.113.9", 443).action, Action::Passthrough);
  EXPECT_EQ(udp("10.77.0.1", "203.0.113.9", 443).reason, "rule");
  EXPECT_EQ(udp("10.77.0.1", "203.0.113.9", 444).action, Action::Deny);
  EXPECT_EQ(udp("10.77.0.1", "192.0.2.1", 443).action, Action::Deny);
  EXPECT_EQ(udp("10.77.0.1", "192.0.2.1", 60005).action, Action::Passthrough);
  EXPECT_EQ(udp("10.77.0.1", "2001:db8::5", 1).action, Action::Passthrough);
  // The TCP default (passthrough) does not open UDP.
  EXPECT_EQ(udp("10.77.0.1", "192.0.2.1", 53).action, Action::Deny);
  EXPECT_EQ(udp("10.77.0.1", "192.0.2.1", 53).reason, "default");
  EXPECT_EQ(udp("10.78.0.1", "203.0.113.9", 443).action, Action::Deny);
  EXPECT_EQ(udp("10.99.0.1", "203.0.113.9", 443).reason, "no_sandbox");
}

TEST(NameMayBeAllowedTest, FollowsRuleOrder) {
  Config config = mustParse(R"(gateway:
  interfaces: [br0]
sandboxes:
  - name: deny-default
    sources: [10.77.0.0/24]
    rules:
      - hosts: [blocked.example.com]
        action: deny
      - hosts: ["*.example.com"]
        action: passthrough
      - hosts: [ssh.example.net]
        ports: [22]
        action: deny
      - hosts: [ssh.example.net]
        ports: [2222]
        action: mitm
      - cidrs: [203.0.113.0/24]
        action: passthrough
  - name: allow-default
    sources: [10.78.0.0/24]
    default: passthrough
    rules:
      - hosts: [evil.example]
        action: deny
      - hosts: [half.example]
        ports: [25]
        action: deny
)");
  const Sandbox& d = config.sandboxes[0];
  const Sandbox& a = config.sandboxes[1];
  EXPECT_FALSE(nameMayBeAllowed(d, "blocked.example.com"));
  EXPECT_TRUE(nameMayBeAllowed(d, "www.example.com"));
  EXPECT_TRUE(nameMayBeAllowed(d, "ssh.example.net"));
  // A cidrs rule governs addresses, not names: it makes no name answerable.
  EXPECT_FALSE(nameMayBeAllowed(d, "other.example.org"));
  EXPECT_FALSE(nameMayBeAllowed(a, "evil.example"));
  EXPECT_TRUE(nameMayBeAllowed(a, "half.example"));
  EXPECT_TRUE(nameMayBeAllowed(a, "anything.example"));

  Config strict = mustParse(R"(gateway:
  interfaces: [br0]
sandboxes:
  - name: strict
    sources: [10.77.0.0/24]
    rules:
      - hosts: [ok.example]
        action: passthrough
)");
  EXPECT_TRUE(nameMayBeAllowed(strict.sandboxes[0], "ok.example"));
  EXPECT_FALSE(nameMayBeAllowed(strict.sandboxes[0], "other.example"));
}

// --- resolvedWithinRule ---------------------------------------------------------

struct ResolvedCase {
  size_t rule;           // index into the sandbox's rules
  std::string resolved;  // what the name resolved to
  bool within;
};

void PrintTo(const ResolvedCase& c, std::ostream* os) { *os << c.rule << " " << c.resolved; }

class ResolvedWithinRuleTest : public ::testing::TestWithParam<ResolvedCase> {};

TEST_P(ResolvedWithinRuleTest, Judges) {
  const ResolvedCase& c = GetParam();
  Config config = mustParse(R"(gateway:
  interfaces: [br0]
sandboxes:
  - name: sb
    sources: [10.77.0.0/24]
    rules:
      - hosts: [api.example]
        cidrs: [198.51.100.0/24, "2001:db8:5::/48"]
        action: passthrough
      - hosts: [api.example]
        action: passthrough
      - cidrs: [198.51.100.0/24]
        action: passthrough
      - hosts: [api.example]
        cidrs: [198.51.100.7/32]
        ports: [443]
        action: mitm
)");
  ASSERT_LT(c.rule, config.sandboxes[0].rules.size());
  EXPECT_EQ(resolvedWithinRule(config.sandboxes[0].rules[c.rule], addr(c.resolved, 443)), c.within);
}

INSTANTIATE_TEST_SUITE_P(
    All, ResolvedWithinRuleTest,
    ::testing::Values(
        // hosts + cidrs: the resolved address must be inside the cidrs
        ResolvedCase{0, "198.51.100.9", true}, ResolvedCase{0, "198.51.100.255", true},
        ResolvedCase{0, "::ffff:198.51.100.9", true}, ResolvedCase{0, "2001:db8:5:1::9", true},
        ResolvedCase{0, "203.0.113.66", false}, ResolvedCase{0, "198.51.101.1", false},
        ResolvedCase{0, "2001:db8:6::1", false}, ResolvedCase{0, "127.0.0.1", false},
        // IPv4 inside IPv6 (NAT64) is not the IPv4 range the rule names
        ResolvedCase{0, "64:ff9b::c633:6409", false}, ResolvedCase{3, "198.51.100.7", true},
        ResolvedCase{3, "198.51.100.8", false},
        // hosts only or cidrs only: nothing more to check
        ResolvedCase{1, "203.0.113.66", true}, ResolvedCase{2, "203.0.113.66", true}));

// --- checkUpstream --------------------------------------------------------------

const char* const kMinimalYaml = R"(gateway:
  interfaces: [br0]
sandboxes:
  - name: sb
    sources: [10.77.0.0/24]
)";

struct UpstreamCase {
  std::string addr;
  bool denied;
  std::string reason;    // expected exactly
  std::string embedded;  // "" = none expected
};

void PrintTo(const UpstreamCase& c, std::ostream* os) { *os << c.addr; }

class CheckUpstreamTest : public ::testing::TestWithParam<UpstreamCase> {};

TEST_P(CheckUpstreamTest, Judges) {
  const UpstreamCase& c = GetParam();
  Config config = mustParse(kMinimalYaml);
  UpstreamVerdict v = checkUpstream(config, addr(c.addr, 443), {});
  EXPECT_EQ(v.denied, c.denied) << c.addr;
  EXPECT_EQ(v.reason, c.reason) << c.addr;
  if (c.embedded.empty()) {
    EXPECT_FALSE(v.embedded_v4.has_value()) << c.addr;
  } else {
    ASSERT_TRUE(v.embedded_v4.has_value()) << c.addr;
    EXPECT_EQ(v.embedded_v4->ip(), c.embedded) << c.addr;
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, CheckUpstreamTest,
    ::testing::Values(
        // documentation ranges and public space are allowed
        UpstreamCase{"192.0.2.1", false, "", ""}, UpstreamCase{"198.51.100.2", false, "", ""},
        UpstreamCase{"203.0.113.254", false, "", ""}, UpstreamCase{"2001:db8::1", false, "", ""},
        UpstreamCase{"1.1.1.1", false, "", ""}, UpstreamCase{"2606:4700::1111", false, "", ""},
        UpstreamCase{"100.63.255.255", false, "", ""}, UpstreamCase{"100.128.0.0", false, "", ""},
        UpstreamCase{"172.15.255.255", false, "", ""}, UpstreamCase{"172.32.0.0", false, "", ""},
        UpstreamCase{"192.0.1.255", false, "", ""}, UpstreamCase{"198.17.255.255", false, "", ""},
        UpstreamCase{"198.20.0.0", false, "", ""}, UpstreamCase{"223.255.255.255", false, "", ""},
        UpstreamCase{"fbff::1", false, "", ""}, UpstreamCase{"fec0::1", false, "", ""},
        UpstreamCase{"::2:0:0:1", false, "", ""},
        // the metadata service, directly and embedded in every IPv6 scheme
        UpstreamCase{"169.254.169.254", true, "deny_cidr:169.254.0.0/16", ""},
        UpstreamCase{"::ffff:169.254.169.254", true, "deny_cidr:169.254.0.0/16", ""},
        UpstreamCase{"64:ff9b::a9fe:a9fe", true, "deny_cidr:169.254.0.0/16", "169.254.169.254"},
        UpstreamCase{"64:ff9b:1:a9fe:a9:fe00::", true, "deny_cidr:169.254.0.0/16",
                     "169.254.169.254"},
        UpstreamCase{"2002:a9fe:a9fe::1", true, "deny_cidr:169.254.0.0/16", "169.254.169.254"},
        UpstreamCase{"2001:0:4136:e378:8000:63bf:5601:5601", true, "deny_cidr:169.254.0.0/16",
                     "169.254.169.254"},
        UpstreamCase{"::a9fe:a9fe", true, "deny_cidr:169.254.0.0/16", "169.254.169.254"},
        // loopback and private space embedded
        UpstreamCase{"::ffff:127.0.0.1", true, "deny_cidr:127.0.0.0/8", ""},
        UpstreamCase{"64:ff9b::7f00:1", true, "deny_cidr:127.0.0.0/8", "127.0.0.1"},
        UpstreamCase{"2002:a00:1::", true, "deny_cidr:10.0.0.0/8", "10.0.0.1"},
        UpstreamCase{"2001:0:4136:e378:8000:63bf:80ff:fffe", true, "deny_cidr:127.0.0.0/8",
                     "127.0.0.1"},
        UpstreamCase{"2001::f5ff:fffe", true, "deny_cidr:10.0.0.0/8", "10.0.0.1"},
        UpstreamCase{"64:ff9b::c0a8:101", true, "deny_cidr:192.168.0.0/16", "192.168.1.1"},
        // embedded public addresses are fine
        UpstreamCase{"64:ff9b::c000:201", false, "", ""},
        UpstreamCase{"2002:c000:201::1", false, "", ""},
        UpstreamCase{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false, "", ""},
        UpstreamCase{"::ffff:192.0.2.1", false, "", ""}));

// Every default deny CIDR: its first, last and a middle address are denied
// with that CIDR named; the addresses just outside are not denied by it.
TEST(CheckUpstreamListTest, EveryDefaultDenyCidr) {
  Config config = mustParse(kMinimalYaml);
  std::vector<Cidr> defaults = defaultDenyCidrs();
  ASSERT_EQ(config.deny_cidrs, defaults);
  const std::vector<std::string> expected = {
      "0.0.0.0/8",      "10.0.0.0/8",    "100.64.0.0/10", "127.0.0.0/8",
      "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",  "192.168.0.0/16",
      "198.18.0.0/15",  "224.0.0.0/4",   "240.0.0.0/4",   "::/128",
      "::1/128",        "fc00::/7",      "fe80::/10",     "ff00::/8"};
  ASSERT_EQ(defaults.size(), expected.size());
  for (size_t i = 0; i < defaults.size(); ++i) {
    const Cidr& c = defaults[i];
    EXPECT_EQ(c.toString(), expected[i]);
    std::array<uint8_t, 16> first = c.bytes();
    std::array<uint8_t, 16> last = c.bytes();
    std::array<uint8_t, 16> mid = c.bytes();
    size_t n = c.addrLen();
    for (size_t bit = c.prefixLen(); bit < n * 8; ++bit) {
      last[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
    }
    if (c.prefixLen() < n * 8) {
      mid[c.prefixLen() / 8] |= static_cast<uint8_t>(0x80 >> (c.prefixLen() % 8));
      mid[n - 1] |= 1;
    }
    for (const auto& bytes : {first, last, mid}) {
      Cidr host = Cidr::fromBytes(c.family(), bytes.data(), static_cast<unsigned>(n * 8));
      std::string ip = host.toString().substr(0, host.toString().find('/'));
      UpstreamVerdict v = checkUpstream(config, addr(ip, 443), {});
      EXPECT_TRUE(v.denied) << ip;
      EXPECT_EQ(v.reason, "deny_cidr:" + expected[i]) << ip;
    }
  }
}

TEST(CheckUpstreamListTest, ExtraCidrsAreDenied) {
  Config config = mustParse(kMinimalYaml);
  std::vector<Cidr> extra = {*Cidr::parse("192.0.2.1/32"), *Cidr::parse("2001:db8:77::/64")};
  EXPECT_FALSE(checkUpstream(config, addr("192.0.2.1"), {}).denied);
  UpstreamVerdict v = checkUpstream(config, addr("192.0.2.1"), extra);
  EXPECT_TRUE(v.denied);
  EXPECT_EQ(v.reason, "deny_cidr:192.0.2.1/32");
  EXPECT_EQ(checkUpstream(config, addr("2001:db8:77::9"), extra).reason,
            "deny_cidr:2001:db8:77::/64");
  // Embedded addresses are judged against extra too.
  EXPECT_EQ(checkUpstream(config, addr("64:ff9b::c000:201"), extra).reason,
            "deny_cidr:192.0.2.1/32");
  EXPECT_FALSE(checkUpstream(config, addr("192.0.2.2"), extra).denied);
}

TEST(CheckUpstreamListTest, ExplicitListReplacesDefault) {
  Config config = mustParse(R"(gateway:
  interfaces: [br0]
deny_cidrs: [192.0.2.0/24]
sandboxes:
  - name: sb
    sources: [10.77.0.0/24]
)");
  EXPECT_FALSE(checkUpstream(config, addr("10.1.1.1"), {}).denied);
  EXPECT_TRUE(checkUpstream(config, addr("192.0.2.9"), {}).denied);
  // The sandbox subnet is the daemon's to pass as extra.
  std::vector<Cidr> extra = config.sandboxes[0].sources;
  EXPECT_EQ(checkUpstream(config, addr("10.77.0.3"), extra).reason, "deny_cidr:10.77.0.0/24");
}

TEST(CheckUpstreamListTest, AllOfIpv6LeavesIpv4Alone) {
  Config config = mustParse(R"(gateway:
  interfaces: [br0]
deny_cidrs: ["::/0"]
sandboxes:
  - name: sb
    sources: [10.77.0.0/24]
)");
  EXPECT_TRUE(checkUpstream(config, addr("2001:db8::1"), {}).denied);
  EXPECT_FALSE(checkUpstream(config, addr("192.0.2.1"), {}).denied);
  EXPECT_FALSE(checkUpstream(config, addr("::ffff:192.0.2.1"), {}).denied);
}

// The host itself is never an upstream, whatever deny_cidrs says: 0.0.0.0
// and 127.0.0.2 reach the host's wildcard and loopback listeners.
TEST(CheckUpstreamListTest, HostItselfIsDeniedWithAnyList) {
  for (const char* list : {"[192.0.2.0/24]", "[]", "[\"::/0\"]"}) {
    Config config = mustParse(std::string("gateway:\n  interfaces: [br0]\ndeny_cidrs: ") + list +
                              "\nsandboxes:\n  - name: sb\n    sources: [10.77.0.0/24]\n");
    const std::pair<const char*, const char*> cases[] = {
        {"0.0.0.0", "deny_cidr:0.0.0.0/8"},           {"0.1.2.3", "deny_cidr:0.0.0.0/8"},
        {"127.0.0.1", "deny_cidr:127.0.0.0/8"},       {"127.0.0.2", "deny_cidr:127.0.0.0/8"},
        {"127.255.255.255", "deny_cidr:127.0.0.0/8"}, {"::ffff:127.0.0.2", "deny_cidr:127.0.0.0/8"},
        {"::ffff:0.0.0.0", "deny_cidr:0.0.0.0/8"},    {"64:ff9b::7f00:2", "deny_cidr:127.0.0.0/8"},
        {"::127.0.0.2", "deny_cidr:127.0.0.0/8"},     {"2002:7f00:1::", "deny_cidr:127.0.0.0/8"},
    };
    for (const auto& [ip, reason] : cases) {
      UpstreamVerdict v = checkUpstream(config, addr(ip, 443), {});
      EXPECT_TRUE(v.denied) << list << " " << ip;
      if (std::string(list) != "[\"::/0\"]" || std::string(ip).find(':') == std::string::npos ||
          std::string(ip).rfind("::ffff:", 0) == 0) {
        EXPECT_EQ(v.reason, reason) << list << " " << ip;
      }
    }
    for (const char* ip : {"::", "::1"}) {
      EXPECT_TRUE(checkUpstream(config, addr(ip, 443), {}).denied) << list << " " << ip;
    }
    EXPECT_FALSE(checkUpstream(config, addr("1.0.0.0", 443), {}).denied) << list;
    EXPECT_FALSE(checkUpstream(config, addr("128.0.0.1", 443), {}).denied) << list;
  }
}

TEST(CheckUpstreamListTest, NonIpAddressIsDenied) {
  Config config = mustParse(kMinimalYaml);
  UpstreamVerdict v = checkUpstream(config, SockAddr(), {});
  EXPECT_TRUE(v.denied);
  EXPECT_EQ(v.reason, "invalid_address");
}

TEST(EmbeddedIpv4Test, ListsEverySchemeInOrder) {
  EXPECT_TRUE(embeddedIpv4(addr("192.0.2.1")).empty());
  EXPECT_TRUE(embeddedIpv4(addr("2001:db8::1")).empty());
  auto one = [](const std::vector<SockAddr>& v) {
    return v.size() == 1 ? v[0].ip() : std::string("<") + std::to_string(v.size()) + ">";
  };
  EXPECT_EQ(one(embeddedIpv4(addr("::ffff:198.51.100.1"))), "198.51.100.1");
  EXPECT_EQ(one(embeddedIpv4(addr("::198.51.100.1"))), "198.51.100.1");
  EXPECT_EQ(one(embeddedIpv4(addr("64:ff9b::198.51.100.1"))), "198.51.100.1");
  EXPECT_EQ(one(embeddedIpv4(addr("2002:c633:6401::"))), "198.51.100.1");
  EXPECT_EQ(one(embeddedIpv4(addr("2001:0:0:0:0:0:39cc:9bfe"))), "198.51.100.1");
}

}  // namespace
}  // namespace tollgate::gateway

// --- decideSilentEarly ------------------------------------------------------

namespace tollgate::gateway {
namespace {

// After opaque_wait_ms of silence: decide only what lets the flow through and
// no name could turn into a denial or an inspection.
TEST(DecideSilentEarlyTest, OnlyPassthroughNoNameCouldChange) {
  Config config = mustParse(R"(gateway:
  interfaces: [br0]
sandboxes:
  - name: sb
    sources: [10.77.0.0/24]
    rules:
      - hosts: [ok.example]
        action: passthrough
      - cidrs: [203.0.113.22/32]
        ports: [22]
        action: passthrough
      - hosts: [bad.example]
        ports: [2222]
        action: deny
      - cidrs: [203.0.113.0/24]
        action: passthrough
      - cidrs: [198.51.100.0/24]
        action: deny
  - name: open
    sources: [10.78.0.0/24]
    default: passthrough
    rules:
      - hosts: [x.example]
        action: mitm
)");
  auto silent = [&](const char* src, const char* dst, uint16_t port) {
    return decideSilentEarly(config, addr(src, 40000), addr(dst, port));
  };
  // A cidrs rule after a passthrough hosts rule: SSH gets its banner early.
  auto ssh = silent("10.77.0.5", "203.0.113.22", 22);
  ASSERT_TRUE(ssh.has_value());
  EXPECT_EQ(ssh->action, Action::Passthrough);
  EXPECT_EQ(ssh->ruleLabel(), "1");
  // A deny hosts rule admitting the destination comes first: a name could deny.
  EXPECT_FALSE(silent("10.77.0.5", "203.0.113.9", 2222).has_value());
  EXPECT_TRUE(silent("10.77.0.5", "203.0.113.9", 2223).has_value());
  // A refusal (rule or default) is never decided early.
  EXPECT_FALSE(silent("10.77.0.5", "198.51.100.1", 443).has_value());
  EXPECT_FALSE(silent("10.77.0.5", "192.0.2.1", 443).has_value());
  EXPECT_FALSE(silent("10.99.0.5", "203.0.113.22", 22).has_value());  // no sandbox
  // Default passthrough, but a mitm hosts rule could still match a name.
  EXPECT_FALSE(silent("10.78.0.5", "192.0.2.1", 443).has_value());
}

}  // namespace
}  // namespace tollgate::gateway
