// End-to-end: UDP and ICMP echo admission through NFQUEUE. Admitted flows are
// remembered in the conntrack mark and keep flowing; denied ones are dropped
// and audited once; with tollgate gone the queue fails closed.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "scenario.h"

namespace tollgate::e2e {
namespace {
using namespace std::chrono_literals;

constexpr const char* kRules =
    "      - hosts: [api.example.test]\n"
    "        action: passthrough\n"
    "      - name: ssh-to-banner\n"
    "        cidrs: [203.0.113.22/32]\n"
    "        ports: [22]\n"
    "        action: passthrough\n"
    "      - name: no-attacker\n"
    "        cidrs: [203.0.113.66/32]\n"
    "        action: deny\n"
    "    udp:\n"
    "      - cidrs: [198.51.100.10/32, \"2001:db8:100::10/128\"]\n"
    "        ports: [5353]\n"
    "      - cidrs: [169.254.169.254/32]\n";

Scenario::Options options() {
  Scenario::Options o;
  o.rules_yaml = kRules;
  return o;
}

std::unique_ptr<harness::Process> echoServer(Scenario& s) {
  return serveNetprobe(s, s.topo().upstreamNs("real"), {"udp-echo-server", "::", "5353", "5354"});
}

std::string probe(Scenario& s, std::vector<std::string> args, int sandbox = 0) {
  args.insert(args.begin(), {"python3", toolPath("netprobe.py")});
  auto r = s.inSandbox(args, 30s, sandbox);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

size_t countWhere(const std::vector<nlohmann::json>& records, const std::string& dst,
                  const std::string& action) {
  size_t n = 0;
  for (const auto& r : records) {
    if (r.value("event", "") == "udp" && r.value("dst", "") == dst &&
        r.value("action", "") == action) {
      ++n;
    }
  }
  return n;
}

TEST(UdpAdmissionTest, AdmittedFlowFlowsDeniedFlowIsDroppedAndAuditedOnce) {
  Scenario::Options o = options();
  o.extra_gateway_yaml = "  metrics: 127.0.0.1:19466\n";
  Scenario s(o);
  auto server = echoServer(s);
  ASSERT_NE(server, nullptr);

  EXPECT_NE(probe(s, {"udp", kRealV4, "5353", "5"}).find("answered 5/5"), std::string::npos);
  EXPECT_NE(probe(s, {"udp", kRealV6, "5353", "3"}).find("answered 3/3"), std::string::npos);
  EXPECT_NE(probe(s, {"udp", kRealV4, "5354", "3"}).find("answered 0/3"), std::string::npos);

  // The admitted flow's conntrack entry carries the admit mark: its later
  // packets were accepted in the kernel, not queued again.
  auto ct = s.inHost({"conntrack", "-L", "-p", "udp", "--mark", "0x74670001"});
  EXPECT_NE(ct.out.find("dport=5353"), std::string::npos) << ct.out << ct.err;

  auto admitted = s.auditWhere("dst", std::string(kRealV4) + ":5353");
  EXPECT_EQ(admitted.value("event", ""), "udp");
  EXPECT_EQ(admitted.value("action", ""), "passthrough");
  EXPECT_EQ(admitted.value("proto", ""), "udp");
  EXPECT_EQ(admitted.value("sandbox", ""), "agents");
  EXPECT_EQ(admitted.value("rule", ""), "udp[0]");
  auto denied = s.auditWhere("dst", std::string(kRealV4) + ":5354");
  EXPECT_EQ(denied.value("action", ""), "deny");
  EXPECT_EQ(denied.value("reason", ""), "default");
  // Three datagrams of one denied flow: one record.
  auto all = s.audit();
  EXPECT_EQ(countWhere(all, std::string(kRealV4) + ":5354", "deny"), 1u);
  // One record per admitted flow, not per datagram.
  EXPECT_LE(countWhere(all, std::string(kRealV4) + ":5353", "passthrough"), 2u);

  // Counted in the metrics.
  auto m = s.inHost({"curl", "-sS", "--max-time", "5", "http://127.0.0.1:19466/metrics"});
  EXPECT_NE(m.out.find("tollgate_udp_admissions_total{verdict=\"admitted\"} "), std::string::npos)
      << m.out;
  auto value = [&](const std::string& series) {
    size_t at = m.out.find(series + " ");
    return at == std::string::npos ? -1.0 : std::stod(m.out.substr(at + series.size() + 1));
  };
  EXPECT_GE(value("tollgate_udp_admissions_total{verdict=\"admitted\"}"), 2);  // IPv4 and IPv6
  EXPECT_GE(value("tollgate_udp_admissions_total{verdict=\"denied\"}"), 3);    // each packet

  // A clean stop releases the queue (RAII) and leaves the block table.
  EXPECT_EQ(s.stopGateway(), 0) << s.gatewayStderr();
  EXPECT_EQ(s.gatewayStderr().find("Sanitizer"), std::string::npos) << s.gatewayStderr();
  EXPECT_NE(probe(s, {"udp", kRealV4, "5353", "1"}).find("answered 0/1"), std::string::npos);
}

TEST(UdpAdmissionTest, DenyCidrsWinOverAUdpRule) {
  Scenario s(options());
  // udp[1] admits 169.254.169.254 by cidr, but it is in the default deny_cidrs.
  // (Port 53 would go to the DNS service.)
  probe(s, {"udp", "169.254.169.254", "123", "1"});
  auto r = s.auditWhere("dst", "169.254.169.254:123");
  EXPECT_EQ(r.value("action", ""), "deny");
  EXPECT_EQ(r.value("reason", ""), "deny_cidr:169.254.0.0/16");
}

TEST(UdpAdmissionTest, FailsClosedWhenTollgateIsGone) {
  Scenario s(options());
  auto server = echoServer(s);
  ASSERT_NE(server, nullptr);
  EXPECT_NE(probe(s, {"udp", kRealV4, "5353", "1"}).find("answered 1/1"), std::string::npos);
  // A crash: the capture table stays, nobody reads the queue.
  s.gateway()->signal(SIGKILL);
  ASSERT_TRUE(s.gateway()->wait(5s).ok());
  // A new flow (new source port) to the same admitted destination: queued,
  // nobody answers the queue, the kernel drops it.
  EXPECT_NE(probe(s, {"udp", kRealV4, "5353", "3"}).find("answered 0/3"), std::string::npos);
}

TEST(UdpAdmissionTest, IcmpEchoOnlyToCidrRulesSmallAndRateLimited) {
  Scenario s(options());
  // 203.0.113.22: a cidrs rule allows it; small echo passes.
  EXPECT_NE(probe(s, {"ping", kBannerV4, "56", "3"}).find("replies 3/3"), std::string::npos);
  // Large payload: dropped before the queue.
  EXPECT_NE(probe(s, {"ping", kBannerV4, "200", "2"}).find("replies 0/2"), std::string::npos);
  // No rule for the address, and a deny cidr rule: no echo.
  EXPECT_NE(probe(s, {"ping", kDnsV4, "56", "2"}).find("replies 0/2"), std::string::npos);
  EXPECT_NE(probe(s, {"ping", kAttackerV4, "56", "2"}).find("replies 0/2"), std::string::npos);
  // IPv6: the udp entry's cidr covers the real host.
  EXPECT_NE(probe(s, {"ping", kRealV6, "56", "2"}).find("replies 2/2"), std::string::npos);
  EXPECT_NE(probe(s, {"ping", kRealV6, "300", "2"}).find("replies 0/2"), std::string::npos);

  auto allowed = s.auditWhere("dst", kBannerV4);
  EXPECT_EQ(allowed.value("proto", ""), "icmp");
  EXPECT_EQ(allowed.value("action", ""), "passthrough");
  EXPECT_EQ(allowed.value("rule", ""), "ssh-to-banner");
  auto attacker = s.auditWhere("dst", kAttackerV4);
  EXPECT_EQ(attacker.value("action", ""), "deny");
  EXPECT_EQ(attacker.value("rule", ""), "no-attacker");

  // Rate limit: a burst of 60 echo requests without pauses gets far fewer
  // than 60 replies (20/s, burst 5, all sandboxes together), though they
  // all belong to one admitted flow (one ICMP id).
  auto burst =
      s.inSandbox({"python3", "-c",
                   "import socket,struct,select,time\n"
                   "s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP)\n"
                   "def ck(d):\n"
                   "  v=sum(struct.unpack('!%dH'%(len(d)//2),d)); v=(v>>16)+(v&0xffff); v+=v>>16\n"
                   "  return ~v&0xffff\n"
                   "for i in range(60):\n"
                   "  h=struct.pack('!BBHHH',8,0,0,77,i)+b'x'*8\n"
                   "  s.sendto(struct.pack('!BBHHH',8,0,ck(h),77,i)+b'x'*8,('203.0.113.22',0))\n"
                   "n=0; end=time.time()+1.5\n"
                   "while time.time()<end:\n"
                   "  r,_,_=select.select([s],[],[],0.2)\n"
                   "  if r: d=s.recv(2048); n+= d[20]==0\n"
                   "print('replies',n)\n"},
                  20s);
  ASSERT_EQ(burst.exit_code, 0) << burst.err;
  int replies = std::stoi(burst.out.substr(burst.out.find("replies ") + 8));
  EXPECT_GT(replies, 0);
  EXPECT_LT(replies, 30) << burst.out;
}

// Sends one datagram every 50 ms on one socket per port (one flow each, for
// the whole run) and prints "echo PORT TIME" for every answer.
constexpr const char* kSender =
    "import socket,select,sys,time\n"
    "socks={}\n"
    "for p in sys.argv[2:]:\n"
    "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.connect((sys.argv[1],int(p)))\n"
    "  socks[s]=int(p)\n"
    "end=time.time()+40; due=0\n"
    "while time.time()<end:\n"
    "  if time.time()>=due:\n"
    "    for s in socks:\n"
    "      try: s.send(b'x')\n"
    "      except OSError: pass\n"
    "    due=time.time()+0.05\n"
    "  r,_,_=select.select(list(socks),[],[],0.02)\n"
    "  for s in r:\n"
    "    try:\n"
    "      s.recv(2048); print('echo %d %.3f'%(socks[s],time.time()),flush=True)\n"
    "    except OSError: pass\n";

// Times (seconds since the epoch) of the answers on `port`.
std::vector<double> echoes(const std::string& out, int port) {
  std::vector<double> times;
  std::istringstream in(out);
  std::string word;
  int p = 0;
  double t = 0;
  while (in >> word >> p >> t) {
    if (word == "echo" && p == port) {
      times.push_back(t);
    }
  }
  return times;
}

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A flow to 5353 and one to 5354 are admitted and keep sending; then the
// rule for 5353 goes, by a reload or by a restart after a crash (the previous
// run's verdicts are still in conntrack). The 5353 flow must stop within a
// second of the new policy being in force; the 5354 flow must keep working.
void expectRevocation(bool restart) {
  const std::string revoked = "      - cidrs: [198.51.100.10/32]\n        ports: [5353]\n";
  Scenario::Options o;
  o.rules_yaml =
      "      - hosts: [api.example.test]\n"
      "        action: passthrough\n"
      "    udp:\n" +
      revoked +
      "      - cidrs: [198.51.100.10/32]\n"
      "        ports: [5354]\n";
  Scenario s(o);
  auto server = echoServer(s);
  ASSERT_NE(server, nullptr);
  auto sender = s.topo().spawn(s.sandbox(), {"python3", "-c", kSender, kRealV4, "5353", "5354"});
  ASSERT_TRUE(sender) << sender.message();
  for (int i = 0; i < 500 && (echoes((*sender)->stdoutText(), 5353).empty() ||
                              echoes((*sender)->stdoutText(), 5354).empty());
       ++i) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(echoes((*sender)->stdoutText(), 5353).empty()) << (*sender)->stderrText();
  ASSERT_FALSE(echoes((*sender)->stdoutText(), 5354).empty()) << (*sender)->stderrText();

  // The rule for 5353 goes; 5354 stays.
  std::string config;
  {
    std::ifstream in(s.configPath());
    std::stringstream ss;
    ss << in.rdbuf();
    config = ss.str();
  }
  ASSERT_NE(config.find(revoked), std::string::npos) << config;
  config.erase(config.find(revoked), revoked.size());
  std::ofstream(s.configPath()) << config;
  std::string in_force;  // the log line that says the new policy is in force
  if (restart) {
    s.gateway()->signal(SIGKILL);
    ASSERT_TRUE(s.gateway()->wait(5s).ok());
    // The crashed run's table and verdicts stay: the 5353 flow still flows.
    const size_t answered = echoes((*sender)->stdoutText(), 5353).size();
    std::this_thread::sleep_for(500ms);
    ASSERT_GT(echoes((*sender)->stdoutText(), 5353).size(), answered);
    std::string err;
    ASSERT_TRUE(s.startGateway(&err)) << err;
    in_force = "ready:";
  } else {
    s.gateway()->signal(SIGHUP);
    in_force = "reloaded";
  }
  for (int i = 0; i < 1000 && s.gatewayStderr().find(in_force) == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  const double decided = nowSeconds();
  ASSERT_NE(s.gatewayStderr().find(in_force), std::string::npos) << s.gatewayStderr();
  std::this_thread::sleep_for(3s);

  const std::string out = (*sender)->stdoutText();
  auto before = echoes(out, 5353);
  ASSERT_FALSE(before.empty());
  EXPECT_LT(before.back(), decided + 1.0)
      << "the revoked flow was still answered " << before.back() - decided << " s later";
  auto allowed = echoes(out, 5354);
  ASSERT_FALSE(allowed.empty());
  EXPECT_GT(allowed.back(), decided + 2.5) << "the still-allowed flow stopped";
  // The revoked flow's next packet was decided again: denied, and audited.
  EXPECT_GE(countWhere(s.audit(), std::string(kRealV4) + ":5353", "deny"), 1u);
  (*sender)->signal(SIGKILL);
}

TEST(UdpAdmissionTest, AReloadRevokesTheGrantOfARunningFlowAndKeepsAllowedOnes) {
  expectRevocation(false);
}

TEST(UdpAdmissionTest, AStartRevokesGrantsAPreviousRunLeftInConntrack) { expectRevocation(true); }

}  // namespace
}  // namespace tollgate::e2e
