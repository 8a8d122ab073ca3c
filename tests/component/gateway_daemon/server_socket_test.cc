// Listener options that accepted sockets inherit: tollgate sets them once on
// each listener instead of on every accepted connection, so the kernel must
// really copy them.
#include "gateway/server_socket.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace tollgate::gateway {
namespace {

int intOption(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);
  EXPECT_EQ(getsockopt(fd, level, name, &v, &len), 0);
  return v;
}

TEST(ServerSocketTest, AcceptedSocketsInheritNoDelayAndKeepalive) {
  UniqueFd lst(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(lst.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  setAcceptedStreamOptions(lst.get());
  ASSERT_EQ(listen(lst.get(), 1), 0);
  socklen_t len = sizeof(sin);
  getsockname(lst.get(), reinterpret_cast<sockaddr*>(&sin), &len);
  UniqueFd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(connect(c.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  UniqueFd a(accept4(lst.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(a);
  EXPECT_NE(intOption(a.get(), IPPROTO_TCP, TCP_NODELAY), 0);
  EXPECT_NE(intOption(a.get(), SOL_SOCKET, SO_KEEPALIVE), 0);
  // The dialling side did not get them: they came from the listener.
  EXPECT_EQ(intOption(c.get(), IPPROTO_TCP, TCP_NODELAY), 0);
}

}  // namespace
}  // namespace tollgate::gateway
