#include "gateway/server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "base/handles.h"
#include "ca/ca.h"
#include "gateway/config.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/privileges.h"
#include "gateway/redact.h"
#include "gateway/secrets.h"
#include "gateway/udp_admission.h"
#include "gateway/worker.h"
#include "mitm/sandbox_tls.h"
#include "mitm/upstream_tls.h"
#include "nat/addr_watch.h"
#include "nat/binding_counters.h"
#include "nat/conntrack.h"
#include "nat/nat.h"
#include "nat/policy_route.h"

namespace tollgate::gateway {
namespace {

constexpr std::chrono::milliseconds kDrainTimeout{5000};
// How often the port binding's drop counters are read for the log: often
// enough that an attempt shows while someone is looking, rarely enough that
// a flood of them is one line per interval.
constexpr std::chrono::seconds kBindingCheckInterval{10};

struct LocalAddr {
  std::string ifname;
  SockAddr addr;
  int prefix_len = 0;
};

int prefixLen(const sockaddr* mask) {
  if (mask == nullptr) {
    return 0;
  }
  const uint8_t* p = nullptr;
  size_t n = 0;
  if (mask->sa_family == AF_INET) {
    p = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(mask)->sin_addr);
    n = 4;
  } else if (mask->sa_family == AF_INET6) {
    p = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr);
    n = 16;
  }
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    bits += __builtin_popcount(p[i]);
  }
  return bits;
}

std::vector<LocalAddr> localAddresses() {
  std::vector<LocalAddr> out;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) {
    return out;
  }
  for (ifaddrs* i = ifa; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) {
      continue;
    }
    socklen_t len = i->ifa_addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (auto a = SockAddr::fromSockaddr(i->ifa_addr, len)) {
      out.push_back({i->ifa_name, *a, prefixLen(i->ifa_netmask)});
    }
  }
  freeifaddrs(ifa);
  return out;
}

bool isLinkLocal6(const SockAddr& a) {
  const uint8_t* b = a.addrBytes();
  return a.isV6() && b[0] == 0xfe && (b[1] & 0xc0) == 0x80;
}

std::string networkOf(const SockAddr& a, int prefix) {
  uint8_t bytes[16];
  std::memcpy(bytes, a.addrBytes(), a.addrLen());
  for (size_t i = 0; i < a.addrLen(); ++i) {
    int keep = std::clamp(prefix - static_cast<int>(i * 8), 0, 8);
    bytes[i] &= static_cast<uint8_t>(0xff << (8 - keep));
  }
  char text[INET6_ADDRSTRLEN];
  inet_ntop(a.family(), bytes, text, sizeof(text));
  return std::string(text) + "/" + std::to_string(prefix);
}

// Addresses tollgate must never connect to on a sandbox's behalf: its own,
// and the sandboxes' (DESIGN.md: always denied as upstreams). Loopback and
// 0.0.0.0/8 are checkUpstream()'s own; this set is rebuilt whenever a host
// address comes or goes (Daemon::followAddresses).
std::vector<Cidr> neverUpstream(const Config& cfg, const std::vector<LocalAddr>& local) {
  std::vector<Cidr> out;
  std::set<std::string> ifaces(cfg.gateway.interfaces.begin(), cfg.gateway.interfaces.end());
  for (const LocalAddr& l : local) {
    if (auto c = Cidr::parse(l.addr.ip() + (l.addr.isV4() ? "/32" : "/128"))) {
      out.push_back(*c);
    }
    if (ifaces.count(l.ifname) != 0 && !isLinkLocal6(l.addr)) {
      if (auto c = Cidr::parse(networkOf(l.addr, l.prefix_len))) {
        out.push_back(*c);
      }
    }
  }
  for (const Sandbox& sb : cfg.sandboxes) {
    out.insert(out.end(), sb.sources.begin(), sb.sources.end());
  }
  return out;
}

Result<std::vector<SockAddr>> listenAddresses(const GatewayConfig& g,
                                              const std::vector<LocalAddr>& local) {
  std::vector<SockAddr> out;
  for (const std::string& ifname : g.interfaces) {
    unsigned index = if_nametoindex(ifname.c_str());
    if (index == 0) {
      return makeError("gateway.interfaces: interface '" + ifname +
                       "' does not exist (create the bridge first, or fix the name)");
    }
    bool has_v4 = false;
    for (const LocalAddr& l : local) {
      if (l.ifname != ifname) {
        continue;
      }
      SockAddr a = l.addr;
      a.setPort(g.listen_port);
      if (a.isV4()) {
        has_v4 = true;
        out.push_back(a);
      } else if (g.ipv6 == Ipv6Mode::Capture) {
        // Link-local addresses carry their scope (sockaddr_in6 from getifaddrs).
        out.push_back(a);
      }
    }
    if (!has_v4) {
      return makeError("gateway.interfaces: interface '" + ifname +
                       "' has no IPv4 address; tollgate listens on the sandbox-facing "
                       "address (add one, e.g. `ip addr add 10.77.0.1/24 dev " +
                       ifname + "`)");
    }
  }
  return out;
}

// Soft limit up to the hard one (LimitNOFILE=, or prlimit): never above it,
// so an operator's lower hard limit holds.
void raiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return;
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  log::info("open files limit {}", static_cast<uint64_t>(rl.rlim_cur));
}

// tollgate holds its CA key (and later credentials) in memory: no core
// dumps, and same-uid processes may not ptrace it or read /proc/<pid>/mem.
void protectMemory() {
  rlimit none{0, 0};
  (void)setrlimit(RLIMIT_CORE, &none);
  (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

// SHA-256 of the config file as loaded, for `status` ("" if unreadable).
std::string fileDigest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!in.good() && !in.eof()) {
    return "";
  }
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

std::string rfc3339(std::chrono::system_clock::time_point tp) {
  time_t t = std::chrono::system_clock::to_time_t(tp);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

// Listens on a unix socket at `path` with `mode`, creating the parent
// directory (0755) if missing; a stale socket file is replaced.
Result<UniqueFd> listenUnix(const std::string& path, mode_t mode, std::string_view what) {
  sockaddr_un sun{};
  if (path.empty() || path.front() != '/' || path.size() >= sizeof(sun.sun_path)) {
    return makeError(std::string(what) + ": '" + path + "' must be an absolute path shorter than " +
                     std::to_string(sizeof(sun.sun_path)) + " bytes");
  }
  std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty()) {
    (void)mkdir(dir.c_str(), 0755);
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.c_str(), path.size());
  ::unlink(path.c_str());
  // Created with no permissions at all, then opened to `mode`: never a
  // moment where others can connect.
  mode_t old = umask(0777);
  int rc = bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun));
  umask(old);
  if (rc != 0 || chmod(path.c_str(), mode) != 0 || listen(fd.get(), 64) != 0) {
    return makeError(std::string(what) + ": cannot listen on " + path + ": " +
                     std::strerror(errno));
  }
  return fd;
}

// systemd readiness protocol (sd_notify(3)) without linking libsystemd.
void sdNotify(const char* state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || (path[0] != '/' && path[0] != '@')) {
    return;
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  size_t n = std::min(std::strlen(path), sizeof(sun.sun_path) - 1);
  std::memcpy(sun.sun_path, path, n);
  if (sun.sun_path[0] == '@') {
    sun.sun_path[0] = '\0';  // abstract namespace
  }
  (void)sendto(fd.get(), state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sun),
               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n));
}

ResolverSettings resolverSettings(const GatewayConfig& g) {
  ResolverSettings s;
  s.use_system = g.resolvers_system;
  s.servers = g.resolvers;
  return s;
}

// sandboxes[].ports as nat's port bindings, in sandbox order.
std::vector<nat::PortBinding> portBindings(const Config& c) {
  std::vector<nat::PortBinding> out;
  for (const Sandbox& sb : c.sandboxes) {
    if (sb.ports.empty()) {
      continue;
    }
    nat::PortBinding b{sb.name, sb.ports, {}};
    for (const Cidr& cidr : sb.sources) {
      const Cidr n = cidr.normalized();
      b.sources.push_back(nat::Prefix{!n.isV4(), n.bytes(), n.prefixLen()});
    }
    out.push_back(std::move(b));
  }
  return out;
}

nat::CaptureSpec captureSpec(const Config& c) {
  const GatewayConfig& g = c.gateway;
  nat::CaptureSpec spec;
  spec.bindings = portBindings(c);
  spec.interfaces = g.interfaces;
  spec.listen_port = g.listen_port;
  spec.ipv6_capture = g.ipv6 == Ipv6Mode::Capture;
  spec.dns_port = g.dns_port;
  spec.tproxy = g.capture == CaptureMode::Tproxy;
  return spec;
}

// The placeholders of a credential table, for redaction (audit, log, metrics).
std::shared_ptr<const PlaceholderList> placeholdersOf(const CredentialTable& table) {
  auto list = std::make_shared<PlaceholderList>();
  for (const mitm::CredentialSpec& spec : table.specs) {
    list->push_back({spec.name, spec.placeholder});
  }
  return list;
}

Result<std::shared_ptr<const Config>> load(const std::string& path) {
  auto parsed = loadConfig(path);
  if (auto* errs = std::get_if<std::vector<ConfigError>>(&parsed)) {
    std::string msg;
    for (const ConfigError& e : *errs) {
      msg += (msg.empty() ? "" : "\n") + e.toString();
    }
    return makeError(msg);
  }
  return std::make_shared<const Config>(std::move(std::get<Config>(parsed)));
}

class Daemon {
 public:
  explicit Daemon(std::string path) : path_(std::move(path)) {}

  int run() {
    auto cfg = load(path_);
    if (!cfg) {
      log::error("{}", cfg.message());
      return 1;
    }
    config_ = *cfg;
    const GatewayConfig& g = config_->gateway;
    if (g.capture == CaptureMode::Tproxy) {
      // Never start and drop traffic silently: TPROXY on a bridge whose
      // packets br_netfilter hands to the IP hooks does exactly that.
      if (auto t = nat::checkTproxyUsable(g.interfaces, g.ipv6 == Ipv6Mode::Capture); !t) {
        log::error("{}: gateway.{}", path_, t.message());
        return 1;
      }
    }
    // gateway.user is resolved now, so a bad one refuses before anything is installed.
    if (auto u = checkPrivilegeDrop(g.user); !u) {
      log::error("{}: {}", path_, u.message());
      return 1;
    }
    raiseFileLimit();
    protectMemory();
    // libevent (evdns) talks about resolver failures on stderr: route its
    // warnings into our log, drop its chatter.
    // Throttled: some (a failing accept on the control or metrics socket)
    // repeat in a tight loop.
    event_set_log_callback([](int severity, const char* msg) {
      static log::Throttle throttle;
      if (severity >= EVENT_LOG_WARN) {
        throttle.warn("libevent: {}", msg);
      }
    });
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();

    // Subscribed before the first read of the addresses, so that none added
    // in between is missed (its notification waits in the socket).
    auto watch = nat::AddrWatch::open();
    if (!watch) {
      log::error("{} (needed to keep addresses added later from being upstreams)", watch.message());
      return 1;
    }
    addr_watch_.emplace(std::move(*watch));
    auto local = localAddresses();
    auto addrs = listenAddresses(g, local);
    if (!addrs) {
      log::error("{}: {}", path_, addrs.message());
      return 1;
    }
    auto creds = loadCredentials(*config_, nullptr);
    if (!creds) {
      log::error("{}: {}", path_, creds.message());
      return 1;
    }
    runtime_.store(makeRuntime(config_, local, *creds));
    placeholders_ = placeholdersOf(**creds);
    log::setPlaceholders(placeholders_);

    bool mitm = usesMitm(*config_);
    if (g.deny_style == DenyStyle::Http403 || mitm) {
      // The CA mints the leaves MITM flows (and refusals inside TLS) are
      // served with; without it start-up fails rather than silently
      // relaying or refusing what policy wanted inspected.
      auto authority = ca::Authority::load(g.ca_cert, g.ca_key);
      if (!authority) {
        log::error(
            "{}: gateway.ca: {} ({} needs tollgate's CA; create one with "
            "`tollgate ca init --dir {}`)",
            path_, authority.message(), mitm ? "action: mitm" : "deny_style: http-403",
            g.state_dir);
        return 1;
      }
      ca::LeafOptions leaf_options;
      leaf_options.key_type =
          g.leaf_key == LeafKey::Rsa2048 ? ca::KeyType::kRsa2048 : ca::KeyType::kEcdsaP256;
      auto minter = ca::LeafMinter::create(*authority, leaf_options);
      auto ctx = mitm::makeSandboxServerCtx();
      if (!minter || !ctx) {
        log::error("{}", !minter ? minter.message() : ctx.message());
        return 1;
      }
      minter_ = std::move(*minter);
      sandbox_tls_ = std::move(*ctx);
      log::info("CA {} loaded (SHA-256 {})", g.ca_cert, (*authority)->fingerprintSha256());
    }
    if (mitm) {
      auto up = mitm::UpstreamTls::create(g.upstream_ca);
      if (!up) {
        log::error("{}: gateway.{}", path_, up.message());
        return 1;
      }
      upstream_tls_ = std::move(*up);
    }

    auto audit = AuditLog::open(g.audit_log);
    if (!audit) {
      log::error("{}: {}", path_, audit.message());
      return 1;
    }
    audit_ = std::move(*audit);
    audit_->setPlaceholders(placeholders_);

    std::vector<SockAddr> dns_addrs = *addrs;
    for (SockAddr& a : dns_addrs) {
      a.setPort(g.dns_port);
    }
    unsigned n = std::clamp(std::thread::hardware_concurrency(), 1u, 16u);
    for (unsigned i = 0; i < n; ++i) {
      auto w = Worker::create(
          static_cast<int>(i), *addrs, resolverSettings(g), audit_.get(), &counters_,
          [this] { return runtime_.load(); }, minter_.get(), sandbox_tls_.get(),
          upstream_tls_.get(), dns_addrs);
      if (!w) {
        log::error("{}", w.message());
        return 1;
      }
      workers_.push_back(std::move(*w));
    }

    main_base_.reset(event_base_new());
    event_base* base = main_base_.get();
    // Metrics are bound before anything touches the system, so a bad
    // address refuses start-up cleanly.
    if (auto m = startMetrics(base, g.metrics); !m) {
      log::error("{}: {}", path_, m.message());
      return 1;
    }
    if (auto c = startControl(base, g.control); !c) {
      log::error("{}: {}", path_, c.message());
      return 1;
    }
    config_digest_ = fileDigest(path_);

    // Listeners are bound before capture starts: a redirected SYN never
    // meets a closed port because of start-up order.
    if (g.capture == CaptureMode::Tproxy) {
      if (auto r = nat::installTproxyRouting(); !r) {
        log::error("{}", r.message());
        return 1;
      }
    }
    auto backend = nat::installCapture(captureSpec(*config_));
    if (!backend) {
      log::error("nftables: {}", backend.message());
      if (g.capture == CaptureMode::Tproxy) {
        (void)nat::removeTproxyRouting();
      }
      return 1;
    }
    // UDP / ICMP echo admission: until it listens, queued packets are
    // dropped by the kernel (no bypass), so the order only delays them.
    auto admission = UdpAdmission::start(
        base, nat::kDefaultQueueNum, [this] { return runtime_.load(); }, audit_.get(), &counters_);
    if (!admission) {
      log::error("{}", admission.message());
      (void)leaveTable();
      return 1;
    }
    udp_admission_ = std::move(*admission);
    // Grants a previous run left in conntrack would still pass: their flows
    // are decided again, under this policy, on their next packet.
    if (auto r = nat::deleteVerdictEntries(); !r) {
      log::error("{} (grants of a previous run would stay in force)", r.message());
      (void)leaveTable();
      return 1;
    }
    // Ports of bound sandboxes are isolated by table bridge tollgate either
    // way; the warning is about the unbound ones.
    const bool all_bound = std::all_of(config_->sandboxes.begin(), config_->sandboxes.end(),
                                       [](const Sandbox& sb) { return !sb.ports.empty(); });
    for (const std::string& w : nat::lateralTrafficWarnings(g.interfaces)) {
      if (!all_bound) {
        log::warn("{} (sandboxes with ports are isolated regardless)", w);
      }
    }
    if (auto w = unboundSandboxesWarning(*config_)) {
      log::warn("{}", *w);
    }
    log::info("UDP and ICMP echo admission on NFQUEUE {} ({} queue expression)",
              nat::kDefaultQueueNum, nat::queueBackendName(*backend));
    queue_backend_ = nat::queueBackendName(*backend);
    queue_backend_enum_ = *backend;
    // Everything that needs root is done. Drop before any worker thread
    // starts: credentials and capabilities are per thread.
    std::vector<std::string> reread{path_};
    for (const auto& [name, cred] : config_->credentials) {
      if (cred.source.kind == CredentialSource::File) {
        reread.push_back(cred.source.ref);  // reload re-reads secret files
      }
    }
    PrivilegeDrop drop{g.user, {g.audit_log}, reread};
    auto dropped = dropPrivileges(drop);
    if (!dropped) {
      log::error("{}: {}", path_, dropped.message());
      (void)leaveTable();  // best effort; a half-dropped process exits either way
      return 1;
    }
    for (const std::string& w : dropped->warnings) {
      log::warn("{}", w);
    }
    log::info("{}", dropped->summary);
    for (auto& w : workers_) {
      w->startThread();
    }

    EventPtr term(evsignal_new(base, SIGTERM, &Daemon::onStopSignal, base));
    EventPtr intr(evsignal_new(base, SIGINT, &Daemon::onStopSignal, base));
    EventPtr hup(evsignal_new(base, SIGHUP, &Daemon::onReloadSignal, this));
    EventPtr usr1(evsignal_new(base, SIGUSR1, &Daemon::onReopenSignal, this));
    for (event* e : {term.get(), intr.get(), hup.get(), usr1.get()}) {
      event_add(e, nullptr);
    }
    EventPtr addr_ev(
        event_new(base, addr_watch_->fd(), EV_READ | EV_PERSIST, &Daemon::onAddressChange, this));
    event_add(addr_ev.get(), nullptr);
    EventPtr binding_check(event_new(base, -1, EV_PERSIST, &Daemon::onBindingCheck, this));
    const timeval every = toTimeval(
        std::chrono::duration_cast<std::chrono::milliseconds>(kBindingCheckInterval).count());
    event_add(binding_check.get(), &every);
    started_ = std::chrono::steady_clock::now();
    std::string where;
    for (const SockAddr& a : *addrs) {
      where += (where.empty() ? "" : ", ") + a.toString();
    }
    log::info("ready: capturing TCP on {} -> listening on {} ({} workers)",
              fmt::join(g.interfaces, ","), where, workers_.size());
    sdNotify("READY=1");

    event_base_dispatch(base);

    sdNotify("STOPPING=1");
    log::info("stopping: draining open flows (up to {} ms)", kDrainTimeout.count());
    for (auto& w : workers_) {
      w->requestStop(kDrainTimeout);
    }
    for (auto& w : workers_) {
      w->join();
    }
    workers_.clear();
    udp_admission_.reset();  // queued packets are dropped from here on (fail closed)
    return leaveTable();
  }

 private:
  static bool usesMitm(const Config& cfg) {
    for (const Sandbox& sb : cfg.sandboxes) {
      if (sb.default_action == Action::Mitm) {
        return true;
      }
      for (const Rule& r : sb.rules) {
        if (r.action == Action::Mitm) {
          return true;
        }
      }
    }
    return false;
  }

  std::shared_ptr<const Runtime> makeRuntime(std::shared_ptr<const Config> cfg,
                                             const std::vector<LocalAddr>& local,
                                             std::shared_ptr<const CredentialTable> credentials) {
    auto rt = std::make_shared<Runtime>();
    rt->credentials = std::move(credentials);
    rt->addresses = addresses_;
    rt->stats = stats_;
    rt->limits = limits_;
    rt->never_upstream = neverUpstream(*cfg, local);
    rt->config = std::move(cfg);
    return rt;
  }

  // gateway.metrics: "IP:PORT" on a loopback address, or "unix:/path"
  // (mode 0660). Never on an address a sandbox could reach.
  Result<void> startMetrics(event_base* base, const std::string& spec) {
    if (spec.empty()) {
      return {};
    }
    http_.reset(evhttp_new(base));
    evhttp_set_allowed_methods(http_.get(), EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(http_.get(), &Daemon::onMetricsRequest, this);
    if (spec.rfind("unix:", 0) == 0) {
      std::string path = spec.substr(5);
      auto fd = listenUnix(path, 0660, "gateway.metrics");
      if (!fd) {
        return fd.error();
      }
      if (evhttp_accept_socket_with_handle(http_.get(), fd->get()) == nullptr) {
        return makeError("gateway.metrics: cannot serve on " + path);
      }
      (void)fd->release();  // evhttp owns it now
      log::info("metrics on unix:{}", path);
      return {};
    }
    auto addr = SockAddr::parseIpPort(spec);
    if (!addr) {
      return makeError("gateway.metrics: '" + spec + "' is not IP:PORT or unix:/path");
    }
    const uint8_t* b = addr->addrBytes();
    bool loopback = addr->isV4()
                        ? b[0] == 127
                        : (std::all_of(b, b + 15, [](uint8_t x) { return x == 0; }) && b[15] == 1);
    if (!loopback) {
      return makeError("gateway.metrics: " + spec +
                       " is not a loopback address; metrics must never be reachable from "
                       "sandboxes (use 127.0.0.1:PORT or unix:/run/tollgate/metrics.sock)");
    }
    if (evhttp_bind_socket_with_handle(http_.get(), addr->ip().c_str(), addr->port()) == nullptr) {
      return makeError("gateway.metrics: cannot listen on " + spec + ": " + std::strerror(errno));
    }
    log::info("metrics on http://{}/metrics", spec);
    return {};
  }

  // gateway.control: a root-only (0600) unix socket speaking HTTP/1.0:
  // GET /status (JSON), POST /reload.
  Result<void> startControl(event_base* base, const std::string& path) {
    auto fd = listenUnix(path, 0600, "gateway.control");
    if (!fd) {
      return fd.error();
    }
    control_.reset(evhttp_new(base));
    evhttp_set_allowed_methods(control_.get(), EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(control_.get(), &Daemon::onControlRequest, this);
    if (evhttp_accept_socket_with_handle(control_.get(), fd->get()) == nullptr) {
      return makeError("gateway.control: cannot serve on " + path);
    }
    (void)fd->release();  // evhttp owns it now
    return {};
  }

  nlohmann::ordered_json statusJson() const {
    const GatewayConfig& g = config_->gateway;
    nlohmann::ordered_json j;
    j["version"] = TOLLGATE_VERSION;
    j["pid"] = getpid();
    j["uptime_seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    j["config"] = {{"path", path_}, {"sha256", config_digest_}};
    j["capture"] = {{"mode", g.capture == CaptureMode::Redirect ? "redirect" : "tproxy"},
                    {"interfaces", g.interfaces},
                    {"listen_port", g.listen_port},
                    {"dns_port", g.dns_port},
                    {"ipv6", g.ipv6 == Ipv6Mode::Capture ? "capture" : "block"},
                    {"table", std::string("inet ") + nat::kTableName},
                    {"queue", queue_backend_},
                    {"workers", workers_.size()}};
    nlohmann::ordered_json counters;
    for (size_t i = 0; i < kCounterNames.size(); ++i) {
      counters[std::string(kCounterNames[i])] = counters_.get(static_cast<Counter>(i));
    }
    j["flows_active"] = counters_.get(Counter::kFlowsActive);
    j["counters"] = counters;
    std::vector<std::string> sandboxes;
    for (const Sandbox& sb : config_->sandboxes) {
      sandboxes.push_back(sb.name);
    }
    j["sandboxes"] = sandboxes;
    // Totals per sandbox since start (flows counted when they end).
    nlohmann::ordered_json per;
    auto totals = stats_->sandboxes.snapshot();
    for (const Sandbox& sb : config_->sandboxes) {
      SandboxTotals t = totals.count(sb.name) ? totals[sb.name] : SandboxTotals{};
      per[sb.name] = {{"flows", t.flows},
                      {"passthrough", t.passthrough},
                      {"mitm", t.mitm},
                      {"denied", t.denied},
                      {"bytes_up", t.bytes_up},
                      {"bytes_down", t.bytes_down},
                      {"dns_answered", t.dns_answered},
                      {"dns_refused", t.dns_refused},
                      {"flows_open", limits_->flows.inUse(sb.name)},
                      {"mitm_flows_open", limits_->mitm_flows.inUse(sb.name)}};
    }
    j["per_sandbox"] = per;
    // Drops by sandboxes[].ports since start, per sandbox and check.
    nlohmann::ordered_json binding = nlohmann::ordered_json::object();
    for (const auto& [sandbox, counts] : binding_totals_.totals()) {
      nlohmann::ordered_json checks;
      for (nat::BindingCheck c : nat::kBindingChecks) {
        checks[std::string(nat::bindingCheckName(c))] = counts[c];
      }
      binding[sandbox] = checks;
    }
    j["binding"] = binding;
    if (upstream_tls_) {
      auto st = upstream_tls_->stats();
      j["upstream_tls"] = {{"sessions_cached", st.sessions_cached}, {"resumed", st.resumed}};
    }
    if (minter_) {
      const auto& ca = minter_->authority();
      ca::LeafStats st = minter_->stats();
      j["ca"] = {{"subject", ca.subject()},
                 {"sha256", ca.fingerprintSha256()},
                 {"not_after", rfc3339(std::chrono::system_clock::from_time_t(ca.notAfter()))}};
      j["leaf_cache"] = {{"entries", st.entries}, {"hits", st.hits}, {"misses", st.misses}};
    } else {
      j["ca"] = nullptr;
    }
    j["last_reload"] = {{"ok", last_reload_ok_},
                        {"message", last_reload_message_},
                        {"at", last_reload_at_ ? rfc3339(*last_reload_at_) : ""},
                        {"ok_total", reloads_ok_},
                        {"failed_total", reloads_failed_}};
    return j;
  }

  static void reply(evhttp_request* req, int code, const char* reason, const std::string& text) {
    evbuffer* body = evbuffer_new();
    evbuffer_add(body, text.data(), text.size());
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, code, reason, body);
    evbuffer_free(body);
  }

  static void onControlRequest(evhttp_request* req, void* arg) {
    auto* self = static_cast<Daemon*>(arg);
    std::string_view uri = evhttp_request_get_uri(req) ? evhttp_request_get_uri(req) : "";
    auto cmd = evhttp_request_get_command(req);
    if (uri == "/status" && cmd == EVHTTP_REQ_GET) {
      (void)self->refreshBindingDrops();  // on failure: the totals of the last read
      reply(req, HTTP_OK, "OK", self->statusJson().dump(2) + "\n");
      return;
    }
    if (uri == "/reload" && cmd == EVHTTP_REQ_POST) {
      Result<void> r = self->reload();
      nlohmann::ordered_json j{{"ok", r.ok()}, {"message", r.ok() ? "reloaded" : r.message()}};
      reply(req, r.ok() ? HTTP_OK : 409, r.ok() ? "OK" : "Conflict", j.dump(2) + "\n");
      return;
    }
    reply(req, HTTP_NOTFOUND, "Not Found",
          R"({"error": "unknown request; use GET /status or POST /reload"})"
          "\n");
  }

  static void onMetricsRequest(evhttp_request* req, void* arg) {
    auto* self = static_cast<Daemon*>(arg);
    const char* uri = evhttp_request_get_uri(req);
    if (uri == nullptr || std::string_view(uri).substr(0, 8) != "/metrics") {
      evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
      return;
    }
    MetricsSnapshot snap;
    snap.counters = &self->counters_;
    if (self->minter_) {
      snap.leaves = self->minter_->stats();
    }
    snap.uptime_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - self->started_).count();
    if (self->upstream_tls_) {
      auto st = self->upstream_tls_->stats();
      snap.upstream_tls = MetricsSnapshot::UpstreamTlsStats{st.sessions_cached, st.resumed};
    }
    snap.reloads_ok = self->reloads_ok_;
    snap.reloads_failed = self->reloads_failed_;
    snap.stats = self->stats_.get();
    snap.limits = self->limits_.get();
    (void)self->refreshBindingDrops();  // on failure: the totals of the last read
    nat::BindingDrops binding = self->binding_totals_.totals();
    if (!binding.empty() || !portBindings(*self->config_).empty()) {
      snap.binding_drops.emplace();
      for (const auto& [sandbox, counts] : binding) {
        for (nat::BindingCheck c : nat::kBindingChecks) {
          snap.binding_drops->push_back(
              {sandbox, std::string(nat::bindingCheckName(c)), counts[c]});
        }
      }
    }
    // No label comes from a sandbox today; redacting keeps it that way.
    std::string text = redactPlaceholders(renderMetrics(snap), *self->placeholders_);
    evbuffer* body = evbuffer_new();
    evbuffer_add(body, text.data(), text.size());
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, HTTP_OK, "OK", body);
    evbuffer_free(body);
  }

  int leaveTable() {
    const GatewayConfig& g = config_->gateway;
    if (g.capture == CaptureMode::Tproxy) {
      // Diverted packets need this routing; blocked or uncaptured ones not.
      if (auto r = nat::removeTproxyRouting(); !r) {
        log::warn("{}", r.message());
      }
    }
    if (g.on_exit == OnExit::Block) {
      if (auto r = nat::installBlock(g.interfaces); !r) {
        log::error("nftables: could not install the blocking table: {}", r.message());
        return 1;
      }
      log::info("stopped; sandboxes on {} are blocked (on_exit: block)",
                fmt::join(g.interfaces, ","));
      return 0;
    }
    if (auto r = nat::removeTable(); !r) {
      log::error("nftables: could not remove table inet {}: {}", nat::kTableName, r.message());
      return 1;
    }
    log::info("stopped; capture table removed (on_exit: open)");
    return 0;
  }

  // Re-reads the config for new flows; the running one stays on any error.
  Result<void> reload() {
    sdNotify("RELOADING=1");
    Result<void> r = applyReload();
    last_reload_ok_ = r.ok();
    last_reload_message_ = r.ok() ? "reloaded" : r.message();
    last_reload_at_ = std::chrono::system_clock::now();
    if (r.ok()) {
      ++reloads_ok_;
      log::info("reloaded {}: new flows use the new policy", path_);
    } else {
      ++reloads_failed_;
      log::error("reload refused, the running configuration stays:\n{}", r.message());
    }
    sdNotify("READY=1");
    return r;
  }

  Result<void> applyReload() {
    auto cfg = load(path_);
    if (!cfg) {
      return cfg.error();
    }
    const GatewayConfig& old_g = config_->gateway;
    const GatewayConfig& new_g = (*cfg)->gateway;
    if (old_g.interfaces != new_g.interfaces || old_g.listen_port != new_g.listen_port ||
        old_g.dns_port != new_g.dns_port || old_g.ipv6 != new_g.ipv6 ||
        old_g.capture != new_g.capture || old_g.metrics != new_g.metrics ||
        old_g.control != new_g.control || old_g.resolvers_system != new_g.resolvers_system ||
        old_g.resolvers != new_g.resolvers || old_g.deny_style != new_g.deny_style ||
        old_g.ca_cert != new_g.ca_cert || old_g.ca_key != new_g.ca_key ||
        old_g.upstream_ca != new_g.upstream_ca || old_g.leaf_key != new_g.leaf_key ||
        usesMitm(**cfg) != usesMitm(*config_)) {
      return makeError(path_ +
                       ": gateway.interfaces, listen_port, dns_port, ipv6, capture, metrics, "
                       "control, resolvers, deny_style, ca, upstream_ca and turning mitm on or "
                       "off need a restart");
    }
    // Secrets are re-read too (files; environment values carry over).
    auto creds = loadCredentials(**cfg, runtime_.load()->credentials.get());
    if (!creds) {
      return makeError(path_ + ": " + creds.message());
    }
    // Port bindings follow the sandboxes' ports and sources: both tables are
    // replaced in one batch (established flows keep their conntrack state).
    if (portBindings(**cfg) != portBindings(*config_)) {
      nat::CaptureSpec spec = captureSpec(**cfg);
      spec.queue_backend = queue_backend_enum_;
      // The new tables count from zero: what the old ones counted is read
      // right before and kept in the totals.
      if (auto read = refreshBindingDrops(); !read) {
        log::warn("port binding counters: {} (drops since the last read are not counted)",
                  read.message());
      }
      if (auto r = nat::installCapture(spec); !r) {
        return makeError(path_ + ": sandboxes[].ports: " + r.message());
      }
      binding_totals_.tablesReplaced();
      log::info("port bindings replaced ({} sandboxes with ports)", spec.bindings.size());
      if (auto w = unboundSandboxesWarning(**cfg)) {
        log::warn("{}", *w);
      }
    }
    config_ = *cfg;
    config_digest_ = fileDigest(path_);
    runtime_.store(makeRuntime(config_, localAddresses(), *creds));
    // The audit writer and the log outlive the credential table: they learn
    // the new placeholders now.
    placeholders_ = placeholdersOf(**creds);
    log::setPlaceholders(placeholders_);
    audit_->setPlaceholders(placeholders_);
    // Admitted UDP / ICMP flows keep their verdict in conntrack: forget them
    // all, after the new policy is in place, so each is decided again on its
    // next packet (a revoked grant stops, an allowed flow is re-admitted).
    // The reload itself is done by now: a failure here is logged, not a refusal.
    if (auto r = nat::deleteVerdictEntries(); !r) {
      log::error("{} (UDP and ICMP echo flows admitted before this reload keep flowing)",
                 r.message());
    }
    return {};
  }

  // Reads the binding's drop counters into binding_totals_ (nothing to read
  // while no sandbox has ports: no chains count).
  Result<void> refreshBindingDrops() {
    if (portBindings(*config_).empty()) {
      return {};
    }
    auto now = nat::readBindingDrops();
    if (!now) {
      return now.error();
    }
    binding_totals_.observe(*now);
    return {};
  }

  // Every kBindingCheckInterval: one warning line naming each sandbox and
  // check whose drops grew since the last check, so a takeover or spoofing
  // attempt shows in the log (the counts are in metrics and status).
  void checkBindingDrops() {
    if (auto r = refreshBindingDrops(); !r) {
      if (r.message() != binding_read_error_) {  // once per distinct failure, not every interval
        log::warn("port binding counters: {} (drops are not reported until this is fixed)",
                  r.message());
        binding_read_error_ = r.message();
      }
      return;
    }
    if (!binding_read_error_.empty()) {
      log::info("port binding counters: readable again");
      binding_read_error_.clear();
    }
    nat::BindingDrops totals = binding_totals_.totals();
    auto increases = nat::bindingDropIncreases(binding_logged_, totals);
    if (!increases.empty()) {
      log::warn(
          "port binding dropped in the last {} s: {} (traffic from a sandbox's port with "
          "addresses that are not its own, or its addresses from another port: an address "
          "takeover or spoofing attempt)",
          kBindingCheckInterval.count(), nat::describeIncreases(increases));
    }
    binding_logged_ = std::move(totals);
  }

  // A host address came or went (rtnetlink): the never-upstream set is
  // rebuilt from the interfaces as they are now and swapped in with a new
  // Runtime (same config and credentials), so workers see it on their next
  // flow without a reload.
  void followAddresses() {
    auto read = addr_watch_->drain();
    if (!read) {
      log::warn("{} (re-reading host addresses)", read.message());
    } else {
      for (const nat::AddrChange& c : read->changes) {
        log::info("host address {} {}/{} (interface index {}){}", c.added ? "added" : "removed",
                  c.addr.ip(), c.prefix_len, c.ifindex,
                  c.added ? ": never an upstream from now on" : "");
      }
      if (read->changes.empty() && !read->resync) {
        return;
      }
    }
    std::shared_ptr<const Runtime> current = runtime_.load();
    runtime_.store(makeRuntime(config_, localAddresses(), current->credentials));
  }

  static void onAddressChange(evutil_socket_t, short, void* arg) {
    static_cast<Daemon*>(arg)->followAddresses();
  }

  static void onBindingCheck(evutil_socket_t, short, void* arg) {
    static_cast<Daemon*>(arg)->checkBindingDrops();
  }

  static void onStopSignal(evutil_socket_t, short, void* arg) {
    event_base_loopbreak(static_cast<event_base*>(arg));
  }
  static void onReloadSignal(evutil_socket_t, short, void* arg) {
    (void)static_cast<Daemon*>(arg)->reload();
  }
  static void onReopenSignal(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Daemon*>(arg);
    if (auto r = self->audit_->reopen(); !r) {
      log::error("{}", r.message());
    }
  }

  std::string path_;
  std::shared_ptr<const Config> config_;
  std::atomic<std::shared_ptr<const Runtime>> runtime_;
  std::unique_ptr<AuditLog> audit_;
  // The current credential table's placeholders (never null once started).
  std::shared_ptr<const PlaceholderList> placeholders_ = std::make_shared<PlaceholderList>();
  Counters counters_;
  std::unique_ptr<ca::LeafMinter> minter_;
  SslCtxPtr sandbox_tls_;
  std::unique_ptr<mitm::UpstreamTls> upstream_tls_;
  std::shared_ptr<AddressCache> addresses_ = std::make_shared<AddressCache>();
  std::shared_ptr<Stats> stats_ = std::make_shared<Stats>();
  std::shared_ptr<SandboxLimits> limits_ = std::make_shared<SandboxLimits>();
  std::string queue_backend_;  // "native" | "compat": the NFQUEUE expression in use
  nat::QueueBackend queue_backend_enum_ = nat::QueueBackend::Compat;  // reinstalls keep it
  std::vector<std::unique_ptr<Worker>> workers_;
  EventBasePtr main_base_;  // signals and metrics; declared before http_, which lives on it
  EvHttpPtr http_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  uint64_t reloads_ok_ = 0;
  uint64_t reloads_failed_ = 0;
  bool last_reload_ok_ = true;
  std::string last_reload_message_ = "none yet";
  std::optional<std::chrono::system_clock::time_point> last_reload_at_;
  std::string config_digest_;
  EvHttpPtr control_;
  std::unique_ptr<UdpAdmission> udp_admission_;  // lives on main_base_
  std::optional<nat::AddrWatch> addr_watch_;     // host address changes (rtnetlink)
  // sandboxes[].ports drops: totals since start (across table replacements),
  // the totals the last periodic check logged, and the read failure it last
  // logged ("" while reads work).
  nat::BindingDropTotals binding_totals_;
  nat::BindingDrops binding_logged_;
  std::string binding_read_error_;
};

}  // namespace

int runDaemon(const std::string& config_path) {
  Daemon d(config_path);
  return d.run();
}

}  // namespace tollgate::gateway
