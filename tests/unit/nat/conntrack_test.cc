// The conntrack delete-by-mark request, byte for byte.
#include "nat/conntrack.h"

#include <gtest/gtest.h>

#include <vector>

#include "nat/nat.h"

namespace tollgate::nat {
namespace {

TEST(ConntrackTest, DeleteByMarkIsAFlushOfEveryFamilyFilteredByMarkAndMask) {
  const std::vector<uint8_t> want = {
      // nlmsghdr: length 36, type (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
      // flags NLM_F_REQUEST | NLM_F_ACK, seq 0x01020304, pid 0 (host order)
      0x24, 0x00, 0x00, 0x00, 0x02, 0x01, 0x05, 0x00, 0x04, 0x03, 0x02, 0x01, 0x00, 0x00, 0x00,
      0x00,
      // nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id 0: no tuple, every family
      0x00, 0x00, 0x00, 0x00,
      // CTA_MARK (8), big endian
      0x08, 0x00, 0x08, 0x00, 0x74, 0x67, 0x00, 0x00,
      // CTA_MARK_MASK (21), big endian
      0x08, 0x00, 0x15, 0x00, 0xff, 0xff, 0xff, 0x00};
  EXPECT_EQ(encodeCtDeleteByMark(0x01020304, 0x74670000, 0xffffff00), want);
}

TEST(ConntrackTest, TheVerdictMaskCoversEveryCtMarkTollgateSets) {
  for (uint32_t m : {kMarkAdmit, kMarkDeny}) {
    EXPECT_EQ(m & kVerdictMarkMask, kVerdictMarkValue) << std::hex << m;
  }
  // Not an arbitrary mark of someone else's.
  EXPECT_NE(0x00000001u & kVerdictMarkMask, kVerdictMarkValue);
  EXPECT_NE(0x74680001u & kVerdictMarkMask, kVerdictMarkValue);
}

}  // namespace
}  // namespace tollgate::nat
