#include "nat/ruleset.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "nat/policy_route.h"

namespace tollgate::nat {
static_assert(kFamilyInet == NFPROTO_INET && kFamilyBridge == NFPROTO_BRIDGE);
namespace {

// ICMPv6 neighbour discovery (RFC 4861 section 4) a sandbox may send to the
// host: router solicitation, neighbour solicitation and advertisement. Router
// advertisements (134) and redirects (137) are *not* in the set: a sandbox
// must not be able to reconfigure the host's routing.
constexpr uint8_t kNdRouterSolicit = 133;
constexpr uint8_t kNdNeighborSolicit = 135;
constexpr uint8_t kNdNeighborAdvert = 136;

// nf_conntrack state bits as nft's `ct state` sees them: 1 << (ctinfo + 1).
constexpr uint32_t kCtStateEstablished = 1u << (IP_CT_ESTABLISHED + 1);
constexpr uint32_t kCtStateRelated = 1u << (IP_CT_RELATED + 1);
constexpr uint32_t kCtStateNew = 1u << (IP_CT_NEW + 1);

// ICMP(v6) echo request types (RFC 792, RFC 4443 section 4.1).
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kIcmpv6EchoRequest = 128;
// Largest echo request admitted: IPv4 header (20) / IPv6 header (40, any
// extension header counts against the payload) + ICMP header (8) + payload.
constexpr uint16_t kMaxEchoIpv4TotalLength = 20 + 8 + kMaxEchoPayload;
constexpr uint16_t kMaxEchoIpv6PayloadLength = 8 + kMaxEchoPayload;

Bytes u8Bytes(uint8_t v) { return Bytes{v}; }

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// Host byte order, as the kernel stores ct state/status in a register.
Bytes u32HostBytes(uint32_t v) {
  Bytes out(sizeof(v));
  std::memcpy(out.data(), &v, sizeof(v));
  return out;
}

// Network byte order, as ports appear on the wire.
Bytes u16NetBytes(uint16_t v) {
  return Bytes{static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v & 0xff)};
}

// Ethertypes (the bridge family's `meta protocol` / `ether type`).
constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthIpv6 = 0x86dd;
constexpr uint16_t kEthArp = 0x0806;

Bytes prefixMask(const Prefix& p) {
  Bytes mask(p.v6 ? 16 : 4, 0);
  for (unsigned bit = 0; bit < p.len && bit / 8 < mask.size(); ++bit) {
    mask[bit / 8] = static_cast<uint8_t>(mask[bit / 8] | (0x80u >> (bit % 8)));
  }
  return mask;
}

// "10.77.0.0/24", "fd77::10" (a full-length prefix prints as the address).
std::string prefixText(const Prefix& p) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(p.v6 ? AF_INET6 : AF_INET, p.bytes.data(), buf, sizeof(buf));
  const unsigned full = p.v6 ? 128 : 32;
  return p.len == full ? std::string(buf) : std::string(buf) + "/" + std::to_string(p.len);
}

// How nft prints a raw payload value: a hex integer without leading zeros.
std::string hexInteger(const uint8_t* bytes, size_t n) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", bytes[i]);
    out += buf;
  }
  size_t nz = out.find_first_not_of('0');
  return "0x" + (nz == std::string::npos ? std::string("0") : out.substr(nz));
}

// Appends expressions together with the nft syntax they print as. Every match
// uses register 1 (16 bytes wide, enough for an ifname); a rule is a single
// conjunction, so no value needs to survive the next load.
class RuleBuilder {
 public:
  explicit RuleBuilder(std::string chain) { rule_.chain = std::move(chain); }

  RuleBuilder& iifnameIn(const char* set, uint32_t set_id) {
    return ifnameIn(NFT_META_IIFNAME, "iifname", set, set_id);
  }
  RuleBuilder& oifnameIn(const char* set, uint32_t set_id) {
    return ifnameIn(NFT_META_OIFNAME, "oifname", set, set_id);
  }

  RuleBuilder& nfproto(uint8_t proto) {
    add(expr::Meta{NFT_META_NFPROTO, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u8Bytes(proto)});
    return word(proto == NFPROTO_IPV4 ? "meta nfproto ipv4" : "meta nfproto ipv6");
  }

  RuleBuilder& l4protoTcp() {
    add(expr::Meta{NFT_META_L4PROTO, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u8Bytes(IPPROTO_TCP)});
    return word("meta l4proto tcp");
  }

  // `tcp dport PORT` / `udp dport PORT`: nft hides the l4proto dependency
  // when printing. The destination port sits at offset 2 of both headers.
  RuleBuilder& tcpDport(uint16_t port) { return l4Dport(IPPROTO_TCP, "tcp", port); }
  RuleBuilder& udpDport(uint16_t port) { return l4Dport(IPPROTO_UDP, "udp", port); }

  // `icmpv6 type @SET`. The nfproto check keeps an IPv4 packet with protocol
  // number 58 from matching; nft hides both dependencies when printing.
  RuleBuilder& icmpv6TypeIn(const char* set, uint32_t set_id) {
    add(expr::Meta{NFT_META_NFPROTO, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u8Bytes(NFPROTO_IPV6)});
    add(expr::Meta{NFT_META_L4PROTO, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u8Bytes(IPPROTO_ICMPV6)});
    add(expr::Payload{NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1});
    add(expr::Lookup{NFT_REG_1, set, set_id, false});
    return word(std::string("icmpv6 type @") + set);
  }

  // `ct state established,related` (any of the bits) or, negated, none of them.
  RuleBuilder& ctStateEstablishedRelated(bool negated) {
    add(expr::Ct{NFT_CT_STATE, NFT_REG_1});
    add(expr::Bitwise{NFT_REG_1, NFT_REG_1, u32HostBytes(kCtStateEstablished | kCtStateRelated),
                      u32HostBytes(0)});
    add(expr::Cmp{NFT_REG_1, negated ? NFT_CMP_EQ : NFT_CMP_NEQ, u32HostBytes(0)});
    return word(negated ? "ct state ! established,related" : "ct state established,related");
  }

  // `ct status dnat`: the flow's destination was rewritten (our redirect).
  RuleBuilder& ctStatusDnat() {
    add(expr::Ct{NFT_CT_STATUS, NFT_REG_1});
    add(expr::Bitwise{NFT_REG_1, NFT_REG_1, u32HostBytes(IPS_DST_NAT), u32HostBytes(0)});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_NEQ, u32HostBytes(0)});
    return word("ct status dnat");
  }

  RuleBuilder& ctStateNew() {
    add(expr::Ct{NFT_CT_STATE, NFT_REG_1});
    add(expr::Bitwise{NFT_REG_1, NFT_REG_1, u32HostBytes(kCtStateNew), u32HostBytes(0)});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_NEQ, u32HostBytes(0)});
    return word("ct state new");
  }

  // Marks are host-order u32 in registers, as nft stores them.
  RuleBuilder& metaMarkIs(uint32_t mark) {
    add(expr::Meta{NFT_META_MARK, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u32HostBytes(mark)});
    return word("meta mark " + hex32(mark));
  }
  RuleBuilder& ctMarkIs(uint32_t mark) {
    add(expr::Ct{NFT_CT_MARK, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u32HostBytes(mark)});
    return word("ct mark " + hex32(mark));
  }
  RuleBuilder& ctMarkSet(uint32_t mark) {
    add(expr::Immediate{NFT_REG_1, u32HostBytes(mark)});
    add(expr::CtSet{NFT_CT_MARK, NFT_REG_1});
    return word("ct mark set " + hex32(mark));
  }

  RuleBuilder& l4protoUdp() {
    add(expr::Meta{NFT_META_L4PROTO, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u8Bytes(IPPROTO_UDP)});
    return word("meta l4proto udp");
  }

  // `icmp type echo-request` / `icmpv6 type echo-request`, with the nfproto
  // and l4proto dependencies nft adds (and hides when printing).
  RuleBuilder& echoRequest(uint8_t nfproto) {
    const bool v4 = nfproto == NFPROTO_IPV4;
    add(expr::Meta{NFT_META_NFPROTO, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u8Bytes(nfproto)});
    add(expr::Meta{NFT_META_L4PROTO, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ,
                  u8Bytes(v4 ? uint8_t{IPPROTO_ICMP} : uint8_t{IPPROTO_ICMPV6})});
    add(expr::Payload{NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u8Bytes(v4 ? kIcmpEchoRequest : kIcmpv6EchoRequest)});
    return word(v4 ? "icmp type echo-request" : "icmpv6 type echo-request");
  }

  // `ip length > N` (IPv4 total length) / `ip6 length > N` (IPv6 payload
  // length). Needs a preceding nfproto match (echoRequest()).
  RuleBuilder& ipLengthOver(uint8_t nfproto, uint16_t n) {
    const bool v4 = nfproto == NFPROTO_IPV4;
    add(expr::Payload{NFT_PAYLOAD_NETWORK_HEADER, v4 ? 2u : 4u, 2, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_GT, u16NetBytes(n)});
    return word(std::string(v4 ? "ip length > " : "ip6 length > ") + std::to_string(n));
  }

  // `limit rate over RATE/second` (burst kEchoBurst packets): matches the
  // packets beyond the rate.
  RuleBuilder& limitOver(uint64_t per_second, uint32_t burst) {
    add(expr::Limit{per_second, 1, burst, NFT_LIMIT_F_INV});
    return word("limit rate over " + std::to_string(per_second) + "/second");
  }

  // `fib saddr . iif oif missing`: no route back to the source through the
  // interface it came in on (strict reverse-path check).
  RuleBuilder& fibSaddrIifMissing() {
    add(expr::Fib{NFTA_FIB_F_SADDR | NFTA_FIB_F_IIF | NFTA_FIB_F_PRESENT, NFT_FIB_RESULT_OIF,
                  NFT_REG_1});
    // nft 1.0.6 compares the whole 4-byte oif register (the kernel stores
    // the existence flag in its first byte and zeroes the rest); a 1-byte
    // compare works the same but nft lists it as `oif missing/8`.
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u32HostBytes(0)});
    return word("fib saddr . iif oif missing");
  }

  RuleBuilder& queue(QueueBackend backend, uint16_t num) {
    add(queueExpr(backend, num));
    // nft lists the compat target the same way (it translates xt NFQUEUE).
    return word("queue num " + std::to_string(num));
  }

  RuleBuilder& counter() {
    add(expr::Counter{});
    return word("counter");
  }

  // `redirect to :PORT`: DNAT to the primary address of the incoming
  // interface (IPv4) / its first usable address (IPv6), port PORT.
  RuleBuilder& redirectToPort(uint16_t port) {
    add(expr::Immediate{NFT_REG_1, u16NetBytes(port)});
    add(expr::Redirect{NFT_REG_1, NF_NAT_RANGE_PROTO_SPECIFIED});
    return word("redirect to :" + std::to_string(port));
  }

  // `tcp dport != PORT`, with the l4proto dependency nft adds (and hides
  // when printing).
  RuleBuilder& tcpDportNot(uint16_t port) {
    add(expr::Meta{NFT_META_L4PROTO, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u8Bytes(IPPROTO_TCP)});
    add(expr::Payload{NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_NEQ, u16NetBytes(port)});
    return word("tcp dport != " + std::to_string(port));
  }

  // `tproxy ip|ip6 to :PORT`: hand the packet to the transparent socket on
  // PORT at the incoming interface's address (continues only when one
  // exists).
  RuleBuilder& tproxyToPort(uint8_t nfproto, uint16_t port) {
    add(expr::Immediate{NFT_REG_1, u16NetBytes(port)});
    add(expr::Tproxy{nfproto, NFT_REG_1});
    return word(std::string(nfproto == NFPROTO_IPV4 ? "tproxy ip" : "tproxy ip6") +
                " to :" + std::to_string(port));
  }

  RuleBuilder& metaMarkSet(uint32_t mark) {
    add(expr::Immediate{NFT_REG_1, u32HostBytes(mark)});
    add(expr::MetaSet{NFT_META_MARK, NFT_REG_1});
    return word("meta mark set " + hex32(mark));
  }

  // `iifname "NAME"` compares the whole zero-padded name, `iifname "PRE*"`
  // only the prefix, as nft encodes them. Precondition: a valid pattern.
  RuleBuilder& iifnamePattern(const std::string& pattern) {
    add(expr::Meta{NFT_META_IIFNAME, NFT_REG_1});
    if (pattern.back() == '*') {
      add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, Bytes(pattern.begin(), pattern.end() - 1)});
    } else {
      add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, encodeIfname(pattern)});
    }
    return word("iifname \"" + pattern + "\"");
  }

  RuleBuilder& oifnamePattern(const std::string& pattern) {
    iifnamePattern(pattern);
    std::get<expr::Meta>(rule_.exprs[rule_.exprs.size() - 2]).key = NFT_META_OIFNAME;
    rule_.text.replace(rule_.text.rfind("iifname"), 7, "oifname");
    return *this;
  }

  // `ip saddr P` / `ip6 saddr P`. The protocol dependency is the one nft
  // adds in that family: `meta protocol` (the frame's ethertype, also for a
  // VLAN tag taken off by the driver) in the bridge family, `meta nfproto`
  // in inet. A /0 prefix matches the protocol only.
  RuleBuilder& saddrIn(uint32_t family, const Prefix& p) {
    if (family == NFPROTO_BRIDGE) {
      add(expr::Meta{NFT_META_PROTOCOL, NFT_REG_1});
      add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u16NetBytes(p.v6 ? kEthIpv6 : kEthIpv4)});
    } else {
      add(expr::Meta{NFT_META_NFPROTO, NFT_REG_1});
      add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u8Bytes(p.v6 ? NFPROTO_IPV6 : NFPROTO_IPV4)});
    }
    if (p.len == 0) {
      return word(family == NFPROTO_BRIDGE ? (p.v6 ? "meta protocol ip6" : "meta protocol ip")
                                           : (p.v6 ? "meta nfproto ipv6" : "meta nfproto ipv4"));
    }
    addressIn(NFT_PAYLOAD_NETWORK_HEADER, p.v6 ? 8 : 12, p);
    return word(std::string(p.v6 ? "ip6 saddr " : "ip saddr ") + prefixText(p));
  }

  // An ARP packet for IPv4 over Ethernet (the only kind Linux accepts on an
  // Ethernet bridge) whose sender address is in P. The explicit header
  // checks pin the sender address at offset 14 whatever the packet claims.
  RuleBuilder& arpSenderIn(const Prefix& p) {
    add(expr::Payload{NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u16NetBytes(kEthArp)});
    add(expr::Payload{NFT_PAYLOAD_NETWORK_HEADER, 0, 4, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, Bytes{0x00, 0x01, 0x08, 0x00}});  // htype 1, ptype ip
    add(expr::Payload{NFT_PAYLOAD_NETWORK_HEADER, 4, 2, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, Bytes{6, 4}});  // hlen 6, plen 4
    word("arp htype 1 arp ptype ip arp hlen 6 arp plen 4");
    if (p.len == 0) {
      return *this;
    }
    addressIn(NFT_PAYLOAD_NETWORK_HEADER, 14, p);
    return word("arp saddr ip " + prefixText(p));
  }

  // `icmpv6 type nd-neighbor-advert` in the bridge family: an IPv6 frame
  // (`ether type ip6`, the dependency nft adds) whose l4proto, past any
  // extension headers, is ICMPv6.
  RuleBuilder& ndNeighborAdvert() {
    add(expr::Payload{NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u16NetBytes(kEthIpv6)});
    add(expr::Meta{NFT_META_L4PROTO, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u8Bytes(IPPROTO_ICMPV6)});
    add(expr::Payload{NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u8Bytes(kNdNeighborAdvert)});
    return word("icmpv6 type nd-neighbor-advert");
  }

  // The target address of a neighbour advertisement (RFC 4861 4.4: bytes
  // 8-23 of the ICMPv6 message) in P; nft has no name for it and prints the
  // raw `@th,64,LEN` match.
  RuleBuilder& ndTargetIn(const Prefix& p) {
    if (p.len == 0) {
      return *this;  // any target
    }
    addressIn(NFT_PAYLOAD_TRANSPORT_HEADER, 8, p);
    if (p.len % 8 == 0) {
      return word("@th,64," + std::to_string(p.len) + " " + hexInteger(p.bytes.data(), p.len / 8));
    }
    Bytes mask = prefixMask(p);
    return word("@th,64,128 & " + hexInteger(mask.data(), mask.size()) +
                " == " + hexInteger(p.bytes.data(), 16));
  }

  RuleBuilder& metaMarkIsThenClear(uint32_t mark) {
    metaMarkIs(mark);
    return metaMarkSet(0);
  }

  RuleBuilder& jump(const std::string& chain) {
    add(expr::Jump{chain});
    return word("jump " + chain);
  }

  RuleBuilder& ret() {
    add(expr::Verdict{NFT_RETURN});
    return word("return");
  }

  RuleBuilder& accept() {
    add(expr::Verdict{NF_ACCEPT});
    return word("accept");
  }

  RuleBuilder& drop() {
    add(expr::Verdict{NF_DROP});
    return word("drop");
  }

  // `reject with icmpx type port-unreachable`: ICMP port unreachable for
  // IPv4, ICMPv6 port unreachable for IPv6 (the inet family's abstract
  // code), then the packet is dropped. nft lists this, the inet default, as
  // plain `reject`, so that is the text.
  RuleBuilder& rejectPortUnreachable() {
    add(expr::Reject{NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH});
    return word("reject");
  }

  // `reject with tcp reset` (after a `meta l4proto tcp` match, as nft
  // requires): the peer's connect() fails at once.
  RuleBuilder& rejectTcpReset() {
    add(expr::Reject{NFT_REJECT_TCP_RST, 0});
    return word("reject with tcp reset");
  }

  // Ends the rule; the builder is empty afterwards.
  Rule build(std::string comment) {
    rule_.comment = std::move(comment);
    return std::move(rule_);
  }

 private:
  RuleBuilder& ifnameIn(uint32_t key, const char* keyword, const char* set, uint32_t set_id) {
    add(expr::Meta{key, NFT_REG_1});
    add(expr::Lookup{NFT_REG_1, set, set_id, false});
    return word(std::string(keyword) + " @" + set);
  }

  RuleBuilder& l4Dport(uint8_t proto, const char* keyword, uint16_t port) {
    add(expr::Meta{NFT_META_L4PROTO, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u8Bytes(proto)});
    add(expr::Payload{NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1});
    add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, u16NetBytes(port)});
    return word(std::string(keyword) + " dport " + std::to_string(port));
  }

  // Loads the address field at BASE + OFFSET and compares it with P the way
  // nft does: only the prefix's bytes when it ends on a byte boundary, the
  // whole field masked otherwise. Precondition: p.len > 0.
  void addressIn(uint32_t base, uint32_t offset, const Prefix& p) {
    const uint32_t field = p.v6 ? 16 : 4;
    if (p.len % 8 == 0) {
      const uint32_t n = p.len / 8;
      add(expr::Payload{base, offset, n, NFT_REG_1});
      add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, Bytes(p.bytes.begin(), p.bytes.begin() + n)});
    } else {
      add(expr::Payload{base, offset, field, NFT_REG_1});
      add(expr::Bitwise{NFT_REG_1, NFT_REG_1, prefixMask(p), Bytes(field, 0)});
      add(expr::Cmp{NFT_REG_1, NFT_CMP_EQ, Bytes(p.bytes.begin(), p.bytes.begin() + field)});
    }
  }

  void add(Expr e) { rule_.exprs.push_back(std::move(e)); }

  RuleBuilder& word(const std::string& text) {
    if (!rule_.text.empty()) {
      rule_.text += ' ';
    }
    rule_.text += text;
    return *this;
  }

  Rule rule_;
};

Set makeIfaceSet(const std::vector<std::string>& interfaces) {
  Set set{kIfaceSet,
          kIfaceSetId,
          kNftTypeIfname,
          kIfnameLen,
          kNftByteorderHost,
          0,
          {},
          "sandbox-facing interfaces captured by tollgate"};
  for (const std::string& name : interfaces) {
    set.elements.push_back(SetElement{encodeIfname(name), "\"" + name + "\""});
  }
  return set;
}

Set makeNdSet() {
  Set set{kNdSet,
          kNdSetId,
          kNftTypeIcmpv6Type,
          1,
          kNftByteorderBig,
          NFT_SET_CONSTANT,
          {},
          "ICMPv6 neighbour discovery a sandbox may send (keeps the link up)"};
  set.elements = {
      SetElement{u8Bytes(kNdRouterSolicit), "nd-router-solicit"},
      SetElement{u8Bytes(kNdNeighborSolicit), "nd-neighbor-solicit"},
      SetElement{u8Bytes(kNdNeighborAdvert), "nd-neighbor-advert"},
  };
  return set;
}

Rule ndAccept(const char* chain) {
  return RuleBuilder(chain)
      .iifnameIn(kIfaceSet, kIfaceSetId)
      .icmpv6TypeIn(kNdSet, kNdSetId)
      .counter()
      .accept()
      .build("neighbour discovery keeps the sandbox link working");
}

// QUIC/HTTP3 is not admitted (tollgate governs TCP); refusing it at once,
// instead of dropping it, makes clients fall back to TCP without waiting for
// a handshake timeout.
Rule quicReject(const char* chain) {
  return RuleBuilder(chain)
      .iifnameIn(kIfaceSet, kIfaceSetId)
      .udpDport(kQuicPort)
      .counter()
      .rejectPortUnreachable()
      .build("QUIC/HTTP3: refuse at once so clients fall back to TCP (governed)");
}

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// The addresses any bound port may use whatever its sandbox: the
// unspecified ones (DHCP, ARP probes, duplicate address detection) and IPv6
// link-local (neighbour discovery, router solicitation).
Prefix unspecifiedV4() { return Prefix{false, {}, 32}; }
Prefix unspecifiedV6() { return Prefix{true, {}, 128}; }
Prefix linkLocalV6() {
  Prefix p{true, {}, 10};
  p.bytes[0] = 0xfe;
  p.bytes[1] = 0x80;
  return p;
}

uint32_t bindMark(size_t index) { return kBindMarkBase + static_cast<uint32_t>(index); }

Result<void> validateBindings(const std::vector<PortBinding>& bindings) {
  if (bindings.size() > kMaxBindings) {
    return makeError("nftables: more than " + std::to_string(kMaxBindings) +
                     " sandboxes with ports (one skb mark each)");
  }
  for (const PortBinding& b : bindings) {
    if (b.sandbox.empty() || b.ports.empty() || b.sources.empty()) {
      return makeError("nftables: port binding of sandbox '" + b.sandbox +
                       "' needs a name, ports and sources");
    }
    for (const std::string& port : b.ports) {
      if (auto ok = validatePortPattern(port); !ok) {
        return makeError(ok.message() + " (sandbox " + b.sandbox + ")");
      }
    }
    for (const Prefix& p : b.sources) {
      if (p.len > (p.v6 ? 128u : 32u)) {
        return makeError("nftables: bad prefix length in the sources of sandbox " + b.sandbox);
      }
    }
  }
  return {};
}

// `table inet tollgate`'s half of the binding (see PortBinding in nat.h):
// chain `bind`, jumped to from prerouting_filter for every packet from the
// captured interfaces, and per bound sandbox `own_NAME` (its routed ports
// carry only its sources) and `from_NAME` (its sources come only through
// its ports: routed, or bridged and marked by table bridge tollgate).
void addInetBinding(Ruleset& rs, const std::vector<PortBinding>& bindings) {
  rs.chains.push_back(Chain{"bind", "", 0, 0,
                            "sandboxes[].ports: a bound sandbox's sources only through its ports"});
  for (size_t i = 0; i < bindings.size(); ++i) {
    const PortBinding& b = bindings[i];
    const std::string own = "own_" + b.sandbox;
    const std::string from = "from_" + b.sandbox;
    rs.chains.push_back(Chain{
        own, "", 0, 0, "what a routed port of sandbox " + b.sandbox + " may send: its sources"});
    rs.chains.push_back(Chain{
        from, "", 0, 0, "where the sources of sandbox " + b.sandbox + " may come from: its ports"});
    for (const std::string& port : b.ports) {
      rs.rules.push_back(RuleBuilder("bind").iifnamePattern(port).jump(own).build(
          "a routed interface of sandbox " + b.sandbox));
    }
    for (const Prefix& p : b.sources) {
      rs.rules.push_back(RuleBuilder("bind")
                             .saddrIn(NFPROTO_INET, p)
                             .jump(from)
                             .build("a source of sandbox " + b.sandbox));
    }
    for (const Prefix& p : b.sources) {
      rs.rules.push_back(RuleBuilder(own).saddrIn(NFPROTO_INET, p).ret().build("its own source"));
    }
    for (const Prefix& p : {unspecifiedV4(), unspecifiedV6(), linkLocalV6()}) {
      rs.rules.push_back(
          RuleBuilder(own)
              .saddrIn(NFPROTO_INET, p)
              .ret()
              .build("unspecified and link-local sources: DHCP, neighbour discovery"));
    }
    rs.rules.push_back(RuleBuilder(own).counter().drop().build(
        "spoofed: a source that is not sandbox " + b.sandbox + "'s"));
    for (const std::string& port : b.ports) {
      rs.rules.push_back(
          RuleBuilder(from).iifnamePattern(port).ret().build("arrived on its routed interface"));
    }
    rs.rules.push_back(
        RuleBuilder(from)
            .metaMarkIsThenClear(bindMark(i))
            .ret()
            .build("entered through its bridge port (marked by table bridge tollgate)"));
    rs.rules.push_back(RuleBuilder(from).counter().drop().build("spoofed: sandbox " + b.sandbox +
                                                                "'s source from another port"));
  }
}

}  // namespace

Result<void> validateInterfaceName(std::string_view name) {
  auto bad = [&](const char* why) {
    return makeError("nftables: interface '" + std::string(name) + "' " + why);
  };
  if (name.empty()) {
    return makeError("nftables: empty interface name");
  }
  if (name.size() >= kIfnameLen) {
    return bad("is longer than 15 bytes (IFNAMSIZ)");
  }
  if (name == "." || name == "..") {
    return bad("is not a valid interface name");
  }
  for (char c : name) {
    if (c == '\0' || c == '/' || c == ':' || isSpace(c)) {
      return bad("contains a character interface names cannot have (NUL, '/', ':' or whitespace)");
    }
    if (c == '*') {
      return bad("contains '*': wildcards are not supported, list each interface");
    }
  }
  return {};
}

Result<std::vector<std::string>> normalizeInterfaces(const std::vector<std::string>& interfaces) {
  if (interfaces.empty()) {
    return makeError("nftables: no sandbox interfaces given (gateway.interfaces is empty)");
  }
  std::vector<std::string> out;
  for (const std::string& name : interfaces) {
    if (auto ok = validateInterfaceName(name); !ok) {
      return ok.error();
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) {
      out.push_back(name);
    }
  }
  if (out.size() > kMaxInterfaces) {
    return makeError("nftables: too many sandbox interfaces (" + std::to_string(out.size()) +
                     ", at most " + std::to_string(kMaxInterfaces) +
                     "); put the sandboxes on a bridge");
  }
  return out;
}

Bytes encodeIfname(std::string_view name) {
  Bytes key(kIfnameLen, 0);
  std::memcpy(key.data(), name.data(), std::min(name.size(), kIfnameLen - 1));
  return key;
}

Result<Ruleset> buildCaptureRuleset(const CaptureSpec& spec, QueueBackend backend) {
  auto interfaces = normalizeInterfaces(spec.interfaces);
  if (!interfaces) {
    return interfaces.error();
  }
  if (spec.listen_port == 0) {
    return makeError("nftables: listen_port 0 is not a valid redirect target");
  }
  const uint16_t port = spec.listen_port;
  const uint16_t dns_port = spec.dns_port;  // 0: no DNS capture
  const bool dns = dns_port != 0;
  if (dns && dns_port == port) {
    return makeError("nftables: gateway.dns_port " + std::to_string(dns_port) +
                     " is also gateway.listen_port; the DNS service needs a port of its own");
  }
  if (dns && dns_port == kDnsPort) {
    return makeError(
        "nftables: gateway.dns_port 53 is the port sandbox DNS is redirected from; choose another "
        "port for the DNS service (e.g. 15053)");
  }

  Ruleset rs;
  rs.comment = spec.ipv6_capture
                   ? "tollgate capture (ipv6: capture); managed by tollgate, do not edit"
                   : "tollgate capture (ipv6: block); managed by tollgate, do not edit";
  rs.sets = {makeIfaceSet(*interfaces), makeNdSet()};

  // prerouting_filter is created first with `ipv6: block` (as it always
  // was) and last otherwise; chain creation order has no effect on traffic.
  const Chain prerouting_filter{
      "prerouting_filter", "filter", NF_INET_PRE_ROUTING, kPriorityPreroutingFilter,
      spec.ipv6_capture ? "before NAT: drop sandbox packets with a source not routable back to "
                          "their interface"
                        : "before NAT: drop spoofed sources; ipv6: block - drop sandbox IPv6, "
                          "except neighbour discovery"};
  if (!spec.ipv6_capture) {
    rs.chains.push_back(prerouting_filter);
  }
  if (spec.tproxy) {
    rs.chains.push_back(Chain{"tproxy", "filter", NF_INET_PRE_ROUTING, kPriorityTproxy,
                              "capture: tproxy - divert sandbox TCP to the tollgate listener"});
  }
  rs.chains.push_back(
      Chain{"prerouting", "nat", NF_INET_PRE_ROUTING, kPriorityNat,
            dns ? "capture: redirect sandbox DNS to the tollgate DNS service, TCP to the listener"
                : "capture: redirect sandbox TCP to the tollgate listener"});
  rs.chains.push_back(
      Chain{"input", "filter", NF_INET_LOCAL_IN, kPriorityFilter,
            dns ? "sandboxes reach only the tollgate listener and DNS service on this host"
                : "sandboxes reach only the tollgate listener on this host"});
  rs.chains.push_back(Chain{"forward", "filter", NF_INET_FORWARD, kPriorityFilter,
                            "nothing is routed to or from sandboxes past the gateway"});
  if (spec.ipv6_capture) {
    rs.chains.push_back(prerouting_filter);
  }

  if (!spec.ipv6_capture) {
    rs.rules.push_back(ndAccept("prerouting_filter"));
    rs.rules.push_back(RuleBuilder("prerouting_filter")
                           .iifnameIn(kIfaceSet, kIfaceSetId)
                           .nfproto(NFPROTO_IPV6)
                           .counter()
                           .drop()
                           .build("ipv6: block - no IPv6 from sandboxes"));
  }

  // Every redirect starts alike; with `ipv6: block` it matches IPv4 only
  // (IPv6 was dropped in prerouting_filter already; this is belt and braces).
  auto redirect = [&] {
    RuleBuilder b("prerouting");
    b.iifnameIn(kIfaceSet, kIfaceSetId);
    if (!spec.ipv6_capture) {
      b.nfproto(NFPROTO_IPV4);
    }
    return b;
  };
  if (dns) {
    // `redirect` is a terminal verdict, so TCP/53 must be redirected here,
    // before the catch-all TCP rule below would send it to the listener.
    rs.rules.push_back(redirect().udpDport(kDnsPort).counter().redirectToPort(dns_port).build(
        "sandbox DNS over UDP, to any address, goes to the tollgate DNS service"));
    rs.rules.push_back(redirect().tcpDport(kDnsPort).counter().redirectToPort(dns_port).build(
        "sandbox DNS over TCP, to any address, goes to the tollgate DNS service"));
  }
  if (spec.tproxy) {
    // TPROXY keeps the destination and needs the fwmark routing of
    // policy_route.h to deliver the marked packets locally.
    for (uint8_t fam : {uint8_t{NFPROTO_IPV4}, uint8_t{NFPROTO_IPV6}}) {
      if (fam == NFPROTO_IPV6 && !spec.ipv6_capture) {
        continue;
      }
      RuleBuilder b("tproxy");
      b.iifnameIn(kIfaceSet, kIfaceSetId).nfproto(fam);
      if (dns) {
        b.tcpDportNot(kDnsPort);  // TCP DNS goes to the DNS service (nat chain)
      } else {
        b.l4protoTcp();
      }
      rs.rules.push_back(b.counter()
                             .tproxyToPort(fam, port)
                             .metaMarkSet(kTproxyMark)
                             .accept()
                             .build(fam == NFPROTO_IPV4
                                        ? "every sandbox TCP connection (IPv4) goes to the "
                                          "tollgate listener, destination kept"
                                        : "every sandbox TCP connection (IPv6) goes to the "
                                          "tollgate listener, destination kept"));
    }
  } else {
    rs.rules.push_back(redirect().l4protoTcp().counter().redirectToPort(port).build(
        "every sandbox TCP connection goes to the tollgate listener"));
  }

  rs.rules.push_back(RuleBuilder("input")
                         .iifnameIn(kIfaceSet, kIfaceSetId)
                         .ctStateEstablishedRelated(false)
                         .counter()
                         .accept()
                         .build("packets of flows already admitted"));
  if (spec.tproxy) {
    rs.rules.push_back(RuleBuilder("input")
                           .iifnameIn(kIfaceSet, kIfaceSetId)
                           .metaMarkIs(kTproxyMark)
                           .counter()
                           .accept()
                           .build("diverted sandbox TCP reaching the tollgate listener"));
  } else {
    rs.rules.push_back(RuleBuilder("input")
                           .iifnameIn(kIfaceSet, kIfaceSetId)
                           .ctStatusDnat()
                           .tcpDport(port)
                           .counter()
                           .accept()
                           .build("redirected sandbox TCP reaching the tollgate listener"));
  }
  if (dns) {
    // Only redirected flows: a sandbox addressing the DNS service's own
    // address and port directly is not DNAT and is dropped below.
    rs.rules.push_back(
        RuleBuilder("input")
            .iifnameIn(kIfaceSet, kIfaceSetId)
            .ctStatusDnat()
            .udpDport(dns_port)
            .counter()
            .accept()
            .build("redirected sandbox DNS over UDP reaching the tollgate DNS service"));
    rs.rules.push_back(
        RuleBuilder("input")
            .iifnameIn(kIfaceSet, kIfaceSetId)
            .ctStatusDnat()
            .tcpDport(dns_port)
            .counter()
            .accept()
            .build("redirected sandbox DNS over TCP reaching the tollgate DNS service"));
  }
  rs.rules.push_back(ndAccept("input"));
  // QUIC aimed at the gateway's own addresses.
  rs.rules.push_back(quicReject("input"));
  // TCP aimed at the host itself that was not redirected (a sandbox dialling
  // the listener's own address and port: redirecting to where it already goes
  // is no DNAT) or not admitted: a reset, so the client fails at once instead
  // of waiting for its connect timeout. Resets for every port alike reveal
  // nothing about what listens.
  rs.rules.push_back(RuleBuilder("input")
                         .iifnameIn(kIfaceSet, kIfaceSetId)
                         .l4protoTcp()
                         .counter()
                         .rejectTcpReset()
                         .build("sandbox TCP to the host's own services: reset at once"));
  rs.rules.push_back(RuleBuilder("input")
                         .iifnameIn(kIfaceSet, kIfaceSetId)
                         .counter()
                         .drop()
                         .build("sandboxes reach no other service of the host"));

  // QUIC to anywhere else; before the fail-closed drop, which it would never
  // reach otherwise. With `ipv6: block` IPv6 never gets here (dropped in
  // prerouting_filter), so only IPv4 QUIC is refused.
  rs.rules.push_back(quicReject("forward"));

  // NFQUEUE admission. The queue verdict is NF_REPEAT with skb mark
  // kMarkAdmit / kMarkDeny: the packet re-enters this chain from the top
  // (nf_reinject runs the same hook entry again), where the first two rules
  // act on the mark. An ACCEPT verdict would leave the chain at once, so a
  // rule after the queue rule could never copy the mark into conntrack.
  // Admitted: the ct mark records the decision, and every later packet of
  // the flow (both directions, and ICMP errors about it, which carry the
  // same conntrack entry as `ct state related`) is accepted by `ct mark`
  // without leaving the kernel. Denied: dropped; the conntrack entry of a
  // dropped first packet is never confirmed, so later packets of a denied
  // flow are queued again (tollgate answers them from a cache and audits
  // the flow once).
  rs.rules.push_back(RuleBuilder("forward")
                         .iifnameIn(kIfaceSet, kIfaceSetId)
                         .metaMarkIs(kMarkAdmit)
                         .ctMarkSet(kMarkAdmit)
                         .counter()
                         .accept()
                         .build("admitted by tollgate (queue verdict): remember it in conntrack"));
  rs.rules.push_back(RuleBuilder("forward")
                         .iifnameIn(kIfaceSet, kIfaceSetId)
                         .metaMarkIs(kMarkDeny)
                         .counter()
                         .drop()
                         .build("denied by tollgate (queue verdict)"));
  // Echo requests: small and few, also within an admitted flow (an echo
  // "flow" is the ICMP id, which the sandbox keeps while it grows payloads).
  for (uint8_t family : {uint8_t{NFPROTO_IPV4}, uint8_t{NFPROTO_IPV6}}) {
    if (family == NFPROTO_IPV6 && !spec.ipv6_capture) {
      continue;
    }
    const bool v4 = family == NFPROTO_IPV4;
    rs.rules.push_back(
        RuleBuilder("forward")
            .iifnameIn(kIfaceSet, kIfaceSetId)
            .echoRequest(family)
            .ipLengthOver(family, v4 ? kMaxEchoIpv4TotalLength : kMaxEchoIpv6PayloadLength)
            .counter()
            .drop()
            .build("echo requests carry at most 64 bytes of payload"));
    rs.rules.push_back(RuleBuilder("forward")
                           .iifnameIn(kIfaceSet, kIfaceSetId)
                           .echoRequest(family)
                           .limitOver(kEchoRatePerSecond, kEchoBurst)
                           .counter()
                           .drop()
                           .build("echo requests are rate limited (all sandboxes together)"));
  }
  rs.rules.push_back(RuleBuilder("forward")
                         .iifnameIn(kIfaceSet, kIfaceSetId)
                         .ctMarkIs(kMarkAdmit)
                         .counter()
                         .accept()
                         .build("later packets of admitted UDP / ICMP flows, and ICMP errors "
                                "about them"));
  rs.rules.push_back(RuleBuilder("forward")
                         .iifnameIn(kIfaceSet, kIfaceSetId)
                         .l4protoUdp()
                         .ctStateNew()
                         .counter()
                         .queue(backend, spec.queue_num)
                         .build("new UDP flows: tollgate decides (no bypass: fail closed)"));
  for (uint8_t family : {uint8_t{NFPROTO_IPV4}, uint8_t{NFPROTO_IPV6}}) {
    if (family == NFPROTO_IPV6 && !spec.ipv6_capture) {
      continue;
    }
    rs.rules.push_back(RuleBuilder("forward")
                           .iifnameIn(kIfaceSet, kIfaceSetId)
                           .echoRequest(family)
                           .ctStateNew()
                           .counter()
                           .queue(backend, spec.queue_num)
                           .build("new echo requests: tollgate decides (no bypass: fail closed)"));
  }
  rs.rules.push_back(
      RuleBuilder("forward")
          .iifnameIn(kIfaceSet, kIfaceSetId)
          .counter()
          .drop()
          .build(dns ? "fail closed: TCP and DNS were redirected, other sandbox traffic is not "
                       "routed"
                     : "fail closed: TCP was redirected, other sandbox traffic is not routed"));
  rs.rules.push_back(RuleBuilder("forward")
                         .oifnameIn(kIfaceSet, kIfaceSetId)
                         .ctStateEstablishedRelated(true)
                         .counter()
                         .drop()
                         .build("no new connections into sandboxes"));

  // Anti-spoofing, appended last (rule order only matters within a chain).
  // Neighbour discovery first: DAD probes come from the unspecified
  // address, which the reverse-path check would drop.
  if (spec.ipv6_capture) {
    rs.rules.push_back(ndAccept("prerouting_filter"));
  }
  rs.rules.push_back(RuleBuilder("prerouting_filter")
                         .iifnameIn(kIfaceSet, kIfaceSetId)
                         .fibSaddrIifMissing()
                         .counter()
                         .drop()
                         .build("anti-spoofing: the source must be routable back through the "
                                "interface it came in on"));
  if (!spec.bindings.empty()) {
    if (auto ok = validateBindings(spec.bindings); !ok) {
      return ok.error();
    }
    addInetBinding(rs, spec.bindings);
    rs.rules.push_back(RuleBuilder("prerouting_filter")
                           .iifnameIn(kIfaceSet, kIfaceSetId)
                           .jump("bind")
                           .build("anti-spoofing: sandboxes with ports are bound to them"));
  }
  return rs;
}

Expr queueExpr(QueueBackend backend, uint16_t num) {
  if (backend == QueueBackend::Native) {
    return expr::Queue{num, 1, 0};
  }
  xt_NFQ_info_v3 info{};
  info.queuenum = num;
  info.queues_total = 1;
  info.flags = 0;  // no NFQ_FLAG_BYPASS
  Bytes bytes(XT_ALIGN(sizeof(info)), 0);
  std::memcpy(bytes.data(), &info, sizeof(info));
  return expr::XtTarget{"NFQUEUE", 3, std::move(bytes)};
}

bool usesQueue(const Rule& rule) {
  for (const Expr& e : rule.exprs) {
    if (std::holds_alternative<expr::Queue>(e) || std::holds_alternative<expr::XtTarget>(e)) {
      return true;
    }
  }
  return false;
}

Result<Ruleset> buildBlockRuleset(const std::vector<std::string>& interfaces_in) {
  auto interfaces = normalizeInterfaces(interfaces_in);
  if (!interfaces) {
    return interfaces.error();
  }
  Ruleset rs;
  rs.comment = "tollgate block (fail closed while tollgate is not serving); managed by tollgate";
  rs.sets = {makeIfaceSet(*interfaces), makeNdSet()};
  rs.chains.push_back(Chain{"input", "filter", NF_INET_LOCAL_IN, kPriorityFilter,
                            "block: sandboxes reach nothing on this host"});
  rs.chains.push_back(Chain{"forward", "filter", NF_INET_FORWARD, kPriorityFilter,
                            "block: nothing is routed to or from sandboxes"});
  rs.rules.push_back(ndAccept("input"));
  rs.rules.push_back(RuleBuilder("input")
                         .iifnameIn(kIfaceSet, kIfaceSetId)
                         .counter()
                         .drop()
                         .build("tollgate is not serving: sandbox traffic fails closed"));
  rs.rules.push_back(RuleBuilder("forward")
                         .iifnameIn(kIfaceSet, kIfaceSetId)
                         .counter()
                         .drop()
                         .build("tollgate is not serving: sandbox traffic fails closed"));
  rs.rules.push_back(RuleBuilder("forward")
                         .oifnameIn(kIfaceSet, kIfaceSetId)
                         .counter()
                         .drop()
                         .build("tollgate is not serving: nothing is routed into sandboxes"));
  return rs;
}

Result<void> validatePortPattern(std::string_view pattern) {
  auto bad = [&](const std::string& why) {
    return makeError("nftables: port '" + std::string(pattern) + "' " + why);
  };
  if (pattern == "*") {
    return bad(
        "would match every interface of the host; list the sandbox's ports or a prefix "
        "such as tap-a*");
  }
  const size_t star = pattern.find('*');
  if (star != std::string_view::npos && star + 1 != pattern.size()) {
    return bad("may only end in '*' (a prefix match, as in nft)");
  }
  std::string_view name = star == std::string_view::npos ? pattern : pattern.substr(0, star);
  if (auto ok = validateInterfaceName(name); !ok) {
    return ok.error();
  }
  return {};
}

Result<Ruleset> buildBindingRuleset(const std::vector<PortBinding>& bindings) {
  if (bindings.empty()) {
    return makeError("nftables: no port bindings to install");
  }
  if (auto ok = validateBindings(bindings); !ok) {
    return ok.error();
  }
  Ruleset rs;
  rs.family = NFPROTO_BRIDGE;
  rs.comment = "tollgate port binding (sandboxes[].ports); managed by tollgate, do not edit";
  rs.chains.push_back(Chain{"prerouting", "filter", kBridgeHookPrerouting, kPriorityBridgeFilter,
                            "frames from a sandbox's ports carry only its addresses"});
  // A bound sandbox talks to the host (tollgate) only: no frame from or to
  // its ports is switched to another port (lateral movement, or an uplink
  // on the bridge), whether or not br_netfilter shows bridged IP to table
  // inet tollgate. Policy never allows sandbox-to-sandbox traffic anyway
  // (sandbox sources are always denied as upstreams).
  rs.chains.push_back(Chain{"forward", "filter", kBridgeHookForward, kPriorityBridgeFilter,
                            "nothing is switched from or to a sandbox's ports"});
  for (const PortBinding& b : bindings) {
    for (const std::string& port : b.ports) {
      rs.rules.push_back(RuleBuilder("forward").iifnamePattern(port).counter().drop().build(
          "from a port of sandbox " + b.sandbox + " to another port"));
      rs.rules.push_back(RuleBuilder("forward").oifnamePattern(port).counter().drop().build(
          "from another port to a port of sandbox " + b.sandbox));
    }
  }
  for (size_t i = 0; i < bindings.size(); ++i) {
    const PortBinding& b = bindings[i];
    const std::string port_chain = "port_" + b.sandbox;
    const std::string nd_chain = "nd_" + b.sandbox;
    rs.chains.push_back(
        Chain{port_chain, "", 0, 0, "what a port of sandbox " + b.sandbox + " may send"});
    rs.chains.push_back(
        Chain{nd_chain, "", 0, 0, "which addresses sandbox " + b.sandbox + " may advertise"});
    for (const std::string& port : b.ports) {
      rs.rules.push_back(RuleBuilder("prerouting")
                             .iifnamePattern(port)
                             .counter()
                             .jump(port_chain)
                             .build("a port of sandbox " + b.sandbox));
    }
    // Its own sources of one family, marked for table inet tollgate.
    auto ownSources = [&](bool v6) {
      for (const Prefix& p : b.sources) {
        if (p.v6 == v6) {
          rs.rules.push_back(RuleBuilder(port_chain)
                                 .saddrIn(NFPROTO_BRIDGE, p)
                                 .metaMarkSet(bindMark(i))
                                 .accept()
                                 .build("its own source; the mark tells table inet tollgate"));
        }
      }
    };
    ownSources(false);
    rs.rules.push_back(RuleBuilder(port_chain)
                           .saddrIn(NFPROTO_BRIDGE, unspecifiedV4())
                           .accept()
                           .build("DHCP before the sandbox has an address"));
    for (const Prefix& p : b.sources) {
      if (!p.v6) {
        rs.rules.push_back(
            RuleBuilder(port_chain).arpSenderIn(p).accept().build("ARP for its own address"));
      }
    }
    rs.rules.push_back(RuleBuilder(port_chain)
                           .arpSenderIn(unspecifiedV4())
                           .accept()
                           .build("ARP probes (RFC 5227) have sender 0.0.0.0"));
    rs.rules.push_back(RuleBuilder(port_chain)
                           .ndNeighborAdvert()
                           .jump(nd_chain)
                           .build("neighbour advertisements: only for its own addresses"));
    ownSources(true);
    rs.rules.push_back(RuleBuilder(port_chain)
                           .saddrIn(NFPROTO_BRIDGE, linkLocalV6())
                           .accept()
                           .build("IPv6 link-local: neighbour discovery, router solicitation"));
    rs.rules.push_back(RuleBuilder(port_chain)
                           .saddrIn(NFPROTO_BRIDGE, unspecifiedV6())
                           .accept()
                           .build("duplicate address detection"));
    rs.rules.push_back(RuleBuilder(port_chain)
                           .counter()
                           .drop()
                           .build("spoofed source or sender, or neither IPv4, IPv6 nor ARP"));
    for (const Prefix& p : b.sources) {
      if (p.v6) {
        rs.rules.push_back(RuleBuilder(nd_chain).ndTargetIn(p).ret().build("its own address"));
      }
    }
    rs.rules.push_back(
        RuleBuilder(nd_chain).ndTargetIn(linkLocalV6()).ret().build("a link-local address"));
    rs.rules.push_back(RuleBuilder(nd_chain).counter().drop().build(
        "advertises an address that is not sandbox " + b.sandbox + "'s"));
  }
  return rs;
}

std::vector<Message> planReplace(const Ruleset& ruleset) {
  const uint32_t f = ruleset.family;
  std::vector<Message> out;
  out.emplace_back(msg::EnsureTable{f});
  out.emplace_back(msg::DeleteTable{f});
  out.emplace_back(msg::CreateTable{ruleset.comment, f});
  for (const Set& set : ruleset.sets) {
    out.emplace_back(msg::AddSet{set, f});
    if (!set.elements.empty()) {
      out.emplace_back(msg::AddSetElements{set, f});
    }
  }
  for (const Chain& chain : ruleset.chains) {
    out.emplace_back(msg::AddChain{chain, f});
  }
  for (const Rule& rule : ruleset.rules) {
    out.emplace_back(msg::AddRule{rule, f});
  }
  return out;
}

std::vector<Message> planRemove(uint32_t family) {
  return {msg::EnsureTable{family}, msg::DeleteTable{family}};
}

uint32_t messageFamily(const Message& message) {
  return std::visit([](const auto& m) { return m.family; }, message);
}

std::string tableLabel(uint32_t family) {
  return std::string(family == NFPROTO_BRIDGE ? "table bridge " : "table inet ") + kTableName;
}

std::string describe(const Message& message) {
  const std::string table = tableLabel(messageFamily(message));
  struct Visitor {
    const std::string& table;
    std::string operator()(const msg::EnsureTable&) const { return "prepare " + table; }
    std::string operator()(const msg::DeleteTable&) const { return "delete existing " + table; }
    std::string operator()(const msg::CreateTable&) const { return "create " + table; }
    std::string operator()(const msg::AddSet& m) const { return "create set " + m.set.name; }
    std::string operator()(const msg::AddSetElements& m) const {
      std::string out = "add elements to set " + m.set.name + " {";
      for (size_t i = 0; i < m.set.elements.size(); ++i) {
        out += (i == 0 ? " " : ", ") + m.set.elements[i].text;
      }
      return out + " }";
    }
    std::string operator()(const msg::AddChain& m) const {
      if (m.chain.type.empty()) {
        return "create chain " + m.chain.name;
      }
      return "create chain " + m.chain.name + " (type " + m.chain.type + ", priority " +
             std::to_string(m.chain.priority) + ")";
    }
    std::string operator()(const msg::AddRule& m) const {
      return "add rule to chain " + m.rule.chain + ": `" + m.rule.text + "`";
    }
  };
  return std::visit(Visitor{table}, message);
}

}  // namespace tollgate::nat
