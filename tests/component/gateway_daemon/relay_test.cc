// Component tests of the splice relay on loopback TCP: real sockets, a real
// event loop, no namespaces needed.
#include "gateway/relay.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <thread>

namespace tollgate::gateway {
namespace {

struct TcpPair {
  UniqueFd a;  // "remote" end, used by the test
  UniqueFd b;  // end handed to the relay
};

TcpPair connectedPair() {
  UniqueFd lst(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(lst.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  EXPECT_EQ(listen(lst.get(), 1), 0);
  socklen_t len = sizeof(sin);
  getsockname(lst.get(), reinterpret_cast<sockaddr*>(&sin), &len);
  TcpPair p;
  p.a.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(connect(p.a.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  p.b.reset(accept4(lst.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  return p;
}

// Runs an event loop on its own thread with one relay between a client
// pair and an upstream pair; the test drives the far ends.
class RelayTest : public testing::Test {
 protected:
  void start(std::string initial = "") {
    client_ = connectedPair();
    upstream_ = connectedPair();
    base_.reset(event_base_new());
    auto r = Relay::start(base_.get(), std::move(client_.b), std::move(upstream_.b), initial,
                          [this](const Relay::Stats& st) {
                            stats_ = st;
                            done_ = true;
                            relay_.reset();
                          });
    ASSERT_TRUE(r.ok()) << r.message();
    relay_ = std::move(*r);
    loop_ = std::thread([this] { event_base_dispatch(base_.get()); });
  }
  void TearDown() override {
    if (loop_.joinable()) {
      loop_.join();  // the loop ends once the relay is done (no events left)
    }
  }
  static std::string readAll(int fd, size_t max = SIZE_MAX) {
    std::string out;
    char buf[65536];
    while (out.size() < max) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) {
        break;
      }
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) {
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  TcpPair client_;
  TcpPair upstream_;
  EventBasePtr base_;
  std::unique_ptr<Relay> relay_;
  std::thread loop_;
  Relay::Stats stats_;
  std::atomic<bool> done_{false};
};

TEST_F(RelayTest, InitialBytesGoFirstThenBothWaysWithHalfClose) {
  start("HELLO ");
  const int c = client_.a.get();
  const int u = upstream_.a.get();
  ASSERT_EQ(write(c, "world", 5), 5);
  ASSERT_EQ(shutdown(c, SHUT_WR), 0);  // client is done sending
  EXPECT_EQ(readAll(u), "HELLO world");  // EOF reached the upstream
  // The other direction still works after the client's half-close.
  ASSERT_EQ(write(u, "reply", 5), 5);
  ASSERT_EQ(shutdown(u, SHUT_WR), 0);
  EXPECT_EQ(readAll(c), "reply");
  loop_.join();
  EXPECT_TRUE(done_);
  EXPECT_EQ(stats_.bytes_up, 11u);
  EXPECT_EQ(stats_.bytes_down, 5u);
  EXPECT_FALSE(stats_.error);
}

TEST_F(RelayTest, LargeTransferWithASlowReaderArrivesIntact) {
  start();
  const int c = client_.a.get();
  const int u = upstream_.a.get();
  constexpr size_t kSize = 16 * 1024 * 1024;
  std::thread writer([u] {
    std::string chunk(65536, '\0');
    for (size_t off = 0; off < kSize; off += chunk.size()) {
      for (size_t i = 0; i < chunk.size(); ++i) {
        chunk[i] = static_cast<char>((off + i) * 7 % 251);
      }
      ASSERT_EQ(write(u, chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
    }
    shutdown(u, SHUT_WR);
  });
  // Read slowly at first so the relay has to hold back (backpressure).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::string got = readAll(c);
  writer.join();
  ASSERT_EQ(got.size(), kSize);
  for (size_t i = 0; i < kSize; i += 4099) {
    ASSERT_EQ(static_cast<uint8_t>(got[i]), static_cast<uint8_t>(i * 7 % 251)) << i;
  }
  shutdown(c, SHUT_WR);
  loop_.join();
  EXPECT_EQ(stats_.bytes_down, kSize);
}

TEST_F(RelayTest, ResetOnOneSideResetsTheOther) {
  start();
  setResetOnClose(upstream_.a.get());
  upstream_.a.reset();  // RST toward the relay
  char b;
  pollfd p{client_.a.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  ssize_t n = read(client_.a.get(), &b, 1);
  EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << n;
  loop_.join();
  EXPECT_TRUE(done_);
}

}  // namespace
}  // namespace tollgate::gateway
