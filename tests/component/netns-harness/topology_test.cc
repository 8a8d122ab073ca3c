// Component tests of the netns harness topology: real namespaces, veths and
// bridges. Root only. Traffic goes only to addresses inside namespaces the
// tests create.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/sockaddr.h"
#include "base/unique.h"
#include "netns-harness/harness.h"

namespace tollgate::harness {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::IsSupersetOf;
using ::testing::UnorderedElementsAre;

constexpr milliseconds kPing{3000};
constexpr milliseconds kCmd{5000};

TopologySpec standardSpec() {
  TopologySpec spec;
  spec.sandboxes = 2;
  spec.upstreams = {{"real", {"198.51.100.10", "2001:db8:100::10"}}, {"other", {"203.0.113.20", "169.254.169.254"}}};
  return spec;
}

std::unique_ptr<Topology> mustCreate(const TopologySpec& spec) {
  auto topo = Topology::create(spec);
  if (!topo.ok()) {
    ADD_FAILURE() << topo.message();
    return nullptr;
  }
  return std::move(*topo);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::string> namespacesWithPrefix(const std::string& prefix) {
  std::vector<std::string> out;
  for (const std::string& ns : listNamespaces()) {
    if (ns.rfind(prefix + "-", 0) == 0) {
      out.push_back(ns);
    }
  }
  return out;
}

std::set<std::string> interfaceNames() {
  std::set<std::string> names;
  struct if_nameindex* list = if_nameindex();
  for (struct if_nameindex* i = list; i != nullptr && i->if_index != 0; ++i) {
    names.insert(i->if_name);
  }
  if_freenameindex(list);
  return names;
}

// Binds a TCP socket to ip:0 in the calling thread's namespace; the error
// message is the errno.
Result<UniqueFd> bindTcp(const std::string& ip) {
  std::optional<SockAddr> addr = SockAddr::parseIp(ip, 0);
  if (!addr) {
    return makeError("bad ip");
  }
  UniqueFd fd(::socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::bind(fd.get(), addr->sa(), addr->len()) != 0) {
    return makeError(std::to_string(errno));
  }
  return fd;
}

Result<std::string> readSysctlIn(const Topology& t, const std::string& ns, const std::string& path) {
  return t.inNs(ns, [&]() -> Result<std::string> {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    char buf[32] = {};
    if (!fd || ::read(fd.get(), buf, sizeof buf - 1) <= 0) {
      return makeError("cannot read " + path);
    }
    std::string s(buf);
    return s.substr(0, s.find('\n'));
  });
}

// "[fd77:0000::0011]\n" and "fd77::11" name the same address.
bool sameIp(std::string a, const std::string& b) {
  a.erase(std::remove_if(a.begin(), a.end(), [](char c) { return c == '[' || c == ']' || c == '\n'; }), a.end());
  auto pa = SockAddr::parseIp(a);
  auto pb = SockAddr::parseIp(b);
  return pa && pb && *pa == *pb;
}

long elapsedMs(Clock::time_point start) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - start).count());
}

class TopologyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "netns tests need root";
    topo_ = mustCreate(standardSpec());
    ASSERT_NE(topo_, nullptr);
  }
  std::unique_ptr<Topology> topo_;
};

TEST_F(TopologyTest, LayoutMatchesTheSpec) {
  const Topology& t = *topo_;
  EXPECT_EQ(t.hostNs(), t.prefix() + "-host");
  EXPECT_EQ(t.sandboxNs(1), t.prefix() + "-sb1");
  EXPECT_EQ(t.upstreamNs("real"), t.prefix() + "-up-real");
  EXPECT_EQ(t.bridge(), "tgbr0");
  EXPECT_EQ(t.wanBridge(), "tgwan0");
  EXPECT_EQ(t.bridgeIp4(), "10.77.0.1");
  EXPECT_EQ(t.bridgeIp6(), "fd77::1");
  EXPECT_EQ(t.sandboxIp4(0), "10.77.0.10");
  EXPECT_EQ(t.sandboxIp4(1), "10.77.0.11");
  EXPECT_EQ(t.sandboxIp6(0), "fd77::10");
  EXPECT_EQ(t.sandboxIp6(1), "fd77::11");
  EXPECT_EQ(t.sandboxHostIf(1), "sb1");
  EXPECT_EQ(t.sandboxNs(2), "");
  EXPECT_EQ(t.sandboxNs(-1), "");
  EXPECT_EQ(t.upstreamNs("nope"), "");
  EXPECT_THAT(t.upstreamAddrs("other"), UnorderedElementsAre("203.0.113.20", "169.254.169.254"));
  EXPECT_THAT(namespacesWithPrefix(t.prefix()),
              UnorderedElementsAre(t.hostNs(), t.sandboxNs(0), t.sandboxNs(1), t.upstreamNs("real"),
                                   t.upstreamNs("other")));
  for (const std::string& ns : t.namespaces()) {
    EXPECT_LE(ns.size(), kMaxNsName) << ns;
  }

  nlohmann::json j = nlohmann::json::parse(t.toJson());
  EXPECT_EQ(j["host_ns"], t.hostNs());
  EXPECT_EQ(j["sandboxes"][1]["ip6"], "fd77::11");
  EXPECT_EQ(j["upstreams"][0]["addrs"][1], "2001:db8:100::10");
}

TEST_F(TopologyTest, InterfacesAndSysctlsAreInPlace) {
  const Topology& t = *topo_;
  auto host_ifs = t.inNs(t.hostNs(), interfaceNames);
  ASSERT_TRUE(host_ifs.ok()) << host_ifs.message();
  EXPECT_THAT(*host_ifs, IsSupersetOf({"lo", "tgbr0", "tgwan0", "sb0", "sb1", "up0", "up1"}));
  auto sb_ifs = t.inNs(t.sandboxNs(0), interfaceNames);
  ASSERT_TRUE(sb_ifs.ok()) << sb_ifs.message();
  EXPECT_THAT(*sb_ifs, UnorderedElementsAre("lo", "eth0"));

  auto fwd4 = readSysctlIn(t, t.hostNs(), "/proc/sys/net/ipv4/ip_forward");
  auto fwd6 = readSysctlIn(t, t.hostNs(), "/proc/sys/net/ipv6/conf/all/forwarding");
  auto dad = readSysctlIn(t, t.sandboxNs(0), "/proc/sys/net/ipv6/conf/eth0/accept_dad");
  ASSERT_TRUE(fwd4.ok() && fwd6.ok() && dad.ok());
  EXPECT_EQ(*fwd4, "1");
  EXPECT_EQ(*fwd6, "1");
  EXPECT_EQ(*dad, "0");
  // Sandboxes do not forward.
  auto sb_fwd = readSysctlIn(t, t.sandboxNs(0), "/proc/sys/net/ipv4/ip_forward");
  ASSERT_TRUE(sb_fwd.ok());
  EXPECT_EQ(*sb_fwd, "0");
}

TEST_F(TopologyTest, SandboxesReachEachOtherOverTheBridge) {
  const Topology& t = *topo_;
  for (const std::string& dst : {t.sandboxIp4(1), t.sandboxIp6(1)}) {
    auto rtt = t.ping(t.sandboxNs(0), dst, kPing);
    EXPECT_TRUE(rtt.ok()) << dst << ": " << rtt.message();
  }
  auto back = t.ping(t.sandboxNs(1), t.sandboxIp4(0), kPing);
  EXPECT_TRUE(back.ok()) << back.message();
}

TEST_F(TopologyTest, SandboxReachesUpstreamsThroughTheHost) {
  const Topology& t = *topo_;
  for (const char* dst : {"198.51.100.10", "2001:db8:100::10", "203.0.113.20", "169.254.169.254"}) {
    auto rtt = t.ping(t.sandboxNs(0), dst, kPing);
    EXPECT_TRUE(rtt.ok()) << dst << ": " << rtt.message();
  }
  // And the bridge addresses themselves.
  EXPECT_TRUE(t.ping(t.sandboxNs(1), t.bridgeIp4(), kPing).ok());
  EXPECT_TRUE(t.ping(t.sandboxNs(1), t.bridgeIp6(), kPing).ok());
}

TEST_F(TopologyTest, TcpServerInUpstreamIsReachedFromSandboxWithItsOwnSourceAddress) {
  const Topology& t = *topo_;
  const std::string up = t.upstreamNs("real");
  // Echoes the peer address: proves there is no NAT on the way.
  auto server4 = t.spawn(up, {"socat", "TCP4-LISTEN:8080,bind=198.51.100.10,reuseaddr,fork",
                              "SYSTEM:echo $SOCAT_PEERADDR"});
  auto server6 = t.spawn(up, {"socat", "TCP6-LISTEN:8080,bind=[2001:db8:100::10],reuseaddr,fork",
                              "SYSTEM:echo $SOCAT_PEERADDR"});
  ASSERT_TRUE(server4.ok()) << server4.message();
  ASSERT_TRUE(server6.ok()) << server6.message();
  auto listening4 = t.waitForListen(up, "198.51.100.10", 8080, kCmd);
  auto listening6 = t.waitForListen(up, "2001:db8:100::10", 8080, kCmd);
  ASSERT_TRUE(listening4.ok()) << listening4.message() << (*server4)->stderrText();
  ASSERT_TRUE(listening6.ok()) << listening6.message() << (*server6)->stderrText();

  CommandResult r4 = t.run(t.sandboxNs(0), {"socat", "-T2", "-", "TCP4:198.51.100.10:8080"}, kCmd);
  EXPECT_EQ(r4.exit_code, 0) << r4.err;
  EXPECT_EQ(r4.out, "10.77.0.10\n");
  CommandResult r6 = t.run(t.sandboxNs(1), {"socat", "-T2", "-", "TCP6:[2001:db8:100::10]:8080"}, kCmd);
  EXPECT_EQ(r6.exit_code, 0) << r6.err;
  EXPECT_TRUE(sameIp(r6.out, "fd77::11")) << r6.out;  // socat prints "[fd77:0000:...:0011]"
  EXPECT_TRUE((*server4)->running());
}

TEST_F(TopologyTest, WaitForListenTimesOutWhenNothingListens) {
  const Topology& t = *topo_;
  auto start = Clock::now();
  auto r = t.waitForListen(t.upstreamNs("real"), "198.51.100.10", 9, milliseconds(150));
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.message(), HasSubstr("198.51.100.10 port 9"));
  EXPECT_GE(elapsedMs(start), 150);
  EXPECT_LT(elapsedMs(start), 1000);
}

TEST_F(TopologyTest, WaitForListenSeesWildcardAndDualStackListeners) {
  const Topology& t = *topo_;
  const std::string up = t.upstreamNs("other");
  auto listener = t.inNs(up, []() -> Result<UniqueFd> {
    auto addr = SockAddr::parseIp("::", 0);
    UniqueFd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int off = 0;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    addr->setPort(8443);
    if (::bind(fd.get(), addr->sa(), addr->len()) != 0 || ::listen(fd.get(), 8) != 0) {
      return makeError("bind/listen [::]:8443 failed");
    }
    return fd;
  });
  ASSERT_TRUE(listener.ok()) << listener.message();
  // The socket stays in `up` after the thread that made it is gone.
  EXPECT_TRUE(t.waitForListen(up, "203.0.113.20", 8443, milliseconds(500)).ok());
  EXPECT_TRUE(t.waitForListen(up, "::", 8443, milliseconds(500)).ok());
  // ...and nowhere else.
  EXPECT_FALSE(t.waitForListen(t.upstreamNs("real"), "198.51.100.10", 8443, milliseconds(50)).ok());
}

TEST_F(TopologyTest, SetHostsIsSeenByCommandsInThatNamespaceOnly) {
  const Topology& t = *topo_;
  ASSERT_TRUE(t.setHosts(t.sandboxNs(0), "198.51.100.10 real.test\n2001:db8:100::10 real6.test\n").ok());
  EXPECT_TRUE(exists("/etc/netns/" + t.sandboxNs(0) + "/hosts"));
  CommandResult r = t.run(t.sandboxNs(0), {"getent", "hosts", "real.test"}, kCmd);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("198.51.100.10"));
  CommandResult r6 = t.run(t.sandboxNs(0), {"getent", "ahostsv6", "real6.test"}, kCmd);
  EXPECT_THAT(r6.out, HasSubstr("2001:db8:100::10"));
  // Not in the other sandbox (no DNS query: that would wait for a resolver).
  CommandResult other = t.run(t.sandboxNs(1), {"cat", "/etc/hosts"}, kCmd);
  EXPECT_EQ(other.exit_code, 0);
  EXPECT_THAT(other.out, ::testing::Not(HasSubstr("real.test")));
  CommandResult mine = t.run(t.sandboxNs(0), {"cat", "/etc/hosts"}, kCmd);
  EXPECT_EQ(mine.out, "198.51.100.10 real.test\n2001:db8:100::10 real6.test\n");

  EXPECT_FALSE(t.setHosts("not-ours", "x").ok());
  EXPECT_FALSE(t.setEtcFile(t.sandboxNs(0), "../passwd", "x").ok());
  EXPECT_FALSE(t.setEtcFile(t.sandboxNs(0), "no-such-file-in-etc", "x").ok());
}

TEST_F(TopologyTest, InNsRunsInTheRightNamespace) {
  const Topology& t = *topo_;
  // 198.51.100.10 exists only in the "real" upstream.
  auto bound_up = t.inNs(t.upstreamNs("real"), [] { return bindTcp("198.51.100.10"); });
  EXPECT_TRUE(bound_up.ok()) << bound_up.message();
  auto bound_sb = t.inNs(t.sandboxNs(0), [] { return bindTcp("198.51.100.10"); });
  ASSERT_FALSE(bound_sb.ok());
  EXPECT_EQ(bound_sb.message(), std::to_string(EADDRNOTAVAIL));
  // The calling thread is untouched: no tgbr0 here.
  EXPECT_EQ(interfaceNames().count("tgbr0"), 0u);

  // void, plain values, exceptions.
  int calls = 0;
  EXPECT_TRUE(t.inNs(t.hostNs(), [&] { ++calls; }).ok());
  EXPECT_EQ(calls, 1);
  auto value = t.inNs(t.hostNs(), [] { return 42; });
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, 42);
  EXPECT_THROW((void)t.inNs(t.hostNs(), []() -> int { throw std::runtime_error("boom"); }), std::runtime_error);
  EXPECT_FALSE(t.inNs("tg-no-such-ns", [] { return 1; }).ok());
}

TEST_F(TopologyTest, RunAndSpawnCarryNoProxySettings) {
  const Topology& t = *topo_;
  ::setenv("HTTPS_PROXY", "http://proxy.invalid:3128", 1);
  ::setenv("http_proxy", "http://proxy.invalid:3128", 1);
  CommandResult r = t.run(t.sandboxNs(0), {"env"}, kCmd);
  auto p = t.spawn(t.sandboxNs(0), {"env"}, {{"TG_EXTRA", "yes"}});
  ::unsetenv("HTTPS_PROXY");
  ::unsetenv("http_proxy");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("proxy.invalid")));
  ASSERT_TRUE(p.ok()) << p.message();
  ASSERT_TRUE((*p)->wait(kCmd).ok());
  EXPECT_THAT((*p)->stdoutText(), HasSubstr("TG_EXTRA=yes"));
  EXPECT_THAT((*p)->stdoutText(), ::testing::Not(HasSubstr("proxy.invalid")));
}

TEST(TopologyLifecycleTest, DestructorRemovesNamespacesEtcFilesAndProcesses) {
  auto topo = mustCreate(standardSpec());
  ASSERT_NE(topo, nullptr);
  const std::string prefix = topo->prefix();
  const std::vector<std::string> names = topo->namespaces();
  ASSERT_EQ(names.size(), 5u);
  ASSERT_TRUE(topo->setHosts(topo->sandboxNs(1), "198.51.100.10 real.test\n").ok());
  auto sleeper = topo->spawn(topo->upstreamNs("real"), {"sleep", "60"});
  ASSERT_TRUE(sleeper.ok()) << sleeper.message();

  topo.reset();

  EXPECT_THAT(namespacesWithPrefix(prefix), IsEmpty());
  for (const std::string& ns : names) {
    EXPECT_FALSE(exists("/run/netns/" + ns)) << ns;
    EXPECT_FALSE(exists("/etc/netns/" + ns)) << ns;
  }
  CommandResult list = runCommand("", {"ip", "netns", "list"}, kCmd);
  EXPECT_THAT(list.out, ::testing::Not(HasSubstr(prefix)));
  // A process left inside was killed with its namespace.
  auto code = (*sleeper)->wait(milliseconds(2000));
  ASSERT_TRUE(code.ok()) << code.message();
  EXPECT_EQ(*code, 128 + SIGKILL);
}

TEST(TopologyLifecycleTest, TwoTopologiesAtOnceDoNotCollide) {
  auto a = mustCreate(standardSpec());
  auto b = mustCreate(standardSpec());
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a->prefix(), b->prefix());
  EXPECT_TRUE(a->ping(a->sandboxNs(0), "198.51.100.10", kPing).ok());
  EXPECT_TRUE(b->ping(b->sandboxNs(0), "198.51.100.10", kPing).ok());
  const std::string a_prefix = a->prefix();
  a.reset();
  EXPECT_THAT(namespacesWithPrefix(a_prefix), IsEmpty());
  EXPECT_TRUE(b->ping(b->sandboxNs(1), "2001:db8:100::10", kPing).ok());
}

TEST(TopologyLifecycleTest, SetupIsFast) {
  TopologySpec spec;
  spec.sandboxes = 1;
  spec.upstreams = {{"a", {"198.51.100.10", "2001:db8:100::10"}}, {"b", {"203.0.113.10"}}};
  // Best of three: under `ctest -j` on a small machine a single run can be
  // starved of CPU; the bound is about the harness, not the scheduler.
  long best_ms = 1L << 30;
  for (int attempt = 0; attempt < 3 && best_ms >= 1000; ++attempt) {
    auto start = Clock::now();
    auto topo = mustCreate(spec);
    const long created_ms = elapsedMs(start);
    ASSERT_NE(topo, nullptr);
    auto rtt = topo->ping(topo->sandboxNs(0), "2001:db8:100::10", kPing);
    ASSERT_TRUE(rtt.ok()) << rtt.message();
    const long usable_ms = elapsedMs(start);
    topo.reset();
    std::printf("create %ld ms, first ping answered at %ld ms, destroyed at %ld ms\n", created_ms, usable_ms,
                elapsedMs(start));
    best_ms = std::min(best_ms, usable_ms);
  }
  RecordProperty("best_usable_ms", static_cast<int>(best_ms));
  EXPECT_LT(best_ms, 1000);
}

TEST(TopologyLifecycleTest, CollidingPrefixFailsWithoutTouchingTheExistingTopology) {
  TopologySpec spec = standardSpec();
  spec.prefix = "tgcoll" + std::to_string(getpid());
  auto first = mustCreate(spec);
  ASSERT_NE(first, nullptr);
  auto second = Topology::create(spec);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.message(), HasSubstr("File exists"));
  EXPECT_EQ(namespacesWithPrefix(spec.prefix).size(), 5u);
  EXPECT_TRUE(first->ping(first->sandboxNs(0), "203.0.113.20", kPing).ok());
}

TEST(TopologyLifecycleTest, NoIpv6AndNoDefaultRoutes) {
  TopologySpec spec;
  spec.sandboxes = 1;
  spec.sandbox_subnet6 = "";
  spec.sandbox_routes_via_bridge = false;
  spec.upstreams = {{"real", {"198.51.100.10"}}};
  auto topo = mustCreate(spec);
  ASSERT_NE(topo, nullptr);
  EXPECT_EQ(topo->bridgeIp6(), "");
  EXPECT_EQ(topo->sandboxIp6(0), "");
  EXPECT_TRUE(topo->ping(topo->sandboxNs(0), topo->bridgeIp4(), kPing).ok());
  auto start = Clock::now();
  auto unrouted = topo->ping(topo->sandboxNs(0), "198.51.100.10", kPing);
  EXPECT_FALSE(unrouted.ok());
  EXPECT_THAT(unrouted.message(), HasSubstr("unreachable"));
  EXPECT_LT(elapsedMs(start), 500);  // fails at once, no waiting for a timeout
}

TEST(TopologyLifecycleTest, CustomSubnetsAndBridgeNetfilterSetting) {
  TopologySpec spec;
  spec.sandboxes = 3;
  spec.sandbox_subnet4 = "10.99.5.0/26";
  spec.sandbox_subnet6 = "fd99:1::/64";
  spec.upstreams = {{"real", {"192.0.2.50"}}};
  const bool have_br_netfilter = exists("/proc/sys/net/bridge");
  if (have_br_netfilter) {
    spec.bridge_nf_call_iptables = false;
  }
  auto topo = mustCreate(spec);
  ASSERT_NE(topo, nullptr);
  EXPECT_EQ(topo->bridgeIp4(), "10.99.5.1");
  EXPECT_EQ(topo->sandboxIp4(2), "10.99.5.12");
  EXPECT_EQ(topo->sandboxIp6(2), "fd99:1::12");
  EXPECT_TRUE(topo->ping(topo->sandboxNs(2), "192.0.2.50", kPing).ok());
  if (have_br_netfilter) {
    auto v = readSysctlIn(*topo, topo->hostNs(), "/proc/sys/net/bridge/bridge-nf-call-iptables");
    ASSERT_TRUE(v.ok()) << v.message();
    EXPECT_EQ(*v, "0");
  }
}

struct BadSpecCase {
  const char* name;
  TopologySpec spec;
  const char* message;
};

void PrintTo(const BadSpecCase& c, std::ostream* os) { *os << c.name; }

class BadSpecTest : public ::testing::TestWithParam<BadSpecCase> {};

TEST_P(BadSpecTest, IsRejectedWithoutLeavingNamespaces) {
  const std::string own = "tg" + std::to_string(getpid()) + "x";
  auto count_own = [&] {
    size_t n = 0;
    for (const std::string& ns : listNamespaces()) {
      n += ns.rfind(own, 0) == 0 ? 1 : 0;
    }
    return n;
  };
  const size_t before = count_own();
  auto topo = Topology::create(GetParam().spec);
  ASSERT_FALSE(topo.ok());
  EXPECT_THAT(topo.message(), HasSubstr(GetParam().message));
  EXPECT_EQ(count_own(), before);
}

TopologySpec withUpstreams(std::vector<UpstreamSpec> ups) {
  TopologySpec spec;
  spec.upstreams = std::move(ups);
  return spec;
}

TopologySpec withSubnet4(const std::string& s) {
  TopologySpec spec;
  spec.sandbox_subnet4 = s;
  return spec;
}

TopologySpec withSandboxes(int n) {
  TopologySpec spec;
  spec.sandboxes = n;
  return spec;
}

INSTANTIATE_TEST_SUITE_P(
    Specs, BadSpecTest,
    ::testing::Values(
        BadSpecCase{"NegativeSandboxes", withSandboxes(-1), "sandboxes"},
        BadSpecCase{"SubnetTooSmall", [] { auto s = withSubnet4("10.1.0.0/29"); return s; }(), "too small"},
        BadSpecCase{"SubnetNotV4", withSubnet4("fd00::/64"), "sandbox_subnet4"},
        BadSpecCase{"SubnetOverlapsWan", withSubnet4("198.51.100.0/25"), "overlaps"},
        BadSpecCase{"BadAddress", withUpstreams({{"a", {"198.51.100.300"}}}), "not an IP address"},
        BadSpecCase{"GatewayAddress", withUpstreams({{"a", {"198.51.100.1"}}}), "gateway"},
        BadSpecCase{"InSandboxSubnet", withUpstreams({{"a", {"10.77.0.50"}}}), "inside the sandbox subnet"},
        BadSpecCase{"Duplicate", withUpstreams({{"a", {"198.51.100.5"}}, {"a", {"198.51.100.6"}}}), "duplicate"},
        BadSpecCase{"SameAddressTwice", withUpstreams({{"a", {"198.51.100.5"}}, {"b", {"198.51.100.5"}}}),
                    "used twice"},
        BadSpecCase{"NameTooLong", withUpstreams({{"elevenchars", {"198.51.100.5"}}}), "longer than 10"},
        BadSpecCase{"BadName", withUpstreams({{"a/b", {"198.51.100.5"}}}), "names use"},
        BadSpecCase{"NoAddress", withUpstreams({{"a", {}}}), "at least one address"},
        BadSpecCase{"ExtraWithoutNextHop", withUpstreams({{"a", {"169.254.169.254"}}}), "next hop"},
        BadSpecCase{"Loopback", withUpstreams({{"a", {"198.51.100.5", "127.0.0.2"}}}), "cannot be routed"},
        BadSpecCase{"BadPrefix", [] { TopologySpec s; s.prefix = "bad-prefix"; return s; }(), "prefix"}),
    [](const ::testing::TestParamInfo<BadSpecCase>& info) { return std::string(info.param.name); });

TEST(CleanupTest, RemoveByPrefixRemovesAReleasedTopology) {
  auto topo = mustCreate(standardSpec());
  ASSERT_NE(topo, nullptr);
  const std::string prefix = topo->prefix();
  ASSERT_TRUE(topo->setHosts(topo->sandboxNs(0), "198.51.100.10 x.test\n").ok());
  topo->release();
  topo.reset();
  ASSERT_EQ(namespacesWithPrefix(prefix).size(), 5u);  // released: left in place

  auto removed = removeByPrefix(prefix);
  ASSERT_TRUE(removed.ok()) << removed.message();
  EXPECT_EQ(removed->size(), 5u);
  EXPECT_THAT(namespacesWithPrefix(prefix), IsEmpty());
  EXPECT_FALSE(exists("/etc/netns/" + prefix + "-sb0"));
  EXPECT_FALSE(removeByPrefix("").ok());
}

TEST(CleanupTest, CollectGarbageRemovesTopologiesOfDeadOwnersOnly) {
  // A pid that certainly belongs to no live process any more.
  pid_t dead = fork();
  if (dead == 0) {
    _exit(0);
  }
  ASSERT_GT(dead, 0);
  ASSERT_EQ(waitpid(dead, nullptr, 0), dead);

  TopologySpec orphan_spec = standardSpec();
  orphan_spec.owner_pid = dead;
  auto orphan = mustCreate(orphan_spec);
  auto alive = mustCreate(standardSpec());
  ASSERT_NE(orphan, nullptr);
  ASSERT_NE(alive, nullptr);
  const std::string orphan_prefix = orphan->prefix();
  EXPECT_EQ(orphan_prefix.rfind("tg" + std::to_string(dead) + "x", 0), 0u) << orphan_prefix;
  orphan->release();
  orphan.reset();

  auto removed = collectGarbage();
  ASSERT_TRUE(removed.ok()) << removed.message();
  EXPECT_THAT(namespacesWithPrefix(orphan_prefix), IsEmpty());
  EXPECT_EQ(namespacesWithPrefix(alive->prefix()).size(), 5u);
  EXPECT_TRUE(alive->ping(alive->sandboxNs(0), "198.51.100.10", kPing).ok());
}

}  // namespace
}  // namespace tollgate::harness
