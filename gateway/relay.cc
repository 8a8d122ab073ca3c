#include "gateway/relay.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tollgate::gateway {
namespace {

// One wakeup moves at most this much per direction, so one busy flow cannot
// starve the others on the same loop.
constexpr size_t kSpliceChunk = 256 * 1024;
constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
// Copy mode reads through this per-thread buffer: a short flow's whole
// request or response usually fits in one read.
constexpr size_t kCopyChunk = 16 * 1024;
// Pipes start at the kernel default (64 KiB) and grow once a direction has
// carried this much: bulk flows then move more per splice (fewer wakeups),
// while idle and short flows keep the small ring.
constexpr uint64_t kGrowPipeAfter = 512 * 1024;
constexpr int kBulkPipeSize = 1024 * 1024;

bool isTransient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

}  // namespace

void setResetOnClose(int fd) {
  linger lg{1, 0};
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

Result<std::unique_ptr<Relay>> Relay::start(event_base* base, UniqueFd client, UniqueFd upstream,
                                            std::string_view initial_up, DoneFn done,
                                            uint64_t sent_up,
                                            std::chrono::milliseconds idle_timeout) {
  std::unique_ptr<Relay> r(new Relay());
  r->client_ = std::move(client);
  r->upstream_ = std::move(upstream);
  r->done_ = std::move(done);
  r->up_.src = r->client_.get();
  r->up_.dst = r->upstream_.get();
  r->up_.bytes = &r->stats_.bytes_up;
  r->down_.src = r->upstream_.get();
  r->down_.dst = r->client_.get();
  r->down_.bytes = &r->stats_.bytes_down;
  for (Direction* d : {&r->up_, &r->down_}) {
    d->owner = r.get();
    d->read_ev.reset(event_new(base, d->src, EV_READ | EV_PERSIST, &Relay::onRead, d));
    d->write_ev.reset(event_new(base, d->dst, EV_WRITE | EV_PERSIST, &Relay::onWrite, d));
    if (!d->read_ev || !d->write_ev) {
      return makeError("event_new failed");
    }
  }
  r->stats_.bytes_up = sent_up + initial_up.size();
  size_t sent = 0;
  if (!initial_up.empty()) {
    // A fresh connection's send buffer takes a peek's worth at once. Errors
    // are left to the loop (the write event retries and fails there), so
    // `done` cannot run before the caller holds the Relay.
    ssize_t n = send(r->up_.dst, initial_up.data(), initial_up.size(), MSG_NOSIGNAL);
    sent = n > 0 ? static_cast<size_t>(n) : 0;
  }
  if (sent < initial_up.size()) {
    r->up_.held.assign(initial_up.substr(sent));
    event_add(r->up_.write_ev.get(), nullptr);
  } else {
    event_add(r->up_.read_ev.get(), nullptr);
  }
  event_add(r->down_.read_ev.get(), nullptr);
  if (idle_timeout.count() > 0) {
    r->idle_timeout_ = idle_timeout;
    r->last_activity_ = std::chrono::steady_clock::now();
    r->bytes_at_check_ = r->stats_.bytes_up + r->stats_.bytes_down;
    r->idle_ev_.reset(evtimer_new(base, &Relay::onIdleCheck, r.get()));
    if (!r->idle_ev_) {
      return makeError("evtimer_new failed");
    }
    timeval tv = toTimeval(static_cast<uint64_t>(idle_timeout.count()));
    evtimer_add(r->idle_ev_.get(), &tv);
  }
  return r;
}

Relay::~Relay() = default;

void Relay::onRead(evutil_socket_t, short, void* arg) {
  auto* d = static_cast<Direction*>(arg);
  d->owner->pump(*d);
}

void Relay::onWrite(evutil_socket_t, short, void* arg) {
  auto* d = static_cast<Direction*>(arg);
  d->owner->flush(*d);
}

// Bytes moved since the last check mean activity (somewhere in between):
// counted from now, which at most doubles the timeout for a flow that went
// quiet right after a check. No clock read or timer update per byte.
void Relay::onIdleCheck(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Relay*>(arg);
  auto now = std::chrono::steady_clock::now();
  uint64_t bytes = self->stats_.bytes_up + self->stats_.bytes_down;
  if (bytes != self->bytes_at_check_) {
    self->bytes_at_check_ = bytes;
    self->last_activity_ = now;
  }
  auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(now - self->last_activity_);
  if (idle >= self->idle_timeout_) {
    self->stats_.idle = true;
    self->fail();  // may destroy this
    return;
  }
  timeval tv = toTimeval(static_cast<uint64_t>((self->idle_timeout_ - idle).count()));
  evtimer_add(self->idle_ev_.get(), &tv);
}

void Relay::pump(Direction& d) {
  if (!d.splicing) {
    copy(d);
    return;
  }
  ssize_t n = splice(d.src, nullptr, d.pipe_wr.get(), nullptr, kSpliceChunk, kSpliceFlags);
  if (n > 0) {
    d.in_pipe += static_cast<size_t>(n);
    *d.bytes += static_cast<uint64_t>(n);
    if (!d.grown && *d.bytes >= kGrowPipeAfter) {
      d.grown = true;
      (void)fcntl(d.pipe_wr.get(), F_SETPIPE_SZ, kBulkPipeSize);  // best effort
    }
    flush(d);
    return;
  }
  if (n == 0) {
    d.eof = true;
    event_del(d.read_ev.get());
    flush(d);
    return;
  }
  if (!isTransient(errno)) {
    fail();
  }
}

void Relay::copy(Direction& d) {
  static thread_local char buf[kCopyChunk];
  size_t moved = 0;
  while (moved < kSpliceChunk) {
    ssize_t n = recv(d.src, buf, sizeof(buf), 0);
    if (n == 0) {
      d.eof = true;
      event_del(d.read_ev.get());
      drained(d);
      return;
    }
    if (n < 0) {
      if (!isTransient(errno)) {
        fail();
      }
      return;
    }
    *d.bytes += static_cast<uint64_t>(n);
    ssize_t w = send(d.dst, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
    if (w < 0) {
      if (!isTransient(errno)) {
        fail();
        return;
      }
      w = 0;
    }
    if (w < n) {
      // Destination is full: hold the rest and stop reading the source until
      // it has been taken.
      d.held.assign(buf + w, static_cast<size_t>(n - w));
      d.held_off = 0;
      event_del(d.read_ev.get());
      event_add(d.write_ev.get(), nullptr);
      return;
    }
    moved += static_cast<size_t>(n);
    if (*d.bytes >= kSpliceAfter) {
      startSplicing(d);
      return;  // level-triggered: what is left wakes the loop again
    }
    if (static_cast<size_t>(n) < sizeof(buf)) {
      // A short read: the socket is (very likely) empty. Another recv would
      // only say EAGAIN; the event says when more comes.
      return;
    }
  }
}

void Relay::startSplicing(Direction& d) {
  int p[2];
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
    return;  // out of descriptors: keep copying, which needs none
  }
  d.pipe_rd.reset(p[0]);
  d.pipe_wr.reset(p[1]);
  d.splicing = true;
}

void Relay::flush(Direction& d) {
  while (d.held_off < d.held.size()) {
    ssize_t n = send(d.dst, d.held.data() + d.held_off, d.held.size() - d.held_off, MSG_NOSIGNAL);
    if (n > 0) {
      d.held_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && isTransient(errno)) {
      event_del(d.read_ev.get());
      event_add(d.write_ev.get(), nullptr);
      return;
    }
    fail();
    return;
  }
  if (!d.held.empty()) {
    std::string().swap(d.held);  // an idle flow keeps no buffer
    d.held_off = 0;
  }
  while (d.in_pipe > 0) {
    ssize_t n = splice(d.pipe_rd.get(), nullptr, d.dst, nullptr, d.in_pipe, kSpliceFlags);
    if (n > 0) {
      d.in_pipe -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && isTransient(errno)) {
      // Destination is full: stop reading the source until it drains.
      event_del(d.read_ev.get());
      event_add(d.write_ev.get(), nullptr);
      return;
    }
    fail();
    return;
  }
  event_del(d.write_ev.get());
  drained(d);
}

// Everything d read has been sent: read on, or propagate its EOF.
void Relay::drained(Direction& d) {
  if (!d.eof) {
    if (!d.splicing && *d.bytes >= kSpliceAfter) {
      startSplicing(d);
    }
    event_add(d.read_ev.get(), nullptr);
    return;
  }
  if (!d.shut) {
    d.shut = true;
    shutdown(d.dst, SHUT_WR);
  }
  maybeFinish();
}

void Relay::fail() {
  if (finished_) {
    return;
  }
  stats_.error = true;
  setResetOnClose(client_.get());
  setResetOnClose(upstream_.get());
  up_.shut = down_.shut = true;
  maybeFinish();
}

void Relay::maybeFinish() {
  if (finished_ || !up_.shut || !down_.shut) {
    return;
  }
  finished_ = true;
  for (Direction* d : {&up_, &down_}) {
    event_del(d->read_ev.get());
    event_del(d->write_ev.get());
  }
  if (idle_ev_) {
    event_del(idle_ev_.get());
  }
  client_.reset();
  upstream_.reset();
  // May destroy this.
  DoneFn done = std::move(done_);
  done(stats_);
}

}  // namespace tollgate::gateway
