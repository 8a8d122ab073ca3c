#include "gateway/flow.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "gateway/counters.h"
#include "gateway/deny.h"
#include "gateway/log.h"

namespace tollgate::gateway {
namespace {

// After a refusal, read and discard what the client still sends for this
// long (bounded), so close() sends FIN rather than a RST that could destroy
// the refusal before the client reads it.
constexpr std::chrono::milliseconds kRefuseLinger{1000};
constexpr size_t kRefuseDrainMax = 64 * 1024;
constexpr std::chrono::milliseconds kConnectTimeout{5000};
constexpr size_t kMaxConnectAttempts = 4;

// Accepted sockets inherit both options from the listener (see
// setAcceptedStreamOptions); upstream sockets get them here.
void setNoDelay(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

std::string_view protoName(sni::Protocol p) {
  switch (p) {
    case sni::Protocol::Tls:
      return "tls";
    case sni::Protocol::Http:
      return "http";
    default:
      return "opaque";
  }
}

}  // namespace

Flow::Flow(FlowEnv env, std::shared_ptr<const Runtime> rt, UniqueFd client, SockAddr src,
           SockAddr dst, DoneFn done, void* done_owner)
    : env_(env),
      rt_(std::move(rt)),
      client_(std::move(client)),
      src_(src),
      dst_(dst),
      done_(done),
      done_owner_(done_owner),
      accepted_(std::chrono::steady_clock::now()) {
  rec_.src = src_.toString();
  rec_.dst = dst_.toString();
  rec_.proto = "opaque";
}

Flow::~Flow() = default;

std::chrono::milliseconds Flow::sinceAccept() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               accepted_);
}

void Flow::armTimer(std::chrono::milliseconds ms) {
  if (!timer_ev_) {
    timer_ev_.reset(evtimer_new(env_.base, &Flow::onTimer, this));
  }
  timeval tv = toTimeval(static_cast<uint64_t>(std::max<int64_t>(ms.count(), 0)));
  evtimer_add(timer_ev_.get(), &tv);
}

void Flow::start() {
  env_.counters->add(Counter::kFlowsAccepted);
  env_.counters->add(Counter::kFlowsActive);
  const Config& cfg = *rt_->config;
  const Sandbox* sb = selectSandbox(cfg, src_);
  if (sb != nullptr) {
    rec_.sandbox = sb->name;
  }
  if (rt_->limits) {
    // One sandbox must not take every descriptor (and so every flow) of the
    // gateway: beyond its share, refuse at once, before reading anything.
    uint32_t max =
        sb != nullptr && sb->max_flows ? *sb->max_flows : cfg.gateway.max_flows_per_sandbox;
    flow_slot_ = rt_->limits->flows.tryAcquire(rec_.sandbox, max);
    if (!flow_slot_) {
      countLimitRefusal("flows");
      rec_.action = "deny";
      rec_.reason = "sandbox_flow_limit";
      setResetOnClose(client_.get());
      finish();
      return;
    }
  }
  // Server-speaks-first protocols (SSH, SMTP) must not stall: when no rule
  // that could match depends on a name, decide now without waiting for bytes.
  // Refusals still wait briefly so the refusal can speak the client's protocol.
  // MITM needs the first bytes (TLS or HTTP), so it is never decided early.
  if (auto early = decideWithoutName(cfg, src_, dst_);
      early && early->action == Action::Passthrough) {
    env_.counters->add(Counter::kDecidedEarly);
    act(*early, std::nullopt);
    return;
  }
  // The client's first bytes (a ClientHello, a request) often arrive with or
  // right behind the handshake's last ACK: one read now may take the whole
  // head, and saves arming the read event and a loop wakeup.
  if (readPeek() == PeekStep::Ended) {
    return;  // decided, refused or finished (and perhaps destroyed)
  }
  client_ev_.reset(
      event_new(env_.base, client_.get(), EV_READ | EV_PERSIST, &Flow::onClientReadable, this));
  event_add(client_ev_.get(), nullptr);
  if (!got_bytes_) {
    // (With bytes, readPeek armed the total peek deadline.)
    armTimer(std::chrono::milliseconds(cfg.gateway.opaque_wait_ms));
  }
}

void Flow::onClientReadable(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Flow*>(arg);
  if (self->state_ == State::Peeking) {
    (void)self->readPeek();
  } else if (self->state_ == State::Refusing) {
    self->drainThenClose();
  }
}

void Flow::onTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Flow*>(arg);
  if (self->state_ == State::Peeking) {
    self->peekDeadline();
  } else if (self->state_ == State::Refusing) {
    self->finish();
  }
}

Flow::PeekStep Flow::readPeek() {
  uint8_t chunk[4096];
  size_t room = sni::kMaxPeekBytes - buf_.size();
  ssize_t n = read(client_.get(), chunk, std::min(room, sizeof(chunk)));
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      return PeekStep::Waiting;
    }
    rec_.action = "none";
    rec_.reason = "client_error";
    finish();
    return PeekStep::Ended;
  }
  if (n == 0) {
    rec_.action = "none";
    rec_.reason = got_bytes_ ? "client_closed_during_peek" : "client_closed";
    finish();
    return PeekStep::Ended;
  }
  buf_.insert(buf_.end(), chunk, chunk + n);
  if (!got_bytes_) {
    got_bytes_ = true;
    // From the first byte on, the whole head must arrive within the total
    // peek deadline counted from accept (not per byte: no slowloris).
    auto total = std::chrono::milliseconds(rt_->config->gateway.peek_timeout_ms);
    armTimer(total - sinceAccept());
  }
  peek_ = peeker_.update(std::span<const uint8_t>(buf_.data(), buf_.size()));
  rec_.proto = std::string(protoName(peek_.protocol));
  switch (peek_.status) {
    case sni::Status::NeedMore:
      if (buf_.size() >= sni::kMaxPeekBytes) {
        env_.counters->add(Counter::kPeekInvalid);
        rec_.action = "deny";
        refuse("peek_too_large");
        return PeekStep::Ended;
      }
      return PeekStep::Waiting;
    case sni::Status::Invalid:
      env_.counters->add(Counter::kPeekInvalid);
      rec_.action = "deny";
      refuse(peek_.reason.empty() ? "peek_invalid" : peek_.reason);
      return PeekStep::Ended;
    case sni::Status::Done:
      break;
  }
  std::optional<sni::HostName> name;
  if (peek_.protocol == sni::Protocol::Tls) {
    env_.counters->add(Counter::kPeekTls);
    rec_.has_tls = true;
    rec_.tls_version = peek_.tls.versionName();
    rec_.tls_alpn = peek_.tls.alpn;
    rec_.tls_ech = peek_.tls.ech;
    name = peek_.tls.sni;
    if (!name) {
      env_.counters->add(Counter::kSniMissing);
    } else {
      rec_.sni = name->name;
    }
  } else if (peek_.protocol == sni::Protocol::Http) {
    env_.counters->add(Counter::kPeekHttp);
    rec_.has_http = true;
    rec_.http_method = peek_.http.method;
    rec_.http_path = pathWithoutQuery(peek_.http.target);
    name = peek_.http.host;
    if (name) {
      rec_.host = name->name;
    }
  } else {
    env_.counters->add(Counter::kPeekOpaque);
  }
  decideAndAct(std::move(name));
  return PeekStep::Ended;
}

void Flow::peekDeadline() {
  if (!got_bytes_) {
    // Silent for opaque_wait_ms: decide now only if that lets the flow
    // through (server speaks first). A refusal, or a decision a name could
    // change, waits for the whole peek deadline: a client slow to send its
    // ClientHello (CPU steal, a busy machine) is not judged opaque.
    const auto total = std::chrono::milliseconds(rt_->config->gateway.peek_timeout_ms);
    if (auto elapsed = sinceAccept(); elapsed < total) {
      if (auto early = decideSilentEarly(*rt_->config, src_, dst_)) {
        env_.counters->add(Counter::kPeekOpaque);
        decideAndActOn(*early);
        return;
      }
      armTimer(total - elapsed);
      return;
    }
    // A silent client: treat as opaque and decide by destination.
    env_.counters->add(Counter::kPeekOpaque);
    rec_.proto = "opaque";
    decideAndAct(std::nullopt);
    return;
  }
  env_.counters->add(Counter::kPeekTimeout);
  rec_.action = "deny";
  refuse("peek_timeout");
}

void Flow::decideAndAct(std::optional<sni::HostName> name) {
  // Neither exists when the first read in start() took the whole head.
  if (client_ev_) {
    event_del(client_ev_.get());
  }
  if (timer_ev_) {
    event_del(timer_ev_.get());
  }
  FlowFacts facts{src_, dst_, name};
  act(decide(*rt_->config, facts), name);
}

void Flow::decideAndActOn(const Decision& d) {
  if (client_ev_) {
    event_del(client_ev_.get());
  }
  if (timer_ev_) {
    event_del(timer_ev_.get());
  }
  rec_.proto = "opaque";
  act(d, std::nullopt);
}

void Flow::act(const Decision& d, const std::optional<sni::HostName>& name) {
  rec_.action = std::string(actionName(d.action));
  rec_.reason = d.reason;
  rec_.rule = d.ruleLabel();
  switch (d.action) {
    case Action::Deny:
      env_.counters->add(Counter::kDecisionDeny);
      refuse(d.reason);
      return;
    case Action::Mitm:
      env_.counters->add(Counter::kDecisionMitm);
      if (peek_.status != sni::Status::Done || peek_.protocol == sni::Protocol::Opaque) {
        // Only TLS and HTTP can be inspected; anything else policy wanted
        // inspected is refused rather than relayed blind.
        rec_.action = "deny";
        refuse("mitm_needs_tls_or_http");
        return;
      }
      if (peek_.protocol == sni::Protocol::Tls &&
          (env_.minter == nullptr || env_.sandbox_tls == nullptr || env_.upstream_tls == nullptr)) {
        rec_.action = "deny";
        refuse("mitm_unavailable");
        return;
      }
      if (rt_->limits) {
        const Sandbox* sb = d.sandbox;
        uint32_t max = sb != nullptr && sb->max_mitm_flows
                           ? *sb->max_mitm_flows
                           : rt_->config->gateway.max_mitm_flows_per_sandbox;
        mitm_slot_ = rt_->limits->mitm_flows.tryAcquire(rec_.sandbox, max);
        if (!mitm_slot_) {
          countLimitRefusal("mitm_flows");
          rec_.action = "deny";
          refuse("sandbox_mitm_limit");
          return;
        }
      }
      mitm_ = true;
      rule_ = d.rule;
      name_ = name;
      break;
    case Action::Passthrough:
      env_.counters->add(Counter::kDecisionPassthrough);
      if (peek_.status == sni::Status::Done && peek_.protocol == sni::Protocol::Http) {
        // Cleartext HTTP: a placeholder must not leave in any request on
        // this connection, nor a later request go to another Host.
        inspect_ = true;
        rule_ = d.rule;
        name_ = name;
      }
      break;
  }
  // Never trust the sandbox's chosen IP for a named flow: connect to what
  // the name resolves to. Flows matched by a cidrs rule, and flows with no
  // name, go to the original destination (that is what the rule judged).
  bool use_name = name && !name->is_ip && (d.rule == nullptr || !d.rule->hosts.empty());
  if (!use_name) {
    onResolved({dst_}, "");
    return;
  }
  resolve_rule_ = d.rule;
  uint16_t port = dst_.port();
  if (auto hit = Resolver::lookupStatic(rt_->config->gateway.static_hosts, name->name, port)) {
    onResolved(std::move(*hit), "");
    return;
  }
  // What tollgate's DNS service told the sandbox this name is, while fresh.
  if (rt_->addresses) {
    if (auto hit = rt_->addresses->get(name->name, port)) {
      env_.counters->add(Counter::kResolvedFromDnsAnswers);
      onResolved(std::move(*hit), "");
      return;
    }
  }
  state_ = State::Resolving;
  dns_req_ = env_.resolver->resolve(name->name, port,
                                    [this](std::vector<SockAddr> addrs, std::string error) {
                                      onResolved(std::move(addrs), error);
                                    });
}

void Flow::onResolved(std::vector<SockAddr> addrs, const std::string& error) {
  dns_req_.reset();
  if (!error.empty() || addrs.empty()) {
    env_.counters->add(Counter::kResolveFailed);
    upstreamFailed("resolve_failed");
    return;
  }
  for (const SockAddr& a : addrs) {
    UpstreamVerdict v = checkUpstream(*rt_->config, a, rt_->never_upstream);
    if (v.denied) {
      if (first_denied_reason_.empty()) {
        first_denied_reason_ = v.reason;
      }
      continue;
    }
    if (resolve_rule_ != nullptr && !resolvedWithinRule(*resolve_rule_, a)) {
      if (first_denied_reason_.empty()) {
        first_denied_reason_ = kResolvedOutsideRuleCidrs;
      }
      continue;
    }
    candidates_.push_back(a);
  }
  if (candidates_.empty()) {
    env_.counters->add(Counter::kUpstreamDenied);
    rec_.action = "deny";
    refuse(first_denied_reason_);
    return;
  }
  state_ = State::Connecting;
  tryNextCandidate();
}

void Flow::tryNextCandidate() {
  while (next_candidate_ < candidates_.size() && next_candidate_ < kMaxConnectAttempts) {
    upstream_addr_ = candidates_[next_candidate_++];
    upstream_.reset(socket(upstream_addr_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!upstream_) {
      continue;
    }
    if (connect(upstream_.get(), upstream_addr_.sa(), upstream_addr_.len()) != 0 &&
        errno != EINPROGRESS) {
      upstream_.reset();
      continue;
    }
    connect_started_ = std::chrono::steady_clock::now();
    connect_ev_.reset(event_new(env_.base, upstream_.get(), EV_WRITE, &Flow::onConnected, this));
    timeval tv = toTimeval(kConnectTimeout.count());
    event_add(connect_ev_.get(), &tv);
    return;
  }
  env_.counters->add(Counter::kUpstreamConnectFailed);
  upstreamFailed("upstream_connect_failed");
}

void Flow::onConnected(evutil_socket_t fd, short what, void* arg) {
  auto* self = static_cast<Flow*>(arg);
  int err = ETIMEDOUT;
  bool known = (what & EV_TIMEOUT) != 0;
  if (!known && !self->mitm_ && !self->inspect_ && !self->buf_.empty()) {
    // Sending the peeked bytes also tells how the connect ended: send()
    // fails with the pending socket error (the one SO_ERROR would report,
    // and clear) when it failed, and queues the bytes when it succeeded.
    ssize_t n = send(fd, self->buf_.data(), self->buf_.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      self->sent_up_ = static_cast<size_t>(n);
      err = 0;
      known = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      err = errno;
      known = true;
    }
  }
  if (!known) {
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      err = errno;
    }
  }
  self->connect_ev_.reset();
  if (err != 0) {
    self->upstream_.reset();
    self->tryNextCandidate();
    return;
  }
  if (self->rt_->stats) {
    self->rt_->stats->upstream_connect.observe(std::chrono::steady_clock::now() -
                                               self->connect_started_);
  }
  self->startRelay();
}

void Flow::startRelay() {
  if (mitm_ || inspect_) {
    startMitm("");
    return;
  }
  state_ = State::Relaying;
  setNoDelay(upstream_.get());
  rec_.upstream = upstream_addr_.toString();
  client_ev_.reset();
  timer_ev_.reset();
  std::string_view unsent(reinterpret_cast<const char*>(buf_.data()), buf_.size());
  unsent.remove_prefix(sent_up_);
  auto relay = Relay::start(
      env_.base, std::move(client_), std::move(upstream_), unsent,
      [this](const Relay::Stats& st) {
        rec_.bytes_up = st.bytes_up;
        rec_.bytes_down = st.bytes_down;
        env_.counters->add(Counter::kBytesUp, static_cast<int64_t>(st.bytes_up));
        env_.counters->add(Counter::kBytesDown, static_cast<int64_t>(st.bytes_down));
        if (st.idle) {
          env_.counters->add(Counter::kIdleTimeouts);
          rec_.reason = "idle_timeout";
        } else if (st.error) {
          env_.counters->add(Counter::kRelayErrors);
        }
        finish();
      },
      sent_up_, std::chrono::seconds(rt_->config->gateway.idle_timeout_s));
  // Peeked bytes are sent (or held by the relay); an idle flow keeps no buffer.
  std::vector<uint8_t>().swap(buf_);
  if (!relay) {
    rec_.reason = "internal_error";
    finish();
    return;
  }
  relay_ = std::move(*relay);
}

void Flow::refuse(const std::string& reason) {
  rec_.reason = reason;
  sendRefusal(kAlertAccessDenied, 403, "Forbidden");
}

void Flow::countLimitRefusal(std::string_view limit) {
  env_.counters->add(Counter::kLimitRefusals);
  if (rt_->stats) {
    std::string_view sb = rec_.sandbox.empty() ? std::string_view("none") : rec_.sandbox;
    rt_->stats->limits.add(promLabels({{"sandbox", sb}, {"limit", limit}}));
  }
}

void Flow::upstreamFailed(const std::string& reason) {
  if (mitm_) {
    // The sandbox gets a readable 502 inside its own TLS session.
    startMitm(reason);
    return;
  }
  rec_.reason = reason;
  sendRefusal(kAlertInternalError, 502, "Bad Gateway");
}

void Flow::sendRefusal(uint8_t tls_alert, int http_status, std::string_view http_text) {
  state_ = State::Refusing;
  if (timer_ev_) {
    event_del(timer_ev_.get());
  }
  if (tls_alert == kAlertAccessDenied && answerDenialOverTls()) {
    return;
  }
  std::string reply;
  if (peek_.protocol == sni::Protocol::Tls) {
    reply = tlsAlertRecord(tls_alert);
  } else if (peek_.protocol == sni::Protocol::Http) {
    reply = httpErrorResponse(http_status, http_text,
                              {rec_.sandbox, rec_.host, rec_.rule, rec_.reason});
    rec_.http_status = http_status;
  } else {
    // Opaque: a reset is the only refusal every TCP client understands.
    setResetOnClose(client_.get());
    finish();
    return;
  }
  // A fresh socket buffer takes a few hundred bytes without blocking.
  (void)send(client_.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
  shutdown(client_.get(), SHUT_WR);
  if (!client_ev_) {
    client_ev_.reset(
        event_new(env_.base, client_.get(), EV_READ | EV_PERSIST, &Flow::onClientReadable, this));
  }
  event_add(client_ev_.get(), nullptr);
  armTimer(kRefuseLinger);
}

// deny_style: http-403: finish the handshake with a leaf for the SNI and
// answer 403 inside TLS. Falls back to the alert when that is not possible
// (no CA loaded, no SNI, minting failed).
bool Flow::answerDenialOverTls() {
  if (rt_->config->gateway.deny_style != DenyStyle::Http403 || env_.minter == nullptr ||
      peek_.protocol != sni::Protocol::Tls || peek_.status != sni::Status::Done ||
      !peek_.tls.sni) {
    return false;
  }
  // Each denied name would cost a CA signature: a sandbox cycling random
  // names gets its budget, then the alert.
  if (rt_->limits &&
      !rt_->limits->deny_leaves.take(rec_.sandbox, rt_->config->gateway.deny_leaves_per_minute)) {
    countLimitRefusal("deny_leaves");
    return false;
  }
  std::string reply = httpErrorResponse(403, "Forbidden", {rec_.sandbox, rec_.sni, rec_.rule, rec_.reason});
  auto responder = mitm::DenyOverTls::start(
      env_.base, mitm::SandboxTls{env_.sandbox_tls, env_.minter}, peek_.tls.sni->name,
      client_.get(), std::span<const uint8_t>(buf_.data(), buf_.size()), std::move(reply),
      std::chrono::milliseconds(rt_->config->gateway.peek_timeout_ms),
      [this](mitm::DenyOverTls::End end) {
        if (end == mitm::DenyOverTls::End::kAnswered) {
          rec_.has_http = true;
          rec_.http_status = 403;
          if (const mitm::RequestHead* head = deny_tls_->request()) {
            rec_.http_method = head->method;
            rec_.http_path = pathWithoutQuery(head->target);
          }
        }
        finish();
      });
  if (!responder) {
    return false;
  }
  if (client_ev_) {
    event_del(client_ev_.get());
  }
  deny_tls_ = std::move(*responder);
  return true;
}

void Flow::drainThenClose() {
  uint8_t chunk[4096];
  ssize_t n = read(client_.get(), chunk, sizeof(chunk));
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return;
  }
  if (n > 0) {
    drained_ += static_cast<size_t>(n);
    if (drained_ < kRefuseDrainMax) {
      return;
    }
  }
  finish();
}

void Flow::abort(const std::string& reason) {
  if (state_ == State::Done) {
    return;
  }
  if (rec_.action.empty()) {
    rec_.action = "none";
  }
  rec_.reason = reason;
  if (relay_) {
    rec_.bytes_up = relay_->stats().bytes_up;
    rec_.bytes_down = relay_->stats().bytes_down;
  }
  if (session_) {
    rec_.bytes_up = session_->summary().bytes_up;
    rec_.bytes_down = session_->summary().bytes_down;
  }
  finish();
}

void Flow::startMitm(const std::string& upstream_error) {
  state_ = State::Relaying;
  client_ev_.reset();
  timer_ev_.reset();
  if (upstream_) {
    setNoDelay(upstream_.get());
    rec_.upstream = upstream_addr_.toString();
  }
  const bool tls = peek_.protocol == sni::Protocol::Tls;
  // No name (a cidrs rule matched a flow without SNI): the certificate and
  // the upstream verification are for the IP the sandbox chose.
  std::string host = name_ ? name_->name : dst_.ip();
  bool host_is_ip = !name_ || name_->is_ip;
  SslPtr ssl;
  if (tls) {
    mitm::SandboxSsl made = mitm::newSandboxSsl({env_.sandbox_tls, env_.minter}, host);
    if (!made.ssl) {
      if (made.failure == mitm::Outcome::kLeafMintFailed) {
        log::error("mitm: cannot mint a leaf for {}: {}", host, made.detail);
      }
      rec_.action = "deny";
      refuse(std::string(mitm::reasonName(made.failure)));
      return;
    }
    ssl = std::move(made.ssl);
  }
  mitm::SessionOptions o;
  o.host = host;
  o.host_is_ip = host_is_ip;
  o.tls = tls;
  o.port = dst_.port();
  o.inject = mitm_;
  if (rt_->credentials) {
    o.credentials = std::span<const mitm::CredentialSpec>(rt_->credentials->specs);
  }
  if (env_.current_runtime != nullptr && *env_.current_runtime) {
    // Each request takes the credentials current when it starts: a reload
    // that rotates a secret reaches kept-alive connections too.
    o.current_credentials = [source = env_.current_runtime] {
      mitm::SessionOptions::CredentialSnapshot snap;
      std::shared_ptr<const Runtime> rt = (*source)();
      if (rt && rt->credentials) {
        snap.specs = std::span<const mitm::CredentialSpec>(rt->credentials->specs);
      }
      snap.keepalive = std::move(rt);
      return snap;
    };
  }
  // A rule without `credentials:` lets every credential apply (each is
  // still limited to its own `hosts`); a list limits it to those.
  o.attached = rule_ != nullptr && !rule_->credentials.empty() ? &rule_->credentials : nullptr;
  o.keepalive = rt_;
  o.error_response = [info = DenyInfo{rec_.sandbox, host, rec_.rule, ""}](
                         int status, std::string_view text, std::string_view reason) {
    DenyInfo i = info;
    i.reason = std::string(reason);
    return httpErrorResponse(status, text, i);
  };
  auto session = mitm::Session::start(
      env_.base, std::move(o), std::move(client_),
      std::span<const uint8_t>(buf_.data(), buf_.size()), std::move(ssl), std::move(upstream_),
      upstream_error, env_.upstream_tls,
      [this](const mitm::ExchangeRecord& x) { onExchange(x); },
      [this](const mitm::Session::Summary& sum) { mitmDone(sum); });
  std::vector<uint8_t>().swap(buf_);
  if (!session) {
    log::error("mitm: {}", session.message());
    rec_.reason = "internal_error";
    finish();
    return;
  }
  if (!upstream_error.empty()) {
    env_.counters->add(Counter::kMitmUpstreamFailed);
  }
  session_ = std::move(*session);
}

void Flow::onExchange(const mitm::ExchangeRecord& x) {
  if (inspect_ && x.reason.empty()) {
    return;  // a passthrough flow's requests are audited only when refused
  }
  env_.counters->add(Counter::kHttpExchanges);
  if (!x.credentials.empty()) {
    env_.counters->add(Counter::kCredentialInjections);
  }
  if (rt_->stats) {
    for (const std::string& c : x.credentials) {
      rt_->stats->injections.add(promLabels({{"credential", c}}));
    }
  }
  FlowRecord r;
  r.ts = std::chrono::system_clock::now();
  r.event = "http";
  r.sandbox = rec_.sandbox;
  r.src = rec_.src;
  r.dst = rec_.dst;
  r.proto = rec_.proto;
  r.sni = rec_.sni;
  r.host = name_ ? name_->name : "";
  r.action = inspect_ ? "passthrough" : "mitm";
  r.reason = x.reason;
  r.rule = rec_.rule;
  r.upstream = rec_.upstream;
  r.bytes_up = x.bytes_up;
  r.bytes_down = x.bytes_down;
  r.duration_ms = static_cast<uint64_t>(x.duration.count());
  r.has_tls = rec_.has_tls;
  r.tls_version = rec_.tls_version;
  r.tls_alpn = rec_.tls_alpn;
  r.tls_ech = rec_.tls_ech;
  r.has_http = true;
  r.http_method = x.method;
  r.http_path = x.path;
  r.http_status = x.status;
  r.credentials = x.credentials;
  env_.audit->write(r);
  for (const std::string& c : x.credentials) {
    if (std::find(rec_.credentials.begin(), rec_.credentials.end(), c) == rec_.credentials.end()) {
      rec_.credentials.push_back(c);
    }
  }
}

void Flow::mitmDone(const mitm::Session::Summary& sum) {
  if (rt_->stats) {
    if (sum.sandbox_handshake.count() > 0) {
      rt_->stats->sandbox_handshake.observe(sum.sandbox_handshake);
    }
    if (sum.upstream_handshake.count() > 0) {
      rt_->stats->upstream_handshake.observe(sum.upstream_handshake);
    }
  }
  rec_.bytes_up = sum.bytes_up;
  rec_.bytes_down = sum.bytes_down;
  env_.counters->add(Counter::kBytesUp, static_cast<int64_t>(sum.bytes_up));
  env_.counters->add(Counter::kBytesDown, static_cast<int64_t>(sum.bytes_down));
  if (sum.outcome != mitm::Outcome::kClean) {
    rec_.reason = std::string(sum.reason());
  }
  if (sum.outcome == mitm::Outcome::kClientRejectedCertificate) {
    env_.counters->add(Counter::kMitmClientRejectedCert);
  } else if (mitm::isUpstreamFailure(sum.outcome)) {
    env_.counters->add(Counter::kMitmUpstreamFailed);
  }
  if (!sum.detail.empty()) {
    log::warn("mitm {} -> {}: {}: {}", rec_.src, name_ ? name_->name : dst_.ip(), sum.reason(),
              sum.detail);
  }
  finish();  // destroys this (and the session)
}

void Flow::finish() {
  state_ = State::Done;
  if (rec_.action.empty()) {
    rec_.action = "none";
  }
  rec_.ts = std::chrono::system_clock::now();
  rec_.duration_ms = static_cast<uint64_t>(sinceAccept().count());
  env_.audit->write(rec_);
  if (rt_->stats) {
    std::string_view sb = rec_.sandbox.empty() ? std::string_view("none") : rec_.sandbox;
    rt_->stats->flows.add(
        promLabels({{"sandbox", sb}, {"action", rec_.action}, {"reason", rec_.reason}}));
    rt_->stats->bytes.add(promLabels({{"sandbox", sb}, {"direction", "up"}}), rec_.bytes_up);
    rt_->stats->bytes.add(promLabels({{"sandbox", sb}, {"direction", "down"}}), rec_.bytes_down);
    rt_->stats->sandboxes.flow(std::string(sb), rec_.action, rec_.bytes_up, rec_.bytes_down);
  }
  env_.counters->add(Counter::kFlowsActive, -1);
  done_(done_owner_, this);  // destroys this
}

}  // namespace tollgate::gateway
