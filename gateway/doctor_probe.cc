#include "gateway/doctor_probe.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <net/if.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <variant>

#include "base/handles.h"
#include "ca/ca.h"

namespace tollgate::gateway::doctor {
namespace {

constexpr size_t kMaxControlAnswer = size_t{1} << 20;
constexpr size_t kMaxKernelConfig = size_t{8} << 20;

std::optional<int> readInt(const std::string& path) {
  std::ifstream in(path);
  int v = 0;
  if (!(in >> v)) {
    return std::nullopt;
  }
  return v;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::string> readLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      out.push_back(line);
    }
  }
  return out;
}

// --- kernel config -------------------------------------------------------

// The module that provides each symbol when it is =m.
std::string moduleOf(std::string_view symbol) {
  static const std::map<std::string_view, std::string_view> kModules = {
      {"CONFIG_NF_TABLES", "nf_tables"},
      {"CONFIG_NF_TABLES_INET", "nf_tables"},
      {"CONFIG_NF_CONNTRACK", "nf_conntrack"},
      {"CONFIG_NFT_CT", "nft_ct"},
      {"CONFIG_NFT_NAT", "nft_nat"},
      {"CONFIG_NFT_REDIR", "nft_redir"},
      {"CONFIG_NFT_TPROXY", "nft_tproxy"},
      {"CONFIG_NFT_SOCKET", "nft_socket"},
      {"CONFIG_NF_TPROXY_IPV4", "nf_tproxy_ipv4"},
      {"CONFIG_NF_TPROXY_IPV6", "nf_tproxy_ipv6"},
      {"CONFIG_NFT_QUEUE", "nft_queue"},
      {"CONFIG_NFT_COMPAT", "nft_compat"},
      {"CONFIG_NETFILTER_XT_TARGET_NFQUEUE", "xt_NFQUEUE"},
      {"CONFIG_NFT_REJECT", "nft_reject"},
      {"CONFIG_NFT_REJECT_INET", "nft_reject_inet"},
  };
  auto it = kModules.find(symbol);
  return it == kModules.end() ? std::string() : std::string(it->second);
}

// Reads a kernel config (gzip or plain; gzread passes plain files through).
std::optional<std::string> readKernelConfig(const std::string& path) {
  GzFile gz(gzopen(path.c_str(), "rb"));
  if (!gz) {
    return std::nullopt;
  }
  std::string text;
  char buf[65536];
  for (;;) {
    int n = gzread(gz.get(), buf, sizeof(buf));
    if (n < 0) {
      return std::nullopt;
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxKernelConfig) {
      return std::nullopt;
    }
  }
  return text;
}

void probeKernel(HostFacts& f) {
  std::optional<std::string> text;
  for (const std::string& path :
       {std::string("/proc/config.gz"), "/boot/config-" + f.kernel_release}) {
    if ((text = readKernelConfig(path)) && text->find("CONFIG_") != std::string::npos) {
      f.kernel_config_source = path;
      break;
    }
    text.reset();
  }
  if (!text) {
    return;
  }
  f.kernel_config_known = true;
  std::map<std::string, char> states;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (line.starts_with("CONFIG_") && eq != std::string::npos && eq + 1 < line.size()) {
      states[line.substr(0, eq)] = line[eq + 1];
    }
  }
  std::set<std::string> loaded;
  for (const std::string& line : readLines("/proc/modules")) {
    loaded.insert(line.substr(0, line.find(' ')));
  }
  std::string deps;
  {
    std::ifstream in_dep("/lib/modules/" + f.kernel_release + "/modules.dep");
    std::stringstream ss;
    ss << in_dep.rdbuf();
    deps = ss.str();
  }
  for (const KernelNeed& need : kernelSymbols()) {
    KernelSymbol k;
    auto it = states.find(std::string(need.symbol));
    k.state = it == states.end() ? 'n' : it->second;
    if (k.state == 'm') {
      std::string mod = moduleOf(need.symbol);
      k.module_loaded = loaded.count(mod) != 0 || exists("/sys/module/" + mod);
      k.module_available = deps.find("/" + mod + ".ko") != std::string::npos;
    }
    f.kernel[std::string(need.symbol)] = k;
  }
}

// --- nftables (read-only netlink dump) ------------------------------------

std::string familyName(uint32_t family) {
  switch (family) {
    case NFPROTO_INET:
      return "inet";
    case NFPROTO_IPV4:
      return "ip";
    case NFPROTO_IPV6:
      return "ip6";
    case NFPROTO_BRIDGE:
      return "bridge";
    case NFPROTO_ARP:
      return "arp";
    case NFPROTO_NETDEV:
      return "netdev";
    default:
      return std::to_string(family);
  }
}

std::string hookName(uint32_t family, uint32_t hook) {
  if (family == NFPROTO_NETDEV) {
    return hook == 0 ? "ingress" : hook == 1 ? "egress" : std::to_string(hook);
  }
  if (family == NFPROTO_ARP) {
    static const char* kArp[] = {"input", "output", "forward"};
    return hook < 3 ? kArp[hook] : std::to_string(hook);
  }
  static const char* kInet[] = {"prerouting", "input",       "forward",
                                "output",     "postrouting", "ingress"};
  return hook < 6 ? kInet[hook] : std::to_string(hook);
}

int tableCb(const nlmsghdr* nlh, void* data) {
  ::tollgate::NftTable t(nftnl_table_alloc());  // the handle, not doctor::NftTable
  if (!t || nftnl_table_nlmsg_parse(nlh, t.get()) < 0) {
    return MNL_CB_OK;  // skip what we cannot parse; the dump goes on
  }
  auto* out = static_cast<std::vector<NftTable>*>(data);
  const char* name = nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME);
  out->push_back(NftTable{familyName(nftnl_table_get_u32(t.get(), NFTNL_TABLE_FAMILY)),
                          name != nullptr ? name : ""});
  return MNL_CB_OK;
}

int chainCb(const nlmsghdr* nlh, void* data) {
  ::tollgate::NftChain c(nftnl_chain_alloc());
  if (!c || nftnl_chain_nlmsg_parse(nlh, c.get()) < 0 ||
      !nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM)) {
    return MNL_CB_OK;  // regular chains are not hooked into the stack
  }
  auto* out = static_cast<std::vector<NftChain>*>(data);
  auto str = [&](uint16_t attr) {
    const char* s =
        nftnl_chain_is_set(c.get(), attr) ? nftnl_chain_get_str(c.get(), attr) : nullptr;
    return std::string(s != nullptr ? s : "");
  };
  uint32_t family = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_FAMILY);
  NftChain chain;
  chain.family = familyName(family);
  chain.table = str(NFTNL_CHAIN_TABLE);
  chain.name = str(NFTNL_CHAIN_NAME);
  chain.type = str(NFTNL_CHAIN_TYPE);
  chain.hook = hookName(family, nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM));
  chain.priority = nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO);
  chain.policy_drop = nftnl_chain_is_set(c.get(), NFTNL_CHAIN_POLICY) &&
                      nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_POLICY) == NF_DROP;
  out->push_back(std::move(chain));
  return MNL_CB_OK;
}

// One NLM_F_DUMP request of `msg_type` over all families; `cb` gets each
// answer. Empty string on success, else why not.
std::string nftDump(uint16_t msg_type, mnl_cb_t cb, void* data, std::chrono::milliseconds timeout) {
  MnlSocket nl(mnl_socket_open(NETLINK_NETFILTER));
  if (!nl) {
    return std::string("netlink socket: ") + std::strerror(errno);
  }
  if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return std::string("netlink bind: ") + std::strerror(errno);
  }
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(mnl_socket_get_fd(nl.get()), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
  const uint32_t seq = static_cast<uint32_t>(time(nullptr));
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), msg_type, NFPROTO_UNSPEC, NLM_F_DUMP, seq);
  if (mnl_socket_sendto(nl.get(), nlh, nlh->nlmsg_len) < 0) {
    return std::string("netlink send: ") + std::strerror(errno);
  }
  const uint32_t portid = mnl_socket_get_portid(nl.get());
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl.get(), buf.data(), buf.size());
    if (n < 0) {
      return std::string("netlink receive: ") + std::strerror(errno);
    }
    int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, cb, data);
    if (r < 0) {
      return std::string("netlink dump: ") + std::strerror(errno);
    }
    if (r == MNL_CB_STOP) {
      return "";
    }
  }
}

void probeNft(HostFacts& f, std::chrono::milliseconds timeout) {
  f.nft_error = nftDump(NFT_MSG_GETTABLE, tableCb, &f.nft_tables, timeout);
  if (f.nft_error.empty()) {
    f.nft_error = nftDump(NFT_MSG_GETCHAIN, chainCb, &f.nft_chains, timeout);
  }
  for (const auto& [file, family] :
       {std::pair<const char*, const char*>{"/proc/net/ip_tables_names", "ip"},
        {"/proc/net/ip6_tables_names", "ip6"}}) {
    for (const std::string& name : readLines(file)) {
      f.legacy_iptables.push_back(std::string(family) + " " + name);
    }
  }
}

// --- interfaces -----------------------------------------------------------

void probeInterfaces(HostFacts& f, const std::vector<std::string>& names) {
  ifaddrs* raw = nullptr;
  IfAddrs addrs(getifaddrs(&raw) == 0 ? raw : nullptr);
  for (const std::string& name : names) {
    InterfaceFacts i;
    i.name = name;
    i.exists = if_nametoindex(name.c_str()) != 0;
    i.is_bridge = exists("/sys/class/net/" + name + "/bridge");
    if (i.is_bridge) {
      std::error_code ec;
      for (const auto& e :
           std::filesystem::directory_iterator("/sys/class/net/" + name + "/brif", ec)) {
        i.bridge_ports.push_back(e.path().filename().string());
      }
      std::sort(i.bridge_ports.begin(), i.bridge_ports.end());
    }
    i.rp_filter = readInt("/proc/sys/net/ipv4/conf/" + name + "/rp_filter");
    for (ifaddrs* a = addrs.get(); a != nullptr; a = a->ifa_next) {
      if (a->ifa_name == nullptr || name != a->ifa_name) {
        continue;
      }
      i.up = i.up || (a->ifa_flags & IFF_UP) != 0;
      if (a->ifa_addr == nullptr) {
        continue;
      }
      char text[INET6_ADDRSTRLEN] = {};
      if (a->ifa_addr->sa_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
        if (inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)) != nullptr) {
          i.ipv4.push_back(text);
        }
      } else if (a->ifa_addr->sa_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
        if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr)) {
          continue;  // not a redirect target
        }
        if (inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text)) != nullptr) {
          i.ipv6.push_back(text);
        }
      }
    }
    f.interfaces.push_back(std::move(i));
  }
}

// --- CA -------------------------------------------------------------------

std::optional<time_t> certNotAfter(const std::string& path) {
  FilePtr fp(std::fopen(path.c_str(), "r"));
  if (!fp) {
    return std::nullopt;
  }
  X509Ptr cert(PEM_read_X509(fp.get(), nullptr, nullptr, nullptr));
  struct tm tm {};
  if (!cert || ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  return timegm(&tm);
}

CaFacts probeCa(const ConfigSummary& cfg) {
  CaFacts ca;
  struct stat st {};
  ca.cert_exists = ::stat(cfg.ca_cert.c_str(), &st) == 0;
  if (::lstat(cfg.ca_key.c_str(), &st) == 0) {
    ca.key_exists = true;
    ca.key_mode = st.st_mode & 07777;
    ca.key_uid = st.st_uid;
  }
  if (ca.cert_exists) {
    ca.not_after = certNotAfter(cfg.ca_cert);
  }
  if (ca.cert_exists && ca.key_exists) {
    // The same checks `tollgate run` makes; loading reads the key into this
    // short-lived process only.
    auto loaded = ca::Authority::load(cfg.ca_cert, cfg.ca_key);
    if (!loaded) {
      ca.load_error = loaded.message();
    }
  }
  return ca;
}

// --- credentials (existence only; values are never read) -----------------

// The unit file or drop-in of tollgate.service that loads credential `name`:
// "" if none does, nullopt if there is no tollgate.service at all.
std::optional<std::string> unitLoading(const std::string& name,
                                       const std::vector<std::string>& unit_dirs) {
  std::vector<std::string> files;
  for (const std::string& dir : unit_dirs) {
    if (exists(dir + "/tollgate.service")) {
      files.push_back(dir + "/tollgate.service");
    }
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir + "/tollgate.service.d", ec)) {
      if (e.path().extension() == ".conf") {
        files.push_back(e.path().string());
      }
    }
  }
  if (files.empty()) {
    return std::nullopt;
  }
  for (const std::string& file : files) {
    for (std::string line : readLines(file)) {
      line.erase(0, line.find_first_not_of(" \t"));
      for (const char* key : {"LoadCredential=", "LoadCredentialEncrypted="}) {
        if (line.starts_with(std::string(key) + name + ":") || line == std::string(key) + name) {
          return file;
        }
      }
    }
  }
  return std::string();
}

std::vector<CredentialFacts> probeCredentials(const ConfigSummary& cfg,
                                              const std::vector<std::string>& unit_dirs) {
  std::vector<CredentialFacts> out;
  const char* cred_dir = std::getenv("CREDENTIALS_DIRECTORY");
  for (const CredentialRef& ref : cfg.credentials) {
    CredentialFacts c;
    c.source = ref;
    struct stat st {};
    if (ref.kind == CredentialSource::File) {
      c.exists = ::stat(ref.ref.c_str(), &st) == 0;
      if (*c.exists) {
        c.mode = st.st_mode & 07777;
      }
    } else if (ref.kind == CredentialSource::Credential) {
      if (cred_dir != nullptr && *cred_dir != '\0') {
        c.exists = ::stat((std::string(cred_dir) + "/" + ref.ref).c_str(), &st) == 0;
      } else {
        c.unit_line_in = unitLoading(ref.ref, unit_dirs);
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

// --- daemon ---------------------------------------------------------------

DaemonFacts probeDaemon(const std::string& control, std::chrono::milliseconds timeout) {
  DaemonFacts d;
  d.control = control;
  struct stat st {};
  d.socket_exists = ::stat(control.c_str(), &st) == 0;
  if (!d.socket_exists) {
    return d;
  }
  sockaddr_un sun{};
  if (control.size() >= sizeof(sun.sun_path)) {
    d.error = "socket path too long";
    return d;
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    d.error = std::string("socket: ") + std::strerror(errno);
    return d;
  }
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, control.c_str(), control.size());
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
    // A stopped daemon leaves its socket file behind: nobody listening is
    // "not running", not "hung".
    d.refused = errno == ECONNREFUSED;
    d.error = std::string("connect: ") + std::strerror(errno);
    return d;
  }
  const std::string req = "GET /status HTTP/1.0\r\nHost: tollgate\r\n\r\n";
  if (send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    d.error = std::string("send: ") + std::strerror(errno);
    return d;
  }
  std::string resp;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      d.error = errno == EAGAIN ? "no answer within the timeout"
                                : std::string("read: ") + std::strerror(errno);
      return d;
    }
    if (n == 0) {
      break;
    }
    resp.append(buf, static_cast<size_t>(n));
    if (resp.size() > kMaxControlAnswer) {
      d.error = "answer too large";
      return d;
    }
  }
  auto split = resp.find("\r\n\r\n");
  if (!resp.starts_with("HTTP/1.") || resp.size() < 12 || resp.compare(9, 3, "200") != 0 ||
      split == std::string::npos) {
    d.error = "not an HTTP 200 answer: " + resp.substr(0, resp.find('\r'));
    return d;
  }
  if (!nlohmann::json::accept(resp.substr(split + 4))) {
    d.error = "the answer is not JSON";
    return d;
  }
  d.answered = true;
  return d;
}

}  // namespace

HostFacts probeHost(const ProbeOptions& options) {
  HostFacts f;
  f.now = time(nullptr);
  f.euid = geteuid();
  utsname u{};
  if (uname(&u) == 0) {
    f.kernel_release = u.release;
  }

  f.config_path = options.config_path;
  f.config_given = options.config_given;
  f.config_found = exists(options.config_path);
  auto parsed = loadConfig(options.config_path);
  if (auto* errors = std::get_if<std::vector<ConfigError>>(&parsed)) {
    for (const ConfigError& e : *errors) {
      f.config_errors.push_back(e.toString());
    }
  } else {
    f.config = summarize(std::get<Config>(parsed));
  }

  f.ip_forward = readInt("/proc/sys/net/ipv4/ip_forward");
  f.ipv6_forwarding = readInt("/proc/sys/net/ipv6/conf/all/forwarding");
  f.rp_filter_all = readInt("/proc/sys/net/ipv4/conf/all/rp_filter");
  f.br_netfilter = exists("/proc/sys/net/bridge");
  f.bridge_nf_call_iptables = readInt("/proc/sys/net/bridge/bridge-nf-call-iptables");
  f.bridge_nf_call_ip6tables = readInt("/proc/sys/net/bridge/bridge-nf-call-ip6tables");

  probeKernel(f);
  probeNft(f, options.timeout);
  if (f.config) {
    probeInterfaces(f, f.config->interfaces);
    f.ca = probeCa(*f.config);
    f.credentials = probeCredentials(*f.config, options.unit_dirs);
  }
  f.daemon = probeDaemon(f.config ? f.config->control : GatewayConfig{}.control, options.timeout);
  return f;
}

}  // namespace tollgate::gateway::doctor
