// End-to-end: the gateway's own secrets. After start-up tollgate runs as
// gateway.user (or stays root) with CAP_NET_ADMIN only, no_new_privs, not
// dumpable; processes of the same user cannot read its memory or
// environment; and it still serves, reloads, reopens its log and stops.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "scenario.h"

namespace tollgate::e2e {
namespace {
using namespace std::chrono_literals;

// CAP_NET_ADMIN (12) alone, as /proc/PID/status prints capability sets.
constexpr const char* kOnlyNetAdmin = "0000000000001000";

struct Ids {
  uid_t uid;
  gid_t gid;
};

Ids nobody() {
  passwd* pw = getpwnam("nobody");
  if (pw == nullptr) {
    throw std::runtime_error("this host has no user 'nobody'");
  }
  return {pw->pw_uid, pw->pw_gid};
}

// "Key:\tvalue" lines of /proc/PID/status, values with tabs turned to spaces.
std::map<std::string, std::string> procStatus(const Scenario& s, pid_t pid) {
  auto r = s.inHost({"cat", "/proc/" + std::to_string(pid) + "/status"});
  std::map<std::string, std::string> out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string value = line.substr(colon + 1);
    for (char& c : value) {
      if (c == '\t') {
        c = ' ';
      }
    }
    value.erase(0, value.find_first_not_of(' '));
    out[line.substr(0, colon)] = value;
  }
  return out;
}

// Whether this test process holds `cap` (bit of CapEff in /proc/self/status).
bool haveCapability(int cap) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      return ((std::stoull(line.substr(7), nullptr, 16) >> cap) & 1) != 0;
    }
  }
  return false;
}

std::string four(unsigned id) {
  std::string s = std::to_string(id);
  return s + " " + s + " " + s + " " + s;
}

// What a process as `uid` gets when it opens (and reads) each path: "ok" or
// the errno name, one line per path.
const char* kReader =
    "import errno, os, sys\n"
    "for p in sys.argv[1:]:\n"
    "    try:\n"
    "        if p.endswith('/fd'):\n"
    "            os.listdir(p)\n"
    "        else:\n"
    "            with open(p, 'rb', buffering=0) as f:\n"
    "                if not p.endswith('/mem'):\n"
    "                    f.read(4096)\n"
    "        print(p.rsplit('/', 1)[1], 'ok')\n"
    "    except OSError as e:\n"
    "        print(p.rsplit('/', 1)[1], errno.errorcode[e.errno])\n";

harness::CommandResult readAs(const Scenario& s, Ids who, pid_t pid) {
  std::string proc = "/proc/" + std::to_string(pid);
  return s.inHost({"setpriv", "--reuid=" + std::to_string(who.uid),
                   "--regid=" + std::to_string(who.gid), "--clear-groups", "/usr/bin/python3", "-c",
                   kReader, proc + "/mem", proc + "/environ", proc + "/maps", proc + "/fd"});
}

// A scenario whose gateway runs as `nobody`. The temp dir is made traversable
// so the daemon can re-read its config on reload (README "Process hardening").
std::unique_ptr<Scenario> startAsNobody() {
  Scenario::Options o;
  o.start_gateway = false;
  o.extra_gateway_yaml = "  user: nobody\n";
  auto s = std::make_unique<Scenario>(o);
  if (s->inHost({"chmod", "0755", s->tmpDir()}).exit_code != 0) {
    throw std::runtime_error("chmod of the temp dir failed");
  }
  std::string err;
  if (!s->startGateway(&err)) {
    throw std::runtime_error("gateway did not start: " + err);
  }
  return s;
}

TEST(HardeningTest, RunsAsTheConfiguredUserWithOnlyNetAdminAndNoNewPrivileges) {
  auto s = startAsNobody();
  Ids user = nobody();
  EXPECT_NE(s->gatewayStderr().find("privileges dropped: now user nobody"), std::string::npos)
      << s->gatewayStderr();
  auto st = procStatus(*s, s->gateway()->pid());
  EXPECT_EQ(st["Uid"], four(user.uid));
  EXPECT_EQ(st["Gid"], four(user.gid));
  EXPECT_EQ(st["Groups"], "") << "supplementary groups are dropped";
  EXPECT_EQ(st["CapInh"], "0000000000000000");
  EXPECT_EQ(st["CapPrm"], kOnlyNetAdmin);
  EXPECT_EQ(st["CapEff"], kOnlyNetAdmin);
  EXPECT_EQ(st["CapBnd"], kOnlyNetAdmin);
  EXPECT_EQ(st["CapAmb"], "0000000000000000");
  EXPECT_EQ(st["NoNewPrivs"], "1");
  // Room to lock secrets without CAP_IPC_LOCK: 64 MiB where the starting
  // process may raise the hard limit (CAP_SYS_RESOURCE), else as it was.
  auto limits = s->inHost(
      {"grep", "Max locked memory", "/proc/" + std::to_string(s->gateway()->pid()) + "/limits"});
  rlimit mine{};
  ASSERT_EQ(getrlimit(RLIMIT_MEMLOCK, &mine), 0);
  std::string expected =
      std::to_string(haveCapability(CAP_SYS_RESOURCE) ? std::max<rlim_t>(mine.rlim_max, 64ull << 20)
                                                      : mine.rlim_max);
  EXPECT_NE(limits.out.find(expected + " "), std::string::npos) << expected << "\n" << limits.out;
  // Every worker thread was started after the drop and inherited it.
  auto tasks = s->inHost({"sh", "-c",
                          "grep -h '^CapEff\\|^Uid' /proc/" + std::to_string(s->gateway()->pid()) +
                              "/task/*/status | sort -u"});
  EXPECT_EQ(
      tasks.out, "CapEff:\t" + std::string(kOnlyNetAdmin) + "\nUid:\t" + [&] {
        std::string u = std::to_string(user.uid);
        return u + "\t" + u + "\t" + u + "\t" + u;
      }() + "\n");
}

TEST(HardeningTest, WithoutAUserStaysRootWithOnlyNetAdmin) {
  Scenario s(Scenario::Options{});
  EXPECT_NE(s.gatewayStderr().find("privileges dropped: staying uid 0"), std::string::npos)
      << s.gatewayStderr();
  auto st = procStatus(s, s.gateway()->pid());
  EXPECT_EQ(st["Uid"], four(0));
  EXPECT_EQ(st["CapPrm"], kOnlyNetAdmin);
  EXPECT_EQ(st["CapEff"], kOnlyNetAdmin);
  EXPECT_EQ(st["CapBnd"], kOnlyNetAdmin);
  EXPECT_EQ(st["CapInh"], "0000000000000000");
  EXPECT_EQ(st["NoNewPrivs"], "1");
  // Serving and stopping (nftables on the way out) need nothing more.
  EXPECT_EQ(s.curl({"https://api.example.test/"}).exit_code, 0);
  EXPECT_EQ(s.stopGateway(), 0) << s.gatewayStderr();
  auto table = s.inHost({"nft", "list", "table", "inet", "tollgate"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.find("redirect"), std::string::npos) << table.out;
}

TEST(HardeningTest, ProcessesOfTheSameUserCannotReadItsMemoryOrEnvironment) {
  auto s = startAsNobody();
  Ids user = nobody();
  // Control: a plain process of the same user is readable by the same
  // reader, so a refusal below is tollgate's doing, not the reader's.
  auto sleeper = s->topo().spawn(
      s->topo().hostNs(), {"setpriv", "--reuid=" + std::to_string(user.uid),
                           "--regid=" + std::to_string(user.gid), "--clear-groups", "sleep", "30"});
  ASSERT_TRUE(sleeper.ok()) << sleeper.message();
  auto control = readAs(*s, user, (*sleeper)->pid());
  ASSERT_EQ(control.out, "mem ok\nenviron ok\nmaps ok\nfd ok\n") << control.err;

  auto r = readAs(*s, user, s->gateway()->pid());
  EXPECT_EQ(r.out, "mem EACCES\nenviron EACCES\nmaps EACCES\nfd EACCES\n") << r.err;
  // Root on the host still can (README: out of scope, a compromised host).
  auto root = s->inHost(
      {"python3", "-c", kReader, "/proc/" + std::to_string(s->gateway()->pid()) + "/environ"});
  EXPECT_EQ(root.out, "environ ok\n") << root.err;
}

TEST(HardeningTest, AfterTheDropItServesReloadsReopensItsLogAndStops) {
  auto s = startAsNobody();
  Ids user = nobody();
  // The audit log was created as root and handed to the user.
  auto owner = s->inHost({"stat", "-c", "%u:%g %a", s->auditPath()});
  EXPECT_EQ(owner.out, std::to_string(user.uid) + ":" + std::to_string(user.gid) + " 640\n");

  ASSERT_EQ(s->curl({"https://api.example.test/"}).exit_code, 0) << s->gatewayStderr();
  EXPECT_FALSE(s->auditWhere("sni", "api.example.test").is_null());

  // Reload through the root-only control socket: the config is re-read as
  // `nobody` and the denied host becomes allowed.
  std::string sock = s->tmpDir() + "/control.sock";
  EXPECT_EQ(s->inHost({"stat", "-c", "%a %U", sock}).out, "600 root\n");
  ASSERT_NE(s->curl({"https://denied.example.test/"}).exit_code, 0);
  ASSERT_EQ(s->inHost({"sed", "-i",
                       "s/action: deny/action: passthrough/; "
                       "s/^    slow.example.test:/    denied.example.test: [198.51.100.10]\\n&/",
                       s->configPath()})
                .exit_code,
            0);
  auto rl = harness::runCommand("", {TOLLGATE_BINARY, "reload", "--control", sock}, 10s);
  EXPECT_EQ(rl.exit_code, 0) << rl.out << rl.err << s->gatewayStderr();
  EXPECT_EQ(s->curl({"https://denied.example.test/"}).exit_code, 0) << s->gatewayStderr();

  // logrotate with `create 0640 nobody nogroup`: rename, new file for the
  // user, SIGUSR1. New records go to the new file.
  ASSERT_EQ(s->inHost({"mv", s->auditPath(), s->auditPath() + ".1"}).exit_code, 0);
  ASSERT_EQ(s->inHost({"install", "-o", std::to_string(user.uid), "-g", std::to_string(user.gid),
                       "-m", "0640", "/dev/null", s->auditPath()})
                .exit_code,
            0);
  s->gateway()->signal(SIGUSR1);
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(s->curl({"https://slow.example.test/"}).exit_code, 0);
  EXPECT_FALSE(s->auditWhere("sni", "slow.example.test").is_null()) << s->gatewayStderr();
  EXPECT_EQ(s->gatewayStderr().find("cannot open for append"), std::string::npos)
      << s->gatewayStderr();

  // Stop: the blocking table goes in with the one capability kept.
  EXPECT_EQ(s->stopGateway(), 0) << s->gatewayStderr();
  auto table = s->inHost({"nft", "list", "table", "inet", "tollgate"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.find("redirect"), std::string::npos) << table.out;
  EXPECT_NE(s->curl({"--connect-timeout", "2", "https://api.example.test/"}).exit_code, 0);
}

TEST(HardeningTest, AConfigTheUserCannotReadIsReportedAtStartAndReloadIsRefused) {
  Scenario::Options o;
  o.extra_gateway_yaml = "  user: nobody\n";  // temp dir stays 0700 (root)
  Scenario s(o);
  EXPECT_NE(s.gatewayStderr().find("is not readable after the privilege drop"), std::string::npos)
      << s.gatewayStderr();
  auto rl = harness::runCommand(
      "", {TOLLGATE_BINARY, "reload", "--control", s.tmpDir() + "/control.sock"}, 10s);
  EXPECT_EQ(rl.exit_code, 1);
  EXPECT_NE(rl.out.find("Permission denied"), std::string::npos) << rl.out;
  EXPECT_EQ(s.curl({"https://api.example.test/"}).exit_code, 0) << "the running policy stays";
}

TEST(HardeningTest, AnUnknownUserRefusesToStartBeforeInstallingAnything) {
  Scenario::Options o;
  o.start_gateway = false;
  o.extra_gateway_yaml = "  user: tollgate-no-such-user\n";
  Scenario s(o);
  auto run = s.inHost({TOLLGATE_BINARY, "run", "--config", s.configPath()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("no such user 'tollgate-no-such-user'"), std::string::npos) << run.err;
  EXPECT_NE(s.inHost({"nft", "list", "table", "inet", "tollgate"}).exit_code, 0)
      << "a refused start must not install anything";
}

}  // namespace
}  // namespace tollgate::e2e
