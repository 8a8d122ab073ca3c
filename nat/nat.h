// nat: tollgate's nftables table (capture / fail-closed block) and the
// original destination of redirected sockets. The gateway's main header from
// this module (policy_route.h: TPROXY routing; binding_counters.h: what the
// port binding dropped).
//
// Every call acts on the network namespace of the *calling thread* (netlink
// sockets are opened per call), which is what lets tests drive it from a
// thread that setns()'d into a namespace of its own.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/sockaddr.h"

namespace tollgate::nat {

inline constexpr const char* kTableName = "tollgate";  // family inet

// NFQUEUE admission of sandbox UDP flows and ICMP(v6) echo (DESIGN.md "Data
// flow"). The first packet of such a flow is queued to tollgate; the verdict
// is NF_REPEAT with one of these skb marks, and the first rule of the forward
// chain copies an admit mark into the conntrack mark, so every later packet of
// the flow is decided by `ct mark` in the kernel. The values fill the whole
// 32-bit mark (other users of skb/ct marks on the sandbox interfaces clash).
inline constexpr uint16_t kDefaultQueueNum = 7467;
inline constexpr uint32_t kMarkAdmit = 0x74670001;
inline constexpr uint32_t kMarkDeny = 0x74670002;
// ICMP echo requests admitted by policy must also be small and few: a payload
// of at most kMaxEchoPayload bytes, and at most kEchoRatePerSecond (burst
// kEchoBurst) over all sandboxes; the rest is dropped before the queue.
inline constexpr uint32_t kMaxEchoPayload = 64;
inline constexpr uint64_t kEchoRatePerSecond = 20;
inline constexpr uint32_t kEchoBurst = 5;

// How the queue rule reaches nfnetlink_queue: the native nft `queue`
// expression (CONFIG_NFT_QUEUE), or xtables' NFQUEUE target through nft's
// compat layer (CONFIG_NFT_COMPAT + CONFIG_NETFILTER_XT_TARGET_NFQUEUE), what
// iptables-nft uses. Both queue without the bypass flag: when no process
// listens on the queue, or it is full, the kernel drops (fail closed).
enum class QueueBackend { Native, Compat };
const char* queueBackendName(QueueBackend backend);  // "native" | "compat"

// Port binding (sandboxes[].ports): which interfaces a sandbox's machines
// attach through, so that its source addresses mean "this sandbox".
// tollgate's `table bridge tollgate` makes every frame entering a bridge
// port matched by `ports` carry one of the sandbox's `sources` (IPv4 and
// IPv6 sources, ARP sender addresses, the target of neighbour
// advertisements; plus the unspecified and IPv6 link-local addresses that
// DHCP, ARP probes and neighbour discovery need) and nothing but IPv4,
// IPv6 and ARP; everything else from those ports is dropped. IP packets
// that pass get the skb mark kBindMarkBase + index. In `table inet
// tollgate`, a packet from a captured interface whose source is in a bound
// sandbox's sources is dropped unless it carries that sandbox's mark (it
// entered through the sandbox's bridge port) or arrived on an interface
// matched by `ports` itself (a routed tap listed in gateway.interfaces); the
// mark is cleared there. So a bound sandbox's addresses are usable only
// from its own ports, and its ports can use no other sandbox's addresses.
struct Prefix {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // network order; 4 significant bytes for IPv4
  unsigned len = 0;                 // prefix length
  bool operator==(const Prefix&) const = default;
};
struct PortBinding {
  std::string sandbox;             // the sandbox's name (chain names, comments)
  std::vector<std::string> ports;  // interface names; a trailing '*' matches a prefix
  std::vector<Prefix> sources;     // the sandbox's sources (IPv4-mapped given as IPv4)
  bool operator==(const PortBinding&) const = default;
};
// skb mark of IP packets that entered through binding i's ports; at most
// kMaxBindings bindings.
inline constexpr uint32_t kBindMarkBase = 0x74670100;
inline constexpr size_t kMaxBindings = 255;

struct CaptureSpec {
  // Sandbox-facing interfaces, e.g. {"br0"}. Matched by name (`iifname`), so
  // an interface that does not exist yet is accepted and captured as soon as
  // it appears. 1-15 bytes, no '/', ':', whitespace or wildcard.
  std::vector<std::string> interfaces;
  uint16_t listen_port = 15001;  // TCP redirect target (on the interface address)
  bool ipv6_capture = true;      // false = `ipv6: block`: drop all IPv6 from the interfaces
  // DNS capture (gateway.dns_port). 0 = none: sandbox DNS is dropped like all
  // other non-TCP traffic, and TCP to port 53 goes to listen_port like any
  // other TCP. Otherwise UDP and TCP to port 53 of *any* address (IPv4 and,
  // with ipv6_capture, IPv6) are redirected to this port on the interface
  // address, where tollgate's DNS service answers. Must differ from
  // listen_port and must not be 53.
  uint16_t dns_port = 0;
  // NFQUEUE number for UDP / ICMP echo admission (see kMarkAdmit).
  uint16_t queue_num = kDefaultQueueNum;
  // capture: tproxy: TCP is diverted with TPROXY (mangle prerouting, mark
  // nat::kTproxyMark, see policy_route.h) to a transparent listener on
  // listen_port instead of being redirected; the destination stays the one
  // the sandbox dialled. DNS is still redirected to dns_port.
  bool tproxy = false;
  // sandboxes[].ports, in sandbox order; empty: no `table bridge tollgate`.
  std::vector<PortBinding> bindings;
  // Which queue expression to use; unset = probe: native first, compat when
  // the kernel refuses the native one (the batch is atomic, so a refused
  // attempt changed nothing).
  std::optional<QueueBackend> queue_backend;
};

// Builds and sends ONE atomic netlink batch that replaces any existing
// `inet tollgate` table (stale from a crash) with the full capture ruleset:
//   add table (no-op if present); delete table; create table + sets + chains
//   + rules.
// What the ruleset does to traffic arriving on the interfaces:
//   prerouting (nat, prio -110), first match wins:
//     [dns_port] udp dport 53 -> redirect to :dns_port
//     [dns_port] tcp dport 53 -> redirect to :dns_port  (before the generic one)
//     tcp (any port)          -> redirect to :listen_port
//   input (filter): established/related; redirected TCP to listen_port;
//     [dns_port] redirected UDP and TCP to dns_port; ICMPv6 neighbour
//     discovery; UDP to port 443 (QUIC) refused with ICMP(v6) port
//     unreachable; everything else dropped.
//   forward (filter): UDP to port 443 (QUIC/HTTP3) is refused with ICMP(v6)
//     port unreachable (`reject with icmpx type port-unreachable`), so
//     clients fall back to TCP, which is captured, at once instead of after
//     a timeout; flows admitted by tollgate (ct mark kMarkAdmit) pass, and
//     so do ICMP errors about them (ct state related shares the mark);
//     new UDP flows and ICMP(v6) echo requests (small and rate limited) go
//     to NFQUEUE queue_num, whose verdict (skb mark + NF_REPEAT) is copied
//     into the ct mark; nothing else from the interfaces is routed, nothing
//     new into them (fail closed).
//   prerouting_filter (filter, prio -160): neighbour discovery passes; a
//     source address the interface could not be routed back to (`fib saddr
//     . iif oif missing`, reverse-path check) is dropped.
// With ipv6_capture = false every IPv6 packet (but neighbour discovery) is
// dropped before NAT (so IPv6 QUIC is dropped, not refused) and the
// redirects match IPv4 only.
// The kernel applies the batch as one transaction, so there is no moment in
// which sandboxes are uncaptured. On error nothing changed; the message names
// the object and, where known, the missing kernel feature.
//
// Where redirected connections land (kernel behaviour, not ours): IPv4 goes
// to the *primary* address of the incoming interface, IPv6 to the first
// non-tentative address in its list (global before link-local). Bind the
// listener, and the DNS service's UDP and TCP sockets, on those addresses
// (after DAD). A connection or datagram that already targets exactly that
// address and listen_port / dns_port is not marked DNAT and is dropped.
// The DNS service answers a redirected UDP query from the socket it arrived
// on (bound to that address): conntrack rewrites the reply's source back to
// the address and port 53 the sandbox queried, so resolvers in the sandbox
// accept it.
// With spec.bindings, the same batch replaces `table bridge tollgate` with
// the binding table (see PortBinding); without, it removes one left by an
// earlier configuration.
// Returns the queue backend the installed table uses.
Result<QueueBackend> installCapture(const CaptureSpec& spec);

// Atomically replaces the table with a fail-closed one: everything arriving on
// the interfaces is silently dropped (input and forward; QUIC too, nothing is
// refused) and nothing is forwarded to them, except the ICMPv6 neighbour
// discovery messages that keep the link itself working (ARP is not IP and is
// never seen by inet hooks). A `table bridge tollgate` goes in the same batch.
Result<void> installBlock(const std::vector<std::string>& interfaces);

// Sandbox-to-sandbox traffic on a bridge is switched at layer 2; it meets
// table inet tollgate only while br_netfilter hands bridged IP to the inet
// hooks (net.bridge.bridge-nf-call-iptables / -ip6tables = 1 in this network
// namespace). One message per listed interface that is a bridge where that
// is not so, saying what is ungoverned and what to do; empty otherwise.
// Reads /sys/class/net and /proc/sys of the calling process.
std::vector<std::string> lateralTrafficWarnings(const std::vector<std::string>& interfaces);

// Removes the table (and `table bridge tollgate`); ok if they do not exist.
Result<void> removeTable();

// Whether `inet tollgate` exists in the calling thread's network namespace.
Result<bool> tableExists();
// Whether `bridge tollgate` (port bindings) exists there.
Result<bool> bindingTableExists();

// Original destination of a redirected, accepted TCP socket: SO_ORIGINAL_DST
// (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6), chosen by the socket's family (an
// IPv4-mapped peer on an AF_INET6 socket is looked up as IPv4). Fails when
// conntrack has no entry for the socket.
Result<SockAddr> originalDst(int fd);
// The same, for a socket whose address (local or peer: both are of one
// family) the caller already has, e.g. from accept(): saves a getsockname.
Result<SockAddr> originalDst(int fd, const sockaddr* addr);

}  // namespace tollgate::nat
