// I/O half of nat/conntrack.h: one request on a NETLINK_NETFILTER socket,
// waiting for its ACK.
#include <linux/netlink.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "nat/conntrack.h"
#include "nat/nf_socket.h"

namespace tollgate::nat {

Result<void> deleteVerdictEntries() {
  auto sock = NfSocket::open();
  if (!sock) {
    return sock.error();
  }
  const uint32_t seq = initialSeq();
  if (auto sent = sock->send(encodeCtDeleteByMark(seq, kVerdictMarkValue, kVerdictMarkMask));
      !sent) {
    return makeError("conntrack: " + sent.message());
  }
  const auto deadline = NfClock::now() + kAnswerDeadline;
  for (;;) {
    auto replies = sock->receive(deadline);
    if (!replies) {
      return makeError("conntrack: " + replies.message());
    }
    if (!replies->has_value()) {
      return makeError("conntrack: no answer from the kernel to deleting admitted flows");
    }
    for (const Reply& r : **replies) {
      if (r.seq != seq || r.type != NLMSG_ERROR) {
        continue;
      }
      if (r.error == 0) {
        return {};
      }
      std::string text =
          std::string("conntrack: deleting admitted flows failed: ") + std::strerror(r.error);
      if (r.error == EPERM) {
        text += " (needs CAP_NET_ADMIN in this network namespace)";
      } else if (r.error == EOPNOTSUPP) {
        text += " (kernel without CONFIG_NF_CONNTRACK_MARK?)";
      }
      return makeError(std::move(text));
    }
  }
}

}  // namespace tollgate::nat
