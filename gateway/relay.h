// Bidirectional byte relay between two connected TCP sockets. A direction
// starts by copying (recv into a small per-thread buffer, send) and switches
// to zero-copy splice(2) through a pipe of its own once it has carried
// kSpliceAfter bytes: most flows are short, and a pipe pair costs more system
// calls and file descriptors than the copying it would save. Backpressure: a
// direction stops reading while it holds bytes (copied or in its pipe) the
// destination has not taken. Half-close is propagated (EOF on one side becomes
// shutdown(SHUT_WR) on the other once everything held has been sent); an
// error on either side resets both.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "base/result.h"
#include "base/unique.h"
#include "gateway/event_util.h"

namespace tollgate::gateway {

class Relay {
 public:
  struct Stats {
    uint64_t bytes_up = 0;    // client -> upstream (including initial bytes)
    uint64_t bytes_down = 0;  // upstream -> client
    bool error = false;       // ended by reset/error rather than two clean EOFs
    bool idle = false;        // ended (by reset) after idle_timeout without a byte
  };
  using DoneFn = std::function<void(const Stats&)>;

  // A direction switches from copying to splice once it has carried this many
  // bytes (and holds none unsent).
  static constexpr uint64_t kSpliceAfter = 128 * 1024;

  // Takes both sockets. `initial_up` (bytes read from the client while peeking
  // that are still to go upstream) is sent upstream first; `sent_up` bytes of
  // the client's the caller already sent upstream itself count in bytes_up.
  // `done` runs once, from the event loop, when both directions have ended;
  // the Relay may be destroyed inside it. `idle_timeout` > 0: when no byte
  // has moved either way for that long, both sides are reset.
  static Result<std::unique_ptr<Relay>> start(event_base* base, UniqueFd client, UniqueFd upstream,
                                              std::string_view initial_up, DoneFn done,
                                              uint64_t sent_up = 0,
                                              std::chrono::milliseconds idle_timeout = {});
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  const Stats& stats() const { return stats_; }
  // Directions that have switched to splice (0, 1 or 2), for tests.
  int splicing() const { return (up_.splicing ? 1 : 0) + (down_.splicing ? 1 : 0); }

 private:
  struct Direction {
    Relay* owner = nullptr;
    int src = -1;
    int dst = -1;
    // Copy mode: bytes read but not yet taken by dst (only under backpressure;
    // released once sent, so an idle flow holds no buffer).
    std::string held;
    size_t held_off = 0;
    // Splice mode, from kSpliceAfter bytes on.
    bool splicing = false;
    UniqueFd pipe_rd;
    UniqueFd pipe_wr;
    size_t in_pipe = 0;
    bool eof = false;   // src said EOF
    bool shut = false;  // EOF propagated to dst
    bool grown = false;  // pipe enlarged for bulk transfer
    uint64_t* bytes = nullptr;
    EventPtr read_ev;
    EventPtr write_ev;
  };

  Relay() = default;
  static void onRead(evutil_socket_t, short, void* arg);
  static void onWrite(evutil_socket_t, short, void* arg);
  static void onIdleCheck(evutil_socket_t, short, void* arg);
  void pump(Direction& d);
  void copy(Direction& d);
  void startSplicing(Direction& d);
  void flush(Direction& d);
  void drained(Direction& d);
  void fail();
  void maybeFinish();

  UniqueFd client_;
  UniqueFd upstream_;
  Direction up_;
  Direction down_;
  Stats stats_;
  DoneFn done_;
  bool finished_ = false;
  // Idle timeout: one timer per relay, re-armed for the remaining time when
  // it fires after activity (no per-byte timer updates).
  std::chrono::milliseconds idle_timeout_{0};
  uint64_t bytes_at_check_ = 0;
  std::chrono::steady_clock::time_point last_activity_;
  EventPtr idle_ev_;
};

// Sets SO_LINGER {1, 0} so that close() sends RST instead of FIN.
void setResetOnClose(int fd);

}  // namespace tollgate::gateway
