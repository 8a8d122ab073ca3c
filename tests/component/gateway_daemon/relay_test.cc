// Component tests of the splice relay on loopback TCP: real sockets, a real
// event loop, no namespaces needed.
#include "gateway/relay.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <functional>
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
  // `tweak` may set socket options on the pairs before the relay takes them.
  void start(std::string initial = "", std::function<void(TcpPair&, TcpPair&)> tweak = {}) {
    client_ = connectedPair();
    upstream_ = connectedPair();
    if (tweak) {
      tweak(client_, upstream_);
    }
    base_.reset(event_base_new());
    auto r = Relay::start(base_.get(), std::move(client_.b), std::move(upstream_.b), initial,
                          [this](const Relay::Stats& st) {
                            stats_ = st;
                            splicing_at_end_ = relay_->splicing();
                            done_ = true;
                            relay_.reset();
                          });
    ASSERT_TRUE(r.ok()) << r.message();
    relay_ = std::move(*r);
    loop_ = std::thread([this] { event_base_dispatch(base_.get()); });
  }
  void TearDown() override {
    // A test that failed half-way may leave the relay running: closing the
    // far ends ends it (EOF, then resets), and with it the loop.
    client_.a.reset();
    upstream_.a.reset();
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

  static int openFds() {
    int n = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (readdir(d) != nullptr) {
        ++n;
      }
      closedir(d);
    }
    return n;
  }
  static std::string pattern(size_t size, unsigned seed) {
    std::string s(size, '\0');
    for (size_t i = 0; i < size; ++i) {
      s[i] = static_cast<char>((i * seed + i / 251) % 253);
    }
    return s;
  }
  static void writeAll(int fd, const std::string& s) {
    for (size_t off = 0; off < s.size();) {
      ssize_t n = write(fd, s.data() + off, std::min<size_t>(s.size() - off, 7000));
      ASSERT_GT(n, 0) << std::strerror(errno);
      off += static_cast<size_t>(n);
    }
  }

  TcpPair client_;
  TcpPair upstream_;
  int splicing_at_end_ = -1;
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

// Short flows are copied and never splice: no pipes, so an idle relayed
// flow holds only its two sockets.
TEST_F(RelayTest, ShortFlowCopiesWithoutPipes) {
  const int before = openFds();
  start("GET / HTTP/1.1\r\n\r\n");
  const int c = client_.a.get();
  const int u = upstream_.a.get();
  EXPECT_EQ(readAll(u, 18), "GET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(write(u, "HTTP/1.1 200 OK\r\n\r\n", 19), 19);
  EXPECT_EQ(readAll(c, 19), "HTTP/1.1 200 OK\r\n\r\n");
  // Both far ends (2), both relayed sockets (2), the loop's epoll fd and
  // its internals, and nothing else: no pipe was made.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int idle = openFds();
  ASSERT_EQ(shutdown(c, SHUT_WR), 0);
  ASSERT_EQ(shutdown(u, SHUT_WR), 0);
  EXPECT_EQ(readAll(c), "");
  EXPECT_EQ(readAll(u), "");
  loop_.join();
  EXPECT_EQ(splicing_at_end_, 0);
  EXPECT_FALSE(stats_.error);
  // A relay that made its pipes up front would hold 4 more descriptors.
  base_.reset();
  EXPECT_LE(idle - before, 4 + 3) << "descriptors while idle";
}

// Backpressure while copying: with tiny socket buffers toward a client that
// reads late, most sends are partial; every byte still arrives, in order.
TEST_F(RelayTest, BackpressureWhileCopyingKeepsOrder) {
  start("", [](TcpPair& client, TcpPair&) {
    int small = 4096;
    setsockopt(client.a.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    setsockopt(client.b.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  });
  const int c = client_.a.get();
  const int u = upstream_.a.get();
  // Below the splice switch: the whole transfer is copied.
  const std::string data = pattern(Relay::kSpliceAfter - 1000, 13);
  std::thread writer([&] {
    writeAll(u, data);
    shutdown(u, SHUT_WR);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::string got;
  char buf[1500];  // small reads keep the window small
  for (;;) {
    pollfd p{c, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) {
      break;
    }
    ssize_t n = read(c, buf, sizeof(buf));
    if (n <= 0) {
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  if (got.size() != data.size()) {
    shutdown(u, SHUT_RDWR);  // unblocks the writer
  }
  writer.join();
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data) << "bytes reordered or corrupted";
  shutdown(c, SHUT_WR);
  loop_.join();
  EXPECT_EQ(splicing_at_end_, 0);
  EXPECT_EQ(stats_.bytes_down, data.size());
  EXPECT_FALSE(stats_.error);
}

// Both directions cross the copy -> splice switch at once, in odd-sized
// writes, and each half-closes on its own: every byte arrives exactly, each
// EOF after its direction's last byte.
TEST_F(RelayTest, CrossingTheSpliceSwitchKeepsBytesExactBothWays) {
  const std::string head = "peeked bytes ";
  start(head);
  const int c = client_.a.get();
  const int u = upstream_.a.get();
  const std::string up = pattern(3 * Relay::kSpliceAfter + 12345, 7);
  const std::string down = pattern(5 * Relay::kSpliceAfter + 777, 11);
  std::string got_up, got_down;
  std::thread up_writer([&] {
    writeAll(c, up);
    shutdown(c, SHUT_WR);
  });
  std::thread down_writer([&] {
    writeAll(u, down);
    shutdown(u, SHUT_WR);
  });
  std::thread up_reader([&] { got_up = readAll(u); });
  got_down = readAll(c);
  up_reader.join();
  up_writer.join();
  down_writer.join();
  loop_.join();
  ASSERT_EQ(got_up.size(), head.size() + up.size());
  EXPECT_TRUE(got_up == head + up) << "upstream got different bytes";
  ASSERT_EQ(got_down.size(), down.size());
  EXPECT_TRUE(got_down == down) << "client got different bytes";
  EXPECT_EQ(stats_.bytes_up, head.size() + up.size());
  EXPECT_EQ(stats_.bytes_down, down.size());
  EXPECT_EQ(splicing_at_end_, 2);
  EXPECT_FALSE(stats_.error);
}

// Bytes the caller already sent upstream count, and are not sent again.
TEST_F(RelayTest, BytesSentByTheCallerCount) {
  client_ = connectedPair();
  upstream_ = connectedPair();
  base_.reset(event_base_new());
  auto r = Relay::start(
      base_.get(), std::move(client_.b), std::move(upstream_.b), "rest",
      [this](const Relay::Stats& st) {
        stats_ = st;
        done_ = true;
        relay_.reset();
      },
      /*sent_up=*/5);
  ASSERT_TRUE(r.ok()) << r.message();
  relay_ = std::move(*r);
  loop_ = std::thread([this] { event_base_dispatch(base_.get()); });
  ASSERT_EQ(shutdown(client_.a.get(), SHUT_WR), 0);
  EXPECT_EQ(readAll(upstream_.a.get()), "rest");
  ASSERT_EQ(shutdown(upstream_.a.get(), SHUT_WR), 0);
  EXPECT_EQ(readAll(client_.a.get()), "");
  loop_.join();
  EXPECT_EQ(stats_.bytes_up, 9u);
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
