// The HTTP/1.1 engine of a Session: the exchange loop (one request, one
// response at a time, bodies streamed with backpressure), credential
// injection and scrubbing on the way, and the WebSocket tunnel after a 101.
// The transport half (sockets, TLS, handshakes, deadlines, closing) is in
// session.cc.
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include <cstdio>
#include <cstring>

#include "mitm/session.h"
#include "mitm/session_internal.h"

namespace tollgate::mitm {
namespace {

void writeFramed(bufferevent* bev, bool chunked, const char* data, size_t len) {
  if (len == 0) {
    return;
  }
  if (chunked) {
    char line[32];
    int n = snprintf(line, sizeof(line), "%zx\r\n", len);
    bufferevent_write(bev, line, static_cast<size_t>(n));
    bufferevent_write(bev, data, len);
    bufferevent_write(bev, "\r\n", 2);
  } else {
    bufferevent_write(bev, data, len);
  }
}

std::string_view statusText(int status) {
  switch (status) {
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Bad Request";
  }
}

// The first contiguous run of bytes in `in` (empty when it is empty): the
// readers take any split, so no pullup (copy) is needed.
std::span<const uint8_t> firstSegment(evbuffer* in) {
  evbuffer_iovec v{};
  if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, nullptr, &v, 1) < 1) {
    return {};
  }
  return {static_cast<const uint8_t*>(v.iov_base), v.iov_len};
}

void wipeAndDelete(const void*, size_t, void* extra) {
  delete static_cast<SecretBuffer*>(extra);  // ~SecretBuffer wipes
}

}  // namespace

// --- sandbox -> upstream ------------------------------------------------

void Session::pumpClient() {
  if (finished_ || closing_ || !settled() || in_pump_) {
    return;
  }
  if (tunnel_) {
    pumpTunnel();
    return;
  }
  if (!ex_.active) {
    armIdle();
  }
  evbuffer* in = bufferevent_get_input(client_.get());
  in_pump_ = true;
  while (!finished_ && !closing_) {
    if (ex_.active && ex_.request_done) {
      break;  // one exchange at a time: the next request waits
    }
    if (upstream_ && evbuffer_get_length(bufferevent_get_output(upstream_.get())) > kHighWater) {
      bufferevent_disable(client_.get(), EV_READ);
      break;
    }
    // An empty input still goes to the reader: a message's End (after its
    // last body bytes, or after a head without body) is its own step.
    std::span<const uint8_t> seg = firstSegment(in);
    Step st = req_.next(seg);
    switch (st.event) {
      case Event::NeedMore:
        evbuffer_drain(in, st.consumed);
        if (seg.empty()) {
          break;
        }
        continue;
      case Event::Head:
        evbuffer_drain(in, st.consumed);
        if (!requestHead()) {
          in_pump_ = false;
          return;
        }
        continue;
      case Event::Body:
        writeRequestBody(st.body);
        evbuffer_drain(in, st.consumed);
        continue;
      case Event::End:
        evbuffer_drain(in, st.consumed);
        if (ex_.request_body == BodyKind::Chunked) {
          writeToUpstream(
              std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("0\r\n\r\n"), 5));
        }
        ex_.request_done = true;
        if (ex_.response_done) {
          // The upstream answered before the request ended; it is complete
          // now, so the connection may go on.
          responseEnd();
        }
        continue;
      case Event::Tunnel:
        break;
      case Event::Invalid:
        in_pump_ = false;
        if (ex_.active && ex_.response_head_sent) {
          finish(Outcome::kAnswered, st.reason);
        } else {
          int status = st.http_status == 0 ? 400 : st.http_status;
          answer(status, statusText(status), st.reason);
        }
        return;
    }
    break;
  }
  in_pump_ = false;
  if (!finished_ && client_eof_ && evbuffer_get_length(in) == 0 && !closing_) {
    clientEof();
  }
}

bool Session::requestHead() {
  RequestHead& h = req_.head();
  ex_ = Exchange{};
  ex_.active = true;
  ex_.started = std::chrono::steady_clock::now();
  ex_.rec.method = h.method;
  std::span<const CredentialSpec> table = opts_.credentials;
  if (opts_.current_credentials) {
    SessionOptions::CredentialSnapshot now = opts_.current_credentials();
    table = now.specs;
    ex_.credentials_keepalive = std::move(now.keepalive);
  }
  ex_.rec.path = auditPath(h, table);
  ex_.client_minor = h.minor;
  ex_.client_keep_alive = h.keep_alive;
  ex_.upgrade = h.upgrade_websocket;
  ex_.request_body = h.body.kind;
  if (!upstream_error_.empty()) {
    answer(502, "Bad Gateway", upstream_error_, upstream_outcome_);
    return false;
  }
  if (upstream_gone_ || !upstream_) {
    answer(502, "Bad Gateway", "upstream_closed", Outcome::kUpstreamClosed);
    return false;
  }
  // Requests must be for the name policy decided on: a different Host on
  // an allowed connection (domain fronting) would reach a host policy never
  // judged.
  if (h.authority && h.authority->host.name != opts_.host) {
    answer(421, "Misdirected Request", "http_host_mismatch");
    return false;
  }
  RewriteContext ctx{opts_.host, opts_.tls && opts_.inject, opts_.attached};
  RewriteOutcome out = rewriteCredentials(h, ctx, table);
  if (auto* refused = std::get_if<Refused>(&out)) {
    answer(403, "Forbidden", refused->reason);
    return false;
  }
  auto& inj = std::get<Injected>(out);
  ex_.rec.credentials = inj.credentials;
  if (!inj.scrub.empty()) {
    ex_.derived = std::move(inj.derived);
    ex_.scrubber = Scrubber(std::move(inj.scrub));
  }
  // The sandbox's hop-by-hop removals, then tollgate's own fields: a
  // Connection option must not drop a credential's header nor the identity
  // coding the scrubber depends on (RFC 9110 §7.6.1 lets an intermediary
  // keep a field it adds itself).
  std::vector<std::string_view> protect;
  for (const CredentialSpec& c : table) {
    if (!c.inject_header.empty()) {
      protect.push_back(c.inject_header);
    }
  }
  removeHopByHop(h.headers, h.upgrade_websocket, protect);
  if (inj.identity_encoding) {
    h.headers.set("Accept-Encoding", "identity");
  }
  if (!h.authority) {
    h.headers.set("Host", opts_.host_is_ip && opts_.host.find(':') != std::string::npos
                              ? "[" + opts_.host + "]"
                              : opts_.host);
  }
  // Toward the upstream always HTTP/1.1 with persistent connections; the
  // response is re-framed for the sandbox's version.
  h.minor = 1;
  setFraming(h.headers, h.body);
  resp_.expect(ResponseContext::of(h));
  if (!inj.credentials.empty()) {
    // The head holds real values: serialise it straight into locked memory,
    // hand that memory to the output buffer by reference (no copy), and
    // wipe it when the TLS layer has taken it.
    auto buf = SecretBuffer::allocate(serializedSize(h));
    if (!buf) {
      wipeSecrets(h);
      answer(500, "Internal Server Error", "secret_buffer_failed");
      return false;
    }
    serializeTo(h, buf->writable());
    wipeSecrets(h);
    auto* held = new SecretBuffer(std::move(*buf));
    summary_.bytes_up += held->size();
    if (evbuffer_add_reference(bufferevent_get_output(upstream_.get()), held->view().data(),
                               held->size(), &wipeAndDelete, held) != 0) {
      delete held;
      answer(500, "Internal Server Error", "internal_error", Outcome::kInternalError);
      return false;
    }
  } else {
    std::string head = serialize(h);
    writeToUpstream(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(head.data()), head.size()));
  }
  return true;
}

void Session::writeToUpstream(std::span<const uint8_t> data) {
  if (!upstream_ || data.empty()) {
    return;
  }
  bufferevent_write(upstream_.get(), data.data(), data.size());
  summary_.bytes_up += data.size();
}

void Session::writeRequestBody(std::span<const uint8_t> data) {
  ex_.rec.bytes_up += data.size();
  if (!upstream_ || data.empty()) {
    return;
  }
  size_t before = evbuffer_get_length(bufferevent_get_output(upstream_.get()));
  writeFramed(upstream_.get(), ex_.request_body == BodyKind::Chunked,
              reinterpret_cast<const char*>(data.data()), data.size());
  summary_.bytes_up += evbuffer_get_length(bufferevent_get_output(upstream_.get())) - before;
}

// --- upstream -> sandbox ------------------------------------------------

void Session::pumpUpstream() {
  if (finished_ || !upstream_ || in_upstream_pump_) {
    return;
  }
  if (tunnel_) {
    pumpTunnel();
    return;
  }
  evbuffer* in = bufferevent_get_input(upstream_.get());
  in_upstream_pump_ = true;
  while (!finished_ && !closing_) {
    if (evbuffer_get_length(bufferevent_get_output(client_.get())) > kHighWater) {
      bufferevent_disable(upstream_.get(), EV_READ);
      break;
    }
    size_t avail = evbuffer_get_length(in);
    if (avail == 0 && (!ex_.active || ex_.response_done)) {
      break;
    }
    if (!ex_.active || ex_.response_done) {
      // Bytes nobody asked for: the upstream connection is unusable.
      in_upstream_pump_ = false;
      upstream_gone_ = true;
      evbuffer_drain(in, evbuffer_get_length(in));
      upstream_.reset();
      if (!ex_.active) {
        closeAfterFlush();
      }
      return;
    }
    std::span<const uint8_t> seg = firstSegment(in);
    Step st = resp_.next(seg);
    switch (st.event) {
      case Event::NeedMore:
        evbuffer_drain(in, st.consumed);
        if (seg.empty()) {
          break;
        }
        continue;
      case Event::Head:
        evbuffer_drain(in, st.consumed);
        responseHead();
        continue;
      case Event::Body:
        writeResponseBody(st.body);
        evbuffer_drain(in, st.consumed);
        continue;
      case Event::End:
        evbuffer_drain(in, st.consumed);
        if (interim_) {
          interim_ = false;
          continue;
        }
        in_upstream_pump_ = false;
        responseEnd();
        if (finished_) {
          return;
        }
        in_upstream_pump_ = true;
        continue;
      case Event::Tunnel:
        in_upstream_pump_ = false;
        startTunnel();
        return;
      case Event::Invalid:
        in_upstream_pump_ = false;
        if (ex_.response_head_sent) {
          finish(Outcome::kAnswered, st.reason);
        } else {
          answer(502, "Bad Gateway", st.reason);
        }
        return;
    }
    break;  // NeedMore on an empty input
  }
  in_upstream_pump_ = false;
}

void Session::responseHead() {
  ResponseHead& h = resp_.head();
  if (h.interim()) {
    interim_ = true;
    if (ex_.client_minor == 1) {
      // 103 Early Hints and the like are heads too: an echo may sit in them.
      ex_.scrubber.scrubHead(h);
      removeHopByHop(h.headers, false);
      std::string head = serialize(h);
      bufferevent_write(client_.get(), head.data(), head.size());
      summary_.bytes_down += head.size();
    }
    return;
  }
  interim_ = false;
  ex_.rec.status = h.status;
  if (h.status == 101) {
    ex_.scrubber.scrubHead(h);
    removeHopByHop(h.headers, true);
    std::string head = serialize(h);
    bufferevent_write(client_.get(), head.data(), head.size());
    summary_.bytes_down += head.size();
    ex_.response_head_sent = true;
    return;
  }
  if (ex_.scrubber.active()) {
    if (!scrubbable(h)) {
      answer(502, "Bad Gateway", "upstream_content_encoded");
      return;
    }
    ex_.scrubber.scrubHead(h);
  }
  removeHopByHop(h.headers, false);
  bool v11 = ex_.client_minor == 1;
  OutFraming out = OutFraming::None;
  switch (h.body.kind) {
    case BodyKind::None:
    case BodyKind::Tunnel:
      out = OutFraming::None;  // HEAD / 204 / 304 keep their fields as sent
      break;
    case BodyKind::Length:
      if (ex_.scrubber.active() && !ex_.scrubber.lengthPreserving()) {
        out = v11 ? OutFraming::Chunked : OutFraming::Close;
      } else {
        out = OutFraming::Length;
      }
      break;
    case BodyKind::Chunked:
    case BodyKind::UntilClose:
      out = v11 ? OutFraming::Chunked : OutFraming::Close;
      break;
  }
  if (out == OutFraming::Length) {
    setFraming(h.headers, h.body);
  } else if (out == OutFraming::Chunked) {
    setFraming(h.headers, BodyFraming{BodyKind::Chunked, 0});
  } else if (out == OutFraming::Close) {
    setFraming(h.headers, BodyFraming{});
  }
  ex_.response_out = out;
  ex_.keep_alive_after = ex_.client_keep_alive && h.keep_alive && out != OutFraming::Close;
  if (!ex_.keep_alive_after) {
    h.headers.set("Connection", "close");
  } else if (!v11) {
    h.headers.set("Connection", "keep-alive");
  }
  h.minor = 1;
  std::string head = serialize(h);
  bufferevent_write(client_.get(), head.data(), head.size());
  summary_.bytes_down += head.size();
  ex_.response_head_sent = true;
}

void Session::writeResponseBody(std::span<const uint8_t> data) {
  ex_.rec.bytes_down += data.size();
  bool chunked = ex_.response_out == OutFraming::Chunked;
  if (ex_.scrubber.active()) {
    std::string out;
    ex_.scrubber.feed(data, out);
    writeFramed(client_.get(), chunked, out.data(), out.size());
    summary_.bytes_down += out.size();
    return;
  }
  writeFramed(client_.get(), chunked, reinterpret_cast<const char*>(data.data()), data.size());
  summary_.bytes_down += data.size();
}

void Session::responseEnd() {
  if (!ex_.response_done) {
    ex_.response_done = true;
    if (ex_.scrubber.active()) {
      std::string tail;
      ex_.scrubber.finish(tail);
      writeFramed(client_.get(), ex_.response_out == OutFraming::Chunked, tail.data(), tail.size());
      summary_.bytes_down += tail.size();
    }
    if (ex_.response_out == OutFraming::Chunked) {
      bufferevent_write(client_.get(), "0\r\n\r\n", 5);
      summary_.bytes_down += 5;
    }
  }
  if (!ex_.request_done) {
    // The request body is still arriving. Without a keep-alive promise the
    // connection ends now; otherwise let the request finish first.
    if (!ex_.keep_alive_after) {
      endExchange();
      closeAfterFlush();
    }
    return;
  }
  bool keep = ex_.keep_alive_after && !upstream_gone_;
  endExchange();
  if (!keep) {
    closeAfterFlush();
    return;
  }
  pumpClient();
}

void Session::upstreamEof() {
  if (tunnel_) {
    closeAfterFlush();
    return;
  }
  Step st = resp_.finish();
  if (ex_.active && !ex_.response_done) {
    if (st.event == Event::End && ex_.response_head_sent) {
      // A body delimited by the upstream's close.
      ex_.keep_alive_after = false;
      responseEnd();
      return;
    }
    if (ex_.response_head_sent) {
      if (st.event == Event::Invalid) {
        finish(Outcome::kAnswered, st.reason);
      } else {
        finish(Outcome::kUpstreamClosed);
      }
      return;
    }
    answer(502, "Bad Gateway", "upstream_closed", Outcome::kUpstreamClosed);
    return;
  }
  upstream_.reset();
  if (!ex_.active) {
    // Between exchanges: nothing to lose; the sandbox reconnects.
    closeAfterFlush();
  }
}

void Session::clientEof() {
  if (tunnel_) {
    closeAfterFlush();
    return;
  }
  Step st = req_.finish();
  if (st.event == Event::Invalid) {
    if (ex_.active && !ex_.request_done) {
      finish(Outcome::kAnswered, st.reason);
      return;
    }
  }
  if (!ex_.active) {
    finish(Outcome::kClean);
  }
  // Otherwise the response still goes out (half-close); responseEnd closes.
}

// --- tunnel (WebSocket after 101) ---------------------------------------

void Session::startTunnel() {
  tunnel_ = true;
  endExchange();
  evtimer_del(timer_.get());
  pumpTunnel();
}

void Session::pumpTunnel() {
  if (finished_ || !upstream_) {
    return;
  }
  evbuffer* cin = bufferevent_get_input(client_.get());
  evbuffer* uin = bufferevent_get_input(upstream_.get());
  size_t up = evbuffer_get_length(cin);
  size_t down = evbuffer_get_length(uin);
  summary_.bytes_up += up;
  summary_.bytes_down += down;
  bufferevent_write_buffer(upstream_.get(), cin);
  bufferevent_write_buffer(client_.get(), uin);
  if (closing_) {
    maybeClosed();
  }
}

// --- answers and the exchange record ----------------------------------

void Session::answer(int status, std::string_view text, std::string_view reason, Outcome outcome) {
  if (!ex_.active) {
    ex_ = Exchange{};
    ex_.active = true;
    ex_.started = std::chrono::steady_clock::now();
  }
  ex_.rec.status = status;
  ex_.rec.reason = std::string(reason);
  if (summary_.outcome == Outcome::kClean) {
    summary_.outcome = outcome;
    summary_.answered = outcome == Outcome::kAnswered ? std::string(reason) : std::string();
  }
  std::string reply = opts_.error_response
                          ? opts_.error_response(status, text, reason)
                          : "HTTP/1.1 " + std::to_string(status) + " " + std::string(text) +
                                "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  bufferevent_write(client_.get(), reply.data(), reply.size());
  summary_.bytes_down += reply.size();
  endExchange();
  closeAfterFlush();
}

void Session::endExchange() {
  if (!ex_.active) {
    return;
  }
  ex_.rec.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - ex_.started);
  ++summary_.exchanges;
  if (on_exchange_) {
    on_exchange_(ex_.rec);
  }
  ex_ = Exchange{};
}

}  // namespace tollgate::mitm
