// Root tests with real frames: readBindingDrops() counts, per sandbox and
// check, what the port binding dropped. Four namespaces:
//
//   c0 (agents, bound)  tgc0 10.99.0.2 fd99::2 -- tgsb0 --+
//   c1 (an unbound port) tgc1 10.99.0.3          -- tgsb1 --+ tgbr0 10.99.0.1/24 fd99::1/64
//   c2 (ci, bound,       tgc2 10.97.0.2          -- tgsb2      10.97.0.1/24 (routed)
//       routed)
//
// The clients reach the gateway through static neighbour entries, so the
// only frames they send with an address that is not theirs are the test's
// own, and the counts are exact.
#include "nat/binding_counters.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ostream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/unique.h"
#include "nat/nat.h"
#include "tests/component/nat/netns_util.h"

namespace tollgate::nat {

// gtest prints BindingCounts (found by ADL, so outside the anonymous namespace).
void PrintTo(const BindingCounts& c, std::ostream* os) {
  *os << "{source " << c[BindingCheck::kSource] << ", neighbour " << c[BindingCheck::kNeighbour]
      << ", routed_source " << c[BindingCheck::kRoutedSource] << ", foreign_port "
      << c[BindingCheck::kForeignPort] << "}";
}

namespace {

using nstest::Netns;
using ::testing::IsEmpty;
using namespace std::chrono_literals;

constexpr const char* kBridgeMac = "02:00:00:00:99:01";
constexpr const char* kRoutedMac = "02:00:00:00:97:01";

Prefix v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return Prefix{false, {a, b, c, d}, 32}; }

Prefix v6Host(uint8_t last) {
  Prefix p{true, {0xfd, 0x99}, 128};
  p.bytes[15] = last;
  return p;
}

Error sysError(const std::string& what) { return makeError(what + ": " + std::strerror(errno)); }

// `count` UDP datagrams from `src` (an address of the calling thread's
// namespace) to `dst` port 9.
Result<void> sendUdp(const char* src, const char* dst, int count) {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in from{};
  from.sin_family = AF_INET;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  if (!fd || inet_pton(AF_INET, src, &from.sin_addr) != 1 ||
      inet_pton(AF_INET, dst, &to.sin_addr) != 1 ||
      ::bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0) {
    return sysError(std::string("udp socket from ") + src);
  }
  for (int i = 0; i < count; ++i) {
    const char payload[] = "binding";
    if (::sendto(fd.get(), payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&to),
                 sizeof(to)) < 0) {
      return sysError(std::string("sendto ") + dst);
    }
  }
  return {};
}

// `count` unsolicited neighbour advertisements (override flag, RFC 4861
// 4.4) for `target`, from `src`, to all nodes on `ifname`: an attempt to
// take over `target`.
Result<void> sendNeighbourAdvert(const char* ifname, const char* src, const char* target,
                                 int count) {
  UniqueFd fd(::socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6));
  const unsigned index = if_nametoindex(ifname);
  int hops = 255;  // receivers ignore neighbour discovery with any other hop limit
  sockaddr_in6 from{};
  from.sin6_family = AF_INET6;
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_scope_id = index;
  nd_neighbor_advert na{};
  na.nd_na_type = ND_NEIGHBOR_ADVERT;
  na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
  if (!fd || index == 0 || inet_pton(AF_INET6, src, &from.sin6_addr) != 1 ||
      inet_pton(AF_INET6, "ff02::1", &to.sin6_addr) != 1 ||
      inet_pton(AF_INET6, target, &na.nd_na_target) != 1 ||
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) != 0 ||
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof(index)) != 0 ||
      ::bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0) {
    return sysError(std::string("icmpv6 socket on ") + ifname);
  }
  for (int i = 0; i < count; ++i) {
    // The kernel fills in the ICMPv6 checksum of raw ICMPv6 sockets.
    if (::sendto(fd.get(), &na, sizeof(na), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) {
      return sysError("sendto ff02::1");
    }
  }
  return {};
}

BindingCounts counts(uint64_t source, uint64_t neighbour, uint64_t routed, uint64_t foreign) {
  return BindingCounts{{source, neighbour, routed, foreign}};
}

class BindingCountersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const Netns* ns : {&gw_, &c0_, &c1_, &c2_}) {
      ASSERT_TRUE(ns->ok()) << ns->error();
    }
    const std::string g = "ip -n " + gw_.name() + " ";
    std::vector<std::string> cmds = {
        g + "link add tgbr0 address " + kBridgeMac + " type bridge",
        g + "link add tgsb2 address " + kRoutedMac + " type veth peer name tgc2 netns " +
            c2_.name(),
        g + "addr add 10.99.0.1/24 dev tgbr0",
        g + "-6 addr add fd99::1/64 dev tgbr0 nodad",
        g + "link set tgbr0 up",
        g + "addr add 10.97.0.1/24 dev tgsb2",
        g + "link set tgsb2 up",
    };
    for (const auto& [port, peer, ns] :
         {std::tuple{"tgsb0", "tgc0", &c0_}, std::tuple{"tgsb1", "tgc1", &c1_}}) {
      cmds.push_back(g + "link add " + port + " type veth peer name " + peer + " netns " +
                     ns->name());
      cmds.push_back(g + "link set " + port + " master tgbr0");
      cmds.push_back(g + "link set " + port + " up");
    }
    const std::string a = "ip -n " + c0_.name() + " ";
    const std::string u = "ip -n " + c1_.name() + " ";
    const std::string r = "ip -n " + c2_.name() + " ";
    for (const std::string& cmd : {
             // agents, with one address that is not its own (10.99.0.9)
             a + "addr add 10.99.0.2/24 dev tgc0",
             a + "addr add 10.99.0.9/32 dev tgc0",
             a + "-6 addr add fd99::2/64 dev tgc0 nodad",
             a + "link set tgc0 up",
             a + "neigh add 10.99.0.1 lladdr " + kBridgeMac + " dev tgc0 nud permanent",
             // the unbound port, also configured with agents' address
             u + "addr add 10.99.0.3/24 dev tgc1",
             u + "addr add 10.99.0.2/32 dev tgc1",
             u + "link set tgc1 up",
             u + "neigh add 10.99.0.1 lladdr " + kBridgeMac + " dev tgc1 nud permanent",
             // ci on a routed port, with one address that is not its own (10.97.0.9)
             r + "addr add 10.97.0.2/24 dev tgc2",
             r + "addr add 10.97.0.9/32 dev tgc2",
             r + "link set tgc2 up",
             r + "neigh add 10.97.0.1 lladdr " + kRoutedMac + " dev tgc2 nud permanent",
         }) {
      cmds.push_back(cmd);
    }
    for (const std::string& cmd : cmds) {
      auto res = nstest::run(cmd);
      ASSERT_EQ(res.status, 0) << cmd << ": " << res.out;
    }
    // Bridged IP does not pass the inet hooks a second time; best effort,
    // the sysctls exist only while br_netfilter is loaded.
    (void)gw_.exec(
        "sysctl -qw net.bridge.bridge-nf-call-iptables=0 "
        "net.bridge.bridge-nf-call-ip6tables=0");
  }

  CaptureSpec spec() const {
    CaptureSpec s;
    s.interfaces = {"tgbr0", "tgsb2"};
    s.bindings = {PortBinding{"agents", {"tgsb0"}, {v4(10, 99, 0, 2), v6Host(2)}},
                  PortBinding{"ci", {"tgsb2"}, {v4(10, 97, 0, 2)}}};
    return s;
  }

  Result<BindingDrops> read() const {
    return gw_.in([] { return readBindingDrops(); });
  }

  // Reads until the counts are `want` (frames cross veths and the bridge in
  // softirq, just after send returns), at most 2 s; the last read.
  BindingDrops readUntil(const BindingDrops& want) const {
    BindingDrops last;
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    do {
      auto r = read();
      EXPECT_TRUE(r.ok()) << r.message();
      if (!r.ok()) {
        return last;
      }
      last = *r;
      if (last == want) {
        break;
      }
      std::this_thread::sleep_for(20ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return last;
  }

  Netns gw_{"g"};
  Netns c0_{"a"};
  Netns c1_{"u"};
  Netns c2_{"r"};
};

TEST_F(BindingCountersTest, NothingToReadWithoutBindings) {
  auto none = read();
  ASSERT_TRUE(none.ok()) << none.message();
  EXPECT_THAT(*none, IsEmpty());
  CaptureSpec unbound = spec();
  unbound.bindings.clear();
  auto installed = gw_.in([&] { return installCapture(unbound); });
  ASSERT_TRUE(installed.ok()) << installed.message();
  none = read();
  ASSERT_TRUE(none.ok()) << none.message();
  EXPECT_THAT(*none, IsEmpty());
}

// Each check counts exactly the frames sent to defeat it, under the sandbox
// it protects; a replaced table counts from zero again, which the totals
// carry over.
TEST_F(BindingCountersTest, CountsEachDroppedAttemptBySandboxAndCheck) {
  auto installed = gw_.in([&] { return installCapture(spec()); });
  ASSERT_TRUE(installed.ok()) << installed.message();
  const BindingDrops zero{{"agents", counts(0, 0, 0, 0)}, {"ci", counts(0, 0, 0, 0)}};
  EXPECT_EQ(readUntil(zero), zero);

  // agents' port: 3 datagrams from a foreign source, 2 advertisements of a
  // foreign address.
  auto sent = c0_.in([] { return sendUdp("10.99.0.9", "10.99.0.1", 3); });
  ASSERT_TRUE(sent.ok()) << sent.message();
  sent = c0_.in([] { return sendNeighbourAdvert("tgc0", "fd99::2", "fd99::9", 2); });
  ASSERT_TRUE(sent.ok()) << sent.message();
  // An unbound port using agents' address: 4 datagrams.
  sent = c1_.in([] { return sendUdp("10.99.0.2", "10.99.0.1", 4); });
  ASSERT_TRUE(sent.ok()) << sent.message();
  // ci's routed port with a foreign source: 5 datagrams.
  sent = c2_.in([] { return sendUdp("10.97.0.9", "10.97.0.1", 5); });
  ASSERT_TRUE(sent.ok()) << sent.message();
  // Positive control: own addresses are not counted.
  sent = c0_.in([] { return sendUdp("10.99.0.2", "10.99.0.1", 2); });
  ASSERT_TRUE(sent.ok()) << sent.message();
  sent = c2_.in([] { return sendUdp("10.97.0.2", "10.97.0.1", 2); });
  ASSERT_TRUE(sent.ok()) << sent.message();

  const BindingDrops attempts{{"agents", counts(3, 2, 0, 4)}, {"ci", counts(0, 0, 5, 0)}};
  BindingDrops before = readUntil(attempts);
  EXPECT_EQ(before, attempts);
  auto listed = gw_.exec("nft list chain bridge tollgate port_agents");
  EXPECT_THAT(listed.out, ::testing::HasSubstr("counter packets 3 ")) << listed.out;

  // A reload that changes bindings replaces both tables: counters restart.
  BindingDropTotals totals;
  totals.observe(before);
  auto reinstalled = gw_.in([&] { return installCapture(spec()); });
  ASSERT_TRUE(reinstalled.ok()) << reinstalled.message();
  totals.tablesReplaced();
  auto after = read();
  ASSERT_TRUE(after.ok()) << after.message();
  EXPECT_EQ(*after, zero);
  totals.observe(*after);
  sent = c2_.in([] { return sendUdp("10.97.0.9", "10.97.0.1", 1); });
  ASSERT_TRUE(sent.ok()) << sent.message();
  const BindingDrops one_more{{"agents", counts(0, 0, 0, 0)}, {"ci", counts(0, 0, 1, 0)}};
  totals.observe(readUntil(one_more));
  const BindingDrops expected{{"agents", counts(3, 2, 0, 4)}, {"ci", counts(0, 0, 6, 0)}};
  EXPECT_EQ(totals.totals(), expected);
}

}  // namespace
}  // namespace tollgate::nat
