// End-to-end scenario: a netns-harness topology, a test PKI, real upstream
// servers in their namespaces and a `tollgate run` in the host namespace.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "netns-harness/harness.h"

namespace tollgate::e2e {

// A test CA and a server certificate for the given names, made once per
// process with the openssl CLI.
struct TestPki {
  std::string dir;
  std::string ca_cert;
  std::string server_cert;
  std::string server_key;
};
const TestPki& testPki();

inline constexpr const char* kRealV4 = "198.51.100.10";
inline constexpr const char* kRealV6 = "2001:db8:100::10";
inline constexpr const char* kAttackerV4 = "203.0.113.66";
inline constexpr const char* kBannerV4 = "203.0.113.22";
inline constexpr const char* kDnsV4 = "192.0.2.53";
inline constexpr const char* kLlmV4 = "198.51.100.30";  // the MITM tests' recording upstream
inline constexpr uint16_t kListenPort = 15001;

class Scenario {
 public:
  struct Options {
    int sandboxes = 1;
    std::string extra_gateway_yaml;  // lines appended under `gateway:` (indented 2)
    std::string extra_static_hosts;  // entries added to gateway.static_hosts (indented 4)
    std::string rules_yaml;  // the agents sandbox's rules (indented 6); default set if empty
    std::string sandbox_default = "deny";
    std::string on_exit = "block";
    bool start_gateway = true;
    std::string extra_yaml;  // top-level sections appended after `sandboxes:` (e.g. credentials)
    // Sandbox entries placed before `agents` (which covers the whole subnet),
    // indented 2, e.g. for a /32 of sandbox 1 with a policy of its own.
    std::string extra_sandboxes_yaml;
    std::string agents_sources;  // YAML list for `agents`; default: both sandbox subnets
    // Further upstream namespaces: name -> addresses (on the wan bridge).
    std::vector<std::pair<std::string, std::vector<std::string>>> extra_upstreams;
    std::map<std::string, std::string> gateway_env;  // extra environment for `tollgate run`
  };

  explicit Scenario(Options opts);
  ~Scenario();

  harness::Topology& topo() { return *topo_; }
  const std::string& configPath() const { return config_path_; }
  const std::string& auditPath() const { return audit_path_; }
  std::string sandbox(int i = 0) const { return topo_->sandboxNs(i); }

  // Starts tollgate and waits for its listener; false with the reason in
  // `error` if it did not come up.
  bool startGateway(std::string* error);
  harness::Process* gateway() { return gateway_.get(); }
  // Makes `pem` the sandbox's system trust store (/etc/ssl/certs/ca-certificates.crt,
  // what curl, OpenSSL and Python use by default), as an image build step
  // would with update-ca-certificates.
  void trustInSandbox(const std::string& pem, int sandbox = 0);
  // Starts a long-running process in an upstream namespace and keeps it
  // until the scenario ends.
  void spawnUpstream(const std::string& upstream, const std::vector<std::string>& argv);
  // The MITM tests' recording, echoing upstream (tools/mitm_upstream.py) in
  // the `llm` upstream namespace (Options::extra_upstreams must hold it) on
  // kLlmV4: TLS on 443 (the test PKI's server certificate) and plain HTTP on
  // 80, each request appended to `record` as a JSON line. False with the
  // reason in `error` when it did not come up.
  bool startRecordingUpstream(const std::string& record, std::string* error);
  // SIGTERM and wait; returns the exit code.
  int stopGateway();

  harness::CommandResult inSandbox(const std::vector<std::string>& argv,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(15),
                                   int sandbox = 0) const;
  harness::CommandResult inHost(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // curl from the sandbox with no proxy environment, trusting the test CA.
  harness::CommandResult curl(const std::vector<std::string>& args, int sandbox = 0) const;

  // Audit records written so far; waits up to `timeout` for at least `min`.
  std::vector<nlohmann::json> audit(
      size_t min = 0, std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;
  // The first record whose `field` equals `value`, waiting for it.
  nlohmann::json auditWhere(const std::string& field, const std::string& value,
                            std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  std::string tmpDir() const { return tmp_; }
  std::string gatewayStderr() const;

 private:
  void writeConfig(const Options& opts);
  void startUpstreams();

  std::unique_ptr<harness::Topology> topo_;
  std::vector<std::unique_ptr<harness::Process>> servers_;
  std::unique_ptr<harness::Process> gateway_;
  std::string tmp_;
  std::string config_path_;
  std::string audit_path_;
  std::map<std::string, std::string> gateway_env_;
};

std::string toolPath(const std::string& name);  // tests/e2e/tools/<name>

// The whole file ("" when it cannot be read).
std::string slurp(const std::string& path);
// Writes `value` and a newline to `path`, mode 0600 (a secret file).
void writeSecretFile(const std::string& path, const std::string& value);
// A fresh directory /tmp/tollgate-<tag>-XXXXXX with a tollgate CA in its
// ca/ (`tollgate ca init`); "" with the reason in `error` on failure.
std::string makeDirWithCa(const std::string& tag, std::string* error);
// One JSON value per non-empty line of `path` (the recording upstream's log).
std::vector<nlohmann::json> readJsonLines(const std::string& path);
// The value of header `name` (any case) in a recorded request, "" if absent.
std::string recordedHeader(const nlohmann::json& request, const std::string& name);

// argv that runs tests/e2e/tools/netprobe.py with `args`.
std::vector<std::string> netprobe(std::vector<std::string> args);
// Starts a netprobe server in `ns` and waits until it prints "ready";
// nullptr (and a test failure) when it does not.
std::unique_ptr<harness::Process> serveNetprobe(Scenario& s, const std::string& ns,
                                                std::vector<std::string> args);

}  // namespace tollgate::e2e
