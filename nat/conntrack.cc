#include "nat/conntrack.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <sys/socket.h>

namespace tollgate::nat {

std::vector<uint8_t> encodeCtDeleteByMark(uint32_t seq, uint32_t mark, uint32_t mask) {
  std::vector<uint8_t> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = seq;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  // No tuple: a flush. AF_UNSPEC with version 0: of every family.
  nfg->nfgen_family = AF_UNSPEC;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  mnl_attr_put_u32(nlh, CTA_MARK, htonl(mark));
  mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(mask));
  buf.resize(nlh->nlmsg_len);
  return buf;
}

}  // namespace tollgate::nat
