// Test helpers for the nat component tests: network namespaces owned by one
// test (created and always deleted), running code inside them on a thread of
// its own, and small bounded-time socket helpers.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "base/result.h"
#include "base/sockaddr.h"
#include "base/unique.h"

namespace tollgate::nat::nstest {

struct CmdResult {
  int status = -1;  // exit status, -1 when the command could not run
  std::string out;  // stdout and stderr
};

// Runs `cmd` with /bin/sh, capturing its output.
CmdResult run(const std::string& cmd);

// A network namespace named tgnat-<pid>-<n><suffix>, deleted on destruction.
class Netns {
 public:
  explicit Netns(const std::string& suffix = "");
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  const std::string& name() const { return name_; }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

  // `ip netns exec NAME sh -c CMD`.
  CmdResult exec(const std::string& cmd) const;

  // Runs f() on a new thread that first joins this namespace with
  // setns(CLONE_NEWNET) (network namespaces are per thread), and returns its
  // result. F must return a Result<...>.
  template <typename F>
  auto in(F f) const -> decltype(f()) {
    using R = decltype(f());
    std::optional<R> out;
    std::string err;
    std::thread t([&] {
      if (auto joined = enter(); !joined) {
        err = joined.message();
        return;
      }
      out.emplace(f());
    });
    t.join();
    if (!out) {
      return R(makeError(err));
    }
    return std::move(*out);
  }

 private:
  Result<void> enter() const;

  std::string name_;
  bool ok_ = false;
  std::string error_;
};

// Listening TCP socket bound to `addr` in the calling thread's namespace.
Result<UniqueFd> listenOn(const SockAddr& addr, bool v6only = true);
// Non-blocking connect from the calling thread's namespace; fails when the
// connection is not established within `timeout`.
Result<UniqueFd> connectTo(const SockAddr& dst, std::chrono::milliseconds timeout);
// Waits up to `timeout` for a connection on `listener` and accepts it.
Result<UniqueFd> acceptWithin(int listener, std::chrono::milliseconds timeout);
// Whether `fd` becomes readable within `timeout`.
bool readableWithin(int fd, std::chrono::milliseconds timeout);

}  // namespace tollgate::nat::nstest
