// UDP and ICMP(v6) echo admission through NFQUEUE (DESIGN.md "Data flow").
//
// The capture table (nat/) queues the first packet of every new sandbox UDP
// flow and every new echo request to queue nat::kDefaultQueueNum, without the
// bypass flag: while nobody listens, or when the queue is full, the kernel
// drops them (fail closed). This module reads the queue on the daemon's main
// event loop, parses each packet with nat::parseQueuedPacket, decides it
// with the pure functions below (policy
// decideUdp / decideIcmp, then checkUpstream on the destination), answers
// NF_REPEAT with skb mark nat::kMarkAdmit or nat::kMarkDeny (the table turns
// an admit mark into the flow's ct mark, so the rest of the flow never leaves
// the kernel) and writes one `udp` audit record per decision.
#pragma once

#include <event2/event.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>

#include "base/handles.h"
#include "base/result.h"
#include "base/sockaddr.h"
#include "gateway/audit.h"
#include "gateway/event_util.h"
#include "gateway/flow.h"
#include "nat/queued_packet.h"

namespace tollgate::gateway {

class Counters;

struct AdmissionDecision {
  bool admit = false;
  std::string sandbox;  // "" when no sandbox matched
  std::string reason;   // "rule" | "default" | "no_sandbox" | "deny_cidr:<cidr>" | ...
  std::string rule;     // a rules: label, or "udp[i]" for a `udp:` entry; "" when none
};

// Pure: policy for the packet (decideUdp for UDP, decideIcmp for echo), then
// the destination must pass checkUpstream (deny_cidrs, tollgate's own
// addresses, sandbox subnets) like any upstream tollgate would connect to.
AdmissionDecision decideAdmission(const Runtime& rt, const nat::QueuedPacket& packet);

// The audit record for one decision (event "udp").
FlowRecord admissionRecord(const nat::QueuedPacket& packet, const AdmissionDecision& decision);

class UdpAdmission {
 public:
  using RuntimeFn = std::function<std::shared_ptr<const Runtime>()>;

  // Binds queue `queue_num` in the calling thread's network namespace and
  // serves it on `base` (the daemon's main loop). Fails when the kernel lacks
  // nfnetlink_queue or another process holds the queue.
  static Result<std::unique_ptr<UdpAdmission>> start(event_base* base, uint16_t queue_num,
                                                     RuntimeFn runtime, AuditLog* audit,
                                                     Counters* counters);
  ~UdpAdmission();
  UdpAdmission(const UdpAdmission&) = delete;
  UdpAdmission& operator=(const UdpAdmission&) = delete;

 private:
  // (src, dst, proto) of a recently denied flow: its later packets come back
  // to the queue (a dropped packet's conntrack entry is never confirmed), and
  // are dropped again without a new audit record.
  using FlowKey = std::tuple<std::string, std::string, uint8_t>;

  UdpAdmission(RuntimeFn runtime, AuditLog* audit, Counters* counters);
  static void onReadable(evutil_socket_t fd, short what, void* arg);
  static int onPacket(nfq_q_handle* queue, nfgenmsg* msg, nfq_data* data, void* arg);
  int handle(nfq_q_handle* queue, nfq_data* data);
  bool recentlyDenied(const FlowKey& key, std::chrono::steady_clock::time_point now);

  RuntimeFn runtime_;
  AuditLog* audit_;
  Counters* counters_;
  std::map<FlowKey, std::chrono::steady_clock::time_point> denied_;
  // Declaration order is destruction order reversed: the event goes first,
  // then the queue binding, then the netlink handle it lives on.
  NfqHandle handle_;
  NfqQueue queue_;
  EventPtr event_;
};

}  // namespace tollgate::gateway
