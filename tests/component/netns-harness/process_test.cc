// Component tests of netns-harness processes: run() bounds, Process
// wait/signal/stop, process-group clean-up, output capture.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "netns-harness/harness.h"

namespace tollgate::harness {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

constexpr milliseconds kCmd{5000};

long elapsedMs(Clock::time_point start) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - start).count());
}

// True once pid is gone or a zombie (what matters: it runs no more).
bool deadWithin(pid_t pid, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (::kill(pid, 0) != 0) {
      return true;
    }
    FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (f == nullptr) {
      return true;
    }
    int ignored_pid = 0;
    char state = '?';
    int fields = std::fscanf(f, "%d %*s %c", &ignored_pid, &state);
    std::fclose(f);
    if (fields == 2 && state == 'Z') {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

// Polls p's stdout until it contains `needle`.
bool stdoutShows(Process& p, const std::string& needle, milliseconds timeout = kCmd) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (p.stdoutText().find(needle) != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  return false;
}

// One small topology per test: processes run inside its sandbox namespace.
class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "netns tests need root";
    TopologySpec spec;
    spec.sandboxes = 1;
    auto topo = Topology::create(spec);
    ASSERT_TRUE(topo.ok()) << topo.message();
    topo_ = std::move(*topo);
    ns_ = topo_->sandboxNs(0);
  }
  std::unique_ptr<Topology> topo_;
  std::string ns_;
};

TEST_F(ProcessTest, RunCapturesOutputExitCodeAndStdin) {
  CommandResult r = topo_->run(ns_, {"sh", "-c", "echo out; echo err >&2; exit 3"}, kCmd);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.timed_out);

  CommandResult cat = topo_->run(ns_, {"cat"}, kCmd, "line one\nline two\n");
  EXPECT_EQ(cat.exit_code, 0);
  EXPECT_EQ(cat.out, "line one\nline two\n");

  // It really runs in the namespace: only lo and eth0 there.
  CommandResult links = topo_->run(ns_, {"ip", "-o", "link"}, kCmd);
  EXPECT_THAT(links.out, HasSubstr("eth0"));
  EXPECT_THAT(links.out, ::testing::Not(HasSubstr("tgbr0")));
  // /sys describes the namespace too, as under `ip netns exec`.
  CommandResult sys = topo_->run(ns_, {"ls", "/sys/class/net"}, kCmd);
  EXPECT_EQ(sys.out, "eth0\nlo\n") << sys.err;
}

TEST_F(ProcessTest, RunReportsSignalsAndStartFailures) {
  CommandResult killed = topo_->run(ns_, {"sh", "-c", "kill -KILL $$"}, kCmd);
  EXPECT_EQ(killed.exit_code, 128 + SIGKILL);
  EXPECT_FALSE(killed.timed_out);

  CommandResult missing = topo_->run(ns_, {"tg-no-such-program"}, kCmd);
  EXPECT_EQ(missing.exit_code, -1);
  EXPECT_THAT(missing.err, HasSubstr("not found"));

  CommandResult no_ns = runCommand("tg-no-such-ns", {"true"}, kCmd);
  EXPECT_EQ(no_ns.exit_code, -1);
  EXPECT_THAT(no_ns.err, HasSubstr("no network namespace"));
}

TEST_F(ProcessTest, RunOfAHangingCommandTimesOutWithinTheBoundAndKillsItsChildren) {
  auto start = Clock::now();
  // The background sleep holds stdout open: a pipe reader would hang here.
  CommandResult r = topo_->run(ns_, {"sh", "-c", "sleep 30 & echo $!; wait"}, milliseconds(300));
  const long took = elapsedMs(start);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_GE(took, 300);
  EXPECT_LT(took, 1000);
  const pid_t child = static_cast<pid_t>(std::atoi(r.out.c_str()));
  ASSERT_GT(child, 0) << r.out;
  EXPECT_TRUE(deadWithin(child, milliseconds(2000)));
}

TEST_F(ProcessTest, SpawnWaitAndSignal) {
  auto p = topo_->spawn(ns_, {"sleep", "30"});
  ASSERT_TRUE(p.ok()) << p.message();
  Process& proc = **p;
  EXPECT_GT(proc.pid(), 0);
  EXPECT_TRUE(proc.running());
  EXPECT_THAT(proc.describe(), HasSubstr("sleep 30"));

  auto start = Clock::now();
  auto not_yet = proc.wait(milliseconds(100));
  EXPECT_FALSE(not_yet.ok());
  EXPECT_GE(elapsedMs(start), 100);
  EXPECT_LT(elapsedMs(start), 600);
  EXPECT_FALSE(proc.wait(milliseconds(0)).ok());

  proc.signal(SIGTERM);
  auto code = proc.wait(milliseconds(2000));
  ASSERT_TRUE(code.ok()) << code.message();
  EXPECT_EQ(*code, 128 + SIGTERM);
  EXPECT_FALSE(proc.running());
  // Cached after exit; signalling an exited process is harmless.
  proc.signal(SIGKILL);
  EXPECT_EQ(*proc.wait(milliseconds(0)), 128 + SIGTERM);
}

TEST_F(ProcessTest, NormalExitAndOutputWhileRunning) {
  auto p = topo_->spawn(ns_, {"sh", "-c", "echo first; echo warn >&2; read line; echo got-$line; exit 7"});
  ASSERT_TRUE(p.ok()) << p.message();
  // stdin is /dev/null for spawn(): `read` sees EOF at once.
  auto code = (*p)->wait(kCmd);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 7);
  EXPECT_EQ((*p)->stdoutText(), "first\ngot-\n");
  EXPECT_EQ((*p)->stderrText(), "warn\n");

  auto live = topo_->spawn(ns_, {"sh", "-c", "echo ready; exec sleep 30"});
  ASSERT_TRUE(live.ok());
  EXPECT_TRUE(stdoutShows(**live, "ready\n"));
  EXPECT_TRUE((*live)->running());
}

TEST_F(ProcessTest, StopEscalatesToSigkillWhenSigtermIsIgnored) {
  auto p = topo_->spawn(ns_, {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"});
  ASSERT_TRUE(p.ok()) << p.message();
  ASSERT_TRUE(stdoutShows(**p, "ready"));
  auto start = Clock::now();
  int code = (*p)->stop(milliseconds(200));
  EXPECT_EQ(code, 128 + SIGKILL);
  EXPECT_GE(elapsedMs(start), 200);
  EXPECT_LT(elapsedMs(start), 1500);
}

TEST_F(ProcessTest, DestructorKillsTheWholeProcessGroup) {
  pid_t grandchild = 0;
  {
    auto p = topo_->spawn(ns_, {"sh", "-c", "sleep 60 & echo $!; wait"});
    ASSERT_TRUE(p.ok()) << p.message();
    ASSERT_TRUE(stdoutShows(**p, "\n"));
    grandchild = static_cast<pid_t>(std::atoi((*p)->stdoutText().c_str()));
    ASSERT_GT(grandchild, 0);
    EXPECT_FALSE(deadWithin(grandchild, milliseconds(0)));
  }
  EXPECT_TRUE(deadWithin(grandchild, milliseconds(3000)));
}

TEST_F(ProcessTest, ChildDiesWithTheThreadThatStartedIt) {
  std::unique_ptr<Process> p;
  std::thread starter([&] {
    auto started = topo_->spawn(ns_, {"sleep", "30"});
    if (started.ok()) {
      p = std::move(*started);
    }
  });
  starter.join();
  ASSERT_NE(p, nullptr);
  auto code = p->wait(milliseconds(2000));
  ASSERT_TRUE(code.ok()) << "PR_SET_PDEATHSIG did not fire";
  EXPECT_EQ(*code, 128 + SIGKILL);
}

TEST(ProcessStandaloneTest, RunsInTheCallersNamespaceWhenNsIsEmpty) {
  CommandResult r = runCommand("", {"sh", "-c", "echo $0"}, kCmd);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("sh"));
  auto p = Process::start("", {"true"});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*(*p)->wait(kCmd), 0);
  EXPECT_FALSE(Process::start("", {}).ok());
}

}  // namespace
}  // namespace tollgate::harness
