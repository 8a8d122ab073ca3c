#include "gateway/relay.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tollgate::gateway {
namespace {

// One splice per wakeup moves at most this much, so one busy flow cannot
// starve the others on the same loop.
constexpr size_t kSpliceChunk = 256 * 1024;
constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
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
                                            std::string_view initial_up, DoneFn done) {
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
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
      return makeError(std::string("pipe2: ") + std::strerror(errno));
    }
    d->pipe_rd.reset(p[0]);
    d->pipe_wr.reset(p[1]);
    d->read_ev.reset(event_new(base, d->src, EV_READ | EV_PERSIST, &Relay::onRead, d));
    d->write_ev.reset(event_new(base, d->dst, EV_WRITE | EV_PERSIST, &Relay::onWrite, d));
    if (!d->read_ev || !d->write_ev) {
      return makeError("event_new failed");
    }
  }
  if (!initial_up.empty()) {
    // The peek buffer is capped well below a pipe's capacity (64 KiB), so a
    // single write into the empty pipe takes it all.
    ssize_t n = write(r->up_.pipe_wr.get(), initial_up.data(), initial_up.size());
    if (n != static_cast<ssize_t>(initial_up.size())) {
      return makeError("could not queue peeked bytes");
    }
    r->up_.in_pipe = initial_up.size();
    r->stats_.bytes_up = initial_up.size();
    // Flushed from the loop, never from here, so `done` cannot run before
    // the caller holds the Relay.
    event_add(r->up_.write_ev.get(), nullptr);
  } else {
    event_add(r->up_.read_ev.get(), nullptr);
  }
  event_add(r->down_.read_ev.get(), nullptr);
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

void Relay::pump(Direction& d) {
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

void Relay::flush(Direction& d) {
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
  if (!d.eof) {
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
  client_.reset();
  upstream_.reset();
  // May destroy this.
  DoneFn done = std::move(done_);
  done(stats_);
}

}  // namespace tollgate::gateway
