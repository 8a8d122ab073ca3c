// Bidirectional byte relay between two connected TCP sockets, zero-copy
// through splice(2) and a pipe per direction. Backpressure: a direction stops
// reading while its pipe holds bytes the destination has not taken. Half-close
// is propagated (EOF on one side becomes shutdown(SHUT_WR) on the other once
// the pipe has drained); an error on either side resets both.
#pragma once

#include <event2/event.h>

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
  };
  using DoneFn = std::function<void(const Stats&)>;

  // Takes both sockets. `initial_up` (bytes already read from the client while
  // peeking, at most one pipe's worth) is sent upstream first. `done` runs
  // once, from the event loop, when both directions have ended; the Relay may
  // be destroyed inside it.
  static Result<std::unique_ptr<Relay>> start(event_base* base, UniqueFd client, UniqueFd upstream,
                                              std::string_view initial_up, DoneFn done);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  const Stats& stats() const { return stats_; }

 private:
  struct Direction {
    Relay* owner = nullptr;
    int src = -1;
    int dst = -1;
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
  void pump(Direction& d);
  void flush(Direction& d);
  void fail();
  void maybeFinish();

  UniqueFd client_;
  UniqueFd upstream_;
  Direction up_;
  Direction down_;
  Stats stats_;
  DoneFn done_;
  bool finished_ = false;
};

// Sets SO_LINGER {1, 0} so that close() sends RST instead of FIN.
void setResetOnClose(int fd);

}  // namespace tollgate::gateway
