// End-to-end: `tollgate doctor --json` run inside fresh network namespaces
// (a netns-harness topology), judging what it finds there: the bridge, a
// missing interface, br_netfilter against capture: tproxy, other tools'
// nftables tables, and a running or stopped gateway.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "scenario.h"

namespace tollgate::e2e {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Doctor {
  harness::CommandResult run;
  nlohmann::json json;
  std::map<std::string, nlohmann::json> by_id;

  std::string status(const std::string& id) const {
    auto it = by_id.find(id);
    return it == by_id.end() ? "<absent>" : it->second.value("status", "?");
  }
  std::string detail(const std::string& id) const {
    auto it = by_id.find(id);
    return it == by_id.end() ? "<absent>" : it->second.value("detail", "?");
  }
  std::string dump() const { return run.out + run.err; }
};

Doctor doctor(const std::string& ns, const std::string& config, bool strict = false) {
  std::vector<std::string> argv = {TOLLGATE_BINARY, "doctor", "--json", "--config", config};
  if (strict) {
    argv.push_back("--strict");
  }
  Doctor d;
  d.run = harness::runCommand(ns, argv, 20s);
  d.json = nlohmann::json::parse(d.run.out, nullptr, /*allow_exceptions=*/false);
  if (d.json.is_object() && d.json["findings"].is_array()) {
    for (const auto& f : d.json["findings"]) {
      d.by_id[f.value("id", "")] = f;
    }
  }
  return d;
}

// A temp dir with a config for the topology's bridge plus `extra_ifaces`.
class TempConfig {
 public:
  TempConfig(const harness::Topology& topo, const std::string& capture,
             const std::string& extra_ifaces = "") {
    char tmpl[] = "/tmp/tg-doctor-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    dir_ = tmpl;
    path_ = dir_ + "/tollgate.yaml";
    std::ofstream(path_) << "gateway:\n"
                         << "  interfaces: [" << topo.bridge() << extra_ifaces << "]\n"
                         << "  capture: " << capture << "\n"
                         << "  ca: { cert: " << dir_ << "/ca.crt, key: " << dir_ << "/ca.key }\n"
                         << "  control: " << dir_ << "/control.sock\n"
                         << "sandboxes:\n"
                         << "  - name: agents\n"
                         << "    sources: [" << topo.sandboxSubnet4() << "]\n";
  }
  ~TempConfig() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

std::unique_ptr<harness::Topology> topology(std::optional<bool> bridge_nf = std::nullopt) {
  harness::TopologySpec spec;
  spec.bridge_nf_call_iptables = bridge_nf;
  auto topo = harness::Topology::create(spec);
  if (!topo) {
    ADD_FAILURE() << "topology: " << topo.message();
    return nullptr;
  }
  return std::move(*topo);
}

TEST(DoctorTest, BridgePresentPassesMissingInterfaceFailsStrictExitsOne) {
  auto topo = topology();
  ASSERT_TRUE(topo);
  TempConfig cfg(*topo, "redirect", ", tgnope0");
  Doctor d = doctor(topo->hostNs(), cfg.path());
  ASSERT_EQ(d.run.exit_code, 0) << d.dump();
  ASSERT_TRUE(d.json.is_object()) << d.dump();
  EXPECT_EQ(d.status("config"), "pass") << d.detail("config");
  EXPECT_EQ(d.status("interface:tgbr0"), "pass") << d.detail("interface:tgbr0");
  EXPECT_NE(d.detail("interface:tgbr0").find(topo->bridgeIp4()), std::string::npos)
      << d.detail("interface:tgbr0");
  EXPECT_NE(d.detail("interface:tgbr0").find("bridge"), std::string::npos);
  EXPECT_EQ(d.status("interface:tgnope0"), "fail") << d.dump();
  // Nothing runs here: no daemon, no table, and nothing of other tools.
  EXPECT_EQ(d.status("daemon"), "warn");
  EXPECT_EQ(d.status("tollgate_table"), "warn");
  EXPECT_EQ(d.status("nft_tables"), "pass") << d.detail("nft_tables");
  // The harness turns forwarding on in its host namespace: with no table
  // there, sandboxes would be routed uncaptured.
  EXPECT_EQ(d.status("ip_forward"), "warn") << d.detail("ip_forward");
  EXPECT_EQ(d.status("ca"), "pass") << d.detail("ca");  // no mitm rules
  EXPECT_GE(d.json["summary"]["fail"].get<int>(), 1);

  Doctor strict = doctor(topo->hostNs(), cfg.path(), /*strict=*/true);
  EXPECT_EQ(strict.run.exit_code, 1) << strict.dump();
  EXPECT_EQ(strict.status("interface:tgnope0"), "fail");

  TempConfig only_bridge(*topo, "redirect");
  Doctor ok = doctor(topo->hostNs(), only_bridge.path(), /*strict=*/true);
  EXPECT_EQ(ok.json["summary"]["fail"], 0) << ok.dump();
  EXPECT_EQ(ok.run.exit_code, 0) << ok.dump();
}

TEST(DoctorTest, BrNetfilterFailsTproxyCaptureOnly) {
  if (!fs::exists("/proc/sys/net/bridge")) {
    GTEST_SKIP() << "br_netfilter is not loaded on this host";
  }
  auto on = topology(true);
  ASSERT_TRUE(on);
  TempConfig tproxy(*on, "tproxy");
  Doctor d = doctor(on->hostNs(), tproxy.path());
  EXPECT_EQ(d.status("br_netfilter"), "fail") << d.dump();
  EXPECT_NE(d.detail("br_netfilter").find("bridge-nf-call-iptables = 1"), std::string::npos)
      << d.detail("br_netfilter");
  TempConfig redirect(*on, "redirect");
  EXPECT_EQ(doctor(on->hostNs(), redirect.path()).status("br_netfilter"), "pass");

  auto off = topology(false);
  ASSERT_TRUE(off);
  TempConfig tproxy_off(*off, "tproxy");
  Doctor d_off = doctor(off->hostNs(), tproxy_off.path());
  EXPECT_EQ(d_off.status("br_netfilter"), "pass") << d_off.dump();
  EXPECT_NE(d_off.detail("br_netfilter").find("bridge-nf-call-iptables = 0"), std::string::npos);
}

TEST(DoctorTest, WarnsAboutOtherToolsTablesThatDropInput) {
  auto topo = topology();
  ASSERT_TRUE(topo);
  const std::string ns = topo->hostNs();
  // What iptables-nft (Docker, ufw) leaves: ip filter with a drop input chain,
  // and a NAT chain earlier than tollgate's.
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"nft", "add", "table", "ip", "filter"},
        {"nft", "add chain ip filter INPUT { type filter hook input priority 0; policy drop; }"},
        {"nft", "add", "table", "ip", "early"},
        {"nft", "add chain ip early pre { type nat hook prerouting priority -150; }"}}) {
    auto r = harness::runCommand(ns, cmd, 10s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  TempConfig cfg(*topo, "redirect");
  Doctor d = doctor(ns, cfg.path());
  EXPECT_EQ(d.status("nft_tables"), "warn") << d.dump();
  EXPECT_NE(d.detail("nft_tables").find("ip filter"), std::string::npos) << d.detail("nft_tables");
  EXPECT_EQ(d.status("nft_input_drop"), "warn") << d.dump();
  EXPECT_NE(d.detail("nft_input_drop").find("ip filter INPUT"), std::string::npos);
  EXPECT_EQ(d.status("nft_early_nat"), "warn") << d.dump();
  EXPECT_NE(d.detail("nft_early_nat").find("priority -150"), std::string::npos);
  // The caller's own namespace is untouched by all this.
  auto mine = harness::runCommand("", {"nft", "list", "table", "ip", "early"}, 10s);
  EXPECT_NE(mine.exit_code, 0);
}

TEST(DoctorTest, SeesTheRunningGatewayThenTheFailClosedTable) {
  Scenario s(Scenario::Options{});
  const std::string ns = s.topo().hostNs();
  Doctor d = doctor(ns, s.configPath(), /*strict=*/true);
  EXPECT_EQ(d.status("daemon"), "pass") << d.dump();
  EXPECT_EQ(d.status("tollgate_table"), "pass") << d.dump();
  EXPECT_EQ(d.status("ip_forward"), "pass") << d.detail("ip_forward");
  EXPECT_EQ(d.status("nft_tables"), "pass")
      << d.detail("nft_tables");  // its own table is no tool's
  EXPECT_EQ(d.status("nft_input_drop"), "pass") << d.detail("nft_input_drop");
  EXPECT_EQ(d.status("interface:tgbr0"), "pass") << d.detail("interface:tgbr0");
  EXPECT_EQ(d.json["summary"]["fail"], 0) << d.dump();
  EXPECT_EQ(d.run.exit_code, 0) << d.dump();

  EXPECT_EQ(s.stopGateway(), 0) << s.gatewayStderr();
  Doctor after = doctor(ns, s.configPath());
  EXPECT_EQ(after.status("daemon"), "warn") << after.dump();
  EXPECT_EQ(after.status("tollgate_table"), "warn") << after.dump();
  EXPECT_NE(after.detail("tollgate_table").find("blocked"), std::string::npos);
}

TEST(DoctorTest, ChecksThatSecretSourcesExistWithoutReadingThem) {
  char tmpl[] = "/tmp/tg-doctor-cred-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  fs::create_directory(dir + "/creds");
  std::ofstream(dir + "/creds/tok") << "secret-value-1\n";
  std::ofstream(dir + "/file-secret") << "secret-value-2\n";
  fs::permissions(dir + "/file-secret",
                  fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  const std::string config = dir + "/c.yaml";
  std::ofstream(config) << "gateway:\n  interfaces: [lo]\n  control: " << dir << "/ctl.sock\n"
                        << "sandboxes:\n  - name: a\n    sources: [10.77.0.0/24]\n"
                        << "credentials:\n"
                        << "  tok:\n    source: { credential: tok }\n"
                        << "    placeholder: tgph_tok_0123456789abcdef0123\n"
                        << "    hosts: [a.example]\n    inject: { header: X-Tok }\n"
                        << "  gone:\n    source: { credential: gone }\n"
                        << "    placeholder: tgph_gone_0123456789abcdef0123\n"
                        << "    hosts: [a.example]\n    inject: { header: X-Gone }\n"
                        << "  f:\n    source: { file: " << dir << "/file-secret }\n"
                        << "    placeholder: tgph_f_0123456789abcdef0123\n"
                        << "    hosts: [a.example]\n    inject: { header: X-F }\n";
  // As under systemd (ExecStartPre=tollgate doctor): $CREDENTIALS_DIRECTORY set.
  auto run = harness::runCommand("",
                                 {"env", "CREDENTIALS_DIRECTORY=" + dir + "/creds", TOLLGATE_BINARY,
                                  "doctor", "--json", "--config", config},
                                 20s);
  auto j = nlohmann::json::parse(run.out, nullptr, false);
  std::map<std::string, nlohmann::json> by_id;
  for (const auto& f : j.value("findings", nlohmann::json::array())) {
    by_id[f.value("id", "")] = f;
  }
  fs::remove_all(dir);
  ASSERT_TRUE(j.is_object()) << run.out << run.err;
  EXPECT_EQ(by_id["credential:tok"].value("status", ""), "pass") << run.out;
  EXPECT_EQ(by_id["credential:gone"].value("status", ""), "fail") << run.out;
  EXPECT_EQ(by_id["credential:f"].value("status", ""), "warn") << run.out;
  EXPECT_NE(by_id["credential:f"].value("detail", "").find("mode 0444"), std::string::npos);
  // Values are never read, so they cannot leak into the report.
  EXPECT_EQ(run.out.find("secret-value"), std::string::npos);
}

TEST(DoctorTest, UsageErrorsExitTwoAndHelpWorks) {
  EXPECT_EQ(harness::runCommand("", {TOLLGATE_BINARY, "doctor", "--bogus"}, 10s).exit_code, 2);
  auto help = harness::runCommand("", {TOLLGATE_BINARY, "doctor", "--help"}, 10s);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--strict"), std::string::npos) << help.out;
  // A config that does not parse is a failing finding, with the position.
  char tmpl[] = "/tmp/tg-doctor-bad-XXXXXX.yaml";
  int fd = mkstemps(tmpl, 5);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(tmpl) << "gateway:\n  interfacs: [br0]\n";
  Doctor d = doctor("", tmpl, /*strict=*/true);
  fs::remove(tmpl);
  EXPECT_EQ(d.run.exit_code, 1) << d.dump();
  EXPECT_EQ(d.status("config"), "fail");
  EXPECT_NE(d.detail("config").find(":2:3: gateway: unknown key 'interfacs'"), std::string::npos)
      << d.detail("config");
}

}  // namespace
}  // namespace tollgate::e2e
