// Policy routing for `capture: tproxy`: TPROXY marks the packets it diverts,
// and only a routing rule "fwmark kTproxyMark -> table kTproxyTable" with a
// local default route in that table delivers them to the local listener
// (instead of forwarding them to the address the sandbox dialled). Installed
// and removed through rtnetlink (libmnl), for IPv4 and IPv6; idempotent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace tollgate::nat {

inline constexpr uint32_t kTproxyMark = 0x74670003;  // "tg" + 3 (1, 2: NFQUEUE verdicts)
inline constexpr uint32_t kTproxyTable = 7467;
inline constexpr uint32_t kTproxyRulePriority = 7467;

// Adds (or keeps) `ip rule fwmark kTproxyMark lookup kTproxyTable` and
// `ip route local default dev lo table kTproxyTable`, both families.
Result<void> installTproxyRouting();
// Removes both again; absent entries are not an error.
Result<void> removeTproxyRouting();

// TPROXY fails silently on bridged traffic while br_netfilter hands bridged
// packets to the IP hooks (net.bridge.bridge-nf-call-iptables = 1, or
// ip6tables for IPv6): they reach INPUT and are reset. An error naming the
// bridge and the sysctl when one of `interfaces` is such a bridge.
Result<void> checkTproxyUsable(const std::vector<std::string>& interfaces, bool ipv6);

}  // namespace tollgate::nat
