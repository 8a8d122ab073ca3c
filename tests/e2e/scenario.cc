#include "scenario.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

namespace tollgate::e2e {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

std::string mkTemp(const char* tag) {
  std::string tmpl =
      (fs::temp_directory_path() / (std::string("tollgate-") + tag + "-XXXXXX")).string();
  char* d = mkdtemp(tmpl.data());
  if (d == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  return d;
}

void mustRun(const std::vector<std::string>& argv) {
  auto r = harness::runCommand("", argv, 30s);
  if (r.exit_code != 0) {
    throw std::runtime_error("command failed: " + argv[0] + " " + (argv.size() > 1 ? argv[1] : "") +
                             ": " + r.err);
  }
}

}  // namespace

std::string slurp(const std::string& path) { return readFile(path); }

void writeSecretFile(const std::string& path, const std::string& value) {
  writeFile(path, value + "\n");
  chmod(path.c_str(), 0600);
}

std::string makeDirWithCa(const std::string& tag, std::string* error) {
  std::string dir = mkTemp(tag.c_str());
  auto init = harness::runCommand("", {TOLLGATE_BINARY, "ca", "init", "--dir", dir + "/ca"}, 30s);
  if (init.exit_code != 0) {
    *error = "tollgate ca init: " + init.err;
    return "";
  }
  return dir;
}

std::vector<nlohmann::json> readJsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(readFile(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) {
      out.push_back(nlohmann::json::parse(line));
    }
  }
  return out;
}

std::string recordedHeader(const nlohmann::json& request, const std::string& name) {
  for (const auto& h : request["headers"]) {
    std::string n = h[0];
    if (strcasecmp(n.c_str(), name.c_str()) == 0) {
      return h[1];
    }
  }
  return "";
}

bool Scenario::startRecordingUpstream(const std::string& record, std::string* error) {
  const std::string tool = toolPath("mitm_upstream.py");
  spawnUpstream("llm", {"python3", tool, "--addr", kLlmV4, "--port", "443", "--cert",
                        testPki().server_cert, "--key", testPki().server_key, "--record", record});
  spawnUpstream("llm",
                {"python3", tool, "--addr", kLlmV4, "--port", "80", "--plain", "--record", record});
  for (uint16_t port : {443, 80}) {
    auto r = topo_->waitForListen(topo_->upstreamNs("llm"), kLlmV4, port, 10s);
    if (!r) {
      *error = r.message();
      return false;
    }
  }
  return true;
}

std::string toolPath(const std::string& name) {
  return std::string(TOLLGATE_TEST_DATA) + "/../e2e/tools/" + name;
}

const TestPki& testPki() {
  static TestPki pki;
  static std::once_flag once;
  std::call_once(once, [] {
    pki.dir = mkTemp("pki");
    pki.ca_cert = pki.dir + "/ca.crt";
    pki.server_cert = pki.dir + "/server.crt";
    pki.server_key = pki.dir + "/server.key";
    std::string ca_key = pki.dir + "/ca.key";
    mustRun({"openssl",
             "req",
             "-x509",
             "-newkey",
             "ec",
             "-pkeyopt",
             "ec_paramgen_curve:P-256",
             "-nodes",
             "-keyout",
             ca_key,
             "-out",
             pki.ca_cert,
             "-days",
             "2",
             "-subj",
             "/CN=tollgate e2e upstream CA",
             "-addext",
             "basicConstraints=critical,CA:TRUE",
             "-addext",
             "keyUsage=critical,keyCertSign,cRLSign"});
    std::string ext = pki.dir + "/server.ext";
    writeFile(ext,
              "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
              "subjectAltName=DNS:api.example.test,DNS:denied.example.test,DNS:meta.example.test,"
              "DNS:private.example.test,DNS:dns.example.test,DNS:plain.example.test,"
              "DNS:slow.example.test,DNS:api6.example.test,DNS:llm.example.test,"
              "DNS:other.example.test\n");
    std::string csr = pki.dir + "/server.csr";
    mustRun({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", pki.server_key, "-out", csr, "-subj", "/CN=api.example.test"});
    mustRun({"openssl", "x509", "-req", "-in", csr, "-CA", pki.ca_cert, "-CAkey", ca_key,
             "-CAcreateserial", "-out", pki.server_cert, "-days", "2", "-extfile", ext});
  });
  return pki;
}

Scenario::Scenario(Options opts) {
  tmp_ = mkTemp("e2e");
  harness::TopologySpec spec;
  spec.sandboxes = opts.sandboxes;
  spec.upstreams = {{"real", {kRealV4, kRealV6}},
                    {"attk", {kAttackerV4, kBannerV4}},
                    {"dns", {kDnsV4}},
                    {"meta", {"198.51.100.254", "169.254.169.254", "10.1.2.3"}}};
  for (auto& [name, ips] : opts.extra_upstreams) {
    spec.upstreams.push_back({name, ips});
  }
  gateway_env_ = opts.gateway_env;
  auto topo = harness::Topology::create(spec);
  if (!topo) {
    throw std::runtime_error("topology: " + topo.message());
  }
  topo_ = std::move(*topo);
  writeConfig(opts);
  std::string hosts =
      "127.0.0.1 localhost\n"
      "198.51.100.10 api.example.test denied.example.test meta.example.test private.example.test "
      "dns.example.test plain.example.test slow.example.test\n"
      "2001:db8:100::10 api6.example.test\n"
      "198.51.100.30 llm.example.test other.example.test badcert.example.test\n";
  for (int i = 0; i < opts.sandboxes; ++i) {
    if (auto r = topo_->setHosts(topo_->sandboxNs(i), hosts); !r) {
      throw std::runtime_error(r.message());
    }
  }
  startUpstreams();
  if (opts.start_gateway) {
    std::string err;
    if (!startGateway(&err)) {
      throw std::runtime_error("gateway did not start: " + err);
    }
  }
}

Scenario::~Scenario() {
  gateway_.reset();
  servers_.clear();
  topo_.reset();
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

void Scenario::writeConfig(const Options& opts) {
  config_path_ = tmp_ + "/tollgate.yaml";
  audit_path_ = tmp_ + "/audit.jsonl";
  std::string rules = opts.rules_yaml;
  if (rules.empty()) {
    rules =
        "      - hosts: [api.example.test, api6.example.test, dns.example.test, "
        "slow.example.test,\n"
        "                static.example.test, \"*.wild.example.test\"]\n"
        "        action: passthrough\n"
        "      - hosts: [meta.example.test, private.example.test]\n"
        "        action: passthrough\n"
        "      - hosts: [plain.example.test]\n"
        "        ports: [80]\n"
        "        action: passthrough\n"
        "      - name: ssh-to-banner\n"
        "        cidrs: [203.0.113.22/32]\n"
        "        ports: [22]\n"
        "        action: passthrough\n"
        "      - hosts: [denied.example.test]\n"
        "        action: deny\n";
  }
  // fallback. and closed.example.test: port 80 is closed on kBannerV4, so
  // connecting there is refused.
  std::ostringstream y;
  y << "gateway:\n"
    << "  interfaces: [" << topo_->bridge() << "]\n"
    << "  listen_port: " << kListenPort << "\n"
    << "  resolvers: [" << kDnsV4 << "]\n"
    << "  static_hosts:\n"
    << "    api.example.test: [" << kRealV4 << ", \"" << kRealV6 << "\"]\n"
    << "    api6.example.test: [\"" << kRealV6 << "\"]\n"
    << "    slow.example.test: [" << kRealV4 << "]\n"
    << "    static.example.test: [" << kRealV4 << ", \"" << kRealV6 << "\"]\n"
    << "    x.wild.example.test: [" << kRealV4 << "]\n"
    << "    plain.example.test: [" << kRealV4 << "]\n"
    << "    fallback.example.test: [" << kBannerV4 << ", " << kRealV4 << "]\n"
    << "    closed.example.test: [" << kBannerV4 << "]\n"
    << "    meta.example.test: [169.254.169.254]\n"
    << "    private.example.test: [10.1.2.3]\n"
    << "    llm.example.test: [" << kLlmV4 << "]\n"
    << "    other.example.test: [" << kLlmV4 << "]\n"
    << "    badcert.example.test: [" << kLlmV4 << "]\n"
    << opts.extra_static_hosts << "  audit_log: " << audit_path_ << "\n"
    << "  control: " << tmp_ << "/control.sock\n"
    << "  on_exit: " << opts.on_exit << "\n"
    << "  peek_timeout_ms: 3000\n"
    << "  opaque_wait_ms: 300\n"
    << opts.extra_gateway_yaml << "sandboxes:\n"
    << opts.extra_sandboxes_yaml << "  - name: agents\n"
    << "    sources: "
    << (opts.agents_sources.empty()
            ? "[" + topo_->sandboxSubnet4() + ", \"" + topo_->sandboxSubnet6() + "\"]"
            : opts.agents_sources)
    << "\n"
    << "    default: " << opts.sandbox_default << "\n"
    << "    rules:\n"
    << rules << opts.extra_yaml;
  writeFile(config_path_, y.str());
}

void Scenario::startUpstreams() {
  const TestPki& pki = testPki();
  std::string server = toolPath("upstream_server.py");
  auto add = [&](const std::string& up, std::vector<std::string> argv) {
    auto p = topo_->spawn(topo_->upstreamNs(up), argv);
    if (!p) {
      throw std::runtime_error("spawn " + up + ": " + p.message());
    }
    servers_.push_back(std::move(*p));
  };
  add("real", {"python3", server, "--mode", "https", "--addr", kRealV4, "--addr", kRealV6, "--port",
               "443", "--name", "real", "--cert", pki.server_cert, "--key", pki.server_key});
  add("real",
      {"python3", server, "--mode", "http", "--addr", kRealV4, "--port", "80", "--name", "real"});
  // The attacker serves a certificate for the same names: only routing, not
  // certificate checks, can keep a spoofed flow away from it.
  add("attk", {"python3", server, "--mode", "https", "--addr", kAttackerV4, "--port", "443",
               "--name", "attacker", "--cert", pki.server_cert, "--key", pki.server_key});
  add("attk", {"python3", server, "--mode", "http", "--addr", kAttackerV4, "--port", "80", "--name",
               "attacker"});
  add("attk", {"python3", server, "--mode", "banner", "--addr", kBannerV4, "--port", "22"});
  add("meta",
      {"python3", server, "--mode", "https", "--addr", "169.254.169.254", "--addr", "10.1.2.3",
       "--port", "443", "--name", "metadata", "--cert", pki.server_cert, "--key", pki.server_key});
  add("dns",
      {"dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--listen-address", kDnsV4,
       "--bind-interfaces", "--port", "53", "--address=/dns.example.test/" + std::string(kRealV4),
       "--log-facility=-", "--pid-file", "--user=root"});
  struct Wait {
    const char* up;
    const char* ip;
    uint16_t port;
  };
  for (const Wait& w :
       {Wait{"real", kRealV4, 443}, Wait{"real", kRealV6, 443}, Wait{"real", kRealV4, 80},
        Wait{"attk", kAttackerV4, 443}, Wait{"attk", kAttackerV4, 80}, Wait{"attk", kBannerV4, 22},
        Wait{"meta", "169.254.169.254", 443}}) {
    if (auto r = topo_->waitForListen(topo_->upstreamNs(w.up), w.ip, w.port, 10s); !r) {
      throw std::runtime_error(std::string("upstream ") + w.up + " not listening: " + r.message());
    }
  }
}

bool Scenario::startGateway(std::string* error) {
  auto p = topo_->spawn(topo_->hostNs(), {TOLLGATE_BINARY, "run", "--config", config_path_},
                        gateway_env_);
  if (!p) {
    *error = p.message();
    return false;
  }
  gateway_ = std::move(*p);
  auto r = topo_->waitForListen(topo_->hostNs(), topo_->bridgeIp4(), kListenPort, 10s);
  if (!r) {
    *error = r.message() + "\n" + gateway_->stderrText();
    return false;
  }
  // Listeners are bound before the capture table goes in: wait for "ready".
  for (int i = 0; i < 200; ++i) {
    if (gateway_->stderrText().find("ready:") != std::string::npos) {
      return true;
    }
    if (!gateway_->running()) {
      break;
    }
    std::this_thread::sleep_for(25ms);
  }
  *error = "no ready line:\n" + gateway_->stderrText();
  return false;
}

int Scenario::stopGateway() {
  if (!gateway_) {
    return -1;
  }
  gateway_->signal(SIGTERM);
  auto rc = gateway_->wait(15s);
  return rc ? *rc : -1;
}

void Scenario::trustInSandbox(const std::string& pem, int sandbox) {
  std::string dir = "/etc/netns/" + topo_->sandboxNs(sandbox) + "/ssl";
  fs::create_directories(dir + "/certs");
  fs::copy_file("/etc/ssl/openssl.cnf", dir + "/openssl.cnf", fs::copy_options::overwrite_existing);
  writeFile(dir + "/certs/ca-certificates.crt", pem);
}

void Scenario::spawnUpstream(const std::string& upstream, const std::vector<std::string>& argv) {
  auto p = topo_->spawn(topo_->upstreamNs(upstream), argv);
  if (!p) {
    throw std::runtime_error("spawn " + upstream + ": " + p.message());
  }
  servers_.push_back(std::move(*p));
}

std::string Scenario::gatewayStderr() const { return gateway_ ? gateway_->stderrText() : ""; }

harness::CommandResult Scenario::inSandbox(const std::vector<std::string>& argv,
                                           std::chrono::milliseconds timeout, int sandbox) const {
  return topo_->run(topo_->sandboxNs(sandbox), argv, timeout);
}

harness::CommandResult Scenario::inHost(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout) const {
  return topo_->run(topo_->hostNs(), argv, timeout);
}

harness::CommandResult Scenario::curl(const std::vector<std::string>& args, int sandbox) const {
  std::vector<std::string> argv = {"curl", "-sS",      "--max-time",
                                   "10",   "--cacert", testPki().ca_cert};
  argv.insert(argv.end(), args.begin(), args.end());
  return inSandbox(argv, 15s, sandbox);
}

std::vector<nlohmann::json> Scenario::audit(size_t min, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::vector<nlohmann::json> out;
    std::istringstream in(readFile(audit_path_));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) {
        out.push_back(nlohmann::json::parse(line));
      }
    }
    if (out.size() >= min || std::chrono::steady_clock::now() >= deadline) {
      return out;
    }
    std::this_thread::sleep_for(25ms);
  }
}

nlohmann::json Scenario::auditWhere(const std::string& field, const std::string& value,
                                    std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    for (const auto& r : audit()) {
      if (r.contains(field) && r[field] == value) {
        return r;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return nlohmann::json();
    }
    std::this_thread::sleep_for(25ms);
  }
}

std::vector<std::string> netprobe(std::vector<std::string> args) {
  args.insert(args.begin(), {"python3", toolPath("netprobe.py")});
  return args;
}

std::unique_ptr<harness::Process> serveNetprobe(Scenario& s, const std::string& ns,
                                                std::vector<std::string> args) {
  auto p = s.topo().spawn(ns, netprobe(std::move(args)));
  if (!p) {
    ADD_FAILURE() << p.message();
    return nullptr;
  }
  // Up to 10 s: python start-up alone took over 3 s on a loaded 2-core machine.
  for (int i = 0; i < 500 && (*p)->stdoutText().find("ready") == std::string::npos; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE((*p)->stdoutText().find("ready"), std::string::npos) << (*p)->stderrText();
  return std::move(*p);
}

}  // namespace tollgate::e2e
