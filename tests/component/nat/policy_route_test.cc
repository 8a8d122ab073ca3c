// Policy routing for capture: tproxy, installed in a fresh namespace through
// rtnetlink and read back with iproute2.
#include "nat/policy_route.h"

#include <gtest/gtest.h>

#include "netns_util.h"

namespace tollgate::nat {
namespace {
using nstest::Netns;

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) {
    ++n;
  }
  return n;
}

TEST(PolicyRouteTest, InstallIsIdempotentAndRemoveLeavesNothing) {
  Netns ns("-pr");
  ASSERT_TRUE(ns.ok()) << ns.error();
  ASSERT_EQ(ns.exec("ip link set lo up").status, 0);
  for (int i = 0; i < 2; ++i) {
    auto r = ns.in([] { return installTproxyRouting(); });
    ASSERT_TRUE(r) << r.message();
  }
  for (const char* fam : {"-4", "-6"}) {
    auto rules = ns.exec(std::string("ip ") + fam + " rule show");
    EXPECT_EQ(count(rules.out, "fwmark 0x74670003 lookup 7467"), 1u) << fam << rules.out;
    EXPECT_NE(rules.out.find("7467:"), std::string::npos) << rules.out;  // priority
    auto routes = ns.exec(std::string("ip ") + fam + " route show table 7467");
    EXPECT_NE(routes.out.find("local default dev lo"), std::string::npos) << fam << routes.out;
  }
  auto r = ns.in([] { return removeTproxyRouting(); });
  ASSERT_TRUE(r) << r.message();
  for (const char* fam : {"-4", "-6"}) {
    EXPECT_EQ(ns.exec(std::string("ip ") + fam + " rule show").out.find("0x74670003"),
              std::string::npos);
    EXPECT_EQ(ns.exec(std::string("ip ") + fam + " route show table 7467").out, "");
  }
  // Removing what is not there is fine (stop after a failed start).
  auto again = ns.in([] { return removeTproxyRouting(); });
  EXPECT_TRUE(again) << again.message();
}

TEST(PolicyRouteTest, TproxyOnABridgeWithBrNetfilterCallingIptablesIsRefused) {
  Netns ns("-brnf");
  ASSERT_TRUE(ns.ok()) << ns.error();
  ASSERT_EQ(ns.exec("ip link add tgbrx0 type bridge && ip link add tgdum0 type veth peer name tgdum1").status, 0);
  if (ns.exec("test -e /proc/sys/net/bridge/bridge-nf-call-iptables").status != 0) {
    GTEST_SKIP() << "br_netfilter not available";
  }
  ASSERT_EQ(ns.exec("sysctl -qw net.bridge.bridge-nf-call-iptables=1").status, 0);
  auto r = ns.in([] { return checkTproxyUsable({"tgdum0", "tgbrx0"}, false); });
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("tgbrx0"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("net.bridge.bridge-nf-call-iptables"), std::string::npos);
  // Not a bridge: fine. Sysctl off: fine.
  EXPECT_TRUE(ns.in([] { return checkTproxyUsable({"tgdum0"}, true); }));
  ASSERT_EQ(ns.exec("sysctl -qw net.bridge.bridge-nf-call-iptables=0 "
                    "net.bridge.bridge-nf-call-ip6tables=0").status, 0);
  EXPECT_TRUE(ns.in([] { return checkTproxyUsable({"tgbrx0"}, true); }));
  ASSERT_EQ(ns.exec("sysctl -qw net.bridge.bridge-nf-call-ip6tables=1").status, 0);
  EXPECT_TRUE(ns.in([] { return checkTproxyUsable({"tgbrx0"}, false); })) << "IPv4 only";
  EXPECT_FALSE(ns.in([] { return checkTproxyUsable({"tgbrx0"}, true); }));
}

}  // namespace
}  // namespace tollgate::nat
