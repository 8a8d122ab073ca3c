#include "nat/binding_counters.h"

#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include <cerrno>
#include <cstring>

#include "nat/nat.h"
#include "nat/nf_socket.h"
#include "nat/nft_batch.h"
#include "nat/ruleset.h"

namespace tollgate::nat {
namespace {

// A dump that raced a change of the ruleset (NLM_F_DUMP_INTR) is read again;
// only another process changing the table that often makes this fail.
constexpr int kDumpAttempts = 3;

// Chain name prefixes, as buildBindingRuleset() and buildCaptureRuleset()
// name the chains (see ruleset.cc).
struct ChainKind {
  uint32_t family;
  std::string_view prefix;
  BindingCheck check;
};
constexpr ChainKind kChainKinds[] = {
    {kFamilyBridge, "port_", BindingCheck::kSource},
    {kFamilyBridge, "nd_", BindingCheck::kNeighbour},
    {kFamilyInet, "own_", BindingCheck::kRoutedSource},
    {kFamilyInet, "from_", BindingCheck::kForeignPort},
};

// Every rule of table `<family> tollgate`, in the kernel's order; empty when
// the table does not exist.
Result<std::vector<DumpedRule>> dumpRules(uint32_t family) {
  for (int attempt = 0; attempt < kDumpAttempts; ++attempt) {
    auto sock = NfSocket::open();
    if (!sock) {
      return sock.error();
    }
    const uint32_t seq = initialSeq();
    auto request = encodeGetRules(seq, family);
    if (!request) {
      return request.error();
    }
    if (auto sent = sock->send(*request); !sent) {
      return sent.error();
    }
    std::vector<DumpedRule> rules;
    bool interrupted = false;
    bool done = false;
    const auto deadline = NfClock::now() + kAnswerDeadline;
    while (!done) {
      auto replies = sock->receive(deadline);
      if (!replies) {
        return replies.error();
      }
      if (!replies->has_value()) {
        return makeError("nftables: no answer from the kernel to reading the rules of " +
                         tableLabel(family));
      }
      for (const Reply& r : **replies) {
        if (r.seq != seq) {
          continue;
        }
        interrupted = interrupted || (r.flags & NLM_F_DUMP_INTR) != 0;
        if (r.rule) {
          rules.push_back(*r.rule);
        } else if (r.type == NLMSG_DONE) {
          done = true;
        } else if (r.type == NLMSG_ERROR && r.error != 0) {
          if (r.error == ENOENT ||
              (family == kFamilyBridge && (r.error == EAFNOSUPPORT || r.error == EOPNOTSUPP))) {
            return std::vector<DumpedRule>{};  // no table (or no bridge family): nothing bound
          }
          std::string text = "nftables: reading the rules of " + tableLabel(family) +
                             " failed: " + std::strerror(r.error);
          if (r.error == EPERM) {
            text += " (needs CAP_NET_ADMIN in this network namespace)";
          }
          return makeError(std::move(text));
        }
      }
    }
    if (!interrupted) {
      return rules;
    }
  }
  return makeError("nftables: the rules of " + tableLabel(family) +
                   " kept changing while being read (another process editing it?)");
}

}  // namespace

std::string_view bindingCheckName(BindingCheck check) {
  switch (check) {
    case BindingCheck::kSource:
      return "source";
    case BindingCheck::kNeighbour:
      return "neighbour";
    case BindingCheck::kRoutedSource:
      return "routed_source";
    case BindingCheck::kForeignPort:
      return "foreign_port";
  }
  return "unknown";
}

std::optional<std::pair<std::string, BindingCheck>> bindingChainOf(uint32_t family,
                                                                   std::string_view chain) {
  for (const ChainKind& k : kChainKinds) {
    if (k.family == family && chain.size() > k.prefix.size() && chain.starts_with(k.prefix)) {
      return std::pair{std::string(chain.substr(k.prefix.size())), k.check};
    }
  }
  return std::nullopt;
}

Result<BindingDrops> tallyBindingDrops(const std::vector<DumpedRule>& rules) {
  // The last rule seen per chain; the dump lists a chain's rules in order.
  std::map<std::pair<uint32_t, std::string>, const DumpedRule*> last;
  for (const DumpedRule& r : rules) {
    if (r.table == kTableName && bindingChainOf(r.family, r.chain)) {
      last[{r.family, r.chain}] = &r;
    }
  }
  BindingDrops out;
  for (const auto& [key, rule] : last) {
    if (!rule->packets || !rule->drops) {
      return makeError("nftables: the last rule of chain " + key.second + " in " +
                       tableLabel(key.first) +
                       " is not `counter drop` (changed outside tollgate?); restart tollgate to "
                       "reinstall its tables");
    }
    auto [sandbox, check] = *bindingChainOf(key.first, key.second);
    out[sandbox][check] = *rule->packets;
  }
  return out;
}

Result<BindingDrops> readBindingDrops() {
  std::vector<DumpedRule> rules;
  for (uint32_t family : {kFamilyBridge, kFamilyInet}) {
    auto dumped = dumpRules(family);
    if (!dumped) {
      return dumped.error();
    }
    rules.insert(rules.end(), dumped->begin(), dumped->end());
  }
  return tallyBindingDrops(rules);
}

std::vector<BindingDropIncrease> bindingDropIncreases(const BindingDrops& before,
                                                      const BindingDrops& after) {
  std::vector<BindingDropIncrease> out;
  for (const auto& [sandbox, counts] : after) {
    auto it = before.find(sandbox);
    const BindingCounts was = it == before.end() ? BindingCounts{} : it->second;
    for (BindingCheck c : kBindingChecks) {
      if (counts[c] > was[c]) {
        out.push_back(BindingDropIncrease{sandbox, c, counts[c] - was[c]});
      }
    }
  }
  return out;
}

std::string describeIncreases(const std::vector<BindingDropIncrease>& increases) {
  std::string out;
  const std::string* sandbox = nullptr;
  for (const BindingDropIncrease& i : increases) {
    if (sandbox == nullptr || *sandbox != i.sandbox) {
      out += (out.empty() ? "" : "; ") + i.sandbox + ": ";
      sandbox = &i.sandbox;
    } else {
      out += ", ";
    }
    out += std::string(bindingCheckName(i.check)) + " +" + std::to_string(i.packets);
  }
  return out;
}

void BindingDropTotals::observe(const BindingDrops& now) {
  for (auto& [sandbox, last] : last_) {
    auto it = now.find(sandbox);
    const BindingCounts current = it == now.end() ? BindingCounts{} : it->second;  // gone: zeros
    for (BindingCheck c : kBindingChecks) {
      if (current[c] < last[c]) {
        offset_[sandbox][c] += last[c];
      }
    }
    last = current;
  }
  for (const auto& [sandbox, current] : now) {
    last_.emplace(sandbox, current);  // sandboxes seen for the first time
  }
}

void BindingDropTotals::tablesReplaced() {
  for (auto& [sandbox, last] : last_) {
    for (BindingCheck c : kBindingChecks) {
      offset_[sandbox][c] += last[c];
    }
    last = BindingCounts{};
  }
}

BindingDrops BindingDropTotals::totals() const {
  BindingDrops out = offset_;
  for (const auto& [sandbox, last] : last_) {
    for (BindingCheck c : kBindingChecks) {
      out[sandbox][c] += last[c];
    }
  }
  return out;
}

}  // namespace tollgate::nat
