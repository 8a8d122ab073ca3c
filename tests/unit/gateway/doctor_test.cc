// `tollgate doctor`: the pure evaluation of host facts into findings, and
// the renderings. The probe itself is covered by tests/e2e/doctor_test.cc.
#include "gateway/doctor.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

namespace tollgate::gateway::doctor {
namespace {

constexpr time_t kNow = 1'800'000'000;
constexpr time_t kDay = 86400;

ConfigSummary config(const std::string& extra_gateway = "", const std::string& rules = "") {
  std::string yaml =
      "gateway:\n  interfaces: [br0]\n"
      "  ca: { cert: /srv/ca/ca.crt, key: /srv/ca/ca.key }\n" +
      extra_gateway + "sandboxes:\n  - name: a\n    sources: [10.77.0.0/24]\n" + rules;
  auto r = parseConfig(yaml, "t.yaml");
  EXPECT_TRUE(std::holds_alternative<Config>(r));
  return summarize(std::get<Config>(r));
}

// A healthy host running tollgate with the default config above.
HostFacts healthy() {
  HostFacts f;
  f.now = kNow;
  f.euid = 0;
  f.kernel_release = "6.1.0";
  f.config_path = "/etc/tollgate/config.yaml";
  f.config_given = true;
  f.config = config();
  f.ip_forward = 0;
  f.ipv6_forwarding = 0;
  f.rp_filter_all = 0;
  f.kernel_config_known = true;
  f.kernel_config_source = "/proc/config.gz";
  for (const KernelNeed& k : kernelSymbols()) {
    f.kernel[std::string(k.symbol)] = KernelSymbol{'y'};
  }
  f.nft_tables = {{"inet", "tollgate"}};
  f.nft_chains = {{"inet", "tollgate", "prerouting", "nat", "prerouting", -110, false},
                  {"inet", "tollgate", "input", "filter", "input", -10, true}};
  InterfaceFacts br0;
  br0.name = "br0";
  br0.exists = true;
  br0.up = true;
  br0.is_bridge = true;
  br0.ipv4 = {"10.77.0.1"};
  br0.ipv6 = {"fd77::1"};
  br0.rp_filter = 1;
  f.interfaces = {br0};
  CaFacts ca;
  ca.cert_exists = true;
  ca.key_exists = true;
  ca.key_mode = 0600;
  ca.key_uid = 0;
  ca.not_after = kNow + 365 * kDay;
  f.ca = ca;
  DaemonFacts d;
  d.control = "/run/tollgate/control.sock";
  d.socket_exists = true;
  d.answered = true;
  f.daemon = d;
  return f;
}

const Finding* find(const std::vector<Finding>& findings, const std::string& id) {
  for (const Finding& x : findings) {
    if (x.id == id) {
      return &x;
    }
  }
  return nullptr;
}

// The status of finding `id`, failing the test if it is absent.
Status statusOf(const HostFacts& f, const std::string& id) {
  auto findings = evaluate(f);
  const Finding* x = find(findings, id);
  EXPECT_NE(x, nullptr) << "no finding " << id;
  return x == nullptr ? Status::Pass : x->status;
}

std::string detailOf(const HostFacts& f, const std::string& id) {
  auto findings = evaluate(f);
  const Finding* x = find(findings, id);
  return x == nullptr ? "<absent>" : x->detail;
}

TEST(DoctorTest, HealthyHostPassesEverything) {
  auto findings = evaluate(healthy());
  for (const Finding& x : findings) {
    EXPECT_EQ(x.status, Status::Pass) << x.id << ": " << x.detail;
    EXPECT_TRUE(x.fix.empty()) << x.id;
  }
  for (const char* id : {"privileges",    "config",       "kernel:nftables", "kernel:redirect",
                         "kernel:tproxy", "kernel:queue", "kernel:reject",   "kernel:bridge",
                         "binding",       "ip_forward",   "ipv6_forwarding", "rp_filter",
                         "br_netfilter",  "nft_tables",   "nft_input_drop",  "nft_early_nat",
                         "interface:br0", "ca",           "daemon",          "tollgate_table"}) {
    EXPECT_NE(find(findings, id), nullptr) << id;
  }
  EXPECT_EQ(exitCode(findings, true), 0);
}

TEST(DoctorTest, EveryNonPassFindingSaysWhatToDo) {
  HostFacts f = healthy();
  f.euid = 1000;
  f.ip_forward = 1;
  f.nft_tables.clear();
  f.nft_chains.clear();
  f.interfaces[0].exists = false;
  f.daemon->answered = false;
  f.daemon->error = "connect: Connection refused";
  for (const Finding& x : evaluate(f)) {
    if (x.status != Status::Pass) {
      EXPECT_FALSE(x.fix.empty()) << x.id;
      EXPECT_FALSE(x.detail.empty()) << x.id;
    }
  }
}

TEST(DoctorTest, NotRootWarns) {
  HostFacts f = healthy();
  f.euid = 1000;
  f.ca->key_uid = 1000;
  EXPECT_EQ(statusOf(f, "privileges"), Status::Warn);
}

TEST(DoctorTest, ConfigErrorsFailAndAreShownCapped) {
  HostFacts f = healthy();
  f.config.reset();
  f.config_errors = {"c.yaml:1:1: a", "c.yaml:2:1: b", "c.yaml:3:1: c", "c.yaml:4:1: d"};
  EXPECT_EQ(statusOf(f, "config"), Status::Fail);
  std::string d = detailOf(f, "config");
  EXPECT_NE(d.find("c.yaml:3:1: c"), std::string::npos) << d;
  EXPECT_EQ(d.find("c.yaml:4:1: d"), std::string::npos) << d;
  EXPECT_NE(d.find("(and 1 more)"), std::string::npos) << d;
  // Without a config, nothing config-bound is judged.
  auto findings = evaluate(f);
  EXPECT_EQ(find(findings, "interface:br0"), nullptr);
  EXPECT_EQ(find(findings, "ca"), nullptr);
  EXPECT_EQ(exitCode(findings, true), 1);
  EXPECT_EQ(exitCode(findings, false), 0);
}

TEST(DoctorTest, MissingDefaultConfigOnlyWarns) {
  HostFacts f = healthy();
  f.config.reset();
  f.config_given = false;
  f.config_found = false;
  f.config_errors = {"/etc/tollgate/config.yaml:0:0: cannot read: No such file or directory"};
  EXPECT_EQ(statusOf(f, "config"), Status::Warn);
  f.config_given = true;
  EXPECT_EQ(statusOf(f, "config"), Status::Fail);
}

TEST(DoctorTest, KernelConfigUnknownIsOneWarning) {
  HostFacts f = healthy();
  f.kernel_config_known = false;
  f.kernel.clear();
  auto findings = evaluate(f);
  ASSERT_NE(find(findings, "kernel_config"), nullptr);
  EXPECT_EQ(find(findings, "kernel_config")->status, Status::Warn);
  EXPECT_EQ(find(findings, "kernel:tproxy"), nullptr);
}

TEST(DoctorTest, KernelFeatures) {
  HostFacts f = healthy();
  f.kernel["CONFIG_NFT_REDIR"].state = 'n';
  EXPECT_EQ(statusOf(f, "kernel:redirect"), Status::Fail);
  EXPECT_NE(detailOf(f, "kernel:redirect").find("CONFIG_NFT_REDIR not set"), std::string::npos);

  // tproxy missing only matters with capture: tproxy.
  f = healthy();
  f.kernel["CONFIG_NFT_TPROXY"].state = 'n';
  EXPECT_EQ(statusOf(f, "kernel:tproxy"), Status::Pass);
  f.config = config("  capture: tproxy\n");
  EXPECT_EQ(statusOf(f, "kernel:tproxy"), Status::Fail);

  // A module counts when loaded or loadable.
  f = healthy();
  f.kernel["CONFIG_NFT_REJECT"] = KernelSymbol{'m', false, false};
  EXPECT_EQ(statusOf(f, "kernel:reject"), Status::Fail);
  EXPECT_NE(detailOf(f, "kernel:reject").find("CONFIG_NFT_REJECT=m (module not found)"),
            std::string::npos);
  f.kernel["CONFIG_NFT_REJECT"] = KernelSymbol{'m', false, true};
  EXPECT_EQ(statusOf(f, "kernel:reject"), Status::Pass);
  f.kernel["CONFIG_NFT_REJECT"] = KernelSymbol{'m', true, false};
  EXPECT_EQ(statusOf(f, "kernel:reject"), Status::Pass);

  f = healthy();
  f.kernel["CONFIG_NF_TABLES_INET"].state = 'n';
  EXPECT_EQ(statusOf(f, "kernel:nftables"), Status::Fail);
}

TEST(DoctorTest, QueueFallsBackToCompatAndMattersOnlyForUdp) {
  HostFacts f = healthy();
  f.kernel["CONFIG_NFT_QUEUE"].state = 'n';
  EXPECT_EQ(statusOf(f, "kernel:queue"), Status::Pass);
  EXPECT_NE(detailOf(f, "kernel:queue").find("nft compat"), std::string::npos);
  f.kernel["CONFIG_NFT_COMPAT"].state = 'n';
  EXPECT_EQ(statusOf(f, "kernel:queue"), Status::Warn);
  f.config = config("", "    udp: [{ports: [4433]}]\n");
  EXPECT_TRUE(f.config->has_udp);
  EXPECT_EQ(statusOf(f, "kernel:queue"), Status::Fail);
}

TEST(DoctorTest, ForwardingIsABypassOnlyWithoutTollgatesTable) {
  HostFacts f = healthy();
  f.ip_forward = 1;
  EXPECT_EQ(statusOf(f, "ip_forward"), Status::Pass);
  f.nft_tables.clear();
  EXPECT_EQ(statusOf(f, "ip_forward"), Status::Warn);
  EXPECT_NE(detailOf(f, "ip_forward").find("uncaptured"), std::string::npos);
  f.nft_error = "netlink receive: Operation not permitted";
  EXPECT_EQ(statusOf(f, "ip_forward"), Status::Warn);
  EXPECT_NE(detailOf(f, "ip_forward").find("unknown"), std::string::npos);
  f.ipv6_forwarding.reset();
  EXPECT_EQ(statusOf(f, "ipv6_forwarding"), Status::Warn);
}

TEST(DoctorTest, RpFilterUsesTheStricterOfAllAndInterface) {
  HostFacts f = healthy();
  f.rp_filter_all = 0;
  f.interfaces[0].rp_filter = 0;
  EXPECT_EQ(statusOf(f, "rp_filter"), Status::Warn);
  f.rp_filter_all = 1;
  EXPECT_EQ(statusOf(f, "rp_filter"), Status::Pass);
  f.interfaces[0].rp_filter = 2;  // max(1, 2) = loose
  EXPECT_EQ(statusOf(f, "rp_filter"), Status::Warn);
  EXPECT_NE(detailOf(f, "rp_filter").find("br0=2"), std::string::npos);
}

TEST(DoctorTest, BrNetfilterBreaksTproxyOnly) {
  HostFacts f = healthy();
  f.br_netfilter = true;
  f.bridge_nf_call_iptables = 1;
  EXPECT_EQ(statusOf(f, "br_netfilter"), Status::Pass);
  f.config = config("  capture: tproxy\n");
  EXPECT_EQ(statusOf(f, "br_netfilter"), Status::Fail);
  EXPECT_NE(detailOf(f, "br_netfilter").find("bridge-nf-call-iptables = 1"), std::string::npos);
  f.bridge_nf_call_iptables = 0;
  EXPECT_EQ(statusOf(f, "br_netfilter"), Status::Pass);
  f.br_netfilter = false;
  f.bridge_nf_call_iptables.reset();
  EXPECT_EQ(statusOf(f, "br_netfilter"), Status::Pass);
}

TEST(DoctorTest, OtherToolsTablesAndChains) {
  HostFacts f = healthy();
  // Docker with iptables-nft.
  f.nft_tables.push_back({"ip", "filter"});
  f.nft_tables.push_back({"ip", "nat"});
  f.nft_tables.push_back({"ip", "docker-bridges"});
  f.nft_chains.push_back({"ip", "nat", "PREROUTING", "nat", "prerouting", -100, false});
  f.nft_chains.push_back({"ip", "filter", "FORWARD", "filter", "forward", 0, true});
  EXPECT_EQ(statusOf(f, "nft_tables"), Status::Warn);
  std::string d = detailOf(f, "nft_tables");
  EXPECT_NE(d.find("iptables-nft (e.g. Docker, libvirt, ufw): ip filter, ip nat"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("nftables: ip docker-bridges"), std::string::npos) << d;
  EXPECT_EQ(d.find("tollgate"), std::string::npos) << d;
  // Docker's FORWARD drop and its -100 DNAT do not pre-empt the capture.
  EXPECT_EQ(statusOf(f, "nft_input_drop"), Status::Pass);
  EXPECT_EQ(statusOf(f, "nft_early_nat"), Status::Pass);

  f.nft_chains.push_back({"inet", "firewalld", "filter_INPUT", "filter", "input", 10, true});
  EXPECT_EQ(statusOf(f, "nft_input_drop"), Status::Warn);
  auto findings = evaluate(f);
  EXPECT_NE(find(findings, "nft_input_drop")->fix.find("tcp dport 15001 accept"),
            std::string::npos);
  f.nft_chains.push_back({"ip", "early", "pre", "nat", "prerouting", -200, false});
  EXPECT_EQ(statusOf(f, "nft_early_nat"), Status::Warn);
  EXPECT_NE(detailOf(f, "nft_early_nat").find("ip early pre (nat prerouting priority -200)"),
            std::string::npos);
  // tollgate's own drop chains never count.
  EXPECT_EQ(detailOf(f, "nft_input_drop").find("tollgate"), std::string::npos);
}

TEST(DoctorTest, LegacyIptablesWarns) {
  HostFacts f = healthy();
  auto findings = evaluate(f);
  EXPECT_EQ(find(findings, "iptables_legacy"), nullptr);
  f.legacy_iptables = {"ip filter"};
  EXPECT_EQ(statusOf(f, "iptables_legacy"), Status::Warn);
}

TEST(DoctorTest, NftUnreadable) {
  HostFacts f = healthy();
  f.nft_error = "netlink receive: Operation not permitted";
  f.nft_tables.clear();
  auto findings = evaluate(f);
  EXPECT_EQ(find(findings, "nft_tables")->status, Status::Warn);
  EXPECT_EQ(find(findings, "tollgate_table"), nullptr);  // unknown: not claimed
}

TEST(DoctorTest, Interfaces) {
  HostFacts f = healthy();
  f.interfaces[0].exists = false;
  EXPECT_EQ(statusOf(f, "interface:br0"), Status::Fail);
  f = healthy();
  f.interfaces[0].ipv4.clear();
  EXPECT_EQ(statusOf(f, "interface:br0"), Status::Fail);
  EXPECT_NE(detailOf(f, "interface:br0").find("no IPv4 address"), std::string::npos);
  f = healthy();
  f.interfaces[0].up = false;
  EXPECT_EQ(statusOf(f, "interface:br0"), Status::Warn);
  f = healthy();
  f.interfaces[0].ipv6.clear();
  EXPECT_EQ(statusOf(f, "interface:br0"), Status::Warn);
  f.config = config("  ipv6: block\n");
  EXPECT_EQ(statusOf(f, "interface:br0"), Status::Pass);
  EXPECT_EQ(detailOf(f, "interface:br0"), "up, bridge, 10.77.0.1");
}

TEST(DoctorTest, Binding) {
  HostFacts f = healthy();
  f.kernel["CONFIG_NF_TABLES_BRIDGE"] = KernelSymbol{'n'};
  EXPECT_EQ(statusOf(f, "kernel:bridge"), Status::Pass);  // not needed without ports
  EXPECT_EQ(statusOf(f, "binding"), Status::Pass);        // one sandbox: nothing to borrow
  f.interfaces[0].bridge_ports = {"tap-a0", "tap-b0", "tap-b1"};
  // Two sandboxes, one unbound: its addresses can be taken.
  f.config = config("", "  - name: b\n    sources: [10.78.0.0/24]\n    ports: [tap-b*]\n");
  EXPECT_EQ(statusOf(f, "binding"), Status::Warn);
  EXPECT_NE(detailOf(f, "binding").find("sandboxes without ports (a)"), std::string::npos)
      << detailOf(f, "binding");
  // Both bound: pass, naming who owns which port.
  f.config = config("",
                    "    ports: [tap-a0]\n  - name: b\n    sources: [10.78.0.0/24]\n"
                    "    ports: [tap-b*]\n");
  EXPECT_EQ(statusOf(f, "binding"), Status::Pass);
  EXPECT_EQ(detailOf(f, "binding"),
            "every sandbox is bound to its ports (a: tap-a0; b: tap-b0, tap-b1)");
  EXPECT_EQ(statusOf(f, "kernel:bridge"), Status::Fail);
  f.kernel["CONFIG_NF_TABLES_BRIDGE"] = KernelSymbol{'y'};
  EXPECT_EQ(statusOf(f, "kernel:bridge"), Status::Pass);
  // A pattern that matches no member is worth a look (typo, or a stopped VM).
  f.config = config("",
                    "    ports: [tap-x0]\n  - name: b\n    sources: [10.78.0.0/24]\n"
                    "    ports: [tap-b*]\n");
  EXPECT_EQ(statusOf(f, "binding"), Status::Warn);
  EXPECT_NE(detailOf(f, "binding").find("a: tap-x0"), std::string::npos) << detailOf(f, "binding");
}

TEST(DoctorTest, CaNeededOnlyForMitm) {
  const std::string mitm = "    rules:\n      - hosts: [a.example]\n        action: mitm\n";
  HostFacts f = healthy();
  f.ca = CaFacts{};
  EXPECT_EQ(statusOf(f, "ca"), Status::Pass);
  f.config = config("", mitm);
  EXPECT_TRUE(f.config->needs_ca);
  EXPECT_EQ(statusOf(f, "ca"), Status::Fail);
  auto findings = evaluate(f);
  EXPECT_NE(find(findings, "ca")->fix.find("tollgate ca init --dir /srv/ca"), std::string::npos)
      << find(findings, "ca")->fix;
}

TEST(DoctorTest, CaKeyAndExpiry) {
  const std::string mitm = "    rules:\n      - hosts: [a.example]\n        action: mitm\n";
  HostFacts f = healthy();
  f.config = config("", mitm);
  f.ca->key_mode = 0644;
  EXPECT_EQ(statusOf(f, "ca"), Status::Fail);
  EXPECT_NE(detailOf(f, "ca").find("mode 0644"), std::string::npos) << detailOf(f, "ca");
  f.config = config();  // same problem, no mitm rule: a warning
  EXPECT_EQ(statusOf(f, "ca"), Status::Warn);

  f = healthy();
  f.config = config("", mitm);
  f.ca->key_uid = 1000;
  EXPECT_EQ(statusOf(f, "ca"), Status::Fail);
  f.ca->key_uid = 0;
  f.ca->load_error = "/srv/ca/ca.crt: certificate expired";
  EXPECT_EQ(statusOf(f, "ca"), Status::Fail);
  EXPECT_EQ(detailOf(f, "ca"), "/srv/ca/ca.crt: certificate expired");
  f.ca->load_error.clear();
  f.ca->not_after = kNow + 10 * kDay;
  EXPECT_EQ(statusOf(f, "ca"), Status::Warn);
  EXPECT_NE(detailOf(f, "ca").find("(10 days)"), std::string::npos) << detailOf(f, "ca");
  f.ca->key_exists = false;
  EXPECT_EQ(statusOf(f, "ca"), Status::Fail);
  EXPECT_NE(detailOf(f, "ca").find("only the certificate"), std::string::npos);
}

TEST(DoctorTest, CredentialSourcesAreCheckedWithoutReadingThem) {
  HostFacts f = healthy();
  f.config =
      config("",
             "credentials:\n"
             "  e:\n    source: { env: E }\n    placeholder: tgph_e_0123456789abcdef0123\n"
             "    hosts: [a.example]\n    inject: { header: X-E }\n"
             "  f:\n    source: { file: /srv/f }\n    placeholder: tgph_f_0123456789abcdef0123\n"
             "    hosts: [a.example]\n    inject: { header: X-F }\n"
             "  c:\n    source: { credential: cc }\n    placeholder: tgph_c_0123456789abcdef0123\n"
             "    hosts: [a.example]\n    inject: { header: X-C }\n");
  ASSERT_EQ(f.config->credentials.size(), 3u);
  auto facts = [&](const std::string& name) {
    for (const CredentialRef& r : f.config->credentials) {
      if (r.name == name) {
        CredentialFacts c;
        c.source = r;
        return c;
      }
    }
    ADD_FAILURE() << name;
    return CredentialFacts{};
  };
  CredentialFacts e = facts("e");
  CredentialFacts file = facts("f");
  CredentialFacts cred = facts("c");
  EXPECT_EQ(cred.source.kind, CredentialSource::Credential);
  EXPECT_EQ(cred.source.ref, "cc");

  file.exists = true;
  file.mode = 0600;
  cred.unit_line_in = "/etc/systemd/system/tollgate.service.d/creds.conf";
  f.credentials = {e, file, cred};
  EXPECT_EQ(statusOf(f, "credential:e"), Status::Pass);
  EXPECT_EQ(statusOf(f, "credential:f"), Status::Pass);
  EXPECT_EQ(statusOf(f, "credential:c"), Status::Pass);
  EXPECT_NE(detailOf(f, "credential:c").find("creds.conf"), std::string::npos);

  f.credentials[1].mode = 0644;
  EXPECT_EQ(statusOf(f, "credential:f"), Status::Warn);
  f.credentials[1].exists = false;
  f.credentials[1].mode.reset();
  EXPECT_EQ(statusOf(f, "credential:f"), Status::Fail);

  f.credentials[2].unit_line_in = "";  // units found, none loads it
  EXPECT_EQ(statusOf(f, "credential:c"), Status::Fail);
  EXPECT_NE(detailOf(f, "credential:c").find("not loaded by tollgate.service"), std::string::npos);
  f.credentials[2].unit_line_in.reset();  // no unit at all
  EXPECT_EQ(statusOf(f, "credential:c"), Status::Warn);
  f.credentials[2].exists = true;  // inside the service
  EXPECT_EQ(statusOf(f, "credential:c"), Status::Pass);
  f.credentials[2].exists = false;
  EXPECT_EQ(statusOf(f, "credential:c"), Status::Fail);
}

TEST(DoctorTest, DaemonAndTable) {
  HostFacts f = healthy();
  f.daemon->answered = false;
  f.daemon->socket_exists = false;
  EXPECT_EQ(statusOf(f, "daemon"), Status::Warn);
  EXPECT_EQ(statusOf(f, "tollgate_table"), Status::Warn);
  EXPECT_NE(detailOf(f, "tollgate_table").find("blocked"), std::string::npos);
  f.nft_tables.clear();
  EXPECT_NE(detailOf(f, "tollgate_table").find("not captured"), std::string::npos);
  f.daemon->socket_exists = true;
  f.daemon->refused = true;  // left behind by a stopped daemon
  EXPECT_EQ(statusOf(f, "daemon"), Status::Warn);
  EXPECT_NE(detailOf(f, "daemon").find("nobody listens"), std::string::npos);
  f.daemon->refused = false;
  f.daemon->error = "no answer within the timeout";
  EXPECT_EQ(statusOf(f, "daemon"), Status::Fail);
  EXPECT_NE(detailOf(f, "daemon").find("no answer within the timeout"), std::string::npos);
  f = healthy();
  f.nft_tables.clear();  // running, but someone flushed the ruleset
  EXPECT_EQ(statusOf(f, "tollgate_table"), Status::Fail);
}

TEST(DoctorTest, JsonRendering) {
  std::vector<Finding> findings = {
      {"a", Status::Pass, "fine", ""},
      {"b", Status::Warn, "hmm \"quoted\"", "do x"},
      {"interface:br\xff", Status::Fail, "bad", "fix it"},
  };
  auto j = nlohmann::json::parse(renderJson(findings));
  ASSERT_EQ(j["findings"].size(), 3u);
  EXPECT_EQ(j["findings"][0]["id"], "a");
  EXPECT_EQ(j["findings"][0]["status"], "pass");
  EXPECT_EQ(j["findings"][0]["fix"], "");
  EXPECT_EQ(j["findings"][1]["detail"], "hmm \"quoted\"");
  EXPECT_EQ(j["findings"][1]["status"], "warn");
  EXPECT_EQ(j["findings"][2]["status"], "fail");
  EXPECT_EQ(j["summary"], (nlohmann::json{{"pass", 1}, {"warn", 1}, {"fail", 1}}));
  EXPECT_EQ(exitCode(findings, true), 1);
  EXPECT_EQ(exitCode(findings, false), 0);
}

TEST(DoctorTest, TableRendering) {
  std::vector<Finding> findings = {
      {"a", Status::Pass, "fine", ""},
      {"longer_id", Status::Fail, "bad", "fix it"},
  };
  EXPECT_EQ(renderTable(findings),
            "STATUS  ID         DETAIL\n"
            "pass    a          fine\n"
            "FAIL    longer_id  bad\n"
            "                   fix: fix it\n"
            "1 pass, 0 warn, 1 fail\n");
}

}  // namespace
}  // namespace tollgate::gateway::doctor
