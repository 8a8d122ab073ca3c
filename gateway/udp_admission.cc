#include "gateway/udp_admission.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "gateway/counters.h"
#include "gateway/log.h"
#include "gateway/policy.h"
#include "nat/nat.h"

namespace tollgate::gateway {
namespace {

// Enough of each packet for the IPv4/IPv6 header, a few extension headers
// and the UDP/ICMP header; the rest of the payload is never needed.
constexpr uint32_t kCopyRange = 256;
// Packets waiting for a verdict before the kernel drops new ones (fail
// closed: the queue is bound without NFQA_CFG_F_FAIL_OPEN).
constexpr uint32_t kQueueMaxLen = 4096;
constexpr int kReceiveBuffer = 4 * 1024 * 1024;
// Messages handled per wake-up, so a flood cannot starve the rest of the
// main loop (signals, metrics, control); the rest wait for the next one.
constexpr int kMaxMessagesPerWakeup = 256;
// A denied flow's repeats are not audited again within this window.
constexpr std::chrono::seconds kDeniedMemory{30};
constexpr size_t kMaxDeniedRemembered = 4096;

std::string protoName(uint8_t proto) {
  switch (proto) {
    case IPPROTO_UDP:
      return "udp";
    case IPPROTO_ICMP:
      return "icmp";
    case IPPROTO_ICMPV6:
      return "icmpv6";
    default:
      return std::to_string(proto);
  }
}

}  // namespace

AdmissionDecision decideAdmission(const Runtime& rt, const nat::QueuedPacket& packet) {
  AdmissionDecision out;
  size_t udp_entry = SIZE_MAX;
  Decision d = packet.proto == IPPROTO_UDP
                   ? decideUdp(*rt.config, packet.src, packet.dst, &udp_entry)
                   : decideIcmp(*rt.config, packet.src, packet.dst, &udp_entry);
  out.sandbox = d.sandbox != nullptr ? d.sandbox->name : "";
  out.reason = d.reason;
  out.rule = d.rule != nullptr       ? d.ruleLabel()
             : udp_entry != SIZE_MAX ? "udp[" + std::to_string(udp_entry) + "]"
                                     : "";
  if (d.action == Action::Deny) {
    return out;
  }
  UpstreamVerdict v = checkUpstream(*rt.config, packet.dst, rt.never_upstream);
  if (v.denied) {
    out.reason = v.reason;
    return out;
  }
  out.admit = true;
  return out;
}

FlowRecord admissionRecord(const nat::QueuedPacket& packet, const AdmissionDecision& decision) {
  FlowRecord r;
  r.ts = std::chrono::system_clock::now();
  r.event = "udp";
  r.sandbox = decision.sandbox;
  r.proto = protoName(packet.proto);
  r.src = packet.proto == IPPROTO_UDP ? packet.src.toString() : packet.src.ip();
  r.dst = packet.proto == IPPROTO_UDP ? packet.dst.toString() : packet.dst.ip();
  r.action = decision.admit ? "passthrough" : "deny";
  r.reason = decision.reason;
  r.rule = decision.rule;
  return r;
}

UdpAdmission::UdpAdmission(RuntimeFn runtime, AuditLog* audit, Counters* counters)
    : runtime_(std::move(runtime)), audit_(audit), counters_(counters) {}

UdpAdmission::~UdpAdmission() = default;

Result<std::unique_ptr<UdpAdmission>> UdpAdmission::start(event_base* base, uint16_t queue_num,
                                                          RuntimeFn runtime, AuditLog* audit,
                                                          Counters* counters) {
  std::unique_ptr<UdpAdmission> self(new UdpAdmission(std::move(runtime), audit, counters));
  auto fail = [&](const std::string& what) {
    return makeError("UDP admission (NFQUEUE " + std::to_string(queue_num) + "): " + what + ": " +
                     std::strerror(errno));
  };
  self->handle_.reset(nfq_open());
  if (!self->handle_) {
    return fail("cannot open a netfilter queue socket (kernel lacks nfnetlink_queue?)");
  }
  self->queue_.reset(
      nfq_create_queue(self->handle_.get(), queue_num, &UdpAdmission::onPacket, self.get()));
  if (!self->queue_) {
    return fail("cannot bind the queue (another tollgate running in this network namespace?)");
  }
  if (nfq_set_mode(self->queue_.get(), NFQNL_COPY_PACKET, kCopyRange) < 0) {
    return fail("cannot set the copy mode");
  }
  if (nfq_set_queue_maxlen(self->queue_.get(), kQueueMaxLen) < 0) {
    return fail("cannot set the queue length");
  }
  const int fd = nfq_fd(self->handle_.get());
  // Best effort: a larger buffer absorbs bursts; when it overflows the
  // kernel drops the packets it could not hand over (fail closed).
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kReceiveBuffer, sizeof(kReceiveBuffer));
  if (evutil_make_socket_nonblocking(fd) < 0) {
    return fail("cannot make the queue socket non-blocking");
  }
  self->event_.reset(
      event_new(base, fd, EV_READ | EV_PERSIST, &UdpAdmission::onReadable, self.get()));
  if (!self->event_ || event_add(self->event_.get(), nullptr) < 0) {
    return fail("cannot watch the queue socket");
  }
  return self;
}

void UdpAdmission::onReadable(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<UdpAdmission*>(arg);
  alignas(nlmsghdr) static thread_local std::array<char, 64 * 1024> buf;
  for (int i = 0; i < kMaxMessagesPerWakeup; ++i) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == ENOBUFS) {
        // The kernel could not deliver some packets to us and dropped them
        // (fail closed); the senders retry or give up.
        log::warn("UDP admission: queue socket overflowed, packets were dropped");
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        log::error("UDP admission: reading the queue failed: {}", std::strerror(errno));
      }
      return;
    }
    nfq_handle_packet(self->handle_.get(), buf.data(), static_cast<int>(n));
  }
}

int UdpAdmission::onPacket(nfq_q_handle* queue, nfgenmsg*, nfq_data* data, void* arg) {
  return static_cast<UdpAdmission*>(arg)->handle(queue, data);
}

bool UdpAdmission::recentlyDenied(const FlowKey& key, std::chrono::steady_clock::time_point now) {
  auto it = denied_.find(key);
  if (it != denied_.end() && now - it->second < kDeniedMemory) {
    return true;
  }
  if (denied_.size() >= kMaxDeniedRemembered) {
    std::erase_if(denied_, [&](const auto& e) { return now - e.second >= kDeniedMemory; });
    if (denied_.size() >= kMaxDeniedRemembered) {
      denied_.clear();  // a flood of distinct flows: forget, audit again
    }
  }
  denied_[key] = now;
  return false;
}

int UdpAdmission::handle(nfq_q_handle* queue, nfq_data* data) {
  const nfqnl_msg_packet_hdr* hdr = nfq_get_msg_packet_hdr(data);
  if (hdr == nullptr) {
    return 0;
  }
  const uint32_t id = ntohl(hdr->packet_id);
  unsigned char* payload = nullptr;
  const int len = nfq_get_payload(data, &payload);
  auto packet =
      len > 0 ? nat::parseQueuedPacket(std::span<const uint8_t>(payload, static_cast<size_t>(len)))
              : Result<nat::QueuedPacket>(makeError("no payload"));
  if (!packet) {
    // The table queues only UDP and echo requests; anything else is dropped.
    counters_->add(Counter::kUdpDenied);
    return nfq_set_verdict(queue, id, NF_DROP, 0, nullptr);
  }
  auto rt = runtime_();
  AdmissionDecision decision = decideAdmission(*rt, *packet);
  const uint32_t mark = decision.admit ? nat::kMarkAdmit : nat::kMarkDeny;
  // NF_REPEAT: the packet runs the forward chain again from the top, where
  // the mark is acted on (and an admit mark copied into the ct mark).
  const int rc = nfq_set_verdict2(queue, id, NF_REPEAT, mark, 0, nullptr);
  if (decision.admit) {
    counters_->add(Counter::kUdpAdmitted);
    audit_->write(admissionRecord(*packet, decision));
  } else {
    counters_->add(Counter::kUdpDenied);
    FlowKey key{packet->src.toString(), packet->dst.toString(), packet->proto};
    if (!recentlyDenied(key, std::chrono::steady_clock::now())) {
      audit_->write(admissionRecord(*packet, decision));
    }
  }
  return rc;
}

}  // namespace tollgate::gateway
