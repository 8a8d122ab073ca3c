// nat: what the port binding (sandboxes[].ports, see PortBinding in nat.h)
// dropped, per sandbox and check, read from the counters of the rules that
// drop. For operators: every takeover or spoofing attempt from a bound port
// is dropped by one of four chains, and each ends in `counter drop`:
//   source        bridge port_<sandbox>: a frame from the sandbox's bridge
//                 port with a source (or ARP sender) that is not its own,
//                 or neither IPv4, IPv6 nor ARP;
//   neighbour     bridge nd_<sandbox>: a neighbour advertisement from its
//                 port for an address that is not its own;
//   routed_source inet own_<sandbox>: a packet from its routed port (a tap
//                 in gateway.interfaces) with a source that is not its own;
//   foreign_port  inet from_<sandbox>: one of its sources arriving from a
//                 port that is not its own.
// The kernel's counters start at zero whenever the tables are replaced
// (start, a reload that changes ports or sources); BindingDropTotals keeps
// totals across that.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace tollgate::nat {

struct DumpedRule;

enum class BindingCheck : size_t { kSource, kNeighbour, kRoutedSource, kForeignPort };
inline constexpr std::array<BindingCheck, 4> kBindingChecks = {
    BindingCheck::kSource, BindingCheck::kNeighbour, BindingCheck::kRoutedSource,
    BindingCheck::kForeignPort};

// "source" | "neighbour" | "routed_source" | "foreign_port": the metric
// label and the key in `tollgate status`.
std::string_view bindingCheckName(BindingCheck check);

// Dropped packets (frames) of one sandbox, by check.
struct BindingCounts {
  std::array<uint64_t, kBindingChecks.size()> drops{};
  uint64_t& operator[](BindingCheck c) { return drops[static_cast<size_t>(c)]; }
  uint64_t operator[](BindingCheck c) const { return drops[static_cast<size_t>(c)]; }
  bool operator==(const BindingCounts&) const = default;
};
// By sandbox name; every sandbox whose chains are installed is present
// (with zeros when nothing was dropped).
using BindingDrops = std::map<std::string, BindingCounts>;

// The sandbox and check whose drops chain `chain` of table `<family>
// tollgate` counts (family: kFamilyBridge or kFamilyInet of ruleset.h), or
// nullopt for every other chain. Pure.
std::optional<std::pair<std::string, BindingCheck>> bindingChainOf(uint32_t family,
                                                                   std::string_view chain);

// The binding drops in the rules of a dump of both tollgate tables, in the
// kernel's order: per binding chain, the packets of its last rule. Rules of
// other tables and chains are ignored. Fails, naming the chain, when a
// binding chain's last rule is not `counter drop` (the table is not the one
// tollgate installs). Pure.
Result<BindingDrops> tallyBindingDrops(const std::vector<DumpedRule>& rules);

// Reads the counters from the kernel (rule dumps of `table bridge tollgate`
// and `table inet tollgate`, in the calling thread's network namespace).
// Empty when no bindings are installed. Needs CAP_NET_ADMIN.
Result<BindingDrops> readBindingDrops();

// What grew from `before` to `after` (sandbox, check, by how much), in
// sandbox and check order. Pure.
struct BindingDropIncrease {
  std::string sandbox;
  BindingCheck check = BindingCheck::kSource;
  uint64_t packets = 0;
  bool operator==(const BindingDropIncrease&) const = default;
};
std::vector<BindingDropIncrease> bindingDropIncreases(const BindingDrops& before,
                                                      const BindingDrops& after);
// "untrusted: source +3, neighbour +1; trusted: foreign_port +2".
std::string describeIncreases(const std::vector<BindingDropIncrease>& increases);

// Totals since start across table replacements: what each read of the
// kernel's counters adds on top of what replaced tables had counted.
class BindingDropTotals {
 public:
  // Takes the counters just read. A counter below the last one read (the
  // tables were replaced behind our back, or its sandbox lost its ports)
  // started again from zero: what it had counted is kept.
  void observe(const BindingDrops& now);
  // The tables were just replaced, so every counter starts again at zero:
  // call observe() with a read taken right before the replacement, then
  // this.
  void tablesReplaced();
  // offset + last read, for every sandbox ever seen.
  BindingDrops totals() const;

 private:
  BindingDrops offset_;
  BindingDrops last_;
};

}  // namespace tollgate::nat
