#include "nat/policy_route.h"

#include <libmnl/libmnl.h>
#include <linux/ethtool.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "base/handles.h"

namespace tollgate::nat {
namespace {

// Sends one request and waits for its ACK. Returns the kernel's errno (0 ok).
int request(mnl_socket* nl, nlmsghdr* nlh) {
  uint32_t seq = nlh->nlmsg_seq;
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
    return errno;
  }
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
  if (n < 0) {
    return errno;
  }
  int rc = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, mnl_socket_get_portid(nl), nullptr,
                      nullptr);
  return rc < 0 ? errno : 0;
}

Result<MnlSocket> openRoute() {
  MnlSocket nl(mnl_socket_open(NETLINK_ROUTE));
  if (!nl || mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return makeError(std::string("rtnetlink: ") + strerror(errno));
  }
  return nl;
}

nlmsghdr* ruleMsg(char* buf, uint16_t type, uint16_t flags, uint8_t family, uint32_t seq) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  nlh->nlmsg_seq = seq;
  auto* frh = static_cast<fib_rule_hdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(fib_rule_hdr)));
  frh->family = family;
  frh->action = FR_ACT_TO_TBL;
  frh->table = RT_TABLE_UNSPEC;
  mnl_attr_put_u32(nlh, FRA_FWMARK, kTproxyMark);
  mnl_attr_put_u32(nlh, FRA_FWMASK, 0xffffffff);
  mnl_attr_put_u32(nlh, FRA_TABLE, kTproxyTable);
  mnl_attr_put_u32(nlh, FRA_PRIORITY, kTproxyRulePriority);
  return nlh;
}

nlmsghdr* routeMsg(char* buf, uint16_t type, uint16_t flags, uint8_t family, uint32_t seq,
                   uint32_t lo) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  nlh->nlmsg_seq = seq;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = family;
  rtm->rtm_table = RT_TABLE_UNSPEC;  // the table goes in RTA_TABLE (> 255)
  rtm->rtm_protocol = RTPROT_STATIC;
  rtm->rtm_scope = RT_SCOPE_HOST;
  rtm->rtm_type = RTN_LOCAL;
  mnl_attr_put_u32(nlh, RTA_TABLE, kTproxyTable);
  mnl_attr_put_u32(nlh, RTA_OIF, lo);
  return nlh;
}

// Deletes every copy of our rule (a crash may have left one; `ip rule`
// allows duplicates).
int deleteRules(mnl_socket* nl, uint8_t family, uint32_t& seq) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  for (int i = 0; i < 16; ++i) {
    int err = request(nl, ruleMsg(buf.data(), RTM_DELRULE, 0, family, ++seq));
    if (err == ENOENT) {
      return 0;
    }
    if (err != 0) {
      return err;
    }
  }
  return 0;
}

// Asks the driver (SIOCETHTOOL, in the calling thread's network namespace;
// /sys/class/net would show the namespace sysfs was mounted in).
bool isBridge(const std::string& ifname) {
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock || ifname.size() >= IFNAMSIZ) {
    return false;
  }
  ethtool_drvinfo info{};
  info.cmd = ETHTOOL_GDRVINFO;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  ifr.ifr_data = reinterpret_cast<char*>(&info);
  return ioctl(sock.get(), SIOCETHTOOL, &ifr) == 0 && std::strcmp(info.driver, "bridge") == 0;
}

bool sysctlIsOne(const std::string& path) {
  FILE* f = fopen(path.c_str(), "re");
  if (f == nullptr) {
    return false;  // br_netfilter not loaded: nothing diverts bridged packets
  }
  int c = fgetc(f);
  fclose(f);
  return c == '1';
}

}  // namespace

Result<void> checkTproxyUsable(const std::vector<std::string>& interfaces, bool ipv6) {
  for (const std::string& ifname : interfaces) {
    if (!isBridge(ifname)) {
      continue;
    }
    for (const char* key : {"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"}) {
      if (!ipv6 && std::string(key) == "bridge-nf-call-ip6tables") {
        continue;
      }
      if (sysctlIsOne(std::string("/proc/sys/net/bridge/") + key)) {
        return makeError("capture: tproxy cannot work on bridge " + ifname + " while net.bridge." +
                         key +
                         " = 1 (br_netfilter): diverted packets would be reset, silently. Set "
                         "`sysctl -w net.bridge." +
                         key +
                         "=0` (per network namespace; Docker hosts load br_netfilter) or use "
                         "capture: redirect");
      }
    }
  }
  return {};
}

Result<void> installTproxyRouting() {
  auto nl = openRoute();
  if (!nl) {
    return makeError(nl.message());
  }
  uint32_t lo = if_nametoindex("lo");
  if (lo == 0) {
    return makeError("tproxy routing: no loopback interface");
  }
  auto seq = static_cast<uint32_t>(time(nullptr));
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  for (uint8_t family : {uint8_t(AF_INET), uint8_t(AF_INET6)}) {
    const char* fam = family == AF_INET ? "IPv4" : "IPv6";
    if (int err = deleteRules(nl->get(), family, seq); err != 0) {
      return makeError(std::string("tproxy routing: removing a stale ") + fam +
                       " rule: " + strerror(err));
    }
    if (int err = request(
            nl->get(), ruleMsg(buf.data(), RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, family, ++seq));
        err != 0) {
      return makeError(std::string("tproxy routing: adding the ") + fam +
                       " fwmark rule: " + strerror(err));
    }
    if (int err = request(nl->get(), routeMsg(buf.data(), RTM_NEWROUTE,
                                              NLM_F_CREATE | NLM_F_REPLACE, family, ++seq, lo));
        err != 0) {
      return makeError(std::string("tproxy routing: adding the ") + fam +
                       " local route: " + strerror(err));
    }
  }
  return {};
}

Result<void> removeTproxyRouting() {
  auto nl = openRoute();
  if (!nl) {
    return makeError(nl.message());
  }
  uint32_t lo = if_nametoindex("lo");
  auto seq = static_cast<uint32_t>(time(nullptr));
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  std::string errors;
  for (uint8_t family : {uint8_t(AF_INET), uint8_t(AF_INET6)}) {
    if (int err = deleteRules(nl->get(), family, seq); err != 0) {
      errors += std::string(errors.empty() ? "" : "; ") + "rule: " + strerror(err);
    }
    int err = request(nl->get(), routeMsg(buf.data(), RTM_DELROUTE, 0, family, ++seq, lo));
    if (err != 0 && err != ESRCH && err != ENOENT) {
      errors += std::string(errors.empty() ? "" : "; ") + "route: " + strerror(err);
    }
  }
  if (!errors.empty()) {
    return makeError("tproxy routing: " + errors);
  }
  return {};
}

}  // namespace tollgate::nat
