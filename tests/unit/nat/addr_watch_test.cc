#include "nat/addr_watch.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include <cstring>
#include <string>
#include <vector>

namespace tollgate::nat {
namespace {

// One RTM_NEWADDR / RTM_DELADDR as the kernel sends it, appended to `out`.
struct Msg {
  uint16_t type = RTM_NEWADDR;
  uint8_t family = AF_INET;
  uint8_t prefix_len = 24;
  uint32_t ifindex = 7;
  std::string local;    // IFA_LOCAL, "" = absent
  std::string address;  // IFA_ADDRESS, "" = absent
};

void append(std::vector<uint8_t>& out, const Msg& m) {
  alignas(4) char buf[512] = {};
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = m.type;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = m.family;
  ifa->ifa_prefixlen = m.prefix_len;
  ifa->ifa_index = m.ifindex;
  auto put = [&](uint16_t type, const std::string& text) {
    if (text.empty()) {
      return;
    }
    uint8_t bytes[16];
    int family = text.find(':') == std::string::npos ? AF_INET : AF_INET6;
    ASSERT_EQ(inet_pton(family, text.c_str(), bytes), 1) << text;
    mnl_attr_put(nlh, type, family == AF_INET ? 4 : 16, bytes);
  };
  put(IFA_ADDRESS, m.address);
  put(IFA_LOCAL, m.local);
  mnl_attr_put_strz(nlh, IFA_LABEL, "eth0");
  out.insert(out.end(), buf, buf + nlh->nlmsg_len);
}

std::string describe(const AddrDecode& d) {
  std::string s;
  for (const AddrChange& c : d.changes) {
    s += (c.added ? "+" : "-") + c.addr.ip() + "/" + std::to_string(c.prefix_len) + "@" +
         std::to_string(c.ifindex) + " ";
  }
  return s + (d.malformed ? "malformed" : "ok");
}

TEST(AddrWatchDecodeTest, NewAndDeletedAddressesOfBothFamilies) {
  std::vector<uint8_t> dgram;
  append(dgram, Msg{RTM_NEWADDR, AF_INET, 24, 3, "198.18.0.7", "198.18.0.7"});
  append(dgram, Msg{RTM_NEWADDR, AF_INET6, 64, 4, "", "2001:db8::7"});
  append(dgram, Msg{RTM_DELADDR, AF_INET, 32, 3, "", "192.0.2.1"});
  EXPECT_EQ(describe(decodeAddrMessages(dgram)),
            "+198.18.0.7/24@3 +2001:db8::7/64@4 -192.0.2.1/32@3 ok");
}

TEST(AddrWatchDecodeTest, PointToPointTakesTheLocalAddressNotThePeer) {
  std::vector<uint8_t> dgram;
  append(dgram, Msg{RTM_NEWADDR, AF_INET, 32, 9, "10.9.0.1", "10.9.0.2"});
  EXPECT_EQ(describe(decodeAddrMessages(dgram)), "+10.9.0.1/32@9 ok");
}

TEST(AddrWatchDecodeTest, OtherMessagesAndFamiliesAreSkipped) {
  std::vector<uint8_t> dgram;
  append(dgram, Msg{RTM_NEWLINK, AF_INET, 24, 3, "198.18.0.7", ""});
  append(dgram, Msg{RTM_NEWADDR, AF_PACKET, 0, 3, "", ""});
  append(dgram, Msg{RTM_NEWADDR, AF_INET, 24, 3, "198.18.0.8", ""});
  EXPECT_EQ(describe(decodeAddrMessages(dgram)), "+198.18.0.8/24@3 ok");
  EXPECT_EQ(describe(decodeAddrMessages({})), "ok");
}

TEST(AddrWatchDecodeTest, UnusableAddressMessagesAskForAResync) {
  std::vector<uint8_t> none;
  append(none, Msg{RTM_NEWADDR, AF_INET, 24, 3, "", ""});
  EXPECT_EQ(describe(decodeAddrMessages(none)), "malformed");
  // An IPv6 address in an IPv4 message.
  std::vector<uint8_t> wrong;
  append(wrong, Msg{RTM_DELADDR, AF_INET, 24, 3, "", "2001:db8::1"});
  EXPECT_EQ(describe(decodeAddrMessages(wrong)), "malformed");
  // Prefix lengths beyond the family are clamped.
  std::vector<uint8_t> wide;
  append(wide, Msg{RTM_NEWADDR, AF_INET, 200, 3, "192.0.2.9", ""});
  EXPECT_EQ(describe(decodeAddrMessages(wide)), "+192.0.2.9/32@3 ok");
}

// Every truncation of a valid datagram, and every single-byte corruption of
// it, decodes without crashing; truncations are reported.
TEST(AddrWatchDecodeTest, TruncatedAndCorruptInputIsSafe) {
  std::vector<uint8_t> dgram;
  append(dgram, Msg{RTM_NEWADDR, AF_INET, 24, 3, "198.18.0.7", "198.18.0.7"});
  const size_t first = dgram.size();
  append(dgram, Msg{RTM_NEWADDR, AF_INET6, 64, 4, "", "2001:db8::7"});
  for (size_t n = 1; n < dgram.size(); ++n) {
    AddrDecode d = decodeAddrMessages({dgram.data(), n});
    EXPECT_LE(d.changes.size(), 2u) << n;
    if (n != first) {  // a cut between whole messages is a valid datagram
      EXPECT_TRUE(d.malformed) << n;
    }
  }
  for (size_t i = 0; i < dgram.size(); ++i) {
    for (uint8_t v : {uint8_t{0}, uint8_t{0xff}, uint8_t{0x10}}) {
      std::vector<uint8_t> bad = dgram;
      bad[i] = v;
      (void)decodeAddrMessages(bad);
    }
  }
}

// The socket opens and drains (nothing queued yet); the e2e test
// UpstreamGuardTest.AddressAddedAfterStartIsNeverAnUpstream covers events.
TEST(AddrWatchTest, OpensAndDrainsWhenIdle) {
  auto w = AddrWatch::open();
  ASSERT_TRUE(w) << w.message();
  auto r = w->drain();
  ASSERT_TRUE(r) << r.message();
  EXPECT_TRUE(r->changes.empty());
}

}  // namespace
}  // namespace tollgate::nat
