// End-to-end: the host itself is never an upstream. Names resolving to
// 0.0.0.0, 127.0.0.2, ::, or an IPv4-mapped loopback address reach nothing
// on the host (tollgate's metrics, services on the wildcard address), and
// tollgate's DNS service does not hand such addresses out, whatever
// deny_cidrs lists; an address added to a host interface after start is
// never an upstream from then on, without a reload; a rule with hosts and
// cidrs connects only to resolved addresses inside its cidrs.
#include <gtest/gtest.h>

#include <sstream>
#include <thread>

#include "scenario.h"

namespace tollgate::e2e {
namespace {
using namespace std::chrono_literals;

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::vector<std::string> httpProbe(const std::string& dst, const std::string& port,
                                   const std::string& host) {
  return netprobe({"tcp", dst, port, "GET /metrics HTTP/1.0\\r\\nHost: " + host + "\\r\\n\\r\\n"});
}

// A DNS query (name, qtype 1|28) from the sandbox to the sandbox resolver
// address (redirected to tollgate's DNS service); prints "addr X" for each
// address in the answer. (The test image has no dig.)
constexpr const char* kDnsQuery = R"(
import socket, struct, sys
name, qtype = sys.argv[1], int(sys.argv[2])
q = b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\0'
msg = struct.pack('!HHHHHH', 4242, 0x0100, 1, 0, 0, 0) + q + struct.pack('!HH', qtype, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(msg, ('192.0.2.99', 53)); r = s.recv(4096)
an = struct.unpack('!H', r[6:8])[0]; i = 12 + len(q) + 4
print('rcode', r[3] & 15, 'answers', an)
for _ in range(an):
    i += 2; t, c, ttl, l = struct.unpack('!HHIH', r[i:i+10]); i += 10
    print('addr', socket.inet_ntop(socket.AF_INET if t == 1 else socket.AF_INET6, r[i:i+l])); i += l
)";

TEST(UpstreamGuardTest, HostItselfIsNeverAnUpstreamWhateverDenyCidrsSays) {
  Scenario::Options o;
  o.start_gateway = false;  // after the host's services
  o.extra_gateway_yaml = "  metrics: 127.0.0.1:19466\n";
  o.extra_static_hosts =
      "    zero.example.test: [0.0.0.0]\n"
      "    lo.example.test: [127.0.0.1]\n"
      "    lo2.example.test: [127.0.0.2]\n"
      "    mapped.example.test: [\"::ffff:127.0.0.2\"]\n"
      "    v6zero.example.test: [\"::\"]\n"
      "    v6lo.example.test: [\"::1\"]\n";
  // A custom list without `default`: it no longer names loopback or 0/8.
  o.extra_yaml = "deny_cidrs: [169.254.0.0/16]\n";
  o.rules_yaml =
      "      - hosts: [api.example.test, zero.example.test, lo.example.test, lo2.example.test,\n"
      "                mapped.example.test, v6zero.example.test, v6lo.example.test]\n"
      "        action: passthrough\n";
  Scenario s(o);
  harness::Topology& t = s.topo();
  auto banner4 = serveNetprobe(s, t.hostNs(), {"banner-server", "0.0.0.0", "18080", "host-banner"});
  auto banner6 = serveNetprobe(s, t.hostNs(), {"banner-server", "::1", "18086", "host-banner6"});
  ASSERT_TRUE(banner4 && banner6);
  std::string err;
  ASSERT_TRUE(s.startGateway(&err)) << err;
  // Positive control: an allowed name does get through.
  auto ok = s.curl({"https://api.example.test/"});
  ASSERT_TRUE(has(ok.out, "hello from real")) << ok.out << ok.err << s.gatewayStderr();

  struct Try {
    std::string host;
    std::string port;
    std::string evidence;
  };
  const Try tries[] = {
      {"zero.example.test", "19466", "tollgate_"},  // 0.0.0.0 is the local host
      {"lo.example.test", "19466", "tollgate_"},
      {"zero.example.test", "18080", "host-banner"},
      {"lo2.example.test", "18080", "host-banner"},
      {"mapped.example.test", "18080", "host-banner"},
      {"v6zero.example.test", "18086", "host-banner6"},  // :: is ::1
      {"v6lo.example.test", "18086", "host-banner6"},
  };
  for (const Try& x : tries) {
    // The sandbox aims at a public address; tollgate connects to the name.
    auto r = s.inSandbox(httpProbe(kAttackerV4, x.port, x.host + ":" + x.port));
    EXPECT_FALSE(has(r.out, x.evidence)) << x.host << ":" << x.port << " got through: " << r.out;
  }
  auto rec = s.auditWhere("host", "lo2.example.test");
  EXPECT_EQ(rec.value("action", ""), "deny");
  EXPECT_EQ(rec.value("reason", ""), "deny_cidr:127.0.0.0/8");
  EXPECT_EQ(s.auditWhere("host", "v6zero.example.test").value("action", ""), "deny");

  // Nor does tollgate's DNS service hand these addresses out.
  for (const auto& [name, type] :
       std::vector<std::pair<std::string, std::string>>{{"zero.example.test", "1"},
                                                        {"lo2.example.test", "1"},
                                                        {"mapped.example.test", "28"},
                                                        {"v6zero.example.test", "28"},
                                                        {"v6lo.example.test", "28"}}) {
    auto d = s.inSandbox({"python3", "-c", kDnsQuery, name, type});
    EXPECT_TRUE(has(d.out, "rcode 0")) << name << ": " << d.out << d.err;
    EXPECT_FALSE(has(d.out, "addr ")) << name << " " << type << ": " << d.out;
  }
  auto api = s.inSandbox({"python3", "-c", kDnsQuery, "api.example.test", "1"});
  EXPECT_TRUE(has(api.out, kRealV4)) << api.out << api.err << s.gatewayStderr();
}

// A host address that appears after start (DHCP, SLAAC, a floating IP) is
// tollgate's own from the moment the kernel reports it: a passthrough cidrs
// rule covering it is refused without a reload.
TEST(UpstreamGuardTest, AddressAddedAfterStartIsNeverAnUpstream) {
  Scenario::Options o;
  o.rules_yaml =
      "      - cidrs: [192.0.2.200/32, \"2001:db8:77::7/128\"]\n"
      "        action: passthrough\n"
      "      - name: ssh-to-banner\n"
      "        cidrs: [203.0.113.22/32]\n"
      "        ports: [22]\n"
      "        action: passthrough\n";
  Scenario s(o);
  harness::Topology& t = s.topo();
  auto banner = serveNetprobe(s, t.hostNs(), {"banner-server", "::", "18081", "host-banner"});
  ASSERT_TRUE(banner);
  // A renumbered wan side: the new addresses go on the wan bridge.
  // Positive control: the cidrs rule path works to a real upstream.
  auto ctl = s.inSandbox(netprobe({"tcp", kBannerV4, "22"}));
  ASSERT_TRUE(has(ctl.out, "recv")) << ctl.out << ctl.err;

  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"ip", "addr", "add", "192.0.2.200/32", "dev", t.wanBridge()},
           {"ip", "addr", "add", "2001:db8:77::7/128", "dev", t.wanBridge(), "nodad"}}) {
    auto r = s.inHost(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::this_thread::sleep_for(1s);
  for (const char* dst : {"192.0.2.200", "2001:db8:77::7"}) {
    auto r = s.inSandbox(netprobe({"tcp", dst, "18081"}));
    EXPECT_FALSE(has(r.out, "host-banner")) << dst << " got through: " << r.out;
  }
  EXPECT_FALSE(has(banner->stdoutText(), "accepted")) << banner->stdoutText();
  auto rec = s.auditWhere("dst", "192.0.2.200:18081");
  EXPECT_EQ(rec.value("action", ""), "deny");
  EXPECT_EQ(rec.value("reason", ""), "deny_cidr:192.0.2.200/32");
  auto rec6 = s.auditWhere("dst", "[2001:db8:77::7]:18081");
  EXPECT_EQ(rec6.value("reason", ""), "deny_cidr:2001:db8:77::7/128");
  // Removal is followed too (the address stops being tollgate's own).
  auto del = s.inHost({"ip", "addr", "del", "192.0.2.200/32", "dev", t.wanBridge()});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  bool removed = false;
  for (int i = 0; i < 40 && !removed; ++i) {
    removed = has(s.gatewayStderr(), "host address removed 192.0.2.200/32");
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(removed) << s.gatewayStderr();
}

// A rule with hosts and cidrs: the address the name resolves to must be
// inside the cidrs too, not only the address the sandbox chose.
TEST(UpstreamGuardTest, HostsAndCidrsRuleRefusesResolvedAddressOutsideCidrs) {
  Scenario::Options o;
  o.extra_static_hosts = std::string("    moved.example.test: [") + kAttackerV4 + "]\n";
  o.rules_yaml =
      "      - hosts: [api.example.test, moved.example.test]\n"
      "        cidrs: [198.51.100.0/24]\n"
      "        action: passthrough\n";
  Scenario s(o);
  // moved.example.test resolves to the attacker, outside 198.51.100.0/24;
  // the sandbox aims at an address inside.
  auto ok = s.curl({"https://api.example.test/"});
  ASSERT_TRUE(has(ok.out, "hello from real")) << ok.out << ok.err << s.gatewayStderr();
  auto moved =
      s.curl({"--max-time", "4", "--resolve", std::string("moved.example.test:80:") + kRealV4,
              "http://moved.example.test/"});
  EXPECT_FALSE(has(moved.out, "hello from attacker")) << moved.out;
  auto rec = s.auditWhere("host", "moved.example.test");
  EXPECT_EQ(rec.value("action", ""), "deny");
  EXPECT_EQ(rec.value("reason", ""), "resolved_outside_rule_cidrs");
}

}  // namespace
}  // namespace tollgate::e2e
