// Topology: plans names and addresses from a TopologySpec, creates the
// namespaces in-process and configures links with `ip -batch`.
#include "netns-harness/harness.h"

#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "base/sockaddr.h"
#include "netns-harness/internal.h"

namespace tollgate::harness {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kMaxSandboxes = 200;
// Names stay within kMaxNsName whatever the pid: a generated prefix is at
// most "tg" + 7 digits + "x" + 3 digits + 3 letters = 16 characters, and
// "<prefix>-up-<name>" adds 4 + kMaxUpstreamName.
constexpr size_t kMaxPrefix = 16;
constexpr size_t kMaxUpstreamName = kMaxNsName - kMaxPrefix - 4;
constexpr int kFirstSandboxHost = 10;  // sandbox i gets host number 10 + i
constexpr milliseconds kIpTimeout{10000};
constexpr milliseconds kListenPoll{10};
constexpr milliseconds kPingInterval{200};

// ---- addresses ------------------------------------------------------------

struct Addr {
  int family = AF_UNSPEC;
  std::array<uint8_t, 16> bytes{};
  size_t size() const { return family == AF_INET ? 4 : 16; }
  int bits() const { return family == AF_INET ? 32 : 128; }
  bool operator==(const Addr& o) const { return family == o.family && bytes == o.bytes; }
  bool operator<(const Addr& o) const { return std::tie(family, bytes) < std::tie(o.family, o.bytes); }
};

struct Prefix {
  Addr addr;
  int len = 0;
};

std::optional<Addr> parseAddr(const std::string& s) {
  Addr a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return std::nullopt;
}

std::string toString(const Addr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(a.family, a.bytes.data(), buf, sizeof buf);
  return buf;
}

std::string toString(const Prefix& p) { return toString(p.addr) + "/" + std::to_string(p.len); }

bool bitSet(const Addr& a, int bit) { return (a.bytes[static_cast<size_t>(bit / 8)] >> (7 - bit % 8)) & 1; }

// Parses "10.77.0.0/24" and clears the host bits.
std::optional<Prefix> parsePrefix(const std::string& s) {
  size_t slash = s.find('/');
  if (slash == std::string::npos) {
    return std::nullopt;
  }
  std::optional<Addr> a = parseAddr(s.substr(0, slash));
  std::string len_str = s.substr(slash + 1);
  if (!a || len_str.empty() || len_str.size() > 3 ||
      !std::all_of(len_str.begin(), len_str.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return std::nullopt;
  }
  int len = std::stoi(len_str);
  if (len > a->bits()) {
    return std::nullopt;
  }
  for (int bit = len; bit < a->bits(); ++bit) {
    a->bytes[static_cast<size_t>(bit / 8)] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return Prefix{*a, len};
}

bool contains(const Prefix& p, const Addr& a) {
  if (p.addr.family != a.family) {
    return false;
  }
  for (int bit = 0; bit < p.len; ++bit) {
    if (bitSet(p.addr, bit) != bitSet(a, bit)) {
      return false;
    }
  }
  return true;
}

bool overlaps(const Prefix& a, const Prefix& b) { return a.len <= b.len ? contains(a, b.addr) : contains(b, a.addr); }

// The n-th address of p (n counted from the prefix base), if it fits the
// host part and is not the IPv4 broadcast address.
std::optional<Addr> nthHost(const Prefix& p, uint64_t n) {
  int host_bits = p.addr.bits() - p.len;
  uint64_t hosts = host_bits >= 63 ? UINT64_MAX : (uint64_t{1} << host_bits);
  if (n >= hosts || (p.addr.family == AF_INET && n + 1 >= hosts)) {
    return std::nullopt;
  }
  Addr a = p.addr;
  uint64_t carry = n;
  for (size_t i = a.size(); i-- > 0 && carry != 0;) {
    uint64_t sum = a.bytes[i] + (carry & 0xff);
    a.bytes[i] = static_cast<uint8_t>(sum);
    carry = (carry >> 8) + (sum >> 8);
  }
  return a;
}

// IPv6 host numbers spell the IPv4 one: sandbox 0 is 10.77.0.10 and
// fd77::10 (0x10), so logs read alike in both families.
uint64_t decimalAsHex(uint64_t n) { return std::stoull(std::to_string(n), nullptr, 16); }

// Addresses an upstream may not have outside the wan subnets.
bool unroutable(const Addr& a) {
  static const std::vector<Prefix> bad = [] {
    std::vector<Prefix> out;
    for (const char* s : {"0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3", "::/128", "::1/128", "fe80::/10", "ff00::/8",
                          "::ffff:0:0/96"}) {
      out.push_back(*parsePrefix(s));
    }
    return out;
  }();
  return std::any_of(bad.begin(), bad.end(), [&](const Prefix& p) { return contains(p, a); });
}

struct WanSubnet {
  Prefix prefix;
  Addr gateway;
};

const std::vector<WanSubnet>& wanSubnets() {
  static const std::vector<WanSubnet> subnets = [] {
    std::vector<WanSubnet> out;
    for (const char* gw : kWanGateways) {
      std::string s(gw);
      Prefix p = *parsePrefix(s);
      out.push_back({p, *parseAddr(s.substr(0, s.find('/')))});
    }
    return out;
  }();
  return subnets;
}

// ---- names ----------------------------------------------------------------

std::atomic<unsigned> g_counter{0};

std::string generatePrefix(pid_t owner) {
  std::random_device rd;
  std::string letters;
  for (int i = 0; i < 3; ++i) {
    letters += static_cast<char>('a' + rd() % 26);
  }
  // The counter wraps at 1000 to bound the length; the letters keep
  // prefixes apart, and namespace creation is exclusive anyway.
  return "tg" + std::to_string(owner) + "x" + std::to_string(g_counter.fetch_add(1) % 1000) + letters;
}

bool allOf(const std::string& s, bool (*ok)(char)) { return !s.empty() && std::all_of(s.begin(), s.end(), ok); }
bool isAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool isUpstreamChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// ---- plan -----------------------------------------------------------------

struct UpstreamPlan {
  std::string name, ns, host_if;
  std::vector<Addr> wan_addrs;          // inside a wan subnet
  std::vector<Prefix> wan_prefixes;     // their subnets
  std::vector<Addr> extra_addrs;        // routed via the first wan address of the family
  std::optional<Addr> gw4, gw6;         // default routes
  std::vector<std::string> all_addrs;   // as reported, normalised
};

struct Plan {
  std::string prefix, host_ns;
  std::optional<Prefix> subnet4, subnet6;
  Addr bridge4, bridge6;
  std::vector<Addr> sb4, sb6;
  std::vector<std::string> sb_ns, sb_if;
  std::vector<UpstreamPlan> upstreams;
  bool routes = true;
  bool needs_ipv6 = false;
  std::optional<bool> bridge_nf;
};

Result<Plan> makePlan(const TopologySpec& spec) {
  Plan plan;
  if (spec.sandboxes < 0 || spec.sandboxes > kMaxSandboxes) {
    return makeError("sandboxes: " + std::to_string(spec.sandboxes) + " is outside 0.." +
                     std::to_string(kMaxSandboxes));
  }
  if (spec.prefix.empty()) {
    plan.prefix = generatePrefix(spec.owner_pid > 0 ? spec.owner_pid : getpid());
  } else {
    if (!allOf(spec.prefix, isAlnum) || spec.prefix.size() > kMaxPrefix) {
      return makeError("prefix '" + spec.prefix + "': use 1.." + std::to_string(kMaxPrefix) + " letters or digits");
    }
    plan.prefix = spec.prefix;
  }
  plan.host_ns = plan.prefix + "-host";
  plan.routes = spec.sandbox_routes_via_bridge;
  plan.bridge_nf = spec.bridge_nf_call_iptables;

  plan.subnet4 = parsePrefix(spec.sandbox_subnet4);
  if (!plan.subnet4 || plan.subnet4->addr.family != AF_INET) {
    return makeError("sandbox_subnet4 '" + spec.sandbox_subnet4 + "': expected an IPv4 prefix like 10.77.0.0/24");
  }
  if (!spec.sandbox_subnet6.empty()) {
    plan.subnet6 = parsePrefix(spec.sandbox_subnet6);
    if (!plan.subnet6 || plan.subnet6->addr.family != AF_INET6) {
      return makeError("sandbox_subnet6 '" + spec.sandbox_subnet6 + "': expected an IPv6 prefix like fd77::/64 (or empty)");
    }
    plan.needs_ipv6 = true;
  }
  for (const std::optional<Prefix>& subnet : {plan.subnet4, plan.subnet6}) {
    if (!subnet) {
      continue;
    }
    for (const WanSubnet& wan : wanSubnets()) {
      if (overlaps(*subnet, wan.prefix)) {
        return makeError("sandbox subnet " + toString(*subnet) + " overlaps the wan subnet " + toString(wan.prefix));
      }
    }
    uint64_t last = kFirstSandboxHost + static_cast<uint64_t>(spec.sandboxes);
    if (subnet->addr.family == AF_INET6) {
      last = decimalAsHex(last);
    }
    if (!nthHost(*subnet, last)) {
      return makeError("sandbox subnet " + toString(*subnet) + " is too small for " + std::to_string(spec.sandboxes) +
                       " sandboxes (sandbox i gets host number " + std::to_string(kFirstSandboxHost) + "+i)");
    }
  }
  plan.bridge4 = *nthHost(*plan.subnet4, 1);
  if (plan.subnet6) {
    plan.bridge6 = *nthHost(*plan.subnet6, 1);
  }
  for (int i = 0; i < spec.sandboxes; ++i) {
    const uint64_t n = kFirstSandboxHost + static_cast<uint64_t>(i);
    plan.sb4.push_back(*nthHost(*plan.subnet4, n));
    if (plan.subnet6) {
      plan.sb6.push_back(*nthHost(*plan.subnet6, decimalAsHex(n)));
    }
    plan.sb_ns.push_back(plan.prefix + "-sb" + std::to_string(i));
    plan.sb_if.push_back("sb" + std::to_string(i));
  }

  std::set<std::string> names;
  std::set<Addr> used;
  for (size_t j = 0; j < spec.upstreams.size(); ++j) {
    const UpstreamSpec& us = spec.upstreams[j];
    UpstreamPlan up;
    up.name = us.name;
    up.ns = plan.prefix + "-up-" + us.name;
    up.host_if = "up" + std::to_string(j);
    const std::string what = "upstream '" + us.name + "'";
    if (!allOf(us.name, isUpstreamChar)) {
      return makeError(what + ": names use a-z, 0-9, '-' and '_'");
    }
    if (!names.insert(us.name).second) {
      return makeError(what + ": duplicate name");
    }
    if (us.name.size() > kMaxUpstreamName) {
      return makeError(what + ": name is longer than " + std::to_string(kMaxUpstreamName) + " characters");
    }
    if (us.addrs.empty()) {
      return makeError(what + ": needs at least one address");
    }
    for (const std::string& text : us.addrs) {
      std::optional<Addr> a = parseAddr(text);
      if (!a) {
        return makeError(what + ": '" + text + "' is not an IP address");
      }
      if (a->family == AF_INET6) {
        plan.needs_ipv6 = true;
      }
      if (!used.insert(*a).second) {
        return makeError(what + ": address " + toString(*a) + " is used twice");
      }
      for (const std::optional<Prefix>& subnet : {plan.subnet4, plan.subnet6}) {
        if (subnet && contains(*subnet, *a)) {
          return makeError(what + ": address " + toString(*a) + " is inside the sandbox subnet " + toString(*subnet));
        }
      }
      up.all_addrs.push_back(toString(*a));
      auto wan = std::find_if(wanSubnets().begin(), wanSubnets().end(),
                              [&](const WanSubnet& w) { return contains(w.prefix, *a); });
      if (wan == wanSubnets().end()) {
        if (unroutable(*a)) {
          return makeError(what + ": address " + toString(*a) + " cannot be routed (loopback, multicast, link-local...)");
        }
        up.extra_addrs.push_back(*a);
        continue;
      }
      bool is_network = a->bytes == wan->prefix.addr.bytes;
      bool is_broadcast = a->family == AF_INET && a->bytes[3] == 0xff;  // the v4 wan subnets are /24
      if (*a == wan->gateway || is_network || is_broadcast) {
        return makeError(what + ": address " + toString(*a) + " is the network, broadcast or gateway address of " +
                         toString(wan->prefix));
      }
      up.wan_addrs.push_back(*a);
      up.wan_prefixes.push_back(wan->prefix);
      std::optional<Addr>& gw = a->family == AF_INET ? up.gw4 : up.gw6;
      if (!gw) {
        gw = wan->gateway;
      }
    }
    for (const Addr& extra : up.extra_addrs) {
      if (!(extra.family == AF_INET ? up.gw4 : up.gw6)) {
        return makeError(what + ": address " + toString(extra) +
                         " is outside the wan subnets; the upstream also needs an address of the same family inside "
                         "one (198.51.100.0/24, 203.0.113.0/24, 192.0.2.0/24, 2001:db8:100::/64) as next hop");
      }
    }
    plan.upstreams.push_back(std::move(up));
  }
  return plan;
}

// ---- ip -batch --------------------------------------------------------------

std::string hostBatch(const Plan& plan) {
  std::ostringstream b;
  const char* bridge_opts = " type bridge stp_state 0 forward_delay 0 mcast_snooping 0\n";
  b << "link set lo up\n";
  b << "link add " << kSandboxBridge << bridge_opts;
  b << "link add " << kWanBridge << bridge_opts;
  for (size_t i = 0; i < plan.sb_ns.size(); ++i) {
    b << "link add " << plan.sb_if[i] << " type veth peer name eth0 netns " << plan.sb_ns[i] << "\n";
    b << "link set " << plan.sb_if[i] << " master " << kSandboxBridge << " up\n";
  }
  for (const UpstreamPlan& up : plan.upstreams) {
    b << "link add " << up.host_if << " type veth peer name eth0 netns " << up.ns << "\n";
    b << "link set " << up.host_if << " master " << kWanBridge << " up\n";
  }
  b << "addr add " << toString(plan.bridge4) << "/" << plan.subnet4->len << " dev " << kSandboxBridge << "\n";
  if (plan.subnet6) {
    b << "addr add " << toString(plan.bridge6) << "/" << plan.subnet6->len << " dev " << kSandboxBridge << " nodad\n";
  }
  for (const WanSubnet& wan : wanSubnets()) {
    if (wan.gateway.family == AF_INET6 && !plan.needs_ipv6) {
      continue;
    }
    b << "addr add " << toString(wan.gateway) << "/" << wan.prefix.len << " dev " << kWanBridge
      << (wan.gateway.family == AF_INET6 ? " nodad\n" : "\n");
  }
  b << "link set " << kSandboxBridge << " up\n";
  b << "link set " << kWanBridge << " up\n";
  for (const UpstreamPlan& up : plan.upstreams) {
    for (const Addr& extra : up.extra_addrs) {
      // Next hop: the upstream's first wan address of the family.
      auto hop = std::find_if(up.wan_addrs.begin(), up.wan_addrs.end(),
                              [&](const Addr& a) { return a.family == extra.family; });
      b << "route add " << toString(extra) << "/" << extra.bits() << " via " << toString(*hop) << "\n";
    }
  }
  return b.str();
}

std::string sandboxBatch(const Plan& plan, size_t i) {
  std::ostringstream b;
  b << "link set lo up\n";
  b << "addr add " << toString(plan.sb4[i]) << "/" << plan.subnet4->len << " dev eth0\n";
  if (plan.subnet6) {
    b << "addr add " << toString(plan.sb6[i]) << "/" << plan.subnet6->len << " dev eth0 nodad\n";
  }
  b << "link set eth0 up\n";
  if (plan.routes) {
    b << "route add default via " << toString(plan.bridge4) << "\n";
    if (plan.subnet6) {
      b << "route add ::/0 via " << toString(plan.bridge6) << "\n";
    }
  }
  return b.str();
}

std::string upstreamBatch(const UpstreamPlan& up) {
  std::ostringstream b;
  b << "link set lo up\n";
  for (size_t k = 0; k < up.wan_addrs.size(); ++k) {
    b << "addr add " << toString(up.wan_addrs[k]) << "/" << up.wan_prefixes[k].len << " dev eth0"
      << (up.wan_addrs[k].family == AF_INET6 ? " nodad\n" : "\n");
  }
  for (const Addr& extra : up.extra_addrs) {
    b << "addr add " << toString(extra) << "/" << extra.bits() << " dev eth0"
      << (extra.family == AF_INET6 ? " nodad\n" : "\n");
  }
  b << "link set eth0 up\n";
  if (up.gw4) {
    b << "route add default via " << toString(*up.gw4) << "\n";
  }
  if (up.gw6) {
    b << "route add ::/0 via " << toString(*up.gw6) << "\n";
  }
  return b.str();
}

std::string batchFailure(const std::string& ns, const std::string& batch, const std::string& out,
                         const std::string& err, int code) {
  return "ip -n " + ns + " -batch failed (exit " + std::to_string(code) + "): " + err + out + "batch was:\n" + batch;
}

// ---- sysctls in a fresh namespace --------------------------------------------

Result<void> configureNamespace(bool is_host, const Plan& plan) {
  const bool have_ipv6 = access("/proc/sys/net/ipv6", F_OK) == 0;
  if (plan.needs_ipv6 && !have_ipv6) {
    return makeError("IPv6 is disabled in this kernel (no /proc/sys/net/ipv6); use sandbox_subnet6 = \"\" and IPv4 "
                     "upstreams");
  }
  std::vector<std::pair<std::string, std::string>> settings;
  if (have_ipv6) {
    // Addresses usable at once, link-local ones included.
    settings.emplace_back("/proc/sys/net/ipv6/conf/all/accept_dad", "0");
    settings.emplace_back("/proc/sys/net/ipv6/conf/default/accept_dad", "0");
  }
  if (is_host) {
    settings.emplace_back("/proc/sys/net/ipv4/ip_forward", "1");
    if (have_ipv6) {
      settings.emplace_back("/proc/sys/net/ipv6/conf/all/forwarding", "1");
      settings.emplace_back("/proc/sys/net/ipv6/conf/default/forwarding", "1");
    }
    if (plan.bridge_nf) {
      if (access("/proc/sys/net/bridge", F_OK) != 0) {
        return makeError("bridge_nf_call_iptables: br_netfilter is not loaded (no /proc/sys/net/bridge)");
      }
      const char* v = *plan.bridge_nf ? "1" : "0";
      settings.emplace_back("/proc/sys/net/bridge/bridge-nf-call-iptables", v);
      settings.emplace_back("/proc/sys/net/bridge/bridge-nf-call-ip6tables", v);
    }
  }
  for (const auto& [path, value] : settings) {
    if (Result<void> r = internal::writeProcSys(path, value); !r.ok()) {
      return r;
    }
  }
  return {};
}

// ---- socket-table and ICMP probes (run inside a namespace) ------------------

// Parses the hex address of /proc/net/tcp{,6}: 32-bit words printed with
// %08X in host byte order, so copying the word back restores network order.
std::optional<Addr> parseProcAddr(const std::string& hex, int family) {
  const size_t words = family == AF_INET ? 1 : 4;
  if (hex.size() != words * 8) {
    return std::nullopt;
  }
  Addr a;
  a.family = family;
  for (size_t w = 0; w < words; ++w) {
    uint32_t word = static_cast<uint32_t>(std::stoul(hex.substr(w * 8, 8), nullptr, 16));
    std::memcpy(a.bytes.data() + w * 4, &word, 4);
  }
  return a;
}

bool isListening(const Addr& target, uint16_t port) {
  static const Addr any4{AF_INET, {}};
  static const Addr any6{AF_INET6, {}};
  Addr mapped{AF_INET6, {}};  // ::ffff:a.b.c.d
  mapped.bytes[10] = mapped.bytes[11] = 0xff;
  std::memcpy(mapped.bytes.data() + 12, target.bytes.data(), 4);
  constexpr unsigned kTcpListen = 0x0A;
  for (int family : {AF_INET, AF_INET6}) {
    // thread-self: this thread's namespace (/proc/net follows the process).
    std::ifstream in(family == AF_INET ? "/proc/thread-self/net/tcp" : "/proc/thread-self/net/tcp6");
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      size_t colon = local.find(':');
      if (colon == std::string::npos || state.empty() || std::stoul(state, nullptr, 16) != kTcpListen ||
          std::stoul(local.substr(colon + 1), nullptr, 16) != port) {
        continue;
      }
      std::optional<Addr> a = parseProcAddr(local.substr(0, colon), family);
      if (!a) {
        continue;
      }
      bool match = *a == target || *a == (family == AF_INET ? any4 : any6) ||
                   (target.family == AF_INET && (*a == mapped));
      if (match) {
        return true;
      }
    }
  }
  return false;
}

uint16_t inetChecksum(const uint8_t* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) {
    sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  }
  if (len % 2 == 1) {
    sum += static_cast<uint32_t>(data[len - 1] << 8);
  }
  while (sum >> 16) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum);
}

uint16_t readU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

Result<std::chrono::microseconds> icmpEcho(const std::string& ip, milliseconds timeout) {
  std::optional<SockAddr> dst = SockAddr::parseIp(ip);
  if (!dst) {
    return makeError("ping: '" + ip + "' is not an IP address");
  }
  const bool v6 = dst->isV6();
  UniqueFd fd(socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
                     v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}));
  if (!fd) {
    return makeError("ping: raw ICMP socket: " + internal::errnoText(errno));
  }
  const uint8_t kRequest = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
  const uint8_t kReply = v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY;
  const uint8_t kUnreach = v6 ? ICMP6_DST_UNREACH : ICMP_DEST_UNREACH;
  const uint16_t id = static_cast<uint16_t>(std::random_device()());
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  std::vector<Clock::time_point> sent;  // index: sequence number
  auto next_send = start;
  for (;;) {
    auto now = Clock::now();
    if (now >= deadline) {
      return makeError("ping " + ip + ": no echo reply within " + std::to_string(timeout.count()) + " ms");
    }
    if (now >= next_send && sent.size() < 0xffff) {
      uint8_t pkt[24] = {kRequest, 0, 0, 0};
      pkt[4] = static_cast<uint8_t>(id >> 8);
      pkt[5] = static_cast<uint8_t>(id);
      pkt[6] = static_cast<uint8_t>(sent.size() >> 8);
      pkt[7] = static_cast<uint8_t>(sent.size());
      std::memcpy(pkt + 8, "tollgate-netns-h", 16);
      if (!v6) {  // the kernel fills in the ICMPv6 checksum
        uint16_t sum = inetChecksum(pkt, sizeof pkt);
        pkt[2] = static_cast<uint8_t>(sum >> 8);
        pkt[3] = static_cast<uint8_t>(sum);
      }
      if (sendto(fd.get(), pkt, sizeof pkt, 0, dst->sa(), dst->len()) < 0) {
        return makeError("ping " + ip + ": " + internal::errnoText(errno));
      }
      sent.push_back(now);
      next_send = now + kPingInterval;
    }
    auto wake = std::min(next_send, deadline);
    pollfd pfd{fd.get(), POLLIN, 0};
    poll(&pfd, 1, static_cast<int>(std::chrono::duration_cast<milliseconds>(wake - Clock::now()).count()) + 1);
    for (;;) {
      uint8_t buf[2048];
      sockaddr_storage from{};
      socklen_t from_len = sizeof from;
      ssize_t n = recvfrom(fd.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n <= 0) {
        break;
      }
      size_t len = static_cast<size_t>(n);
      size_t off = 0;
      if (!v6) {  // IPv4 raw sockets deliver the IP header too
        off = static_cast<size_t>(buf[0] & 0x0f) * 4;
      }
      if (len < off + 8) {
        continue;
      }
      const uint8_t* icmp = buf + off;
      std::optional<SockAddr> src = SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&from), from_len);
      if (icmp[0] == kReply && readU16(icmp + 4) == id && src && src->ip() == dst->ip()) {
        size_t seq = readU16(icmp + 6);
        if (seq < sent.size()) {
          return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent[seq]);
        }
      }
      if (icmp[0] == kUnreach) {
        // Quoted packet: IP header, then the first 8 bytes of our request.
        size_t inner = off + 8;
        size_t inner_hdr = v6 ? 40 : (len > inner ? static_cast<size_t>(buf[inner] & 0x0f) * 4 : 0);
        const size_t q = inner + inner_hdr;
        if (len >= q + 8 && buf[q] == kRequest && readU16(buf + q + 4) == id) {
          return makeError("ping " + ip + ": destination unreachable (code " + std::to_string(icmp[1]) + ") from " +
                           (src ? src->ip() : std::string("?")));
        }
      }
    }
  }
}

// TOLLGATE_HARNESS_TRACE=1 prints how long each set-up phase took.
class Trace {
 public:
  explicit Trace(std::string prefix) : prefix_(std::move(prefix)), enabled_(std::getenv("TOLLGATE_HARNESS_TRACE") != nullptr) {}
  void mark(const char* phase) {
    if (!enabled_) {
      return;
    }
    auto now = Clock::now();
    std::fprintf(stderr, "netns-harness %s: %s %lld ms\n", prefix_.c_str(), phase,
                 static_cast<long long>(std::chrono::duration_cast<milliseconds>(now - last_).count()));
    last_ = now;
  }

 private:
  std::string prefix_;
  bool enabled_;
  Clock::time_point last_ = Clock::now();
};

}  // namespace

namespace detail {

Result<void> runOnThreadInNs(const std::string& ns, const std::function<void()>& fn) {
  Result<UniqueFd> fd = internal::openNetns(ns);
  if (!fd.ok()) {
    return fd.error();
  }
  std::string failure;
  std::exception_ptr thrown;
  std::thread worker([&] {
    if (setns(fd->get(), CLONE_NEWNET) != 0) {
      failure = "setns into " + ns + ": " + internal::errnoText(errno);
      return;
    }
    try {
      fn();
    } catch (...) {
      thrown = std::current_exception();
    }
  });
  worker.join();
  if (thrown) {
    std::rethrow_exception(thrown);
  }
  if (!failure.empty()) {
    return makeError(failure);
  }
  return {};
}

}  // namespace detail

Result<std::unique_ptr<Topology>> Topology::create(const TopologySpec& spec) {
  Result<Plan> planned = makePlan(spec);
  if (!planned.ok()) {
    return makeError("netns-harness: " + planned.message());
  }
  const Plan& plan = *planned;
  auto topo = std::unique_ptr<Topology>(new Topology());
  topo->prefix_ = plan.prefix;
  topo->host_ns_ = plan.host_ns;
  topo->subnet4_ = toString(*plan.subnet4);
  topo->bridge_ip4_ = toString(plan.bridge4);
  if (plan.subnet6) {
    topo->subnet6_ = toString(*plan.subnet6);
    topo->bridge_ip6_ = toString(plan.bridge6);
  }
  for (size_t i = 0; i < plan.sb_ns.size(); ++i) {
    topo->sandboxes_.push_back({plan.sb_ns[i], toString(plan.sb4[i]), plan.subnet6 ? toString(plan.sb6[i]) : "",
                                plan.sb_if[i]});
  }
  for (const UpstreamPlan& up : plan.upstreams) {
    topo->upstreams_.push_back({up.name, up.ns, up.host_if, up.all_addrs});
  }

  if (Result<void> r = internal::prepareNetnsRunDir(); !r.ok()) {
    return makeError("netns-harness: " + r.message());
  }
  // One throw-away thread creates every namespace (it ends up inside the
  // last one) and sets its sysctls while it is inside.
  std::vector<std::string> all = {plan.host_ns};
  all.insert(all.end(), plan.sb_ns.begin(), plan.sb_ns.end());
  for (const UpstreamPlan& up : plan.upstreams) {
    all.push_back(up.ns);
  }
  Result<void> created;
  Trace trace(plan.prefix);
  std::thread creator([&] {
    for (const std::string& ns : all) {
      created = internal::createNetnsOnThisThread(ns);
      if (!created.ok()) {
        return;
      }
      topo->owned_.push_back(ns);  // from here on the destructor removes it
      created = configureNamespace(ns == plan.host_ns, plan);
      if (!created.ok()) {
        created = makeError(ns + ": " + created.message());
        return;
      }
    }
  });
  creator.join();
  trace.mark("namespaces");
  if (!created.ok()) {
    return makeError("netns-harness: " + created.message());
  }

  // Links live in the host ns; veth peers go straight into their namespaces.
  const std::string host_batch = hostBatch(plan);
  CommandResult host = runCommand("", {"ip", "-n", plan.host_ns, "-batch", "-"}, kIpTimeout, host_batch);
  trace.mark("host links");
  if (host.exit_code != 0) {
    return makeError("netns-harness: " + batchFailure(plan.host_ns, host_batch, host.out, host.err, host.exit_code));
  }
  // The other namespaces are independent: configure them in parallel.
  struct Job {
    std::string ns, batch;
    std::unique_ptr<Process> proc;
  };
  std::vector<Job> jobs;
  for (size_t i = 0; i < plan.sb_ns.size(); ++i) {
    jobs.push_back({plan.sb_ns[i], sandboxBatch(plan, i), nullptr});
  }
  for (const UpstreamPlan& up : plan.upstreams) {
    jobs.push_back({up.ns, upstreamBatch(up), nullptr});
  }
  std::string failures;
  for (Job& job : jobs) {
    Result<std::unique_ptr<Process>> p = Process::start("", {"ip", "-n", job.ns, "-batch", "-"}, {}, job.batch);
    if (!p.ok()) {
      failures += p.message() + "\n";
      continue;
    }
    job.proc = std::move(*p);
  }
  for (Job& job : jobs) {
    if (!job.proc) {
      continue;
    }
    Result<int> code = job.proc->wait(kIpTimeout);
    if (!code.ok() || *code != 0) {
      failures += batchFailure(job.ns, job.batch, job.proc->stdoutText(), job.proc->stderrText(),
                               code.ok() ? *code : -1) + "\n";
    }
  }
  trace.mark("sandbox/upstream config");
  if (!failures.empty()) {
    return makeError("netns-harness: " + failures);
  }
  return topo;
}

Topology::~Topology() {
  if (released_ || owned_.empty()) {
    return;
  }
  internal::killProcessesIn(owned_, 2000);
  for (const std::string& ns : owned_) {
    (void)internal::deleteNetns(ns);  // best effort; `gc` catches the rest
  }
}

bool Topology::ownsNs(const std::string& ns) const {
  return std::find(owned_.begin(), owned_.end(), ns) != owned_.end();
}

std::string Topology::sandboxNs(int i) const {
  return i >= 0 && i < sandboxCount() ? sandboxes_[static_cast<size_t>(i)].ns : std::string();
}
std::string Topology::sandboxIp4(int i) const {
  return i >= 0 && i < sandboxCount() ? sandboxes_[static_cast<size_t>(i)].ip4 : std::string();
}
std::string Topology::sandboxIp6(int i) const {
  return i >= 0 && i < sandboxCount() ? sandboxes_[static_cast<size_t>(i)].ip6 : std::string();
}
std::string Topology::sandboxHostIf(int i) const {
  return i >= 0 && i < sandboxCount() ? sandboxes_[static_cast<size_t>(i)].host_if : std::string();
}

std::vector<std::string> Topology::upstreamNames() const {
  std::vector<std::string> out;
  for (const Upstream& up : upstreams_) {
    out.push_back(up.name);
  }
  return out;
}

std::string Topology::upstreamNs(const std::string& name) const {
  for (const Upstream& up : upstreams_) {
    if (up.name == name) {
      return up.ns;
    }
  }
  return {};
}

std::vector<std::string> Topology::upstreamAddrs(const std::string& name) const {
  for (const Upstream& up : upstreams_) {
    if (up.name == name) {
      return up.addrs;
    }
  }
  return {};
}

std::string Topology::toJson() const {
  nlohmann::json j;
  j["prefix"] = prefix_;
  j["host_ns"] = host_ns_;
  j["bridge"] = bridge_;
  j["bridge_ip4"] = bridge_ip4_;
  j["bridge_ip6"] = bridge_ip6_;
  j["sandbox_subnet4"] = subnet4_;
  j["sandbox_subnet6"] = subnet6_;
  j["wan_bridge"] = wan_;
  j["sandboxes"] = nlohmann::json::array();
  for (const Sandbox& sb : sandboxes_) {
    j["sandboxes"].push_back({{"ns", sb.ns}, {"ip4", sb.ip4}, {"ip6", sb.ip6}, {"host_if", sb.host_if}});
  }
  j["upstreams"] = nlohmann::json::array();
  for (const Upstream& up : upstreams_) {
    j["upstreams"].push_back({{"name", up.name}, {"ns", up.ns}, {"addrs", up.addrs}, {"host_if", up.host_if}});
  }
  return j.dump(2);
}

CommandResult Topology::run(const std::string& ns, const std::vector<std::string>& argv, milliseconds timeout,
                            const std::string& stdin_data) const {
  return runCommand(ns, argv, timeout, stdin_data);
}

Result<std::unique_ptr<Process>> Topology::spawn(const std::string& ns, const std::vector<std::string>& argv,
                                                 const std::map<std::string, std::string>& extra_env) const {
  return Process::start(ns, argv, extra_env);
}

Result<void> Topology::setHosts(const std::string& ns, const std::string& hosts_content) const {
  return setEtcFile(ns, "hosts", hosts_content);
}

Result<void> Topology::setEtcFile(const std::string& ns, const std::string& name, const std::string& content) const {
  if (!ownsNs(ns)) {
    return makeError("setEtcFile: '" + ns + "' is not a namespace of topology " + prefix_);
  }
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return makeError("setEtcFile: '" + name + "' must be a plain file name");
  }
  struct stat st {};
  if (::stat(("/etc/" + name).c_str(), &st) != 0) {
    return makeError("setEtcFile: /etc/" + name + " does not exist, so `ip netns exec` cannot bind-mount over it");
  }
  const std::string dir = std::string(internal::kNetnsEtcDir) + "/" + ns;
  for (const std::string& d : {std::string(internal::kNetnsEtcDir), dir}) {
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
      return makeError("mkdir " + d + ": " + internal::errnoText(errno));
    }
  }
  return internal::writeFileAtomically(dir + "/" + name, content);
}

Result<void> Topology::waitForListen(const std::string& ns, const std::string& ip, uint16_t port,
                                     milliseconds timeout) const {
  std::optional<Addr> target = parseAddr(ip);
  if (!target) {
    return makeError("waitForListen: '" + ip + "' is not an IP address");
  }
  const auto deadline = Clock::now() + timeout;
  return inNs(ns, [&]() -> Result<void> {
    for (;;) {
      if (isListening(*target, port)) {
        return {};
      }
      if (Clock::now() >= deadline) {
        return makeError("nothing listens on " + ip + " port " + std::to_string(port) + " in " + ns + " after " +
                         std::to_string(timeout.count()) + " ms");
      }
      std::this_thread::sleep_for(kListenPoll);
    }
  });
}

Result<std::chrono::microseconds> Topology::ping(const std::string& ns, const std::string& ip,
                                                 milliseconds timeout) const {
  return inNs(ns, [&] { return icmpEcho(ip, timeout); });
}

}  // namespace tollgate::harness
