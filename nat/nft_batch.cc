#include "nat/nft_batch.h"

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "base/handles.h"

namespace tollgate::nat {
namespace {

// Page and per-message overrun sizes as nft uses them: a message may start
// anywhere in a page and must fit in the overrun area after it.
size_t batchPageSize() { return static_cast<size_t>(getpagesize()) * 32; }
size_t maxMessageSize() { return UINT16_MAX + static_cast<size_t>(getpagesize()); }

Error oom(const char* what) {
  return makeError(std::string("nftables: out of memory building ") + what);
}

// userdata TLVs: a comment (and, for sets, the key byte order nft expects).
Result<NftUdata> makeUdata(uint8_t comment_type, const std::string& comment) {
  NftUdata ud(nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN));
  if (!ud) {
    return oom("userdata");
  }
  if (!comment.empty() && !nftnl_udata_put_strz(ud.get(), comment_type, comment.c_str())) {
    return makeError("nftables: comment too long: \"" + comment + "\"");
  }
  return ud;
}

Result<NftTable> makeTable(uint32_t family, const std::string* comment) {
  NftTable t(nftnl_table_alloc());
  if (!t) {
    return oom("table");
  }
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, kTableName);
  nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, family);
  if (comment != nullptr && !comment->empty()) {
    auto ud = makeUdata(NFTNL_UDATA_TABLE_COMMENT, *comment);
    if (!ud) {
      return ud.error();
    }
    nftnl_table_set_data(t.get(), NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(ud->get()),
                         nftnl_udata_buf_len(ud->get()));  // copies
  }
  return t;
}

Result<NftSet> makeSet(uint32_t family, const Set& spec, bool with_definition) {
  NftSet s(nftnl_set_alloc());
  if (!s) {
    return oom("set");
  }
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, kTableName);
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, spec.name.c_str());
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, family);
  nftnl_set_set_u32(s.get(), NFTNL_SET_ID, spec.id);
  if (with_definition) {
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, spec.key_type);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, spec.key_len);
    nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, spec.flags);
    if ((spec.flags & NFT_SET_CONSTANT) != 0) {
      nftnl_set_set_u32(s.get(), NFTNL_SET_DESC_SIZE, static_cast<uint32_t>(spec.elements.size()));
    }
    auto ud = makeUdata(NFTNL_UDATA_SET_COMMENT, spec.comment);
    if (!ud) {
      return ud.error();
    }
    if (!nftnl_udata_put_u32(ud->get(), NFTNL_UDATA_SET_KEYBYTEORDER, spec.key_byteorder)) {
      return oom("set userdata");
    }
    nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud->get()),
                       nftnl_udata_buf_len(ud->get()));  // copies
    return s;
  }
  for (const SetElement& element : spec.elements) {
    NftSetElem e(nftnl_set_elem_alloc());
    if (!e) {
      return oom("set element");
    }
    nftnl_set_elem_set(e.get(), NFTNL_SET_ELEM_KEY, element.key.data(),
                       static_cast<uint32_t>(element.key.size()));
    nftnl_set_elem_add(s.get(), e.release());  // the set owns the element now
  }
  return s;
}

Result<NftChain> makeChain(uint32_t family, const Chain& spec) {
  NftChain c(nftnl_chain_alloc());
  if (!c) {
    return oom("chain");
  }
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, kTableName);
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, spec.name.c_str());
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, family);
  if (!spec.type.empty()) {  // a base chain; a regular one has no hook, priority or policy
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, spec.type.c_str());
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, spec.hook);
    nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, spec.priority);
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);  // other tables keep their say
  }
  auto ud = makeUdata(NFTNL_UDATA_CHAIN_COMMENT, spec.comment);
  if (!ud) {
    return ud.error();
  }
  nftnl_chain_set_data(c.get(), NFTNL_CHAIN_USERDATA, nftnl_udata_buf_data(ud->get()),
                       nftnl_udata_buf_len(ud->get()));  // copies
  return c;
}

Result<NftExpr> makeExpr(const Expr& e) {
  auto alloc = [](const char* name) { return NftExpr(nftnl_expr_alloc(name)); };
  auto data = [](nftnl_expr* x, uint16_t attr, const Bytes& b) {
    nftnl_expr_set(x, attr, b.data(), static_cast<uint32_t>(b.size()));
  };
  NftExpr x;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, expr::Meta>) {
          if ((x = alloc("meta"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_META_KEY, v.key);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_META_DREG, v.dreg);
          }
        } else if constexpr (std::is_same_v<T, expr::Ct>) {
          if ((x = alloc("ct"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_CT_KEY, v.key);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_CT_DREG, v.dreg);
          }
        } else if constexpr (std::is_same_v<T, expr::Payload>) {
          if ((x = alloc("payload"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_PAYLOAD_BASE, v.base);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_PAYLOAD_OFFSET, v.offset);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_PAYLOAD_LEN, v.len);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_PAYLOAD_DREG, v.dreg);
          }
        } else if constexpr (std::is_same_v<T, expr::Cmp>) {
          if ((x = alloc("cmp"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_CMP_SREG, v.sreg);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_CMP_OP, v.op);
            data(x.get(), NFTNL_EXPR_CMP_DATA, v.data);
          }
        } else if constexpr (std::is_same_v<T, expr::Bitwise>) {
          if ((x = alloc("bitwise"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_BITWISE_SREG, v.sreg);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_BITWISE_DREG, v.dreg);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_BITWISE_LEN,
                               static_cast<uint32_t>(v.mask.size()));
            data(x.get(), NFTNL_EXPR_BITWISE_MASK, v.mask);
            data(x.get(), NFTNL_EXPR_BITWISE_XOR, v.xor_bits);
          }
        } else if constexpr (std::is_same_v<T, expr::Lookup>) {
          if ((x = alloc("lookup"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_LOOKUP_SREG, v.sreg);
            nftnl_expr_set_str(x.get(), NFTNL_EXPR_LOOKUP_SET, v.set.c_str());
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_LOOKUP_SET_ID, v.set_id);
            if (v.inverted) {
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
            }
          }
        } else if constexpr (std::is_same_v<T, expr::Immediate>) {
          if ((x = alloc("immediate"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_IMM_DREG, v.dreg);
            data(x.get(), NFTNL_EXPR_IMM_DATA, v.data);
          }
        } else if constexpr (std::is_same_v<T, expr::Verdict>) {
          if ((x = alloc("immediate"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(v.code));
          }
        } else if constexpr (std::is_same_v<T, expr::Jump>) {
          if ((x = alloc("immediate"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(NFT_JUMP));
            nftnl_expr_set_str(x.get(), NFTNL_EXPR_IMM_CHAIN, v.chain.c_str());
          }
        } else if constexpr (std::is_same_v<T, expr::Redirect>) {
          if ((x = alloc("redir"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_REDIR_REG_PROTO_MIN, v.proto_min_reg);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_REDIR_FLAGS, v.flags);
          }
        } else if constexpr (std::is_same_v<T, expr::Counter>) {
          x = alloc("counter");
        } else if constexpr (std::is_same_v<T, expr::Reject>) {
          if ((x = alloc("reject"))) {
            // libnftnl keeps the type as u32 and the code as u8 (its
            // NFTA_REJECT_ICMP_CODE attribute is one byte): set each at its
            // own width.
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_REJECT_TYPE, v.type);
            if (v.type != NFT_REJECT_TCP_RST) {  // a reset has no code; nft sends none
              nftnl_expr_set_u8(x.get(), NFTNL_EXPR_REJECT_CODE, v.code);
            }
          }
        } else if constexpr (std::is_same_v<T, expr::CtSet>) {
          if ((x = alloc("ct"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_CT_KEY, v.key);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_CT_SREG, v.sreg);
          }
        } else if constexpr (std::is_same_v<T, expr::Limit>) {
          if ((x = alloc("limit"))) {
            nftnl_expr_set_u64(x.get(), NFTNL_EXPR_LIMIT_RATE, v.rate);
            nftnl_expr_set_u64(x.get(), NFTNL_EXPR_LIMIT_UNIT, v.unit_seconds);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_LIMIT_BURST, v.burst);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_LIMIT_FLAGS, v.flags);
          }
        } else if constexpr (std::is_same_v<T, expr::Fib>) {
          if ((x = alloc("fib"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_FIB_FLAGS, v.flags);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_FIB_RESULT, v.result);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_FIB_DREG, v.dreg);
          }
        } else if constexpr (std::is_same_v<T, expr::Queue>) {
          if ((x = alloc("queue"))) {
            nftnl_expr_set_u16(x.get(), NFTNL_EXPR_QUEUE_NUM, v.num);
            nftnl_expr_set_u16(x.get(), NFTNL_EXPR_QUEUE_TOTAL, v.total);
            nftnl_expr_set_u16(x.get(), NFTNL_EXPR_QUEUE_FLAGS, v.flags);
          }
        } else if constexpr (std::is_same_v<T, expr::XtTarget>) {
          // nft_compat's "target" expression; libnftnl's setter keeps the
          // pointer (it does not copy), so hand it a copy the expression
          // owns and frees (nftnl_expr_free frees TG_INFO and TG_NAME).
          if ((x = alloc("target"))) {
            void* info = std::malloc(v.info.size());
            if (info == nullptr) {
              x.reset();
            } else {
              std::memcpy(info, v.info.data(), v.info.size());
              nftnl_expr_set_str(x.get(), NFTNL_EXPR_TG_NAME, v.name.c_str());
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_TG_REV, v.rev);
              nftnl_expr_set(x.get(), NFTNL_EXPR_TG_INFO, info,
                             static_cast<uint32_t>(v.info.size()));
            }
          }
        } else if constexpr (std::is_same_v<T, expr::Tproxy>) {
          if ((x = alloc("tproxy"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_TPROXY_FAMILY, v.family);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_TPROXY_REG_PORT, v.port_reg);
          }
        } else if constexpr (std::is_same_v<T, expr::MetaSet>) {
          if ((x = alloc("meta"))) {
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_META_KEY, v.key);
            nftnl_expr_set_u32(x.get(), NFTNL_EXPR_META_SREG, v.sreg);
          }
        } else {
          static_assert(sizeof(T) == 0, "unhandled expression");
        }
      },
      e);
  if (!x) {
    return oom("expression");
  }
  return x;
}

Result<NftRule> makeRule(uint32_t family, const Rule& spec) {
  NftRule r(nftnl_rule_alloc());
  if (!r) {
    return oom("rule");
  }
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, kTableName);
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, spec.chain.c_str());
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, family);
  for (const Expr& e : spec.exprs) {
    auto x = makeExpr(e);
    if (!x) {
      return x.error();
    }
    nftnl_rule_add_expr(r.get(), x->release());  // the rule owns the expression now
  }
  auto ud = makeUdata(NFTNL_UDATA_RULE_COMMENT, spec.comment);
  if (!ud) {
    return ud.error();
  }
  nftnl_rule_set_data(r.get(), NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud->get()),
                      nftnl_udata_buf_len(ud->get()));  // copies
  return r;
}

constexpr uint16_t kCreate = NLM_F_CREATE | NLM_F_ACK;
constexpr uint16_t kCreateExcl = NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;

// Writes one message at `buf` (inside the batch's overrun area).
Result<void> encodeMessage(char* buf, const Message& m, uint32_t seq) {
  const uint32_t family = messageFamily(m);
  auto hdr = [&](uint16_t type, uint16_t flags) {
    return nftnl_nlmsg_build_hdr(buf, type, static_cast<uint16_t>(family), flags, seq);
  };
  return std::visit(
      [&](const auto& v) -> Result<void> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, msg::EnsureTable> || std::is_same_v<T, msg::DeleteTable>) {
          auto t = makeTable(family, nullptr);
          if (!t) {
            return t.error();
          }
          const bool ensure = std::is_same_v<T, msg::EnsureTable>;
          nftnl_table_nlmsg_build_payload(
              hdr(ensure ? NFT_MSG_NEWTABLE : NFT_MSG_DELTABLE, ensure ? kCreate : NLM_F_ACK),
              t->get());
        } else if constexpr (std::is_same_v<T, msg::CreateTable>) {
          auto t = makeTable(family, &v.comment);
          if (!t) {
            return t.error();
          }
          nftnl_table_nlmsg_build_payload(hdr(NFT_MSG_NEWTABLE, kCreateExcl), t->get());
        } else if constexpr (std::is_same_v<T, msg::AddSet>) {
          auto s = makeSet(family, v.set, true);
          if (!s) {
            return s.error();
          }
          nftnl_set_nlmsg_build_payload(hdr(NFT_MSG_NEWSET, kCreateExcl), s->get());
        } else if constexpr (std::is_same_v<T, msg::AddSetElements>) {
          auto s = makeSet(family, v.set, false);
          if (!s) {
            return s.error();
          }
          nftnl_set_elems_nlmsg_build_payload(hdr(NFT_MSG_NEWSETELEM, kCreateExcl), s->get());
        } else if constexpr (std::is_same_v<T, msg::AddChain>) {
          auto c = makeChain(family, v.chain);
          if (!c) {
            return c.error();
          }
          nftnl_chain_nlmsg_build_payload(hdr(NFT_MSG_NEWCHAIN, kCreateExcl), c->get());
        } else if constexpr (std::is_same_v<T, msg::AddRule>) {
          auto r = makeRule(family, v.rule);
          if (!r) {
            return r.error();
          }
          nftnl_rule_nlmsg_build_payload(
              hdr(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK), r->get());
        } else {
          static_assert(sizeof(T) == 0, "unhandled message");
        }
        return {};
      },
      m);
}

// Which kernel feature a message needs, for ENOENT / EOPNOTSUPP answers (the
// kernel's way of saying "no such chain type / expression / set backend").
std::string featureHint(const Message& m) {
  if (messageFamily(m) == NFPROTO_BRIDGE) {
    return "kernel lacks nftables for the bridge family (CONFIG_NF_TABLES_BRIDGE, module "
           "nf_tables_bridge?), which sandboxes[].ports needs";
  }
  if (const auto* chain = std::get_if<msg::AddChain>(&m)) {
    if (chain->chain.type == "nat") {
      return "kernel lacks nftables NAT chains (CONFIG_NFT_NAT, module nft_chain_nat?)";
    }
    return "kernel lacks nftables filter chains for the inet family (CONFIG_NF_TABLES_INET?)";
  }
  if (const auto* rule = std::get_if<msg::AddRule>(&m)) {
    for (const Expr& e : rule->rule.exprs) {
      if (std::holds_alternative<expr::Redirect>(e)) {
        return "kernel lacks nft redirect support (CONFIG_NFT_REDIR, module nft_redir?)";
      }
    }
    for (const Expr& e : rule->rule.exprs) {
      if (std::holds_alternative<expr::Tproxy>(e)) {
        return "kernel lacks nft tproxy (CONFIG_NFT_TPROXY, module nft_tproxy?); use capture: "
               "redirect";
      }
    }
    for (const Expr& e : rule->rule.exprs) {
      if (std::holds_alternative<expr::Reject>(e)) {
        return "kernel lacks nft reject for the inet family (CONFIG_NFT_REJECT_INET, module "
               "nft_reject_inet?)";
      }
    }
    for (const Expr& e : rule->rule.exprs) {
      if (std::holds_alternative<expr::Queue>(e)) {
        return "kernel lacks the native nft queue expression (CONFIG_NFT_QUEUE, module "
               "nft_queue?)";
      }
      if (std::holds_alternative<expr::XtTarget>(e)) {
        return "kernel lacks xtables NFQUEUE through nft compat (CONFIG_NFT_COMPAT and "
               "CONFIG_NETFILTER_XT_TARGET_NFQUEUE, modules nft_compat and xt_NFQUEUE?)";
      }
      if (std::holds_alternative<expr::Fib>(e)) {
        return "kernel lacks nft fib lookups (CONFIG_NFT_FIB_INET, module nft_fib_inet?)";
      }
      if (std::holds_alternative<expr::Limit>(e)) {
        return "kernel lacks nft limit (CONFIG_NFT_LIMIT, module nft_limit?)";
      }
    }
    for (const Expr& e : rule->rule.exprs) {
      if (std::holds_alternative<expr::Ct>(e) || std::holds_alternative<expr::CtSet>(e)) {
        return "kernel lacks nft conntrack matching (CONFIG_NFT_CT, module nft_ct?)";
      }
    }
    return "kernel lacks an nft expression this rule uses, or the chain/set it refers to is "
           "missing";
  }
  if (std::holds_alternative<msg::AddSet>(m) || std::holds_alternative<msg::AddSetElements>(m)) {
    return "kernel lacks nft set support (nft_set_hash / nft_set_bitmap?)";
  }
  return "kernel lacks nf_tables for the inet family (CONFIG_NF_TABLES_INET?)";
}

}  // namespace

uint16_t nftMessageType(uint16_t nft_msg) {
  return static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | nft_msg);
}

Result<EncodedBatch> encodeBatch(const std::vector<Message>& messages, uint32_t first_seq) {
  NftBatch batch(nftnl_batch_alloc(static_cast<uint32_t>(batchPageSize()),
                                   static_cast<uint32_t>(maxMessageSize())));
  if (!batch) {
    return oom("batch");
  }
  auto buffer = [&] { return static_cast<char*>(nftnl_batch_buffer(batch.get())); };
  auto next = [&]() -> Result<void> {
    if (nftnl_batch_update(batch.get()) < 0) {
      return oom("batch page");
    }
    return {};
  };

  EncodedBatch out;
  uint32_t seq = first_seq;
  out.begin_seq = seq;
  nftnl_batch_begin(buffer(), seq++);
  if (auto ok = next(); !ok) {
    return ok.error();
  }
  for (const Message& m : messages) {
    out.seqs.push_back(seq);
    if (auto ok = encodeMessage(buffer(), m, seq++); !ok) {
      return ok.error();
    }
    if (auto ok = next(); !ok) {
      return ok.error();
    }
  }
  out.end_seq = seq;
  nftnl_batch_end(buffer(), seq++);
  if (auto ok = next(); !ok) {
    return ok.error();
  }

  const int iov_len = nftnl_batch_iovec_len(batch.get());
  std::vector<iovec> iov(static_cast<size_t>(iov_len));
  nftnl_batch_iovec(batch.get(), iov.data(), static_cast<uint32_t>(iov_len));
  for (const iovec& v : iov) {
    const auto* p = static_cast<const uint8_t*>(v.iov_base);
    out.bytes.insert(out.bytes.end(), p, p + v.iov_len);
  }
  return out;
}

Result<std::vector<uint8_t>> encodeGetTable(uint32_t seq, uint32_t family) {
  auto t = makeTable(family, nullptr);
  if (!t) {
    return t.error();
  }
  std::vector<uint8_t> buf(MNL_SOCKET_BUFFER_SIZE, 0);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(reinterpret_cast<char*>(buf.data()), NFT_MSG_GETTABLE,
                                        static_cast<uint16_t>(family), NLM_F_ACK, seq);
  nftnl_table_nlmsg_build_payload(nlh, t->get());
  buf.resize(nlh->nlmsg_len);
  return buf;
}

Result<std::vector<uint8_t>> encodeGetRules(uint32_t seq, uint32_t family) {
  NftRule r(nftnl_rule_alloc());
  if (!r) {
    return oom("rule dump request");
  }
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, kTableName);
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, family);
  std::vector<uint8_t> buf(MNL_SOCKET_BUFFER_SIZE, 0);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(reinterpret_cast<char*>(buf.data()), NFT_MSG_GETRULE,
                                        static_cast<uint16_t>(family), NLM_F_DUMP, seq);
  nftnl_rule_nlmsg_build_payload(nlh, r.get());
  buf.resize(nlh->nlmsg_len);
  return buf;
}

namespace {

Result<DumpedRule> decodeRule(const nlmsghdr* nlh) {
  NftRule r(nftnl_rule_alloc());
  if (!r) {
    return oom("a dumped rule");
  }
  if (nftnl_rule_nlmsg_parse(nlh, r.get()) < 0) {
    return makeError("netlink: malformed rule in the kernel's dump");
  }
  DumpedRule out;
  out.family = nftnl_rule_get_u32(r.get(), NFTNL_RULE_FAMILY);
  if (const char* t = nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE)) {
    out.table = t;
  }
  if (const char* c = nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN)) {
    out.chain = c;
  }
  NftExprIter it(nftnl_expr_iter_create(r.get()));
  if (!it) {
    return oom("a rule's expression iterator");
  }
  for (nftnl_expr* e = nftnl_expr_iter_next(it.get()); e != nullptr;
       e = nftnl_expr_iter_next(it.get())) {
    const char* name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
    if (name == nullptr) {
      continue;
    }
    const std::string_view kind(name);
    if (kind == "counter" && !out.packets && nftnl_expr_is_set(e, NFTNL_EXPR_CTR_PACKETS)) {
      out.packets = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
    } else if (kind == "immediate" && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT) &&
               nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_DREG) == NFT_REG_VERDICT) {
      out.drops = static_cast<int32_t>(nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT)) == NF_DROP;
    }
  }
  return out;
}

}  // namespace

Result<std::vector<Reply>> parseReplies(std::span<const uint8_t> datagram) {
  std::vector<Reply> out;
  if (datagram.size() > static_cast<size_t>(INT32_MAX)) {
    return makeError("netlink: datagram too large");
  }
  int remaining = static_cast<int>(datagram.size());
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(datagram.data());
  while (mnl_nlmsg_ok(nlh, remaining)) {
    Reply r;
    r.type = nlh->nlmsg_type;
    r.seq = nlh->nlmsg_seq;
    r.flags = nlh->nlmsg_flags;
    if (nlh->nlmsg_type == nftMessageType(NFT_MSG_NEWRULE)) {
      auto rule = decodeRule(nlh);
      if (!rule) {
        return rule.error();
      }
      r.rule = std::move(*rule);
    }
    if (nlh->nlmsg_type == NLMSG_ERROR) {
      if (mnl_nlmsg_get_payload_len(nlh) < sizeof(nlmsgerr)) {
        return makeError("netlink: truncated error message");
      }
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      r.error = -err->error;
      // Extended ACK TLVs follow the (possibly capped) copy of our request.
      if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) != 0) {
        size_t offset = sizeof(nlmsgerr);
        if ((nlh->nlmsg_flags & NLM_F_CAPPED) == 0) {
          offset = NLMSG_ALIGN(sizeof(err->error) + err->msg.nlmsg_len);
        }
        if (offset <= mnl_nlmsg_get_payload_len(nlh)) {
          mnl_attr_parse(
              nlh, static_cast<unsigned>(offset),
              [](const nlattr* attr, void* data) -> int {
                if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
                    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) {
                  *static_cast<std::string*>(data) = mnl_attr_get_str(attr);
                }
                return MNL_CB_OK;
              },
              &r.detail);
        }
      }
    }
    out.push_back(std::move(r));
    nlh = mnl_nlmsg_next(nlh, &remaining);
  }
  if (remaining != 0) {
    return makeError("netlink: truncated message from the kernel");
  }
  return out;
}

BatchAnswers::BatchAnswers(const std::vector<Message>& messages, const EncodedBatch& batch)
    : messages_(messages),
      begin_seq_(batch.begin_seq),
      end_seq_(batch.end_seq),
      answered_(messages.size(), false) {
  for (size_t i = 0; i < batch.seqs.size() && i < messages.size(); ++i) {
    index_by_seq_[batch.seqs[i]] = i;
  }
}

void BatchAnswers::add(const Reply& reply) {
  if (reply.type != NLMSG_ERROR) {
    return;  // nf_tables sends no other answers to a batch without NLM_F_ECHO
  }
  if (reply.seq == begin_seq_ || reply.seq == end_seq_) {
    if (reply.error != 0) {
      errors_[reply.seq] = reply;
    }
    return;
  }
  auto it = index_by_seq_.find(reply.seq);
  if (it == index_by_seq_.end()) {
    return;
  }
  answered_[it->second] = true;
  if (reply.error != 0) {
    errors_[reply.seq] = reply;
  }
}

bool BatchAnswers::complete() const {
  if (errors_.count(begin_seq_) != 0 || errors_.count(end_seq_) != 0) {
    return true;  // rejected or failed to commit as a whole
  }
  for (bool a : answered_) {
    if (!a) {
      return false;
    }
  }
  return true;
}

Result<void> BatchAnswers::outcome() const {
  // A per-message error explains more than the batch-level one, which the
  // kernel may add on top (e.g. a failed commit).
  for (const auto& [seq, reply] : errors_) {
    auto it = index_by_seq_.find(seq);
    if (it != index_by_seq_.end()) {
      std::string text = explainError(messages_[it->second], reply.error, reply.detail);
      if (errors_.size() > 1) {
        text += " (" + std::to_string(errors_.size() - 1) +
                " more error(s) in the same batch; nothing was changed)";
      } else {
        text += " (nothing was changed)";
      }
      return makeError(std::move(text));
    }
  }
  for (const auto& [seq, reply] : errors_) {
    std::string text =
        "nftables: the kernel rejected the batch: " + std::string(std::strerror(reply.error));
    if (reply.error == EPERM) {
      text += " (changing nftables needs CAP_NET_ADMIN in this network namespace)";
    }
    if (!reply.detail.empty()) {
      text += ": " + reply.detail;
    }
    return makeError(std::move(text));
  }
  for (size_t i = 0; i < answered_.size(); ++i) {
    if (!answered_[i]) {
      return makeError("nftables: no answer from the kernel for: " + describe(messages_[i]) +
                       " (the ruleset state is unknown; check `nft list table inet tollgate`)");
    }
  }
  return {};
}

void BatchAnswers::firstError(const Message** message, int* err) const {
  for (const auto& [seq, reply] : errors_) {
    auto it = index_by_seq_.find(seq);
    if (it != index_by_seq_.end()) {
      *message = &messages_[it->second];
      *err = reply.error;
      return;
    }
  }
}

std::string explainError(const Message& m, int err, const std::string& detail) {
  std::string text = "nftables: " + describe(m) + " failed: " + std::strerror(err);
  if (!detail.empty()) {
    text += ": " + detail;
  }
  switch (err) {
    case ENOENT:
    case EOPNOTSUPP:
    case EAFNOSUPPORT:
      text += " (" + featureHint(m) + ")";
      break;
    case EPERM:
    case EACCES:
      text += " (changing nftables needs CAP_NET_ADMIN in this network namespace)";
      break;
    case EEXIST:
      text += " (another process changed table inet tollgate at the same time? retry)";
      break;
    case ENOMEM:
    case ENOSPC:
      text += " (kernel memory or object limit reached)";
      break;
    default:
      break;
  }
  return text;
}

}  // namespace tollgate::nat
