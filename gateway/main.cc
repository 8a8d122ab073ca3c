// tollgate: the CLI (DESIGN.md "CLI"). Exit codes: 0 ok, 1 runtime or config
// error, 2 usage error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <string>
#include <variant>
#include <vector>

#include <openssl/rand.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/unique.h"

#include "ca/ca.h"
#include "gateway/config.h"
#include "gateway/doctor.h"
#include "gateway/doctor_probe.h"
#include "gateway/secrets.h"
#include "mitm/upstream_tls.h"
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
  // What `run` would refuse beyond the file itself: secrets that cannot be
  // read or are invalid, a CA that does not load, an unusable upstream_ca,
  // an unknown user. Nothing is installed or bound.
  const auto& cfg = std::get<tollgate::gateway::Config>(parsed);
  std::vector<std::string> problems;
  if (auto creds = tollgate::gateway::loadCredentials(cfg, nullptr); !creds) {
    problems.push_back(creds.message());
  }
  bool mitm = false;
  for (const auto& sb : cfg.sandboxes) {
    mitm = mitm || sb.default_action == tollgate::gateway::Action::Mitm;
    for (const auto& r : sb.rules) {
      mitm = mitm || r.action == tollgate::gateway::Action::Mitm;
    }
  }
  const auto& g = cfg.gateway;
  if (mitm || g.deny_style == tollgate::gateway::DenyStyle::Http403) {
    if (auto ca = tollgate::ca::Authority::load(g.ca_cert, g.ca_key); !ca) {
      problems.push_back("gateway.ca: " + ca.message() + " (" +
                         (mitm ? "action: mitm" : "deny_style: http-403") +
                         " needs tollgate's CA; create one with `tollgate ca init --dir " +
                         g.state_dir + "`)");
    }
  }
  if (mitm) {
    if (auto up = tollgate::mitm::UpstreamTls::create(g.upstream_ca); !up) {
      problems.push_back("gateway." + up.message());
    }
  }
  if (g.user && getpwnam(g.user->c_str()) == nullptr) {
    problems.push_back("gateway.user: no such user '" + *g.user + "'");
  }
  for (const std::string& p : problems) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), p.c_str());
  }
  if (auto w = tollgate::gateway::unboundSandboxesWarning(cfg)) {
    std::fprintf(stderr, "%s: warning: %s\n", path.c_str(), w->c_str());
  }
  if (!problems.empty()) {
    std::fprintf(stderr, "%s: %zu error(s)\n", path.c_str(), problems.size());
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

// `tollgate ca init|rotate` (DESIGN.md "CLI").
struct CaArgs {
  std::string dir;
  std::string key_type = "ecdsa-p256";
  int days = 3650;
  std::string name;
  std::vector<std::string> permit_dns;
};

std::string utcTime(time_t t) {
  struct tm tm {};
  char buf[32];
  if (gmtime_r(&t, &tm) == nullptr ||
      std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm) == 0) {
    return std::to_string(t);
  }
  return buf;
}

void printCa(const tollgate::ca::CertInfo& c, const std::string& key_path, const char* key_note) {
  std::printf("  %-12s %s\n", "certificate", c.path.c_str());
  std::printf("  %-12s %s%s\n", "private key", key_path.c_str(), key_note);
  std::printf("  %-12s %s\n", "subject", c.subject.c_str());
  std::printf("  %-12s %s\n", "SHA-256", c.fingerprint_sha256.c_str());
  std::printf("  %-12s %s\n", "expires", utcTime(c.not_after).c_str());
}

int caCommand(const CaArgs& args, bool rotate) {
  tollgate::ca::CaOptions options;
  options.key_type = tollgate::ca::parseKeyType(args.key_type).value_or(options.key_type);
  options.validity_days = args.days;
  options.common_name = args.name;
  options.permitted_dns = args.permit_dns;
  auto files =
      rotate ? tollgate::ca::rotateCa(args.dir, options) : tollgate::ca::initCa(args.dir, options);
  if (!files) {
    std::fprintf(stderr, "tollgate: error: %s\n", files.message().c_str());
    return kExitError;
  }
  std::printf("%s %s\n", rotate ? "rotated the CA in" : "created a CA in", args.dir.c_str());
  printCa(files->cert, files->key_path, " (mode 0600; never copy it into a sandbox)");
  std::printf("  %-12s %s\n", "key type",
              std::string(tollgate::ca::keyTypeName(files->key_type)).c_str());
  if (!args.permit_dns.empty()) {
    std::string names;
    for (const auto& n : args.permit_dns) {
      names += (names.empty() ? "" : ", ") + n;
    }
    std::printf("  %-12s %s (and their subdomains; no IP addresses)\n", "valid for", names.c_str());
  }
  const std::string crt = files->cert.path;
  if (rotate) {
    std::printf("previous CA, kept for the overlap:\n");
    if (files->prev) {
      printCa(*files->prev, files->prev_key_path, "");
    } else {
      std::printf("  %s/%s and %s (certificate unreadable)\n", args.dir.c_str(),
                  tollgate::ca::kPrevCertFile, files->prev_key_path.c_str());
    }
    std::printf(
        "\nTo switch without breaking sandboxes:\n"
        "  1. add the new %s to every sandbox's trust store next to the old one\n"
        "     (e.g. as tollgate-next.crt beside tollgate.crt, then update-ca-certificates);\n"
        "  2. restart tollgate, so new leaf certificates are signed by the new CA;\n"
        "  3. once every sandbox trusts the new CA, remove the old certificate from the\n"
        "     trust stores and delete %s/%s and %s/%s.\n",
        crt.c_str(), args.dir.c_str(), tollgate::ca::kPrevCertFile, args.dir.c_str(),
        tollgate::ca::kPrevKeyFile);
    return kExitOk;
  }
  std::printf(
      "\nTo make a sandbox trust it, install only the certificate in its trust store:\n"
      "  Debian, Ubuntu, Alpine: copy %s to /usr/local/share/ca-certificates/tollgate.crt\n"
      "                          and run update-ca-certificates\n"
      "  Fedora, RHEL:           copy it to /etc/pki/ca-trust/source/anchors/tollgate.crt\n"
      "                          and run update-ca-trust\n"
      "Runtimes with their own bundle need it too (Node: NODE_EXTRA_CA_CERTS; Python\n"
      "requests/certifi: REQUESTS_CA_BUNDLE; Java: keytool -importcert). Check inside the\n"
      "sandbox with `openssl x509 -noout -fingerprint -sha256 -in FILE`: it must print\n"
      "the SHA-256 above.\n",
      crt.c_str());
  return kExitOk;
}

// Talks to the running daemon over gateway.control (HTTP/1.0 on a unix
// socket) and prints the JSON answer.
int controlRequest(const std::string& control, const char* method, const char* path) {
  sockaddr_un sun{};
  if (control.size() >= sizeof(sun.sun_path)) {
    std::fprintf(stderr, "tollgate: error: control socket path too long: %s\n", control.c_str());
    return kExitError;
  }
  tollgate::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, control.c_str(), control.size());
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
    std::fprintf(stderr,
                 "tollgate: error: cannot reach the daemon at %s: %s (is `tollgate run` running? "
                 "pass --control or --config to name its socket)\n",
                 control.c_str(), std::strerror(errno));
    return kExitError;
  }
  timeval tv{30, 0};  // a reload re-reads secrets; still bounded
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string req = std::string(method) + " " + path + " HTTP/1.0\r\nHost: tollgate\r\n" +
                    "Content-Length: 0\r\n\r\n";
  if (send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    std::fprintf(stderr, "tollgate: error: writing to %s: %s\n", control.c_str(),
                 std::strerror(errno));
    return kExitError;
  }
  std::string resp;
  char buf[8192];
  for (ssize_t n; (n = read(fd.get(), buf, sizeof(buf))) > 0;) {
    resp.append(buf, static_cast<size_t>(n));
  }
  auto split = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.", 0) != 0 || split == std::string::npos) {
    std::fprintf(stderr, "tollgate: error: no valid answer from %s\n", control.c_str());
    return kExitError;
  }
  std::fputs(resp.c_str() + split + 4, stdout);
  return resp.compare(9, 3, "200") == 0 ? kExitOk : kExitError;
}

std::string controlPath(const std::string& control, const std::string& config) {
  if (!control.empty()) {
    return control;
  }
  if (!config.empty()) {
    auto parsed = tollgate::gateway::loadConfig(config);
    if (auto* cfg = std::get_if<tollgate::gateway::Config>(&parsed)) {
      return cfg->gateway.control;
    }
  }
  return tollgate::gateway::GatewayConfig{}.control;
}

// A fresh placeholder: what a sandbox holds instead of the real secret. It
// must be unguessable (it is a capability inside tollgate's rewriter) and
// recognisable in logs of the sandbox's own tools.
int mintPlaceholder(const std::string& name) {
  std::string tag;
  for (char c : name) {
    if (tag.size() < 16 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
      tag.push_back(c);
    }
  }
  unsigned char random[20];
  if (RAND_bytes(random, sizeof(random)) != 1) {
    std::fprintf(stderr, "tollgate: error: no randomness available (RAND_bytes failed)\n");
    return kExitError;
  }
  std::string out = "tgph_" + (tag.empty() ? std::string("cred") : tag) + "_";
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char b : random) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  std::printf("%s\n", out.c_str());
  return kExitOk;
}

// `tollgate doctor`: survey the host, print the findings. Read-only.
int doctor(const std::string& config, bool json, bool strict) {
  tollgate::gateway::doctor::ProbeOptions options;
  if (!config.empty()) {
    options.config_path = config;
    options.config_given = true;
  }
  auto findings = tollgate::gateway::doctor::evaluate(tollgate::gateway::doctor::probeHost(options));
  std::string out = json ? tollgate::gateway::doctor::renderJson(findings)
                         : tollgate::gateway::doctor::renderTable(findings);
  std::fputs(out.c_str(), stdout);
  return tollgate::gateway::doctor::exitCode(findings, strict);
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

  CaArgs ca_args;
  auto* ca_cmd = app.add_subcommand("ca", "create or rotate the CA that signs MITM certificates");
  ca_cmd->require_subcommand(1);
  auto* ca_init = ca_cmd->add_subcommand(
      "init", "create DIR/ca.crt (0644) and DIR/ca.key (0600); refuses to overwrite");
  auto* ca_rotate = ca_cmd->add_subcommand(
      "rotate", "replace the CA in DIR, keeping the old one as ca.prev.* for the overlap");
  for (auto* sub : {ca_init, ca_rotate}) {
    sub->add_option("--dir", ca_args.dir, "CA directory (created 0700 if missing)")->required();
    sub->add_option("--key-type", ca_args.key_type, "CA key type (default ecdsa-p256)")
        ->check(CLI::IsMember({"ecdsa-p256", "rsa-2048", "rsa-3072"}));
    sub->add_option("--days", ca_args.days, "validity in days (default 3650)")
        ->check(CLI::Range(1, 36500));
    sub->add_option("--name", ca_args.name,
                    "subject CN (default: tollgate sandbox CA <hostname> <date>)");
    sub->add_option("--permit-dns", ca_args.permit_dns,
                    "only valid for these DNS names and their subdomains (nameConstraints); "
                    "repeatable");
  }

  std::string control;
  auto* status = app.add_subcommand("status", "print the running daemon's status as JSON");
  auto* reload = app.add_subcommand(
      "reload", "re-read config and secrets in the running daemon (same as SIGHUP)");
  for (auto* sub : {status, reload}) {
    sub->add_option("--control", control, "control socket (default: gateway.control)");
    sub->add_option("--config", config, "config file naming the control socket");
  }

  std::string credential_name;
  auto* cred_cmd = app.add_subcommand("credential", "placeholders for credentials");
  cred_cmd->require_subcommand(1);
  auto* cred_mint = cred_cmd->add_subcommand(
      "mint", "print a fresh random placeholder for credential NAME (160 random bits)");
  cred_mint->add_option("NAME", credential_name, "credential name, as under `credentials:`")
      ->required();

  bool doctor_json = false;
  bool doctor_strict = false;
  auto* doctor_cmd = app.add_subcommand(
      "doctor", "survey the host (kernel features, br_netfilter, forwarding, other firewalls, "
                "interfaces, CA, daemon); changes nothing");
  doctor_cmd->add_option("--config", config,
                         std::string("config file (default ") +
                             tollgate::gateway::doctor::kDefaultConfigPath + ")");
  doctor_cmd->add_flag("--json", doctor_json, "print the findings as JSON");
  doctor_cmd->add_flag("--strict", doctor_strict, "exit 1 when any finding fails");

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
  if (status->parsed()) {
    return controlRequest(controlPath(control, config), "GET", "/status");
  }
  if (reload->parsed()) {
    return controlRequest(controlPath(control, config), "POST", "/reload");
  }
  if (doctor_cmd->parsed()) {
    return doctor(config, doctor_json, doctor_strict);
  }
  if (cred_mint->parsed()) {
    return mintPlaceholder(credential_name);
  }
  if (ca_init->parsed() || ca_rotate->parsed()) {
    return caCommand(ca_args, ca_rotate->parsed());
  }
  return kExitUsage;
}
