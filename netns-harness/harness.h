// netns-harness: throw-away network topologies in network namespaces for
// end-to-end tests, the demo and benchmarks.
//
//   sandbox ns "<P>-sb<i>"  eth0 ──veth── sb<i> ┐
//                                               tgbr0 (bridgeIp4/6)   host ns "<P>-host"
//                                               tgwan0 (198.51.100.1, 203.0.113.1,     (tollgate runs here;
//   upstream ns "<P>-up-<n>" eth0 ──veth── up<j> ┘        192.0.2.1, 2001:db8:100::1)  forwarding on)
//
// Nothing is created in the caller's own namespaces: every interface lives
// inside a namespace the Topology owns, so deleting the namespaces removes
// everything. Names embed the owner pid ("tg<pid>x<counter><rand>") so that
// `collectGarbage()` (CLI: `netns-harness gc`) can remove what a killed run
// left behind.
//
// Everything here needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique.h"

namespace tollgate::harness {

inline constexpr char kSandboxBridge[] = "tgbr0";
inline constexpr char kWanBridge[] = "tgwan0";
// Addresses of tgwan0 in the host namespace; each is the gateway of the
// upstreams whose addresses fall in its subnet.
inline constexpr const char* kWanGateways[] = {"198.51.100.1/24", "203.0.113.1/24", "192.0.2.1/24",
                                               "2001:db8:100::1/64"};
// Longest namespace name Topology creates.
inline constexpr size_t kMaxNsName = 30;

struct UpstreamSpec {
  std::string name;                // 1..10 of [a-z0-9_-]; the namespace is "<P>-up-<name>"
  std::vector<std::string> addrs;  // e.g. {"198.51.100.10", "2001:db8:100::10"}
  // Addresses inside a wan subnet (198.51.100.0/24, 203.0.113.0/24,
  // 192.0.2.0/24, 2001:db8:100::/64) get that prefix length and a default
  // route via the tgwan0 address there. Any other unicast address (say
  // 169.254.169.254 or 10.1.2.3, to test deny_cidrs) is added as /32 or /128
  // and the host ns routes it via this upstream's first wan address of the
  // same family, which must exist.
};

struct TopologySpec {
  int sandboxes = 1;
  std::vector<UpstreamSpec> upstreams;            // each its own namespace, on the wan bridge
  std::string sandbox_subnet4 = "10.77.0.0/24";   // bridge gets .1, sandbox i gets .(10+i)
  std::string sandbox_subnet6 = "fd77::/64";      // bridge ::1, sandbox i ::(10+i) spelled like the IPv4
                                                  // one (sandbox 0: fd77::10); empty = no IPv6
  bool sandbox_routes_via_bridge = true;          // default routes of sandboxes point at the bridge addr

  // Namespace name prefix. Empty: "tg<owner_pid>x<counter><3 random letters>".
  // A caller-chosen prefix ([A-Za-z0-9], <= 16 chars) is never touched by
  // collectGarbage() unless it has that same shape.
  std::string prefix;
  // Pid whose death makes this topology garbage (see collectGarbage()).
  // 0: the calling process. The CLI passes its parent (the script).
  pid_t owner_pid = 0;
  // If set, writes net.bridge.bridge-nf-call-ip{,6}tables in the host ns
  // (1 by default in new namespaces while br_netfilter is loaded; TPROXY on
  // bridged traffic needs 0). Fails if br_netfilter is not loaded.
  std::optional<bool> bridge_nf_call_iptables;
};

// The outcome of Topology::run(). exit_code is the exit status, 128+signal
// if the command was killed by a signal, or -1 if it could not be started
// (err then says why). timed_out: the bound passed and the command's whole
// process group was killed (exit_code is then 137).
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  bool timed_out = false;
};

// A child process running inside a network namespace, in a process group of
// its own, with stdin holding the given data (EOF right after) and stdout/stderr
// captured into anonymous temp files (memfd). It gets SIGKILL if the thread
// that started it exits (PR_SET_PDEATHSIG), so a crashed test does not leave
// servers behind; start long-lived processes from a long-lived thread.
//
// RAII: the destructor sends SIGTERM to the process group, SIGKILL after
// 2 s, and reaps. The child stays unreaped (a zombie) until then, so pid()
// and the process group id are never reused while this object exists.
class Process {
 public:
  // Starts argv[0] (looked up in PATH, then /usr/sbin, /sbin) inside the
  // named network namespace the way `ip netns exec` does: setns, a private
  // mount namespace with /sys remounted for the netns and /etc/netns/<ns>/*
  // bind-mounted over /etc. When start() returns, the child is inside ns
  // and exec has succeeded. ns == "": the caller's own namespaces.
  // The environment is the caller's minus every *_proxy / *_PROXY variable
  // (sandboxes have no proxy settings), plus extra_env.
  static Result<std::unique_ptr<Process>> start(const std::string& ns, const std::vector<std::string>& argv,
                                                const std::map<std::string, std::string>& extra_env = {},
                                                const std::string& stdin_data = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // False once the process has exited (it may still be a zombie until destruction).
  bool running();
  // Exit code (128+sig if signalled) once the process has exited; an error
  // if it is still running after `timeout` (0: just look).
  Result<int> wait(std::chrono::milliseconds timeout);
  // Sends sig to the process (signalGroup: to its whole process group).
  // No effect after it has exited.
  void signal(int sig);
  void signalGroup(int sig);
  // SIGTERM to the group, SIGKILL to the group after `grace`; returns the exit code.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(2));

  // Everything written so far (safe to call while the process runs).
  std::string stdoutText() const;
  std::string stderrText() const;
  // "argv[0] argv[1] ... (pid N)", for messages.
  const std::string& describe() const { return description_; }

 private:
  Process() = default;
  // Records the exit status if the leader has exited, without reaping it.
  bool pollExit();
  void reap();

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd out_fd_;
  UniqueFd err_fd_;
  std::optional<int> exit_code_;
  bool reaped_ = false;
  std::string description_;
};

// Runs argv like Process::start and waits up to `timeout`; on timeout the
// whole process group is SIGKILLed, so it returns right after the bound.
// Whatever the command left running in its process group is killed too.
CommandResult runCommand(const std::string& ns, const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout, const std::string& stdin_data = {});

namespace detail {
// Opens /run/netns/<ns>; runs fn on a new thread that has setns()'d into it
// and joins. Exceptions thrown by fn are rethrown to the caller.
Result<void> runOnThreadInNs(const std::string& ns, const std::function<void()>& fn);

template <typename T>
struct InNsResult {
  using type = Result<T>;
};
template <typename T>
struct InNsResult<Result<T>> {
  using type = Result<T>;
};
}  // namespace detail

// A topology (see the top of this file). All methods are safe to call from
// several threads at once.
class Topology {
 public:
  // Creates every namespace, link, address and route, or nothing: on error
  // whatever was made is removed again. Typically 20-100 ms.
  static Result<std::unique_ptr<Topology>> create(const TopologySpec& spec);
  // Removes every namespace it created (killing processes still inside) and
  // their /etc/netns/<ns> directories, unless release() was called.
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  // Leaves everything in place on destruction (the CLI `up`). Clean up with
  // removeByPrefix(prefix()) or collectGarbage().
  void release() { released_ = true; }

  const std::string& prefix() const { return prefix_; }
  const std::string& hostNs() const { return host_ns_; }    // where tollgate runs
  const std::string& bridge() const { return bridge_; }     // "tgbr0", in hostNs()
  const std::string& wanBridge() const { return wan_; }     // "tgwan0", in hostNs()
  std::string bridgeIp4() const { return bridge_ip4_; }
  std::string bridgeIp6() const { return bridge_ip6_; }     // "" without IPv6
  std::string sandboxSubnet4() const { return subnet4_; }   // normalised, e.g. "10.77.0.0/24"
  std::string sandboxSubnet6() const { return subnet6_; }   // "" without IPv6

  // Out-of-range indexes and unknown names give "".
  int sandboxCount() const { return static_cast<int>(sandboxes_.size()); }
  std::string sandboxNs(int i) const;
  std::string sandboxIp4(int i) const;
  std::string sandboxIp6(int i) const;
  std::string sandboxHostIf(int i) const;  // the bridge port in hostNs(), e.g. "sb0"
  std::vector<std::string> upstreamNames() const;
  std::string upstreamNs(const std::string& name) const;
  std::vector<std::string> upstreamAddrs(const std::string& name) const;
  // Every namespace of this topology: host, sandboxes, upstreams.
  std::vector<std::string> namespaces() const { return owned_; }
  // The layout as JSON: prefix, host_ns, bridge, bridge_ip4/6, wan_bridge,
  // sandboxes [{ns, ip4, ip6, host_if}], upstreams [{name, ns, addrs}].
  std::string toJson() const;

  // Runs argv inside ns, bounded in time, capturing output (runCommand()).
  CommandResult run(const std::string& ns, const std::vector<std::string>& argv,
                    std::chrono::milliseconds timeout, const std::string& stdin_data = "") const;
  // Starts a long-running child inside ns (Process::start()).
  Result<std::unique_ptr<Process>> spawn(const std::string& ns, const std::vector<std::string>& argv,
                                         const std::map<std::string, std::string>& extra_env = {}) const;
  // Writes /etc/netns/<ns>/hosts, which run(), spawn() and `ip netns exec`
  // bind-mount over /etc/hosts. ns must belong to this topology.
  Result<void> setHosts(const std::string& ns, const std::string& hosts_content) const;
  // Same for any file name directly under /etc that already exists on the
  // host (e.g. "resolv.conf").
  Result<void> setEtcFile(const std::string& ns, const std::string& name, const std::string& content) const;
  // Waits until a TCP socket listens on ip:port inside ns (a wildcard
  // listener counts). Reads the kernel's socket table: it never connects,
  // so the listener sees no probe connections.
  Result<void> waitForListen(const std::string& ns, const std::string& ip, uint16_t port,
                             std::chrono::milliseconds timeout) const;
  // Sends ICMP / ICMPv6 echo requests from ns to ip until a reply arrives
  // (returns the round-trip time) or timeout passes.
  Result<std::chrono::microseconds> ping(const std::string& ns, const std::string& ip,
                                         std::chrono::milliseconds timeout) const;

  // Runs fn on a fresh thread that has setns()'d into ns (the network
  // namespace is per thread; the mount namespace, so /etc/hosts, is the
  // caller's). Sockets made there stay in ns after the thread ends, so a
  // test can return a bound/listening UniqueFd. Returns Result<R> for R
  // fn(), Result<void> for void, and fn's own Result<T> unchanged.
  template <typename F>
  auto inNs(const std::string& ns, F&& fn) const {
    using R = std::invoke_result_t<F&>;
    static_assert(!std::is_reference_v<R>, "inNs: return a value, not a reference");
    using Out = typename detail::InNsResult<R>::type;
    if constexpr (std::is_void_v<R>) {
      return detail::runOnThreadInNs(ns, [&fn] { fn(); });
    } else {
      std::optional<R> value;
      Result<void> ran = detail::runOnThreadInNs(ns, [&fn, &value] { value.emplace(fn()); });
      if (!ran.ok()) {
        return Out(ran.error());
      }
      return Out(std::move(*value));
    }
  }

 private:
  Topology() = default;
  bool ownsNs(const std::string& ns) const;

  struct Sandbox {
    std::string ns, ip4, ip6, host_if;
  };
  struct Upstream {
    std::string name, ns, host_if;
    std::vector<std::string> addrs;
  };

  std::string prefix_;
  std::string host_ns_;
  std::string bridge_ = kSandboxBridge;
  std::string wan_ = kWanBridge;
  std::string bridge_ip4_, bridge_ip6_, subnet4_, subnet6_;
  std::vector<Sandbox> sandboxes_;
  std::vector<Upstream> upstreams_;
  std::vector<std::string> owned_;  // namespaces this object created
  bool released_ = false;
};

// Removes every namespace named "<prefix>-..." (killing the processes inside)
// and its /etc/netns directory, plus /etc/netns/<prefix>-... leftovers.
// Returns the namespaces removed.
Result<std::vector<std::string>> removeByPrefix(const std::string& prefix);
// Removes every topology whose prefix has the generated shape "tg<pid>x..."
// and whose owner pid no longer exists. Returns the namespaces removed.
Result<std::vector<std::string>> collectGarbage();
// Namespaces in /run/netns, sorted.
std::vector<std::string> listNamespaces();

}  // namespace tollgate::harness
