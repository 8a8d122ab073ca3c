// Revoking grants: entries created in a namespace of the test's own with
// conntrack(8), deleted through nat::deleteVerdictEntries(), read back.
#include "nat/conntrack.h"

#include <gtest/gtest.h>

#include <string>

#include "netns_util.h"

namespace tollgate::nat {
namespace {
using nstest::Netns;

std::string entry(const std::string& src, const std::string& dst, int sport, const char* mark,
                  const char* proto = "udp") {
  return std::string("conntrack -I -p ") + proto + " -s " + src + " -d " + dst + " --sport " +
         std::to_string(sport) + " --dport 5353 -t 120 --mark " + mark;
}

TEST(ConntrackTest, MarkedEntriesAreDeletedAndUnmarkedOnesStay) {
  Netns ns("-ct");
  ASSERT_TRUE(ns.ok()) << ns.error();
  if (ns.exec("command -v conntrack").status != 0) {
    GTEST_SKIP() << "conntrack(8) not installed";
  }
  ASSERT_EQ(ns.exec("ip link set lo up").status, 0);
  for (const std::string& cmd : {
           entry("10.77.0.2", "198.51.100.10", 40001, "0x74670001"),  // admitted
           entry("10.77.0.2", "198.51.100.10", 40002, "0x74670002"),  // tollgate's deny mark
           entry("2001:db8:77::2", "2001:db8:100::10", 40003, "0x74670001"),
           entry("10.77.0.2", "198.51.100.10", 40004, "0"),           // unmarked
           entry("10.77.0.2", "198.51.100.10", 40005, "0x1"),         // someone else's mark
           entry("10.77.0.2", "198.51.100.10", 40006, "0x74680001"),  // close, but not ours
       }) {
    auto r = ns.exec(cmd);
    ASSERT_EQ(r.status, 0) << cmd << ": " << r.out;
  }
  ASSERT_EQ(ns.exec("conntrack -L -f ipv4 2>/dev/null | grep -c sport=").out, "5\n");

  auto del = ns.in([] { return deleteVerdictEntries(); });
  ASSERT_TRUE(del) << del.message();

  std::string v4 = ns.exec("conntrack -L -f ipv4 2>/dev/null").out;
  std::string v6 = ns.exec("conntrack -L -f ipv6 2>/dev/null").out;
  EXPECT_EQ(v4.find("sport=40001"), std::string::npos) << v4;
  EXPECT_EQ(v4.find("sport=40002"), std::string::npos) << v4;
  EXPECT_EQ(v6.find("sport=40003"), std::string::npos) << v6;
  EXPECT_NE(v4.find("sport=40004"), std::string::npos) << v4;
  EXPECT_NE(v4.find("sport=40005"), std::string::npos) << v4;
  EXPECT_NE(v4.find("sport=40006"), std::string::npos) << v4;

  // Nothing left to delete: still fine (a start with a clean table).
  auto again = ns.in([] { return deleteVerdictEntries(); });
  EXPECT_TRUE(again) << again.message();
  EXPECT_NE(ns.exec("conntrack -L -f ipv4 2>/dev/null").out.find("sport=40004"), std::string::npos);
}

}  // namespace
}  // namespace tollgate::nat
