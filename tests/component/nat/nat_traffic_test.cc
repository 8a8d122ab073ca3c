// Root tests with real packets. Three namespaces: "client" (the sandbox)
// hangs off tgsb0, the sandbox interface of the "gateway" namespace where the
// table is installed and the listener waits; "upstream" is a real server the
// gateway routes to, so a packet that escapes capture would really arrive.
//
//   client                 gateway                               upstream
//   tgc0 10.99.0.2/24  --  tgsb0 10.99.0.1/24  tgup0 10.98.0.1/24 -- tgu0 10.98.0.2/24
//        fd99::2/64              fd99::1/64          fd98::1/64          fd98::2/64
//   default via gateway   forwarding on; 203.0.113.7 and              + 203.0.113.7/32
//                         2001:db8::7 routed to upstream                2001:db8::7/128
//
// The listener is 10.99.0.1:15001 / [fd99::1]:15001 (never a wildcard); with
// DNS capture the DNS service is 10.99.0.1:15053 / [fd99::1]:15053 (UDP and
// TCP).
//
// Every test runs on three gateway topologies: the veth itself as sandbox
// interface, and tgsb0 enslaved to a bridge tgbr0 (the usual deployment) with
// br_netfilter's bridge-nf-call-ip{,6}tables off and on (Docker hosts: on).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/errqueue.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "nat/nat.h"
#include "tests/component/nat/netns_util.h"

namespace tollgate::nat {
namespace {

using nstest::acceptWithin;
using nstest::connectTo;
using nstest::listenOn;
using nstest::Netns;
using nstest::readableWithin;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr auto kExpectSuccess = 3000ms;  // generous: a success is fast
constexpr auto kExpectFailure = 1000ms;  // a dropped SYN never answers
constexpr uint16_t kDnsPort = 15053;     // CaptureSpec::dns_port in the DNS tests
constexpr auto kQuicRefusal = 500ms;     // QUIC must be refused well within this

SockAddr addr(const char* s) {
  auto a = SockAddr::parseIpPort(s);
  EXPECT_TRUE(a.has_value()) << s;
  return a.value_or(SockAddr());
}

enum class Topology { kVeth, kBridge, kBridgeNetfilter };

class NatTrafficTest : public ::testing::TestWithParam<Topology> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(gw_.ok()) << gw_.error();
    ASSERT_TRUE(client_.ok()) << client_.error();
    ASSERT_TRUE(upstream_.ok()) << upstream_.error();
    const std::string g = "ip -n " + gw_.name() + " ";
    const std::string c = "ip -n " + client_.name() + " ";
    const std::string u = "ip -n " + upstream_.name() + " ";
    std::vector<std::string> sandbox_side = {g + "link add tgsb0 type veth peer name tgc0 netns " +
                                             client_.name()};
    if (GetParam() != Topology::kVeth) {
      iface_ = "tgbr0";
      sandbox_side.push_back(g + "link add tgbr0 type bridge");
      sandbox_side.push_back(g + "link set tgsb0 master tgbr0");
      sandbox_side.push_back(g + "link set tgsb0 up");
      const char* nf = GetParam() == Topology::kBridgeNetfilter ? "1" : "0";
      auto sysctl = gw_.exec(std::string("sysctl -qw net.bridge.bridge-nf-call-iptables=") + nf +
                             " && sysctl -qw net.bridge.bridge-nf-call-ip6tables=" + nf);
      ASSERT_EQ(sysctl.status, 0) << "br_netfilter sysctls: " << sysctl.out;
    }
    sandbox_side.push_back(g + "addr add 10.99.0.1/24 dev " + iface_);
    sandbox_side.push_back(g + "-6 addr add fd99::1/64 dev " + iface_ + " nodad");
    sandbox_side.push_back(g + "link set " + iface_ + " up");
    for (const std::string& cmd : sandbox_side) {
      auto res = nstest::run(cmd);
      ASSERT_EQ(res.status, 0) << cmd << ": " << res.out;
    }
    for (const std::string& cmd : {
             c + "addr add 10.99.0.2/24 dev tgc0",
             c + "-6 addr add fd99::2/64 dev tgc0 nodad",
             c + "link set tgc0 up",
             c + "route add default via 10.99.0.1",
             c + "-6 route add default via fd99::1",
             g + "link add tgup0 type veth peer name tgu0 netns " + upstream_.name(),
             g + "addr add 10.98.0.1/24 dev tgup0",
             g + "-6 addr add fd98::1/64 dev tgup0 nodad",
             g + "link set tgup0 up",
             g + "route add 203.0.113.7/32 via 10.98.0.2",
             g + "-6 route add 2001:db8::7/128 via fd98::2",
             u + "addr add 10.98.0.2/24 dev tgu0",
             u + "addr add 203.0.113.7/32 dev tgu0",
             u + "-6 addr add fd98::2/64 dev tgu0 nodad",
             u + "-6 addr add 2001:db8::7/128 dev tgu0 nodad",
             u + "link set tgu0 up",
             u + "route add default via 10.98.0.1",
             u + "-6 route add default via fd98::1",
         }) {
      auto res = nstest::run(cmd);
      ASSERT_EQ(res.status, 0) << cmd << ": " << res.out;
    }
    auto fwd =
        gw_.exec("sysctl -qw net.ipv4.ip_forward=1 && sysctl -qw net.ipv6.conf.all.forwarding=1");
    ASSERT_EQ(fwd.status, 0) << fwd.out;

    auto up4 = upstream_.in([] { return listenOn(addr("203.0.113.7:443")); });
    ASSERT_TRUE(up4.ok()) << up4.message();
    upstream4_ = std::move(*up4);
    auto up6 = upstream_.in([] { return listenOn(addr("[2001:db8::7]:80")); });
    ASSERT_TRUE(up6.ok()) << up6.message();
    upstream6_ = std::move(*up6);
  }

  // Nothing reached the real upstream servers.
  void expectUpstreamUntouched() {
    EXPECT_FALSE(readableWithin(upstream4_.get(), 100ms))
        << "a connection escaped to 203.0.113.7:443";
    EXPECT_FALSE(readableWithin(upstream6_.get(), 100ms))
        << "a connection escaped to [2001:db8::7]:80";
  }

  // Without a table the topology routes the client to the real upstream;
  // otherwise a test that "nothing reaches upstream" would prove nothing.
  void expectUpstreamReachableWithoutTable() {
    for (auto [to, listener] : {std::pair{"203.0.113.7:443", upstream4_.get()},
                                std::pair{"[2001:db8::7]:80", upstream6_.get()}}) {
      auto conn = connectFromClient(to, kExpectSuccess);
      ASSERT_TRUE(conn.ok()) << "topology broken: " << conn.message();
      auto accepted = acceptWithin(listener, kExpectSuccess);
      ASSERT_TRUE(accepted.ok()) << "topology broken: " << accepted.message();
    }
  }

  CaptureSpec spec(bool ipv6 = true) {
    CaptureSpec s;
    s.interfaces = {iface_};
    s.listen_port = 15001;
    s.ipv6_capture = ipv6;
    return s;
  }

  CaptureSpec dnsSpec(bool ipv6 = true) {
    CaptureSpec s = spec(ipv6);
    s.dns_port = kDnsPort;
    return s;
  }

  Result<UniqueFd> listen(const char* at, bool v6only = true) {
    return gw_.in([&] { return listenOn(addr(at), v6only); });
  }

  Result<UniqueFd> connectFromClient(const char* to, std::chrono::milliseconds timeout) {
    return client_.in([&] { return connectTo(addr(to), timeout); });
  }

  static Result<UniqueFd> udpBound(const Netns& ns, const char* at) {
    return ns.in([&]() -> Result<UniqueFd> {
      SockAddr a = addr(at);
      UniqueFd fd(::socket(a.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (!fd || ::bind(fd.get(), a.sa(), a.len()) != 0) {
        return makeError(std::string("udp bind failed: ") + at);
      }
      return fd;
    });
  }

  Result<void> udpSendFromClient(const char* to) {
    return client_.in([&]() -> Result<void> {
      SockAddr a = addr(to);
      UniqueFd fd(::socket(a.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (!fd || ::sendto(fd.get(), "q", 1, 0, a.sa(), a.len()) != 1) {
        return makeError(std::string("udp send failed: ") + to);
      }
      return {};
    });
  }

  struct Datagram {
    std::string payload;
    SockAddr from;
  };

  // Sends `payload` from the (bound, unconnected) UDP socket `fd` to `to`;
  // sockets keep the namespace they were created in, so any thread may send.
  static Result<void> udpSendTo(int fd, const std::string& payload, const SockAddr& to) {
    if (::sendto(fd, payload.data(), payload.size(), 0, to.sa(), to.len()) !=
        static_cast<ssize_t>(payload.size())) {
      return makeError("udp send to " + to.toString() + " failed");
    }
    return {};
  }

  // One datagram on `fd` within `timeout`, with its sender.
  static Result<Datagram> udpReceive(int fd, std::chrono::milliseconds timeout) {
    if (!readableWithin(fd, timeout)) {
      return makeError("no datagram within " + std::to_string(timeout.count()) + " ms");
    }
    char buf[512];
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = ::recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
                           &from_len);
    if (n < 0) {
      return makeError("recvfrom failed");
    }
    auto sender = SockAddr::fromSockaddr(reinterpret_cast<sockaddr*>(&from), from_len);
    if (!sender) {
      return makeError("recvfrom: sender is not IPv4/IPv6");
    }
    return Datagram{std::string(buf, static_cast<size_t>(n)), *sender};
  }

  // A DNS-like exchange: the client sends `query` to `to` from `client`
  // (bound in the client namespace); the gateway's socket `server` must
  // receive it from the client's address and answer; the client must see the
  // answer coming from `to` itself (conntrack reverses the redirect).
  static Result<void> udpExchange(int client, int server, const char* to,
                                  const std::string& query) {
    if (auto sent = udpSendTo(client, query, addr(to)); !sent) {
      return sent.error();
    }
    auto got = udpReceive(server, kExpectSuccess);
    if (!got) {
      return makeError(std::string("query to ") + to +
                       " did not reach the DNS socket: " + got.message());
    }
    if (got->payload != query) {
      return makeError("DNS socket got '" + got->payload + "', expected '" + query + "'");
    }
    const std::string client_ip = got->from.isV4() ? "10.99.0.2" : "fd99::2";
    if (got->from.ip() != client_ip) {
      return makeError("query came from " + got->from.toString() + ", expected the client");
    }
    const std::string answer = "answer:" + query;
    if (auto sent = udpSendTo(server, answer, got->from); !sent) {
      return sent.error();
    }
    auto reply = udpReceive(client, kExpectSuccess);
    if (!reply) {
      return makeError(std::string("no answer reached the client for ") + to + ": " +
                       reply.message());
    }
    if (reply->payload != answer) {
      return makeError("client got '" + reply->payload + "'");
    }
    if (!(reply->from == addr(to))) {
      return makeError("client saw the answer from " + reply->from.toString() + ", not from " + to);
    }
    return {};
  }

  // ---- connected UDP probes (QUIC refusal) ----

  // A UDP socket in `ns` connected to `to`, with IP(V6)_RECVERR on so the
  // ICMP error that refused it can be read back (who sent it, which type).
  static Result<UniqueFd> udpConnected(const Netns& ns, const char* to) {
    return ns.in([&]() -> Result<UniqueFd> {
      SockAddr a = addr(to);
      UniqueFd fd(::socket(a.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (!fd) {
        return makeError("udp socket failed");
      }
      int one = 1;
      const int rc = a.isV4()
                         ? ::setsockopt(fd.get(), IPPROTO_IP, IP_RECVERR, &one, sizeof(one))
                         : ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
      if (rc != 0 || ::connect(fd.get(), a.sa(), a.len()) != 0) {
        return makeError(std::string("udp connect failed: ") + to + ": " + std::strerror(errno));
      }
      return fd;
    });
  }

  static Result<void> udpSend(int fd, const std::string& payload) {
    if (::send(fd, payload.data(), payload.size(), 0) != static_cast<ssize_t>(payload.size())) {
      return makeError(std::string("udp send failed: ") + std::strerror(errno));
    }
    return {};
  }

  struct UdpOutcome {
    enum Kind { kSilent, kRefused, kAnswered, kOtherError } kind = kSilent;
    int err = 0;                         // errno of recv() for kRefused / kOtherError
    std::chrono::milliseconds after{0};  // from the send to the answer or error
    // The ICMP error from the socket's error queue (IP(V6)_RECVERR).
    uint8_t origin = 0;  // SO_EE_ORIGIN_ICMP / SO_EE_ORIGIN_ICMP6
    uint8_t icmp_type = 0;
    uint8_t icmp_code = 0;
    std::string offender;  // who sent the ICMP error
  };

  static std::string show(const UdpOutcome& o) {
    switch (o.kind) {
      case UdpOutcome::kSilent:
        return "no answer";
      case UdpOutcome::kAnswered:
        return "an answer";
      case UdpOutcome::kRefused:
        return "refused after " + std::to_string(o.after.count()) + " ms by " + o.offender;
      case UdpOutcome::kOtherError:
        return std::string("error ") + std::strerror(o.err);
    }
    return "?";
  }

  // What happens on `fd` within `timeout` of `sent`: nothing, an answer, or
  // an error (the next recv() fails; ECONNREFUSED for port unreachable).
  static UdpOutcome udpOutcome(int fd, std::chrono::steady_clock::time_point sent,
                               std::chrono::milliseconds timeout) {
    UdpOutcome out;
    const auto left = timeout - std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - sent);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::max(left.count(), 0L))) <= 0) {
      return out;
    }
    out.after = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - sent);
    char buf[64];
    if (::recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0) {
      out.kind = UdpOutcome::kAnswered;
      return out;
    }
    out.err = errno;
    out.kind = out.err == ECONNREFUSED ? UdpOutcome::kRefused : UdpOutcome::kOtherError;
    // The ICMP error itself, queued by IP(V6)_RECVERR.
    char control[512];
    msghdr msg{};
    iovec iov{buf, sizeof(buf)};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    if (::recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
      return out;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
          (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
        sock_extended_err ee{};
        std::memcpy(&ee, CMSG_DATA(c), sizeof(ee));
        out.origin = ee.ee_origin;
        out.icmp_type = ee.ee_type;
        out.icmp_code = ee.ee_code;
        // SO_EE_OFFENDER: the sockaddr right after the extended error.
        const auto* offender = reinterpret_cast<const sockaddr*>(CMSG_DATA(c) + sizeof(ee));
        const socklen_t room = static_cast<socklen_t>(c->cmsg_len - CMSG_LEN(sizeof(ee)));
        if (auto from = SockAddr::fromSockaddr(offender, room)) {
          out.offender = from->ip();
        }
      }
    }
    return out;
  }

  // Sends one datagram on `fd` and reports what came of it within `timeout`.
  static Result<UdpOutcome> udpProbe(int fd, std::chrono::milliseconds timeout) {
    const auto sent = std::chrono::steady_clock::now();
    if (auto ok = udpSend(fd, "quic-initial"); !ok) {
      return ok.error();
    }
    return udpOutcome(fd, sent, timeout);
  }

  // `to` (connected from the client) was refused at once by the gateway with
  // an ICMP / ICMPv6 port unreachable, the way `reject with icmpx type
  // port-unreachable` answers: the next recv() fails with ECONNREFUSED.
  static void expectRefusedByGateway(const UdpOutcome& o, const char* to) {
    const bool v4 = addr(to).isV4();
    EXPECT_EQ(o.kind, UdpOutcome::kRefused) << to << ": " << show(o);
    EXPECT_EQ(o.err, ECONNREFUSED) << to;
    EXPECT_LT(o.after, kQuicRefusal) << to;
    EXPECT_EQ(o.offender, v4 ? "10.99.0.1" : "fd99::1") << to << ": not refused by the gateway";
    if (v4) {
      EXPECT_EQ(o.origin, SO_EE_ORIGIN_ICMP) << to;
      EXPECT_EQ(o.icmp_type, ICMP_DEST_UNREACH) << to;
      EXPECT_EQ(o.icmp_code, ICMP_PORT_UNREACH) << to;
    } else {
      EXPECT_EQ(o.origin, SO_EE_ORIGIN_ICMP6) << to;
      EXPECT_EQ(o.icmp_type, ICMP6_DST_UNREACH) << to;
      EXPECT_EQ(o.icmp_code, ICMP6_DST_UNREACH_NOPORT) << to;
    }
  }

  // Sends one datagram from a fresh connected client socket to each of `tos`
  // at once, then expects no answer and no error for any within
  // kQuicRefusal: silently dropped, the client would have to time out.
  void expectSilentlyDropped(const std::vector<const char*>& tos) {
    std::vector<UniqueFd> fds;
    const auto sent = std::chrono::steady_clock::now();
    for (const char* to : tos) {
      auto fd = udpConnected(client_, to);
      ASSERT_TRUE(fd.ok()) << fd.message();
      ASSERT_TRUE(udpSend(fd->get(), "quic-initial").ok()) << to;
      fds.push_back(std::move(*fd));
    }
    for (size_t i = 0; i < tos.size(); ++i) {
      UdpOutcome o = udpOutcome(fds[i].get(), sent, kQuicRefusal);
      EXPECT_EQ(o.kind, UdpOutcome::kSilent) << tos[i] << ": " << show(o);
    }
  }

  // Connects from the client to `to`, accepts on `listener`, checks bytes
  // flow, and returns the original destination the gateway sees.
  Result<SockAddr> redirectedOriginalDst(int listener, const char* to) {
    auto conn = connectFromClient(to, kExpectSuccess);
    if (!conn) {
      return conn.error();
    }
    auto accepted = acceptWithin(listener, kExpectSuccess);
    if (!accepted) {
      return accepted.error();
    }
    if (::write(conn->get(), "ping", 4) != 4) {
      return makeError("write failed");
    }
    char buf[4] = {};
    if (!readableWithin(accepted->get(), kExpectSuccess) ||
        ::read(accepted->get(), buf, sizeof(buf)) != 4 || std::string(buf, 4) != "ping") {
      return makeError("bytes did not arrive through the redirect");
    }
    return originalDst(accepted->get());
  }

  std::string iface_ = "tgsb0";  // the sandbox interface tollgate captures
  Netns gw_{"g"};
  Netns client_{"c"};
  Netns upstream_{"u"};
  UniqueFd upstream4_;
  UniqueFd upstream6_;
};

TEST_P(NatTrafficTest, Ipv4RedirectRecoversOriginalDestination) {
  expectUpstreamReachableWithoutTable();
  auto listener = listen("10.99.0.1:15001");
  ASSERT_TRUE(listener.ok()) << listener.message();
  auto installed = gw_.in([&] { return installCapture(spec()); });
  ASSERT_TRUE(installed.ok()) << installed.message();

  auto dst = redirectedOriginalDst(listener->get(), "203.0.113.7:443");
  ASSERT_TRUE(dst.ok()) << dst.message();
  EXPECT_EQ(dst->toString(), "203.0.113.7:443");
  EXPECT_TRUE(*dst == addr("203.0.113.7:443"));

  // Any port, any destination: every sandbox TCP connection lands here.
  auto other = redirectedOriginalDst(listener->get(), "198.51.100.9:22");
  ASSERT_TRUE(other.ok()) << other.message();
  EXPECT_EQ(other->toString(), "198.51.100.9:22");
  expectUpstreamUntouched();
}

TEST_P(NatTrafficTest, Ipv6RedirectRecoversOriginalDestination) {
  expectUpstreamReachableWithoutTable();
  auto listener = listen("[fd99::1]:15001");
  ASSERT_TRUE(listener.ok()) << listener.message();
  auto installed = gw_.in([&] { return installCapture(spec()); });
  ASSERT_TRUE(installed.ok()) << installed.message();

  auto dst = redirectedOriginalDst(listener->get(), "[2001:db8::7]:80");
  ASSERT_TRUE(dst.ok()) << dst.message();
  EXPECT_TRUE(dst->isV6());
  EXPECT_EQ(dst->toString(), "[2001:db8::7]:80");
  expectUpstreamUntouched();
}

TEST_P(NatTrafficTest, DualStackSocketGetsIpv4OriginalDestination) {
  // An AF_INET6 socket bound to the IPv4-mapped gateway address accepts the
  // redirected IPv4 flow; originalDst() must ask conntrack for IPv4.
  auto listener = listen("[::ffff:10.99.0.1]:15001", false);
  ASSERT_TRUE(listener.ok()) << listener.message();
  auto installed = gw_.in([&] { return installCapture(spec()); });
  ASSERT_TRUE(installed.ok()) << installed.message();

  auto dst = redirectedOriginalDst(listener->get(), "203.0.113.7:443");
  ASSERT_TRUE(dst.ok()) << dst.message();
  EXPECT_EQ(dst->toString(), "203.0.113.7:443");
}

TEST_P(NatTrafficTest, SandboxCannotReachOtherHostServices) {
  auto listener = listen("10.99.0.1:15001");
  ASSERT_TRUE(listener.ok()) << listener.message();
  auto ssh = listen("10.99.0.1:2222");
  ASSERT_TRUE(ssh.ok()) << ssh.message();

  // Without tollgate the host service is reachable (the test would prove
  // nothing otherwise).
  {
    auto direct = connectFromClient("10.99.0.1:2222", kExpectSuccess);
    ASSERT_TRUE(direct.ok()) << direct.message();
    auto accepted = acceptWithin(ssh->get(), kExpectSuccess);
    ASSERT_TRUE(accepted.ok()) << accepted.message();
  }

  auto installed = gw_.in([&] { return installCapture(spec()); });
  ASSERT_TRUE(installed.ok()) << installed.message();

  // TCP to the host's own service is redirected to the listener too: the
  // gateway sees (and can refuse) it; the service never does.
  auto dst = redirectedOriginalDst(listener->get(), "10.99.0.1:2222");
  ASSERT_TRUE(dst.ok()) << dst.message();
  EXPECT_EQ(dst->toString(), "10.99.0.1:2222");
  EXPECT_FALSE(readableWithin(ssh->get(), 200ms));

  // UDP to a host service is dropped at input.
  auto udp = udpBound(gw_, "10.99.0.1:5353");
  ASSERT_TRUE(udp.ok()) << udp.message();
  ASSERT_TRUE(udpSendFromClient("10.99.0.1:5353").ok());
  EXPECT_FALSE(readableWithin(udp->get(), 500ms)) << "UDP from the sandbox reached a host service";
}

// Kernel behaviour worth knowing: redirecting a connection whose destination
// already *is* the redirect target (the listener's own address and port)
// changes nothing, so conntrack never marks it DNAT and the input chain's
// `ct status dnat` rule does not admit it. A sandbox dialling the listener
// directly is dropped, not served; every other destination is redirected.
TEST_P(NatTrafficTest, DirectConnectionToTheListenerItselfIsDropped) {
  auto listener = listen("10.99.0.1:15001");
  ASSERT_TRUE(listener.ok()) << listener.message();
  ASSERT_TRUE(gw_.in([&] { return installCapture(spec()); }).ok());
  auto direct = connectFromClient("10.99.0.1:15001", kExpectFailure);
  EXPECT_FALSE(direct.ok());
  EXPECT_FALSE(readableWithin(listener->get(), 100ms));
  // The gateway's own address on another port is redirected (and the
  // gateway, seeing its own address as destination, can refuse it).
  auto other_port = redirectedOriginalDst(listener->get(), "10.99.0.1:15002");
  ASSERT_TRUE(other_port.ok()) << other_port.message();
  EXPECT_EQ(other_port->toString(), "10.99.0.1:15002");
}

TEST_P(NatTrafficTest, NonTcpIsNotForwarded) {
  auto up4 = udpBound(upstream_, "203.0.113.7:5353");
  ASSERT_TRUE(up4.ok()) << up4.message();
  auto up6 = udpBound(upstream_, "[2001:db8::7]:5353");
  ASSERT_TRUE(up6.ok()) << up6.message();
  // Without a table the datagrams are routed to upstream...
  ASSERT_TRUE(udpSendFromClient("203.0.113.7:5353").ok());
  ASSERT_TRUE(udpSendFromClient("[2001:db8::7]:5353").ok());
  ASSERT_TRUE(readableWithin(up4->get(), kExpectSuccess)) << "topology broken";
  ASSERT_TRUE(readableWithin(up6->get(), kExpectSuccess)) << "topology broken";
  char buf[8];
  ASSERT_EQ(::recv(up4->get(), buf, sizeof(buf), 0), 1);
  ASSERT_EQ(::recv(up6->get(), buf, sizeof(buf), 0), 1);

  // ...with capture installed they are dropped (fail closed until UDP
  // admission exists).
  ASSERT_TRUE(gw_.in([&] { return installCapture(spec()); }).ok());
  ASSERT_TRUE(udpSendFromClient("203.0.113.7:5353").ok());
  ASSERT_TRUE(udpSendFromClient("[2001:db8::7]:5353").ok());
  EXPECT_FALSE(readableWithin(up4->get(), 500ms)) << "UDP escaped to upstream";
  EXPECT_FALSE(readableWithin(up6->get(), 100ms)) << "UDP/IPv6 escaped to upstream";
}

// ---- QUIC / HTTP3 refusal --------------------------------------------------

// UDP to port 443, IPv4 and IPv6, routed or aimed at the gateway's own
// address, is refused at once with an ICMP(v6) port unreachable from the
// gateway (a connected socket's next recv() fails with ECONNREFUSED), so
// HTTP/3 clients fall back to TCP, which is captured. Nothing is delivered.
TEST_P(NatTrafficTest, QuicIsRefusedAtOnceSoClientsFallBackToTcp) {
  auto up4 = udpBound(upstream_, "203.0.113.7:443");
  ASSERT_TRUE(up4.ok()) << up4.message();
  auto up6 = udpBound(upstream_, "[2001:db8::7]:443");
  ASSERT_TRUE(up6.ok()) << up6.message();
  auto gw4 = udpBound(gw_, "10.99.0.1:443");
  ASSERT_TRUE(gw4.ok()) << gw4.message();
  auto gw6 = udpBound(gw_, "[fd99::1]:443");
  ASSERT_TRUE(gw6.ok()) << gw6.message();
  auto listener = listen("10.99.0.1:15001");
  ASSERT_TRUE(listener.ok()) << listener.message();
  // Without a table every datagram is delivered (a socket listens at each
  // address, so an escaped datagram is seen there, not refused by the
  // receiver's own stack, which would look like our refusal).
  for (auto [to, fd] :
       {std::pair{"203.0.113.7:443", up4->get()}, std::pair{"[2001:db8::7]:443", up6->get()},
        std::pair{"10.99.0.1:443", gw4->get()}, std::pair{"[fd99::1]:443", gw6->get()}}) {
    ASSERT_TRUE(udpSendFromClient(to).ok()) << to;
    ASSERT_TRUE(udpReceive(fd, kExpectSuccess).ok()) << "topology broken: " << to;
  }

  ASSERT_TRUE(gw_.in([&] { return installCapture(spec()); }).ok());

  // Routed (forward chain), then to the gateway itself (input chain).
  for (auto [to, routed] :
       {std::pair{"203.0.113.7:443", true}, std::pair{"[2001:db8::7]:443", true},
        std::pair{"10.99.0.1:443", false}, std::pair{"[fd99::1]:443", false}}) {
    auto fd = udpConnected(client_, to);
    ASSERT_TRUE(fd.ok()) << fd.message();
    auto first = udpProbe(fd->get(), kQuicRefusal);
    ASSERT_TRUE(first.ok()) << first.message();
    expectRefusedByGateway(*first, to);
    if (routed) {
      // Not only the first datagram of a flow: the retry on the same socket
      // is refused too (a rejected packet never confirms a conntrack entry).
      auto again = udpProbe(fd->get(), kQuicRefusal);
      ASSERT_TRUE(again.ok()) << again.message();
      expectRefusedByGateway(*again, to);
    }
  }

  EXPECT_FALSE(readableWithin(up4->get(), 100ms)) << "QUIC escaped to 203.0.113.7:443";
  EXPECT_FALSE(readableWithin(up6->get(), 100ms)) << "QUIC escaped to [2001:db8::7]:443";
  EXPECT_FALSE(readableWithin(gw4->get(), 100ms)) << "QUIC reached the gateway's UDP 443";
  EXPECT_FALSE(readableWithin(gw6->get(), 100ms)) << "QUIC/IPv6 reached the gateway's UDP 443";

  // The fallback: HTTPS over TCP to the same address is captured as always.
  auto tcp = redirectedOriginalDst(listener->get(), "203.0.113.7:443");
  ASSERT_TRUE(tcp.ok()) << tcp.message();
  EXPECT_EQ(tcp->toString(), "203.0.113.7:443");
  expectUpstreamUntouched();
}

// Only port 443 is refused: UDP to other ports (8443 here), routed or to the
// gateway, is still dropped without an answer, even where nothing listens
// on the gateway (its own stack would otherwise refuse it).
TEST_P(NatTrafficTest, OtherUdpIsStillDroppedSilently) {
  auto up4 = udpBound(upstream_, "203.0.113.7:8443");
  ASSERT_TRUE(up4.ok()) << up4.message();
  auto up6 = udpBound(upstream_, "[2001:db8::7]:8443");
  ASSERT_TRUE(up6.ok()) << up6.message();
  for (auto [to, fd] :
       {std::pair{"203.0.113.7:8443", up4->get()}, std::pair{"[2001:db8::7]:8443", up6->get()}}) {
    ASSERT_TRUE(udpSendFromClient(to).ok()) << to;
    ASSERT_TRUE(udpReceive(fd, kExpectSuccess).ok()) << "topology broken: " << to;
  }
  // Without the table nothing listening on the gateway's 8443 means the
  // gateway's stack refuses; with it, the input chain drops first.
  {
    auto fd = udpConnected(client_, "10.99.0.1:8443");
    ASSERT_TRUE(fd.ok()) << fd.message();
    auto o = udpProbe(fd->get(), kExpectSuccess);
    ASSERT_TRUE(o.ok()) << o.message();
    ASSERT_EQ(o->kind, UdpOutcome::kRefused) << "topology broken: " << show(*o);
  }

  ASSERT_TRUE(gw_.in([&] { return installCapture(spec()); }).ok());
  expectSilentlyDropped(
      {"203.0.113.7:8443", "[2001:db8::7]:8443", "10.99.0.1:8443", "[fd99::1]:8443"});
  EXPECT_FALSE(readableWithin(up4->get(), 100ms)) << "UDP escaped to 203.0.113.7:8443";
  EXPECT_FALSE(readableWithin(up6->get(), 100ms)) << "UDP escaped to [2001:db8::7]:8443";
  expectUpstreamUntouched();
}

// With DNS capture and `ipv6: block`: IPv4 QUIC is refused as always; IPv6
// is dropped before NAT, QUIC included (no refusal, nothing escapes).
TEST_P(NatTrafficTest, QuicWithIpv6BlockIsRefusedOverIpv4Only) {
  auto up6 = udpBound(upstream_, "[2001:db8::7]:443");
  ASSERT_TRUE(up6.ok()) << up6.message();
  auto gw6 = udpBound(gw_, "[fd99::1]:443");
  ASSERT_TRUE(gw6.ok()) << gw6.message();
  ASSERT_TRUE(gw_.in([&] { return installCapture(dnsSpec(false)); }).ok());

  for (const char* to : {"203.0.113.7:443", "10.99.0.1:443"}) {
    auto fd = udpConnected(client_, to);
    ASSERT_TRUE(fd.ok()) << fd.message();
    auto o = udpProbe(fd->get(), kQuicRefusal);
    ASSERT_TRUE(o.ok()) << o.message();
    expectRefusedByGateway(*o, to);
  }
  expectSilentlyDropped({"[2001:db8::7]:443", "[fd99::1]:443"});
  EXPECT_FALSE(readableWithin(up6->get(), 100ms)) << "IPv6 QUIC escaped `ipv6: block`";
  EXPECT_FALSE(readableWithin(gw6->get(), 100ms));
}

// on_exit: block stays silent: QUIC is dropped, not refused.
TEST_P(NatTrafficTest, BlockDropsQuicWithoutRefusing) {
  auto up4 = udpBound(upstream_, "203.0.113.7:443");
  ASSERT_TRUE(up4.ok()) << up4.message();
  auto up6 = udpBound(upstream_, "[2001:db8::7]:443");
  ASSERT_TRUE(up6.ok()) << up6.message();
  ASSERT_TRUE(gw_.in([&] { return installCapture(spec()); }).ok());
  ASSERT_TRUE(gw_.in([&] { return installBlock({iface_}); }).ok());
  expectSilentlyDropped({"203.0.113.7:443", "[2001:db8::7]:443", "10.99.0.1:443", "[fd99::1]:443"});
  EXPECT_FALSE(readableWithin(up4->get(), 100ms)) << "QUIC escaped the block";
  EXPECT_FALSE(readableWithin(up6->get(), 100ms)) << "QUIC/IPv6 escaped the block";
}

// ---- DNS capture (dns_port) ----------------------------------------------

// UDP to port 53 of any address, IPv4 and IPv6, is redirected to the DNS
// service's socket on the gateway-side address; the answer goes back and the
// client sees it from the address it queried. Nothing reaches the upstream.
TEST_P(NatTrafficTest, DnsOverUdpIsRedirectedToTheDnsPortAndAnswered) {
  auto up53_4 = udpBound(upstream_, "203.0.113.7:53");
  ASSERT_TRUE(up53_4.ok()) << up53_4.message();
  auto up53_6 = udpBound(upstream_, "[2001:db8::7]:53");
  ASSERT_TRUE(up53_6.ok()) << up53_6.message();
  auto client4 = udpBound(client_, "10.99.0.2:0");
  ASSERT_TRUE(client4.ok()) << client4.message();
  auto client6 = udpBound(client_, "[fd99::2]:0");
  ASSERT_TRUE(client6.ok()) << client6.message();
  // Without a table the queries reach the real upstream resolver address.
  ASSERT_TRUE(udpSendTo(client4->get(), "q", addr("203.0.113.7:53")).ok());
  ASSERT_TRUE(udpSendTo(client6->get(), "q", addr("[2001:db8::7]:53")).ok());
  ASSERT_TRUE(udpReceive(up53_4->get(), kExpectSuccess).ok()) << "topology broken";
  ASSERT_TRUE(udpReceive(up53_6->get(), kExpectSuccess).ok()) << "topology broken";
  // Fresh client sockets: the ones above have (forwarded) conntrack entries.
  client4 = udpBound(client_, "10.99.0.2:0");
  ASSERT_TRUE(client4.ok()) << client4.message();
  client6 = udpBound(client_, "[fd99::2]:0");
  ASSERT_TRUE(client6.ok()) << client6.message();

  auto dns4 = udpBound(gw_, "10.99.0.1:15053");
  ASSERT_TRUE(dns4.ok()) << dns4.message();
  auto dns6 = udpBound(gw_, "[fd99::1]:15053");
  ASSERT_TRUE(dns6.ok()) << dns6.message();
  auto installed = gw_.in([&] { return installCapture(dnsSpec()); });
  ASSERT_TRUE(installed.ok()) << installed.message();

  // The upstream resolver, an unrouted address, the gateway's own port 53.
  for (const char* to : {"203.0.113.7:53", "198.51.100.9:53", "10.99.0.1:53"}) {
    auto ok = udpExchange(client4->get(), dns4->get(), to, std::string("v4 ") + to);
    EXPECT_TRUE(ok.ok()) << ok.message();
  }
  for (const char* to : {"[2001:db8::7]:53", "[fd99::1]:53"}) {
    auto ok = udpExchange(client6->get(), dns6->get(), to, std::string("v6 ") + to);
    EXPECT_TRUE(ok.ok()) << ok.message();
  }
  // A second query on the same flow (conntrack: established) is NATed alike.
  auto again = udpExchange(client4->get(), dns4->get(), "203.0.113.7:53", "again");
  EXPECT_TRUE(again.ok()) << again.message();

  EXPECT_FALSE(readableWithin(up53_4->get(), 100ms)) << "DNS escaped to 203.0.113.7:53";
  EXPECT_FALSE(readableWithin(up53_6->get(), 100ms)) << "DNS escaped to [2001:db8::7]:53";
}

// Only *redirected* DNS is admitted: the DNS service's own address and port
// addressed directly, and UDP to other ports, are still dropped.
TEST_P(NatTrafficTest, DnsCaptureAdmitsNoOtherUdp) {
  auto dns4 = udpBound(gw_, "10.99.0.1:15053");
  ASSERT_TRUE(dns4.ok()) << dns4.message();
  auto dns6 = udpBound(gw_, "[fd99::1]:15053");
  ASSERT_TRUE(dns6.ok()) << dns6.message();
  auto host4 = udpBound(gw_, "10.99.0.1:5353");
  ASSERT_TRUE(host4.ok()) << host4.message();
  auto up4 = udpBound(upstream_, "203.0.113.7:5353");
  ASSERT_TRUE(up4.ok()) << up4.message();
  // Reachable without the table (else the drops below would prove nothing).
  ASSERT_TRUE(udpSendFromClient("10.99.0.1:15053").ok());
  ASSERT_TRUE(readableWithin(dns4->get(), kExpectSuccess)) << "topology broken";
  char buf[8];
  ASSERT_EQ(::recv(dns4->get(), buf, sizeof(buf), 0), 1);

  ASSERT_TRUE(gw_.in([&] { return installCapture(dnsSpec()); }).ok());
  ASSERT_TRUE(udpSendFromClient("10.99.0.1:15053").ok());
  ASSERT_TRUE(udpSendFromClient("[fd99::1]:15053").ok());
  ASSERT_TRUE(udpSendFromClient("10.99.0.1:5353").ok());
  ASSERT_TRUE(udpSendFromClient("203.0.113.7:5353").ok());
  ASSERT_TRUE(udpSendFromClient("203.0.113.7:15053").ok());
  EXPECT_FALSE(readableWithin(dns4->get(), 500ms)) << "direct UDP reached the DNS port";
  EXPECT_FALSE(readableWithin(dns6->get(), 100ms)) << "direct UDP/IPv6 reached the DNS port";
  EXPECT_FALSE(readableWithin(host4->get(), 100ms)) << "UDP reached a host service";
  EXPECT_FALSE(readableWithin(up4->get(), 100ms)) << "UDP escaped to upstream";
}

// TCP to port 53 goes to the DNS service's TCP socket, not to the TLS/HTTP
// listener; every other TCP connection still goes to the listener.
TEST_P(NatTrafficTest, DnsOverTcpGoesToTheDnsPortNotTheListener) {
  auto listener = listen("10.99.0.1:15001");
  ASSERT_TRUE(listener.ok()) << listener.message();
  auto listener6 = listen("[fd99::1]:15001");
  ASSERT_TRUE(listener6.ok()) << listener6.message();
  auto dns = listen("10.99.0.1:15053");
  ASSERT_TRUE(dns.ok()) << dns.message();
  auto dns6 = listen("[fd99::1]:15053");
  ASSERT_TRUE(dns6.ok()) << dns6.message();
  ASSERT_TRUE(gw_.in([&] { return installCapture(dnsSpec()); }).ok());

  auto v4 = redirectedOriginalDst(dns->get(), "203.0.113.7:53");
  ASSERT_TRUE(v4.ok()) << v4.message();
  EXPECT_EQ(v4->toString(), "203.0.113.7:53");
  auto own = redirectedOriginalDst(dns->get(), "10.99.0.1:53");
  ASSERT_TRUE(own.ok()) << own.message();
  EXPECT_EQ(own->toString(), "10.99.0.1:53");
  auto v6 = redirectedOriginalDst(dns6->get(), "[2001:db8::7]:53");
  ASSERT_TRUE(v6.ok()) << v6.message();
  EXPECT_EQ(v6->toString(), "[2001:db8::7]:53");
  EXPECT_FALSE(readableWithin(listener->get(), 100ms)) << "DNS over TCP reached the listener";
  EXPECT_FALSE(readableWithin(listener6->get(), 100ms)) << "DNS over TCP reached the listener";

  // Other TCP, including to the DNS port itself, goes to the listener.
  auto https = redirectedOriginalDst(listener->get(), "203.0.113.7:443");
  ASSERT_TRUE(https.ok()) << https.message();
  EXPECT_EQ(https->toString(), "203.0.113.7:443");
  auto direct = redirectedOriginalDst(listener->get(), "10.99.0.1:15053");
  ASSERT_TRUE(direct.ok()) << direct.message();
  EXPECT_EQ(direct->toString(), "10.99.0.1:15053");
  auto http6 = redirectedOriginalDst(listener6->get(), "[2001:db8::7]:80");
  ASSERT_TRUE(http6.ok()) << http6.message();
  EXPECT_FALSE(readableWithin(dns->get(), 100ms));
  EXPECT_FALSE(readableWithin(dns6->get(), 100ms));
  expectUpstreamUntouched();
}

// Without dns_port (today's behaviour) sandbox DNS over UDP is dropped, not
// forwarded and not delivered to anything on the gateway; TCP/53 is just TCP.
TEST_P(NatTrafficTest, WithoutDnsPortUdpDnsIsDropped) {
  auto up53_4 = udpBound(upstream_, "203.0.113.7:53");
  ASSERT_TRUE(up53_4.ok()) << up53_4.message();
  auto up53_6 = udpBound(upstream_, "[2001:db8::7]:53");
  ASSERT_TRUE(up53_6.ok()) << up53_6.message();
  auto gw53 = udpBound(gw_, "10.99.0.1:53");
  ASSERT_TRUE(gw53.ok()) << gw53.message();
  auto dns4 = udpBound(gw_, "10.99.0.1:15053");
  ASSERT_TRUE(dns4.ok()) << dns4.message();
  auto dns6 = udpBound(gw_, "[fd99::1]:15053");
  ASSERT_TRUE(dns6.ok()) << dns6.message();
  auto listener = listen("10.99.0.1:15001");
  ASSERT_TRUE(listener.ok()) << listener.message();
  ASSERT_TRUE(udpSendFromClient("203.0.113.7:53").ok());
  ASSERT_TRUE(readableWithin(up53_4->get(), kExpectSuccess)) << "topology broken";
  char buf[8];
  ASSERT_EQ(::recv(up53_4->get(), buf, sizeof(buf), 0), 1);

  ASSERT_TRUE(gw_.in([&] { return installCapture(spec()); }).ok());
  for (const char* to : {"203.0.113.7:53", "[2001:db8::7]:53", "10.99.0.1:53", "[fd99::1]:53"}) {
    ASSERT_TRUE(udpSendFromClient(to).ok()) << to;
  }
  EXPECT_FALSE(readableWithin(up53_4->get(), 500ms)) << "UDP DNS escaped to upstream";
  EXPECT_FALSE(readableWithin(up53_6->get(), 100ms)) << "UDP/IPv6 DNS escaped to upstream";
  EXPECT_FALSE(readableWithin(gw53->get(), 100ms)) << "UDP DNS reached the gateway's port 53";
  EXPECT_FALSE(readableWithin(dns4->get(), 100ms));
  EXPECT_FALSE(readableWithin(dns6->get(), 100ms));

  auto tcp53 = redirectedOriginalDst(listener->get(), "203.0.113.7:53");
  ASSERT_TRUE(tcp53.ok()) << tcp53.message();
  EXPECT_EQ(tcp53->toString(), "203.0.113.7:53");
}

// `ipv6: block` with DNS capture: IPv4 DNS is answered, IPv6 DNS is dropped.
TEST_P(NatTrafficTest, DnsCaptureWithIpv6BlockAnswersOnlyIpv4) {
  auto dns4 = udpBound(gw_, "10.99.0.1:15053");
  ASSERT_TRUE(dns4.ok()) << dns4.message();
  auto dns6 = udpBound(gw_, "[fd99::1]:15053");
  ASSERT_TRUE(dns6.ok()) << dns6.message();
  auto up53_6 = udpBound(upstream_, "[2001:db8::7]:53");
  ASSERT_TRUE(up53_6.ok()) << up53_6.message();
  auto client4 = udpBound(client_, "10.99.0.2:0");
  ASSERT_TRUE(client4.ok()) << client4.message();
  ASSERT_TRUE(gw_.in([&] { return installCapture(dnsSpec(false)); }).ok());

  auto v4 = udpExchange(client4->get(), dns4->get(), "203.0.113.7:53", "v4");
  EXPECT_TRUE(v4.ok()) << v4.message();
  ASSERT_TRUE(udpSendFromClient("[2001:db8::7]:53").ok());
  ASSERT_TRUE(udpSendFromClient("[fd99::1]:53").ok());
  EXPECT_FALSE(readableWithin(dns6->get(), 500ms)) << "IPv6 DNS admitted under `ipv6: block`";
  EXPECT_FALSE(readableWithin(up53_6->get(), 100ms)) << "IPv6 DNS escaped `ipv6: block`";
}

TEST_P(NatTrafficTest, BlockStopsEverything) {
  auto udp4 = udpBound(upstream_, "203.0.113.7:5353");
  ASSERT_TRUE(udp4.ok()) << udp4.message();
  auto udp6 = udpBound(upstream_, "[2001:db8::7]:5353");
  ASSERT_TRUE(udp6.ok()) << udp6.message();
  auto listener = listen("10.99.0.1:15001");
  ASSERT_TRUE(listener.ok()) << listener.message();
  auto listener6 = listen("[fd99::1]:15001");
  ASSERT_TRUE(listener6.ok()) << listener6.message();
  // Routing to upstream works, so only the table stands in the way.
  expectUpstreamReachableWithoutTable();

  // Capture first: traffic flows.
  ASSERT_TRUE(gw_.in([&] { return installCapture(spec()); }).ok());
  auto before = redirectedOriginalDst(listener->get(), "203.0.113.7:443");
  ASSERT_TRUE(before.ok()) << before.message();

  auto blocked = gw_.in([&] { return installBlock({iface_}); });
  ASSERT_TRUE(blocked.ok()) << blocked.message();

  const auto start = std::chrono::steady_clock::now();
  for (const char* to :
       {"203.0.113.7:443", "10.99.0.1:15001", "[2001:db8::7]:80", "[fd99::1]:15001"}) {
    auto conn = connectFromClient(to, kExpectFailure);
    EXPECT_FALSE(conn.ok()) << "connection to " << to << " escaped the block";
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4 * kExpectFailure + 2000ms);
  EXPECT_FALSE(readableWithin(listener->get(), 100ms));
  EXPECT_FALSE(readableWithin(listener6->get(), 100ms));
  expectUpstreamUntouched();
  // One-way traffic (which a TCP handshake check would miss) stays in too.
  ASSERT_TRUE(udpSendFromClient("203.0.113.7:5353").ok());
  ASSERT_TRUE(udpSendFromClient("[2001:db8::7]:5353").ok());
  EXPECT_FALSE(readableWithin(udp4->get(), 500ms)) << "UDP escaped the block";
  EXPECT_FALSE(readableWithin(udp6->get(), 100ms)) << "UDP/IPv6 escaped the block";

  // Removing the table (on_exit: open) lets the direct connection through
  // again: the block, not something else, was stopping it.
  ASSERT_TRUE(gw_.in([] { return removeTable(); }).ok());
  auto after = connectFromClient("10.99.0.1:15001", kExpectSuccess);
  EXPECT_TRUE(after.ok()) << after.message();
}

TEST_P(NatTrafficTest, Ipv6BlockDropsIpv6ButKeepsNeighbourDiscovery) {
  auto listener = listen("10.99.0.1:15001");
  ASSERT_TRUE(listener.ok()) << listener.message();
  auto listener6 = listen("[fd99::1]:15001");
  ASSERT_TRUE(listener6.ok()) << listener6.message();
  ASSERT_TRUE(gw_.in([&] { return installCapture(spec(false)); }).ok());

  auto v4 = redirectedOriginalDst(listener->get(), "203.0.113.7:443");
  ASSERT_TRUE(v4.ok()) << v4.message();
  EXPECT_EQ(v4->toString(), "203.0.113.7:443");

  auto v6 = connectFromClient("[2001:db8::7]:80", kExpectFailure);
  EXPECT_FALSE(v6.ok()) << "IPv6 escaped `ipv6: block`";
  auto direct6 = connectFromClient("[fd99::1]:15001", kExpectFailure);
  EXPECT_FALSE(direct6.ok());
  EXPECT_FALSE(readableWithin(listener6->get(), 100ms));

  // The SYNs above needed the gateway's link-layer address: neighbour
  // discovery went through, so the link itself still works.
  auto neigh = client_.exec("ip -6 neigh show fd99::1 dev tgc0");
  EXPECT_THAT(neigh.out, HasSubstr("lladdr")) << neigh.out;
}

TEST_P(NatTrafficTest, OriginalDstOfUnredirectedSocketFailsClearly) {
  auto listener = listen("10.99.0.1:15001");
  ASSERT_TRUE(listener.ok()) << listener.message();
  // No table: the client reaches the listener directly. conntrack still has
  // an entry (its original destination is the listener itself).
  auto conn = connectFromClient("10.99.0.1:15001", kExpectSuccess);
  ASSERT_TRUE(conn.ok()) << conn.message();
  auto accepted = acceptWithin(listener->get(), kExpectSuccess);
  ASSERT_TRUE(accepted.ok()) << accepted.message();
  auto dst = originalDst(accepted->get());
  if (dst.ok()) {
    EXPECT_EQ(dst->toString(), "10.99.0.1:15001");
  } else {
    EXPECT_THAT(dst.message(), HasSubstr("original destination"));
  }

  // Not a socket at all.
  auto bad = originalDst(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.message(), HasSubstr("original destination"));
}

INSTANTIATE_TEST_SUITE_P(Topologies, NatTrafficTest,
                         ::testing::Values(Topology::kVeth, Topology::kBridge,
                                           Topology::kBridgeNetfilter),
                         [](const ::testing::TestParamInfo<Topology>& info) {
                           switch (info.param) {
                             case Topology::kVeth:
                               return std::string("Veth");
                             case Topology::kBridge:
                               return std::string("Bridge");
                             case Topology::kBridgeNetfilter:
                               return std::string("BridgeNetfilter");
                           }
                           return std::string("Unknown");
                         });

}  // namespace
}  // namespace tollgate::nat
