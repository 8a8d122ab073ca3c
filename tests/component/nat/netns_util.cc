#include "tests/component/nat/netns_util.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tollgate::nat::nstest {
namespace {

std::atomic<int> g_counter{0};

Error sysError(const std::string& what) { return makeError(what + ": " + std::strerror(errno)); }

int pollFor(int fd, short events, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{fd, events, 0};
    int r = ::poll(&pfd, 1, left.count() > 0 ? static_cast<int>(left.count()) : 0);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    return r > 0 ? pfd.revents : r;
  }
}

}  // namespace

CmdResult run(const std::string& cmd) {
  CmdResult res;
  std::string full = cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) {
    return res;
  }
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) {
    res.out.append(buf, n);
  }
  int status = ::pclose(p);
  res.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return res;
}

Netns::Netns(const std::string& suffix)
    : name_("tgnat-" + std::to_string(::getpid()) + "-" + std::to_string(g_counter++) + suffix) {
  CmdResult add = run("ip netns add " + name_);
  if (add.status != 0) {
    error_ = "ip netns add " + name_ + " failed: " + add.out;
    return;
  }
  ok_ = true;  // from here on the destructor deletes it
  CmdResult setup = exec(
      "ip link set lo up && sysctl -qw net.ipv6.conf.all.accept_dad=0 && "
      "sysctl -qw net.ipv6.conf.default.accept_dad=0");
  if (setup.status != 0) {
    ok_ = false;
    error_ = "namespace setup failed: " + setup.out;
  }
}

Netns::~Netns() {
  // Always, even after a failed setup: the name may exist.
  (void)run("ip netns del " + name_);
}

CmdResult Netns::exec(const std::string& cmd) const {
  std::string quoted;
  for (char c : cmd) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return run("ip netns exec " + name_ + " sh -c '" + quoted + "'");
}

Result<void> Netns::enter() const {
  UniqueFd fd(::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return sysError("open /run/netns/" + name_);
  }
  if (::setns(fd.get(), CLONE_NEWNET) != 0) {
    return sysError("setns " + name_);
  }
  return {};
}

Result<UniqueFd> listenOn(const SockAddr& addr, bool v6only) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return sysError("socket");
  }
  int one = 1;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (addr.isV6()) {
    int v = v6only ? 1 : 0;
    if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v)) != 0) {
      return sysError("IPV6_V6ONLY");
    }
  }
  if (::bind(fd.get(), addr.sa(), addr.len()) != 0) {
    return sysError("bind " + addr.toString());
  }
  if (::listen(fd.get(), 16) != 0) {
    return sysError("listen");
  }
  return fd;
}

Result<UniqueFd> connectTo(const SockAddr& dst, std::chrono::milliseconds timeout) {
  UniqueFd fd(::socket(dst.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    return sysError("socket");
  }
  if (::connect(fd.get(), dst.sa(), dst.len()) == 0) {
    return fd;
  }
  if (errno != EINPROGRESS) {
    return sysError("connect " + dst.toString());
  }
  int revents = pollFor(fd.get(), POLLOUT, timeout);
  if (revents == 0) {
    return makeError("connect " + dst.toString() + ": timed out after " +
                     std::to_string(timeout.count()) + " ms");
  }
  if (revents < 0) {
    return sysError("poll");
  }
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    return sysError("SO_ERROR");
  }
  if (err != 0) {
    return makeError("connect " + dst.toString() + ": " + std::strerror(err));
  }
  return fd;
}

Result<UniqueFd> acceptWithin(int listener, std::chrono::milliseconds timeout) {
  int revents = pollFor(listener, POLLIN, timeout);
  if (revents <= 0) {
    return makeError("no connection to accept within " + std::to_string(timeout.count()) + " ms");
  }
  UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd) {
    return sysError("accept");
  }
  return fd;
}

bool readableWithin(int fd, std::chrono::milliseconds timeout) {
  return pollFor(fd, POLLIN, timeout) > 0;
}

}  // namespace tollgate::nat::nstest
