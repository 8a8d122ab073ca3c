#include "nat/nat.h"

#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "nat/nf_socket.h"
#include "nat/nft_batch.h"
#include "nat/ruleset.h"

namespace tollgate::nat {
namespace {

using Clock = NfClock;

Result<bool> tableExistsIn(uint32_t family);
Result<std::vector<Message>> bindingPlan(const std::vector<PortBinding>& bindings);

// Sends `messages` as one transaction and reads back every per-message ACK.
// On a per-message error, *failed / *failed_errno (if given) name the first.
Result<void> runBatch(const std::vector<Message>& messages, const Message** failed = nullptr,
                      int* failed_errno = nullptr) {
  auto sock = NfSocket::open();
  if (!sock) {
    return sock.error();
  }
  auto batch = encodeBatch(messages, initialSeq());
  if (!batch) {
    return batch.error();
  }
  if (auto sent = sock->send(batch->bytes); !sent) {
    return sent.error();
  }
  BatchAnswers answers(messages, *batch);
  const auto deadline = Clock::now() + kAnswerDeadline;
  while (!answers.complete()) {
    auto replies = sock->receive(deadline);
    if (!replies) {
      return replies.error();
    }
    if (!replies->has_value()) {
      break;  // outcome() names the first unanswered message
    }
    for (const Reply& r : **replies) {
      answers.add(r);
    }
  }
  if (failed != nullptr && failed_errno != nullptr) {
    answers.firstError(failed, failed_errno);
  }
  return answers.outcome();
}

}  // namespace

std::vector<std::string> lateralTrafficWarnings(const std::vector<std::string>& interfaces) {
  auto enabled = [](const char* path) {
    std::ifstream in(path);
    std::string value;
    return static_cast<bool>(in >> value) && value == "1";
  };
  const bool v4 = enabled("/proc/sys/net/bridge/bridge-nf-call-iptables");
  const bool v6 = enabled("/proc/sys/net/bridge/bridge-nf-call-ip6tables");
  std::vector<std::string> out;
  for (const std::string& name : interfaces) {
    if (validateInterfaceName(name).ok() &&
        ::access(("/sys/class/net/" + name + "/bridge").c_str(), F_OK) == 0 && !(v4 && v6)) {
      out.push_back("interface " + name + " is a bridge and net.bridge.bridge-nf-call-ip" +
                    (v4 ? "6" : "") +
                    "tables is not 1 (br_netfilter off?): traffic between sandboxes on it is "
                    "switched without passing tollgate's table (lateral movement is not "
                    "governed); set net.bridge.bridge-nf-call-iptables and -ip6tables to 1, or "
                    "isolate the bridge ports (`bridge link set dev PORT isolated on`)");
    }
  }
  return out;
}

const char* queueBackendName(QueueBackend backend) {
  return backend == QueueBackend::Native ? "native" : "compat";
}

// Probing by trying: the whole capture table goes in one transaction, so a
// kernel that refuses the native queue expression (ENOENT: no such
// expression type) leaves nothing behind, and the same table is sent again
// with xt NFQUEUE through nft_compat. Any other failure is reported as is.
Result<QueueBackend> installCapture(const CaptureSpec& spec) {
  std::vector<QueueBackend> order;
  if (spec.queue_backend) {
    order = {*spec.queue_backend};
  } else {
    order = {QueueBackend::Native, QueueBackend::Compat};
  }
  auto binding_plan = bindingPlan(spec.bindings);
  if (!binding_plan) {
    return binding_plan.error();
  }
  std::string native_error;
  for (QueueBackend backend : order) {
    auto ruleset = buildCaptureRuleset(spec, backend);
    if (!ruleset) {
      return ruleset.error();
    }
    auto plan = planReplace(*ruleset);
    plan.insert(plan.end(), binding_plan->begin(), binding_plan->end());
    int failed_errno = 0;
    const Message* failed = nullptr;
    auto r = runBatch(plan, &failed, &failed_errno);
    if (r) {
      return backend;
    }
    const bool queue_refused = failed != nullptr && std::holds_alternative<msg::AddRule>(*failed) &&
                               usesQueue(std::get<msg::AddRule>(*failed).rule) &&
                               (failed_errno == ENOENT || failed_errno == EOPNOTSUPP);
    if (backend == QueueBackend::Native && !spec.queue_backend && queue_refused) {
      native_error = r.message();
      continue;
    }
    if (!native_error.empty()) {
      return makeError(r.message() +
                       "; the native queue expression was refused too: " + native_error);
    }
    return r.error();
  }
  return makeError("nftables: no queue backend to try");
}

Result<void> installBlock(const std::vector<std::string>& interfaces) {
  auto ruleset = buildBlockRuleset(interfaces);
  if (!ruleset) {
    return ruleset.error();
  }
  auto binding_plan = bindingPlan({});
  if (!binding_plan) {
    return binding_plan.error();
  }
  auto plan = planReplace(*ruleset);
  plan.insert(plan.end(), binding_plan->begin(), binding_plan->end());
  return runBatch(plan);
}

Result<void> removeTable() {
  auto plan = bindingPlan({});
  if (!plan) {
    return plan.error();
  }
  auto inet = planRemove();
  plan->insert(plan->begin(), inet.begin(), inet.end());
  return runBatch(*plan);
}

Result<bool> tableExists() { return tableExistsIn(kFamilyInet); }

Result<bool> bindingTableExists() { return tableExistsIn(kFamilyBridge); }

namespace {

Result<bool> tableExistsIn(uint32_t family) {
  auto sock = NfSocket::open();
  if (!sock) {
    return sock.error();
  }
  const uint32_t seq = initialSeq();
  auto request = encodeGetTable(seq, family);
  if (!request) {
    return request.error();
  }
  if (auto sent = sock->send(*request); !sent) {
    return sent.error();
  }
  bool found = false;
  const auto deadline = Clock::now() + kAnswerDeadline;
  for (;;) {
    auto replies = sock->receive(deadline);
    if (!replies) {
      return replies.error();
    }
    if (!replies->has_value()) {
      return makeError("nftables: no answer from the kernel to a table lookup");
    }
    for (const Reply& r : **replies) {
      if (r.seq != seq) {
        continue;
      }
      if (r.type == nftMessageType(NFT_MSG_NEWTABLE)) {
        found = true;
      } else if (r.type == NLMSG_ERROR) {
        if (r.error == 0) {
          return found;
        }
        if (r.error == ENOENT) {
          return false;
        }
        if (family == kFamilyBridge && (r.error == EAFNOSUPPORT || r.error == EOPNOTSUPP)) {
          return false;  // no bridge family: no binding table either
        }
        std::string text =
            "nftables: looking up " + tableLabel(family) + " failed: " + std::strerror(r.error);
        if (r.error == EPERM) {
          text += " (needs CAP_NET_ADMIN in this network namespace)";
        } else if (r.error == EAFNOSUPPORT || r.error == EOPNOTSUPP) {
          text += " (kernel lacks nf_tables for the inet family?)";
        }
        return makeError(std::move(text));
      }
    }
  }
}

// The binding table's part of a capture batch: replaced by the one for
// `bindings`, or, without any, removed when an earlier configuration left
// one (and not touched otherwise, so a kernel without the bridge family
// only matters to configurations that use ports).
Result<std::vector<Message>> bindingPlan(const std::vector<PortBinding>& bindings) {
  if (!bindings.empty()) {
    auto rs = buildBindingRuleset(bindings);
    if (!rs) {
      return rs.error();
    }
    return planReplace(*rs);
  }
  auto exists = tableExistsIn(kFamilyBridge);
  if (!exists) {
    return exists.error();
  }
  return *exists ? planRemove(kFamilyBridge) : std::vector<Message>{};
}

}  // namespace

}  // namespace tollgate::nat
