// tollgate: the CLI (DESIGN.md "CLI"). Exit codes: 0 ok, 1 runtime or config
// error, 2 usage error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <variant>

#include "gateway/config.h"
#include "gateway/server.h"
#include "nat/nat.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

int checkConfig(const std::string& path) {
  auto parsed = tollgate::gateway::loadConfig(path);
  if (auto* errs = std::get_if<std::vector<tollgate::gateway::ConfigError>>(&parsed)) {
    for (const auto& e : *errs) {
      std::fprintf(stderr, "%s\n", e.toString().c_str());
    }
    std::fprintf(stderr, "%s: %zu error(s)\n", path.c_str(), errs->size());
    return kExitError;
  }
  std::printf("%s: ok\n", path.c_str());
  return kExitOk;
}

int down() {
  if (auto r = tollgate::nat::removeTable(); !r) {
    std::fprintf(stderr, "tollgate: error: nftables: %s\n", r.message().c_str());
    return kExitError;
  }
  std::printf("table inet %s removed (sandbox traffic is no longer captured or blocked)\n",
              tollgate::nat::kTableName);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tollgate: a transparent egress gateway for sandboxes"};
  app.require_subcommand(1);
  std::string config;

  auto* run = app.add_subcommand("run", "install capture rules and serve until SIGTERM");
  run->add_option("--config", config, "config file (YAML)")->required();

  auto* check = app.add_subcommand("check", "validate a config file without touching the system");
  check->add_option("--config", config, "config file (YAML)")->required();

  auto* down_cmd =
      app.add_subcommand("down", "remove tollgate's nftables table (capture or block)");
  down_cmd->add_option("--config", config, "config file (YAML); optional");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (run->parsed()) {
    return tollgate::gateway::runDaemon(config);
  }
  if (check->parsed()) {
    return checkConfig(config);
  }
  if (down_cmd->parsed()) {
    return down();
  }
  return kExitUsage;
}
