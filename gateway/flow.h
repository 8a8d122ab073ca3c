// One sandbox TCP connection, from accept to audit record:
//   accept -> original destination -> (early decision | peek) -> decide
//   -> resolve the name -> check the address -> connect -> relay
//   or -> refuse in the protocol's own terms.
// libevent callbacks only move bytes and call the pure parts (sni::Peeker,
// decide(), checkUpstream()).
#pragma once

#include <event2/event.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/sockaddr.h"
#include "base/unique.h"
#include "gateway/address_cache.h"
#include "gateway/audit.h"
#include "gateway/event_util.h"
#include "gateway/limits.h"
#include "gateway/policy.h"
#include "gateway/relay.h"
#include "gateway/resolver.h"
#include "gateway/secrets.h"
#include "gateway/stats.h"
#include "gateway/tls_responder.h"
#include "mitm/session.h"
#include "mitm/upstream_tls.h"
#include "sni/sni.h"

namespace tollgate::gateway {

class Counters;
struct Runtime;

// What a flow needs from the world around it; owned by its worker.
struct FlowEnv {
  event_base* base = nullptr;
  Resolver* resolver = nullptr;
  AuditLog* audit = nullptr;
  Counters* counters = nullptr;
  // Set when tollgate's CA is loaded (deny_style: http-403); else null.
  ca::LeafMinter* minter = nullptr;
  SSL_CTX* sandbox_tls = nullptr;
  // Set when some rule is mitm: TLS toward real upstreams.
  mitm::UpstreamTls* upstream_tls = nullptr;
  // The daemon's current runtime (replaced by each reload): a MITM session
  // takes its credential table per request from it. Null: the flow's own.
  const std::function<std::shared_ptr<const Runtime>()>* current_runtime = nullptr;
};

// Read-only state shared by every flow started under one configuration.
struct Runtime {
  std::shared_ptr<const Config> config;
  std::vector<Cidr> never_upstream;  // tollgate's own addresses and sandbox subnets
  std::shared_ptr<const CredentialTable> credentials;
  // Answers of tollgate's DNS service; outlives reloads (the same cache is
  // handed to every runtime).
  std::shared_ptr<AddressCache> addresses;
  std::shared_ptr<Stats> stats;  // labelled counters and histograms; outlives reloads
  std::shared_ptr<SandboxLimits> limits;  // per-sandbox flow counts; outlives reloads
};

class Flow {
 public:
  using DoneFn = void (*)(void* owner, Flow* flow);

  Flow(FlowEnv env, std::shared_ptr<const Runtime> rt, UniqueFd client, SockAddr src, SockAddr dst,
       DoneFn done, void* done_owner);
  ~Flow();
  Flow(const Flow&) = delete;
  Flow& operator=(const Flow&) = delete;

  // Starts the state machine. May finish (and so destroy the flow) before it
  // returns: the caller must not touch the flow afterwards.
  void start();
  // Ends the flow now (shutdown), writing its audit record; destroys it.
  void abort(const std::string& reason);

 private:
  enum class State { Peeking, Resolving, Connecting, Relaying, Refusing, Done };
  // What readPeek() left: still peeking (the flow lives on), or not (it has
  // decided, refused or finished, and may be destroyed).
  enum class PeekStep { Waiting, Ended };

  static void onClientReadable(evutil_socket_t, short, void* arg);
  static void onTimer(evutil_socket_t, short, void* arg);
  static void onConnected(evutil_socket_t, short, void* arg);

  PeekStep readPeek();
  void peekDeadline();
  void decideAndAct(std::optional<sni::HostName> name);
  void decideAndActOn(const Decision& d);  // a decision made without a name
  void act(const Decision& d, const std::optional<sni::HostName>& name);
  void onResolved(std::vector<SockAddr> addrs, const std::string& error);
  void tryNextCandidate();
  void startRelay();
  void startMitm(const std::string& upstream_error);
  void onExchange(const mitm::ExchangeRecord& x);
  void mitmDone(const mitm::Session::Summary& sum);
  void refuse(const std::string& reason);
  void countLimitRefusal(std::string_view limit);
  void upstreamFailed(const std::string& reason);
  void sendRefusal(uint8_t tls_alert, int http_status, std::string_view http_text);
  bool answerDenialOverTls();
  void drainThenClose();
  void finish();
  void armTimer(std::chrono::milliseconds ms);
  std::chrono::milliseconds sinceAccept() const;

  FlowEnv env_;
  std::shared_ptr<const Runtime> rt_;
  UniqueFd client_;
  SockAddr src_;
  SockAddr dst_;
  DoneFn done_;
  void* done_owner_;
  std::chrono::steady_clock::time_point accepted_;
  State state_ = State::Peeking;

  EventPtr client_ev_;
  EventPtr timer_ev_;
  EventPtr connect_ev_;
  std::vector<uint8_t> buf_;
  sni::Peeker peeker_;
  sni::PeekResult peek_;
  bool got_bytes_ = false;

  std::vector<SockAddr> candidates_;
  size_t next_candidate_ = 0;
  std::string first_denied_reason_;
  std::unique_ptr<Resolver::Request> dns_req_;
  UniqueFd upstream_;
  size_t sent_up_ = 0;  // peeked bytes sent upstream by onConnected()
  SockAddr upstream_addr_;
  std::chrono::steady_clock::time_point connect_started_;
  std::unique_ptr<Relay> relay_;
  std::unique_ptr<TlsResponder> tls_responder_;
  bool mitm_ = false;
  // A plain-HTTP passthrough flow: relayed through the exchange engine in
  // inspect-only mode (every request head checked for placeholders, Host
  // held), not as blind bytes.
  bool inspect_ = false;
  const Rule* rule_ = nullptr;  // the matched rule (owned by rt_->config)
  // The rule a resolved address must stay inside (resolvedWithinRule), when
  // the flow goes to what its name resolves to; owned by rt_->config.
  const Rule* resolve_rule_ = nullptr;
  std::optional<sni::HostName> name_;
  std::unique_ptr<mitm::Session> session_;
  size_t drained_ = 0;

  FlowRecord rec_;
  // Held while the flow lives (released when it is destroyed).
  FlowSlots::Slot flow_slot_;
  FlowSlots::Slot mitm_slot_;
};

}  // namespace tollgate::gateway
