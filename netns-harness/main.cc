// netns-harness CLI: make, list and remove test topologies from scripts
// (scripts/demo, scripts/bench). Exit codes: 0 ok, 1 runtime error, 2 usage.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "netns-harness/harness.h"

namespace {

using tollgate::harness::Topology;
using tollgate::harness::TopologySpec;
using tollgate::harness::UpstreamSpec;

constexpr int kRuntimeError = 1;
constexpr int kUsageError = 2;

// "NAME=IP[,IP...]"
bool parseUpstream(const std::string& text, UpstreamSpec* out) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 >= text.size()) {
    return false;
  }
  out->name = text.substr(0, eq);
  out->addrs.clear();
  size_t start = eq + 1;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string addr = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (addr.empty()) {
      return false;
    }
    out->addrs.push_back(addr);
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return true;
}

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

std::string shellName(std::string s) {
  for (char& c : s) {
    c = std::isalnum(static_cast<unsigned char>(c)) != 0 ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                                                         : '_';
  }
  return s;
}

// KEY='value' lines, for `eval "$(netns-harness up ...)"`.
void printShell(const Topology& t) {
  auto line = [](const std::string& key, const std::string& value) {
    std::cout << key << "=" << shellQuote(value) << "\n";
  };
  line("TG_PREFIX", t.prefix());
  line("TG_HOST_NS", t.hostNs());
  line("TG_BRIDGE", t.bridge());
  line("TG_BRIDGE_IP4", t.bridgeIp4());
  line("TG_BRIDGE_IP6", t.bridgeIp6());
  line("TG_SANDBOXES", std::to_string(t.sandboxCount()));
  for (int i = 0; i < t.sandboxCount(); ++i) {
    std::string k = "TG_SB" + std::to_string(i);
    line(k + "_NS", t.sandboxNs(i));
    line(k + "_IP4", t.sandboxIp4(i));
    line(k + "_IP6", t.sandboxIp6(i));
  }
  for (const std::string& name : t.upstreamNames()) {
    std::string k = "TG_UP_" + shellName(name);
    line(k + "_NS", t.upstreamNs(name));
    std::string addrs;
    for (const std::string& a : t.upstreamAddrs(name)) {
      addrs += (addrs.empty() ? "" : " ") + a;
    }
    line(k + "_ADDRS", addrs);
  }
}

int printRemoved(const tollgate::Result<std::vector<std::string>>& removed) {
  if (removed.ok()) {
    for (const std::string& ns : *removed) {
      std::cout << "removed " << ns << "\n";
    }
  }
  if (!removed.ok()) {
    std::cerr << "netns-harness: " << removed.message() << "\n";
    return kRuntimeError;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Builds sandbox/bridge/upstream topologies in network namespaces (tests, demo, bench)."};
  app.require_subcommand(1);

  TopologySpec spec;
  std::vector<std::string> upstream_args;
  bool json = false;
  bool no_ipv6 = false;
  bool no_routes = false;
  int bridge_nf = -1;
  pid_t owner_pid = getppid();
  CLI::App* up = app.add_subcommand("up", "create a topology and leave it in place; prints its layout");
  up->add_option("--sandboxes", spec.sandboxes, "number of sandbox namespaces")->capture_default_str();
  up->add_option("--upstream", upstream_args, "NAME=IP[,IP...] an upstream namespace on the wan bridge (repeatable)");
  up->add_option("--prefix", spec.prefix, "namespace name prefix (default: tg<owner-pid>x<n><rand>)");
  up->add_option("--subnet4", spec.sandbox_subnet4, "sandbox IPv4 subnet")->capture_default_str();
  up->add_option("--subnet6", spec.sandbox_subnet6, "sandbox IPv6 subnet")->capture_default_str();
  up->add_flag("--no-ipv6", no_ipv6, "no IPv6 on the sandbox side");
  up->add_flag("--no-default-routes", no_routes, "sandboxes get no default routes");
  up->add_option("--bridge-nf", bridge_nf, "set net.bridge.bridge-nf-call-ip{,6}tables in the host ns (0 or 1)")
      ->check(CLI::Range(0, 1));
  up->add_option("--owner-pid", owner_pid,
                 "pid whose exit makes the topology garbage for `gc` (default: the parent, i.e. your script)");
  up->add_flag("--json", json, "print JSON instead of shell variables");

  std::string down_prefix;
  CLI::App* down = app.add_subcommand("down", "remove every namespace named <prefix>-*");
  down->add_option("--prefix", down_prefix, "prefix printed by `up`")->required();

  app.add_subcommand("gc", "remove topologies whose owner process is gone");
  bool list_json = false;
  CLI::App* list = app.add_subcommand("list", "list harness namespaces and whether their owner lives");
  list->add_flag("--json", list_json, "print JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kUsageError;
  }

  if (up->parsed()) {
    for (const std::string& text : upstream_args) {
      UpstreamSpec us;
      if (!parseUpstream(text, &us)) {
        std::cerr << "netns-harness: --upstream '" << text << "': expected NAME=IP[,IP...]\n";
        return kUsageError;
      }
      spec.upstreams.push_back(us);
    }
    if (no_ipv6) {
      spec.sandbox_subnet6.clear();
    }
    spec.sandbox_routes_via_bridge = !no_routes;
    if (bridge_nf >= 0) {
      spec.bridge_nf_call_iptables = bridge_nf == 1;
    }
    spec.owner_pid = owner_pid;
    auto topo = Topology::create(spec);
    if (!topo.ok()) {
      std::cerr << topo.message() << "\n";
      return kRuntimeError;
    }
    (*topo)->release();
    if (json) {
      std::cout << (*topo)->toJson() << "\n";
    } else {
      printShell(**topo);
    }
    return 0;
  }
  if (down->parsed()) {
    return printRemoved(tollgate::harness::removeByPrefix(down_prefix));
  }
  if (app.got_subcommand("gc")) {
    return printRemoved(tollgate::harness::collectGarbage());
  }
  if (list->parsed()) {
    // Only names shaped like the harness's: <prefix>-host|sb<i>|up-<name>.
    static const std::regex kHarnessNs("^([A-Za-z0-9]+)-(host|sb[0-9]+|up-.+)$");
    static const std::regex kGenerated("^tg([0-9]{1,9})x.*$");
    nlohmann::json out = nlohmann::json::array();
    for (const std::string& ns : tollgate::harness::listNamespaces()) {
      std::smatch m;
      if (!std::regex_match(ns, m, kHarnessNs)) {
        continue;
      }
      const std::string prefix = m[1].str();
      std::string owner = "-";
      std::smatch g;
      if (std::regex_match(prefix, g, kGenerated)) {
        pid_t pid = static_cast<pid_t>(std::stol(g[1].str()));
        bool alive = kill(pid, 0) == 0 || errno != ESRCH;
        owner = g[1].str() + (alive ? " alive" : " gone");
      }
      out.push_back({{"ns", ns}, {"prefix", prefix}, {"owner", owner}});
      if (!list_json) {
        std::cout << ns << "\towner " << owner << "\n";
      }
    }
    if (list_json) {
      std::cout << out.dump(2) << "\n";
    }
    return 0;
  }
  return kUsageError;
}
