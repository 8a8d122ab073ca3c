// Process and runCommand: children started inside a network namespace (the
// way `ip netns exec` does it), in their own process group, output in memfds.
#include "netns-harness/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>  // ST_RDONLY
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "netns-harness/internal.h"

extern char** environ;

namespace tollgate::harness {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often a group that ignores SIGTERM is polled while we wait for it.
constexpr milliseconds kStopPoll{20};

bool isProxyVariable(std::string_view name) {
  // http_proxy, HTTPS_PROXY, ALL_PROXY, NO_PROXY, ftp_proxy, ...
  if (name.size() < 6) {
    return false;
  }
  std::string_view tail = name.substr(name.size() - 6);
  return tail == "_proxy" || tail == "_PROXY";
}

// The child's environment: ours without proxy settings, plus extras.
std::vector<std::string> buildEnvironment(const std::map<std::string, std::string>& extra_env) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view name = entry.substr(0, entry.find('='));
    if (isProxyVariable(name) || extra_env.count(std::string(name)) != 0) {
      continue;
    }
    env.emplace_back(entry);
  }
  for (const auto& [name, value] : extra_env) {
    env.push_back(name + "=" + value);
  }
  return env;
}

std::vector<char*> cStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

// A descriptor >= 3 so that dup2() onto 0..2 in the child cannot clobber it.
Result<UniqueFd> aboveStdio(UniqueFd fd) {
  if (fd.get() > 2) {
    return fd;
  }
  int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) {
    return makeError("fcntl(F_DUPFD_CLOEXEC): " + internal::errnoText(errno));
  }
  return UniqueFd(moved);
}

Result<UniqueFd> makeMemfd(const char* name, const std::string& content) {
  UniqueFd fd(memfd_create(name, MFD_CLOEXEC));
  if (!fd) {
    return makeError(std::string("memfd_create: ") + internal::errnoText(errno));
  }
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return makeError(std::string("write memfd: ") + internal::errnoText(errno));
    }
    done += static_cast<size_t>(n);
  }
  if (lseek(fd.get(), 0, SEEK_SET) < 0) {
    return makeError(std::string("lseek memfd: ") + internal::errnoText(errno));
  }
  return aboveStdio(std::move(fd));
}

// Reads the whole file with pread, leaving the offset the child writes at alone.
std::string readAll(int fd) {
  std::string out;
  if (fd < 0) {
    return out;
  }
  char buf[16384];
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return out;
}

std::string describeArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) {
      out += ' ';
    }
    out += a;
  }
  return out;
}

int exitCodeFrom(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) {
    return info.si_status;
  }
  return 128 + info.si_status;  // CLD_KILLED / CLD_DUMPED
}

// Where a child failed before exec, reported through the status pipe.
enum class ChildStage : int { kSetns, kMountNs, kSysfs, kDup, kExec };
struct ChildFailure {
  ChildStage stage;
  int err;
};

const char* stageName(ChildStage stage) {
  switch (stage) {
    case ChildStage::kSetns:
      return "setns";
    case ChildStage::kMountNs:
      return "private mount namespace";
    case ChildStage::kSysfs:
      return "mount /sys";
    case ChildStage::kDup:
      return "dup2";
    case ChildStage::kExec:
      return "exec";
  }
  return "?";
}

// The bind mounts `ip netns exec` makes: /etc/netns/<ns>/<f> over /etc/<f>.
std::vector<std::pair<std::string, std::string>> etcBindMounts(const std::string& ns) {
  std::vector<std::pair<std::string, std::string>> binds;
  const std::string dir = std::string(internal::kNetnsEtcDir) + "/" + ns;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return binds;
  }
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name.find(".tmp.") != std::string::npos) {
      continue;
    }
    binds.emplace_back(dir + "/" + name, "/etc/" + name);
  }
  closedir(d);
  return binds;
}

}  // namespace

Result<std::unique_ptr<Process>> Process::start(const std::string& ns, const std::vector<std::string>& argv,
                                                const std::map<std::string, std::string>& extra_env,
                                                const std::string& stdin_data) {
  if (argv.empty()) {
    return makeError("Process::start: empty argv");
  }
  std::string program = internal::findExecutable(argv[0]);
  if (program.empty()) {
    return makeError("Process::start: '" + argv[0] + "' not found in PATH, /usr/sbin or /sbin");
  }
  // Everything the child needs is built before fork(): after it, the child
  // of a multi-threaded parent may only make async-signal-safe calls.
  UniqueFd ns_fd;
  std::vector<std::pair<std::string, std::string>> etc_binds;  // /etc/netns/<ns>/f -> /etc/f
  if (!ns.empty()) {
    Result<UniqueFd> opened = internal::openNetns(ns);
    if (!opened.ok()) {
      return makeError("Process::start: no network namespace '" + ns + "': " + opened.message());
    }
    Result<UniqueFd> moved = aboveStdio(std::move(*opened));
    if (!moved.ok()) {
      return moved.error();
    }
    ns_fd = std::move(*moved);
    etc_binds = etcBindMounts(ns);
  }
  std::vector<std::string> args = argv;
  args[0] = program;
  std::vector<std::string> env = buildEnvironment(extra_env);
  std::vector<char*> c_args = cStrings(args);
  std::vector<char*> c_env = cStrings(env);

  Result<UniqueFd> in = makeMemfd("tg-stdin", stdin_data);
  Result<UniqueFd> out = makeMemfd("tg-stdout", {});
  Result<UniqueFd> err = makeMemfd("tg-stderr", {});
  for (const Result<UniqueFd>* r : {&in, &out, &err}) {
    if (!r->ok()) {
      return r->error();
    }
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return makeError(std::string("pipe2: ") + internal::errnoText(errno));
  }
  UniqueFd status_read(pipe_fds[0]);
  Result<UniqueFd> status_w = aboveStdio(UniqueFd(pipe_fds[1]));
  if (!status_w.ok()) {
    return status_w.error();
  }

  const pid_t parent = getpid();
  const int netns_fd = ns_fd.get();
  const int in_fd = in->get();
  const int out_fd = out->get();
  const int err_fd = err->get();
  const int status_fd = status_w->get();
  pid_t pid = fork();
  if (pid < 0) {
    return makeError(std::string("fork: ") + internal::errnoText(errno));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    auto fail = [status_fd](ChildStage stage) {
      ChildFailure f{stage, errno};
      (void)!::write(status_fd, &f, sizeof f);
      _exit(127);
    };
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(127);  // the parent is already gone
    }
    if (netns_fd >= 0) {
      // What `ip netns exec` does, but done before start() returns, so the
      // process is inside the namespace by then (no window in which
      // Topology's clean-up could miss it).
      if (setns(netns_fd, CLONE_NEWNET) != 0) {
        fail(ChildStage::kSetns);
      }
      if (unshare(CLONE_NEWNS) != 0 || mount("", "/", "none", MS_SLAVE | MS_REC, nullptr) != 0) {
        fail(ChildStage::kMountNs);
      }
      // /sys describing this network namespace (/sys/class/net...).
      unsigned long sys_flags = 0;
      struct statfs sys_stat {};  // statfs, not statvfs: a plain syscall
      if (umount2("/sys", MNT_DETACH) != 0 && statfs("/sys", &sys_stat) == 0 && (sys_stat.f_flags & ST_RDONLY) != 0) {
        sys_flags = MS_RDONLY;  // a read-only sysfs cannot be shadowed read-write
      }
      if (mount("sysfs", "/sys", "sysfs", sys_flags, nullptr) != 0) {
        fail(ChildStage::kSysfs);
      }
      for (const auto& [src, dst] : etc_binds) {
        mount(src.c_str(), dst.c_str(), "none", MS_BIND, nullptr);  // best effort, like ip
      }
    }
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) {
      fail(ChildStage::kDup);
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
      sigaction(sig, &dfl, nullptr);  // fails harmlessly for SIGKILL/SIGSTOP
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // No descriptor of the test process (listening sockets...) leaks into
    // the child; status_fd stays open until exec succeeds.
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    execve(program.c_str(), c_args.data(), c_env.data());
    fail(ChildStage::kExec);
  }
  // Parent. Also set the group here so a signal right after start reaches it.
  setpgid(pid, pid);
  status_w->reset();
  auto proc = std::unique_ptr<Process>(new Process());
  proc->pid_ = pid;
  proc->out_fd_ = std::move(*out);
  proc->err_fd_ = std::move(*err);
  proc->description_ = describeArgv(argv) + (ns.empty() ? "" : " [ns " + ns + "]") + " (pid " +
                       std::to_string(pid) + ")";
  // pid is ours and unreaped, so it names this child. (glibc 2.36's
  // <sys/pidfd.h> lacks extern "C", hence the raw syscall.)
  proc->pidfd_ = UniqueFd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  ChildFailure failure{};
  ssize_t n;
  do {
    n = ::read(status_read.get(), &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof failure)) {
    // The destructor reaps the failed child.
    return makeError("Process::start: " + describeArgv(argv) + ": " + stageName(failure.stage) + ": " +
                     internal::errnoText(failure.err));
  }
  if (!proc->pidfd_) {
    return makeError(std::string("pidfd_open: ") + internal::errnoText(errno));
  }
  return proc;
}

Process::~Process() {
  if (pid_ <= 0 || reaped_) {
    return;
  }
  stop();
  reap();
}

bool Process::pollExit() {
  if (exit_code_.has_value()) {
    return true;
  }
  siginfo_t info{};
  // WNOWAIT: leave the zombie so pid and process group stay reserved.
  int rc = waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
  if (rc == 0 && info.si_pid == pid_) {
    exit_code_ = exitCodeFrom(info);
    return true;
  }
  if (rc < 0 && errno == ECHILD) {
    // Someone else reaped it (waitpid(-1) elsewhere, or SIGCHLD ignored).
    exit_code_ = -1;
    reaped_ = true;
    return true;
  }
  return false;
}

void Process::reap() {
  if (reaped_ || pid_ <= 0) {
    return;
  }
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

bool Process::running() { return !pollExit(); }

Result<int> Process::wait(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pollExit()) {
      return *exit_code_;
    }
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return makeError(describe() + " still running after " + std::to_string(timeout.count()) + " ms");
    }
    pollfd pfd{pidfd_.get(), POLLIN, 0};
    // Round up so a sub-millisecond remainder does not spin.
    poll(&pfd, 1, static_cast<int>(left.count()) + 1);
  }
}

void Process::signal(int sig) {
  if (!pollExit()) {
    ::kill(pid_, sig);
  }
}

void Process::signalGroup(int sig) {
  // The leader is unreaped, so its pid (the group id) cannot be reused;
  // stragglers of an exited leader are still reached.
  if (!reaped_) {
    ::kill(-pid_, sig);
  }
}

int Process::stop(milliseconds grace) {
  if (!pollExit()) {
    signalGroup(SIGTERM);
    Result<int> code = wait(grace);
    if (!code.ok()) {
      signalGroup(SIGKILL);
      while (!wait(kStopPoll).ok()) {
      }
    }
  }
  signalGroup(SIGKILL);  // children left behind by the leader
  return *exit_code_;
}

std::string Process::stdoutText() const { return readAll(out_fd_.get()); }
std::string Process::stderrText() const { return readAll(err_fd_.get()); }

CommandResult runCommand(const std::string& ns, const std::vector<std::string>& argv, milliseconds timeout,
                         const std::string& stdin_data) {
  CommandResult result;
  Result<std::unique_ptr<Process>> proc = Process::start(ns, argv, {}, stdin_data);
  if (!proc.ok()) {
    result.exit_code = -1;
    result.err = proc.message();
    return result;
  }
  Process& p = **proc;
  Result<int> code = p.wait(timeout);
  if (!code.ok()) {
    result.timed_out = true;
    p.signalGroup(SIGKILL);
    code = p.wait(std::chrono::seconds(5));  // SIGKILL is not ignorable
  }
  p.signalGroup(SIGKILL);  // a bounded command leaves nothing running
  result.exit_code = code.ok() ? *code : -1;
  result.out = p.stdoutText();
  result.err = p.stderrText();
  return result;
}

}  // namespace tollgate::harness
