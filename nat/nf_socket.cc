#include "nat/nf_socket.h"

#include <linux/netlink.h>
#include <poll.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

namespace tollgate::nat {
namespace {

// Large enough for any dump datagram the kernel builds (at most 32 KiB).
constexpr size_t kReceiveBufferSize = 64 * 1024;

Error sysError(const std::string& what) {
  return makeError("nftables: " + what + ": " + std::strerror(errno));
}

}  // namespace

uint32_t initialSeq() { return static_cast<uint32_t>(std::time(nullptr)); }

NfSocket::NfSocket(MnlSocket nl) : nl_(std::move(nl)), buffer_(kReceiveBufferSize) {}

Result<NfSocket> NfSocket::open() {
  MnlSocket nl(mnl_socket_open(NETLINK_NETFILTER));
  if (!nl) {
    return sysError("cannot open a netfilter netlink socket");
  }
  if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return sysError("cannot bind the netfilter netlink socket");
  }
  // Best effort (older kernels lack them): ACKs without a copy of our
  // request, and with the kernel's extended error message when it has one.
  int one = 1;
  (void)mnl_socket_setsockopt(nl.get(), NETLINK_CAP_ACK, &one, sizeof(one));
  (void)mnl_socket_setsockopt(nl.get(), NETLINK_EXT_ACK, &one, sizeof(one));
  return NfSocket(std::move(nl));
}

Result<void> NfSocket::send(const std::vector<uint8_t>& bytes) {
  ssize_t n = mnl_socket_sendto(nl_.get(), bytes.data(), bytes.size());
  if (n < 0) {
    return sysError("sending to the kernel failed");
  }
  if (static_cast<size_t>(n) != bytes.size()) {
    return makeError("nftables: short send to the kernel");
  }
  return {};
}

Result<std::optional<std::vector<Reply>>> NfSocket::receive(NfClock::time_point deadline) {
  const int fd = mnl_socket_get_fd(nl_.get());
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - NfClock::now());
    if (left.count() <= 0) {
      return std::optional<std::vector<Reply>>();
    }
    pollfd pfd{fd, POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) {
      continue;
    }
    if (ready < 0) {
      return sysError("waiting for the kernel's answer failed");
    }
    if (ready == 0) {
      return std::optional<std::vector<Reply>>();
    }
    ssize_t n = mnl_socket_recvfrom(nl_.get(), buffer_.data(), buffer_.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      // ENOBUFS: the kernel dropped answers; ENOSPC: one did not fit.
      return sysError("reading the kernel's answer failed");
    }
    auto replies = parseReplies(std::span<const uint8_t>(buffer_.data(), static_cast<size_t>(n)));
    if (!replies) {
      return replies.error();
    }
    return std::optional<std::vector<Reply>>(std::move(*replies));
  }
}

}  // namespace tollgate::nat
