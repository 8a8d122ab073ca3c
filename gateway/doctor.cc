#include "gateway/doctor.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

namespace tollgate::gateway::doctor {
namespace {

// tollgate's own table and chain priorities (nat/ruleset.h): NAT capture at
// dstnat - 10, so an earlier NAT chain of another tool sees sandbox traffic
// before tollgate does.
constexpr const char* kOwnTable = "tollgate";
constexpr int32_t kOwnNatPriority = -110;
constexpr time_t kCaWarnSeconds = time_t{30} * 24 * 3600;
constexpr size_t kMaxConfigErrorsShown = 3;

Finding pass(std::string id, std::string detail) {
  return Finding{std::move(id), Status::Pass, std::move(detail), ""};
}
Finding warn(std::string id, std::string detail, std::string fix) {
  return Finding{std::move(id), Status::Warn, std::move(detail), std::move(fix)};
}
Finding fail(std::string id, std::string detail, std::string fix) {
  return Finding{std::move(id), Status::Fail, std::move(detail), std::move(fix)};
}

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) {
      out += sep;
    }
    out += s;
  }
  return out;
}

std::string utcDate(time_t t) {
  struct tm tm {};
  char buf[32];
  if (gmtime_r(&t, &tm) == nullptr || std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm) == 0) {
    return std::to_string(t);
  }
  return buf;
}

// "/var/lib/tollgate" for "/var/lib/tollgate/ca.crt" (paths are absolute).
std::string dirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

// --- kernel ---------------------------------------------------------------

// 'y', or 'm' with the module loaded or loadable.
bool have(const HostFacts& f, std::string_view symbol) {
  auto it = f.kernel.find(std::string(symbol));
  if (it == f.kernel.end()) {
    return false;
  }
  const KernelSymbol& k = it->second;
  return k.state == 'y' || (k.state == 'm' && (k.module_loaded || k.module_available));
}

std::string missing(const HostFacts& f, std::initializer_list<std::string_view> symbols) {
  std::vector<std::string> out;
  for (std::string_view s : symbols) {
    if (!have(f, s)) {
      auto it = f.kernel.find(std::string(s));
      bool module_gone = it != f.kernel.end() && it->second.state == 'm';
      out.push_back(std::string(s) + (module_gone ? "=m (module not found)" : " not set"));
    }
  }
  return join(out);
}

void kernelFindings(const HostFacts& f, const ConfigSummary* cfg, std::vector<Finding>& out) {
  if (!f.kernel_config_known) {
    out.push_back(warn("kernel_config",
                       "kernel config not readable (/proc/config.gz, /boot/config-" +
                           f.kernel_release + "): nftables features not checked",
                       "nothing to do if `tollgate run` starts: it installs its whole ruleset "
                       "in one batch and names a missing feature; otherwise load configs "
                       "(modprobe configs) to let doctor check"));
    return;
  }
  const std::string src = " (" + f.kernel_config_source + ")";

  if (auto m = missing(
          f, {"CONFIG_NF_TABLES", "CONFIG_NF_TABLES_INET", "CONFIG_NFT_CT", "CONFIG_NF_CONNTRACK"});
      !m.empty()) {
    out.push_back(fail("kernel:nftables", m + src,
                       "tollgate needs nf_tables with the inet family and conntrack; use a "
                       "distribution kernel or enable these options"));
  } else {
    out.push_back(pass("kernel:nftables", "nf_tables, inet family and conntrack present" + src));
  }

  const bool redirect = cfg == nullptr || cfg->capture == CaptureMode::Redirect;
  if (auto m = missing(f, {"CONFIG_NFT_NAT", "CONFIG_NFT_REDIR"}); !m.empty()) {
    std::string fix = "enable NFT_NAT and NFT_REDIR (nft `redirect`)";
    out.push_back(redirect
                      ? fail("kernel:redirect", m + src, fix)
                      : warn("kernel:redirect", m + " (not used with capture: tproxy)" + src, fix));
  } else {
    out.push_back(pass("kernel:redirect", "nft redirect available" + src));
  }

  if (auto m = missing(f, {"CONFIG_NFT_TPROXY", "CONFIG_NFT_SOCKET", "CONFIG_NF_TPROXY_IPV4",
                           "CONFIG_NF_TPROXY_IPV6"});
      !m.empty()) {
    if (cfg != nullptr && cfg->capture == CaptureMode::Tproxy) {
      out.push_back(fail("kernel:tproxy", m + src,
                         "use capture: redirect, or a kernel with NFT_TPROXY and NFT_SOCKET"));
    } else {
      out.push_back(pass("kernel:tproxy", "not available (" + m +
                                              "); not needed with capture: "
                                              "redirect" +
                                              src));
    }
  } else {
    out.push_back(pass("kernel:tproxy", "nft tproxy and socket expressions available" + src));
  }

  const bool native = have(f, "CONFIG_NFT_QUEUE");
  const bool compat = have(f, "CONFIG_NFT_COMPAT") && have(f, "CONFIG_NETFILTER_XT_TARGET_NFQUEUE");
  if (native) {
    out.push_back(pass("kernel:queue", "native nft queue expression available" + src));
  } else if (compat) {
    out.push_back(pass("kernel:queue",
                       "no native nft queue (CONFIG_NFT_QUEUE not set); xt "
                       "NFQUEUE through nft compat is used instead" +
                           src));
  } else {
    std::string detail =
        "neither CONFIG_NFT_QUEUE nor CONFIG_NFT_COMPAT + "
        "CONFIG_NETFILTER_XT_TARGET_NFQUEUE" +
        src;
    std::string fix = "sandboxes' udp: admissions need NFQUEUE; enable NFT_QUEUE";
    if (cfg != nullptr && cfg->has_udp) {
      out.push_back(fail("kernel:queue", detail, fix));
    } else {
      out.push_back(warn("kernel:queue", detail + "; only matters for udp: rules", fix));
    }
  }

  if (auto m = missing(f, {"CONFIG_NFT_REJECT", "CONFIG_NFT_REJECT_INET"}); !m.empty()) {
    out.push_back(fail("kernel:reject", m + src,
                       "enable NFT_REJECT: QUIC (UDP 443) from sandboxes is refused with "
                       "ICMP port unreachable so clients fall back to TCP"));
  } else {
    out.push_back(pass("kernel:reject", "nft reject available" + src));
  }

  const bool ports =
      cfg != nullptr && std::any_of(cfg->sandbox_ports.begin(), cfg->sandbox_ports.end(),
                                    [](const auto& sb) { return !sb.second.empty(); });
  if (auto m = missing(f, {"CONFIG_NF_TABLES_BRIDGE"}); !m.empty()) {
    if (ports) {
      out.push_back(fail("kernel:bridge", m + src,
                         "enable NF_TABLES_BRIDGE: sandboxes[].ports binds sandboxes with a "
                         "table in the bridge family"));
    } else {
      out.push_back(pass("kernel:bridge",
                         "not available (" + m + "); not needed without sandboxes[].ports" + src));
    }
  } else {
    out.push_back(pass("kernel:bridge", "nftables bridge family available" + src));
  }
}

// --- sysctls --------------------------------------------------------------

std::optional<bool> ownTablePresent(const HostFacts& f) {
  if (!f.nft_error.empty()) {
    return std::nullopt;
  }
  return std::any_of(f.nft_tables.begin(), f.nft_tables.end(),
                     [](const NftTable& t) { return t.family == "inet" && t.name == kOwnTable; });
}

void forwardingFinding(const HostFacts& f, std::string id, const std::string& sysctl,
                       std::optional<int> value, std::vector<Finding>& out) {
  if (!value) {
    out.push_back(warn(id, sysctl + " not readable", "run doctor as root on the host"));
    return;
  }
  if (*value == 0) {
    out.push_back(pass(id, sysctl + " = 0: tollgate does not need forwarding (it opens its own "
                                    "connections), and stopped it leaves nothing routed"));
    return;
  }
  auto table = ownTablePresent(f);
  if (table && *table) {
    out.push_back(pass(id, sysctl + " = 1; tollgate's table drops forwarded traffic from the "
                                    "sandbox interfaces"));
  } else {
    out.push_back(
        warn(id,
             sysctl + " = 1 and tollgate's table is " + (table ? "absent" : "unknown") +
                 ": sandboxes are routed to the network uncaptured until tollgate runs",
             "start tollgate (with on_exit: block it leaves a drop table when it stops), or set " +
                 sysctl + "=0 if nothing else on the host (Docker, libvirt NAT) needs it"));
  }
}

void rpFilterFinding(const HostFacts& f, const ConfigSummary& cfg, std::vector<Finding>& out) {
  std::vector<std::string> loose;
  std::vector<std::string> good;
  for (const InterfaceFacts& i : f.interfaces) {
    if (!i.exists) {
      continue;
    }
    if (!f.rp_filter_all || !i.rp_filter) {
      loose.push_back(i.name + " (unreadable)");
      continue;
    }
    // The kernel uses max(conf.all, conf.<iface>).
    int eff = std::max(*f.rp_filter_all, *i.rp_filter);
    std::string label = fmt::format("{}={}", i.name, eff);
    (eff == 1 ? good : loose).push_back(label);
  }
  if (cfg.interfaces.empty() || (good.empty() && loose.empty())) {
    return;
  }
  if (loose.empty()) {
    out.push_back(pass("rp_filter", "strict reverse-path filtering on " + join(good)));
    return;
  }
  out.push_back(warn("rp_filter",
                     "reverse-path filtering not strict on " + join(loose) +
                         ": a sandbox may send with a source address that belongs behind "
                         "another interface, and be judged as that sandbox",
                     "sysctl -w net.ipv4.conf.<iface>.rp_filter=1 (and persist it in "
                     "/etc/sysctl.d/)"));
}

void brNetfilterFinding(const HostFacts& f, const ConfigSummary* cfg, std::vector<Finding>& out) {
  if (!f.br_netfilter) {
    out.push_back(pass("br_netfilter",
                       "br_netfilter not loaded: bridged frames skip the IP "
                       "hooks, tollgate's capture sees routed traffic only"));
    return;
  }
  const bool tproxy = cfg != nullptr && cfg->capture == CaptureMode::Tproxy;
  std::string detail = fmt::format(
      "br_netfilter loaded, net.bridge.bridge-nf-call-iptables = {}",
      f.bridge_nf_call_iptables ? std::to_string(*f.bridge_nf_call_iptables) : "unreadable");
  if (tproxy && f.bridge_nf_call_iptables.value_or(1) != 0) {
    out.push_back(fail("br_netfilter",
                       detail + ": TPROXY on bridged traffic fails (packets "
                                "reach INPUT and are reset)",
                       "use capture: redirect, or sysctl -w "
                       "net.bridge.bridge-nf-call-iptables=0 (breaks Docker's bridge "
                       "filtering if Docker runs here)"));
    return;
  }
  out.push_back(pass("br_netfilter", detail + (tproxy ? ""
                                                      : "; capture: redirect works either "
                                                        "way")));
}

// --- nftables -------------------------------------------------------------

bool isIptablesNftTable(const NftTable& t) {
  static const std::vector<std::string> kNames = {"filter", "nat", "mangle", "raw", "security"};
  return (t.family == "ip" || t.family == "ip6" || t.family == "arp" || t.family == "bridge") &&
         std::find(kNames.begin(), kNames.end(), t.name) != kNames.end();
}

std::string chainLabel(const NftChain& c) {
  return fmt::format("{} {} {} ({} {} priority {})", c.family, c.table, c.name, c.type, c.hook,
                     c.priority);
}

void nftFindings(const HostFacts& f, const ConfigSummary* cfg, std::vector<Finding>& out) {
  if (!f.nft_error.empty()) {
    out.push_back(warn("nft_tables", "cannot list nftables: " + f.nft_error,
                       "run doctor as root (listing nftables needs CAP_NET_ADMIN)"));
  } else {
    std::vector<std::string> iptables_nft;
    std::vector<std::string> others;
    for (const NftTable& t : f.nft_tables) {
      if (t.family == "inet" && t.name == kOwnTable) {
        continue;
      }
      std::string label = t.family + " " + t.name;
      (isIptablesNftTable(t) ? iptables_nft : others).push_back(label);
    }
    if (iptables_nft.empty() && others.empty()) {
      out.push_back(pass("nft_tables", "no nftables tables of other tools"));
    } else {
      std::string detail = "tables of other tools see sandbox traffic too, and a drop there wins:";
      if (!iptables_nft.empty()) {
        detail += " iptables-nft (e.g. Docker, libvirt, ufw): " + join(iptables_nft) + ";";
      }
      if (!others.empty()) {
        detail += " nftables: " + join(others) + ";";
      }
      detail.pop_back();
      out.push_back(warn("nft_tables", detail,
                         "usually fine: tollgate's capture runs first (NAT at priority -110, "
                         "before Docker's -100); check the nft_input_drop and nft_early_nat "
                         "findings, and `nft list ruleset`"));
    }

    std::vector<std::string> input_drop;
    std::vector<std::string> early_nat;
    for (const NftChain& c : f.nft_chains) {
      if (c.family == "inet" && c.table == kOwnTable) {
        continue;
      }
      const bool ip_family = c.family == "ip" || c.family == "ip6" || c.family == "inet";
      if (ip_family && c.hook == "input" && c.policy_drop) {
        input_drop.push_back(chainLabel(c));
      }
      if (ip_family && c.hook == "prerouting" &&
          ((c.type == "nat" && c.priority < kOwnNatPriority) || c.policy_drop)) {
        early_nat.push_back(chainLabel(c));
      }
    }
    std::string ports = cfg == nullptr
                            ? "tollgate's listen_port and dns_port"
                            : fmt::format("TCP {} and TCP/UDP {}", cfg->listen_port, cfg->dns_port);
    if (input_drop.empty()) {
      out.push_back(pass("nft_input_drop", "no other input chain with policy drop"));
    } else {
      out.push_back(warn("nft_input_drop",
                         "input chains with policy drop: " + join(input_drop) +
                             ": redirected sandbox connections arrive on input and are dropped "
                             "unless accepted there",
                         "accept " + ports +
                             " from the sandbox interfaces in that firewall "
                             "(e.g. iifname br0 tcp dport " +
                             (cfg ? std::to_string(cfg->listen_port) : std::string("15001")) +
                             " accept)"));
    }
    if (early_nat.empty()) {
      out.push_back(pass("nft_early_nat",
                         "no other prerouting chain runs before tollgate's "
                         "capture"));
    } else {
      out.push_back(warn("nft_early_nat",
                         "prerouting chains that run before tollgate's capture (priority -110) "
                         "or drop: " +
                             join(early_nat),
                         "make sure they neither rewrite nor drop traffic from the sandbox "
                         "interfaces"));
    }
  }
  if (!f.legacy_iptables.empty()) {
    out.push_back(warn("iptables_legacy",
                       "legacy iptables tables in use (" + join(f.legacy_iptables) +
                           "): invisible to nftables, they filter sandbox traffic too",
                       "inspect them with iptables-legacy-save; prefer iptables-nft"));
  }
}

// --- config-bound objects -------------------------------------------------

void interfaceFindings(const HostFacts& f, const ConfigSummary& cfg, std::vector<Finding>& out) {
  for (const InterfaceFacts& i : f.interfaces) {
    const std::string id = "interface:" + i.name;
    if (!i.exists) {
      out.push_back(fail(id, "no interface " + i.name + " on this host",
                         "create it (e.g. ip link add " + i.name +
                             " type bridge) or fix gateway.interfaces; tollgate binds its "
                             "listener on the interface address"));
      continue;
    }
    if (i.ipv4.empty()) {
      out.push_back(
          fail(id, i.name + " has no IPv4 address: redirected connections land on it",
               "ip addr add 10.77.0.1/24 dev " + i.name + " (the sandboxes' gateway address)"));
      continue;
    }
    std::string detail =
        fmt::format("{}{}, {}", i.up ? "up" : "DOWN", i.is_bridge ? ", bridge" : "", join(i.ipv4));
    if (!i.ipv6.empty()) {
      detail += ", " + join(i.ipv6);
    }
    if (!i.up) {
      out.push_back(warn(id, detail, "ip link set " + i.name + " up"));
    } else if (cfg.ipv6 == Ipv6Mode::Capture && i.ipv6.empty()) {
      out.push_back(warn(id,
                         detail + "; ipv6: capture but no global IPv6 address, so sandbox "
                                  "IPv6 TCP has nowhere to be redirected (it is dropped)",
                         "add an IPv6 address (e.g. ip addr add fd77::1/64 dev " + i.name +
                             ") or set ipv6: block"));
    } else {
      out.push_back(pass(id, detail));
    }
  }
}

bool portMatches(const std::string& pattern, const std::string& name) {
  return pattern.ends_with('*') ? name.starts_with(pattern.substr(0, pattern.size() - 1))
                                : name == pattern;
}

// sandboxes[].ports against the bridges' members: unbound sandboxes can have
// their addresses taken by a neighbour, and a pattern that matches no port
// may be a typo.
void bindingFindings(const HostFacts& f, const ConfigSummary& cfg, std::vector<Finding>& out) {
  std::vector<std::string> unbound;
  std::vector<std::string> bound;
  for (const auto& [name, ports] : cfg.sandbox_ports) {
    (ports.empty() ? unbound : bound).push_back(name);
  }
  std::vector<std::string> members;
  for (const InterfaceFacts& i : f.interfaces) {
    members.insert(members.end(), i.bridge_ports.begin(), i.bridge_ports.end());
  }
  std::vector<std::string> idle_patterns;
  std::vector<std::string> owned;
  for (const auto& [name, ports] : cfg.sandbox_ports) {
    for (const std::string& p : ports) {
      std::vector<std::string> hits;
      for (const std::string& m : members) {
        if (portMatches(p, m)) {
          hits.push_back(m);
        }
      }
      if (hits.empty()) {
        idle_patterns.push_back(name + ": " + p);
      } else {
        owned.push_back(name + ": " + join(hits));
      }
    }
  }
  std::vector<std::string> problems;
  std::vector<std::string> fixes;
  if (cfg.sandbox_ports.size() >= 2 && !unbound.empty()) {
    problems.push_back("sandboxes without ports (" + join(unbound) +
                       "): a machine on the same bridge can take their addresses (ARP / "
                       "neighbour discovery) and be given their policy");
    fixes.push_back("list each sandbox's bridge ports in sandboxes[].ports");
  }
  if (!idle_patterns.empty()) {
    problems.push_back("ports matching no port of " + join(cfg.interfaces) +
                       " now: " + join(idle_patterns, "; "));
    fixes.push_back(
        "fine while those machines are not running; otherwise check the names (ip "
        "link show master BRIDGE)");
  }
  if (!problems.empty()) {
    out.push_back(warn("binding", join(problems, "; "), join(fixes, "; ")));
  } else if (bound.empty()) {
    out.push_back(pass("binding", "one sandbox, no ports: nobody else's policy to borrow"));
  } else {
    out.push_back(
        pass("binding", "every sandbox is bound to its ports (" + join(owned, "; ") + ")"));
  }
}

void caFindings(const HostFacts& f, const ConfigSummary& cfg, std::vector<Finding>& out) {
  if (!f.ca) {
    return;
  }
  const CaFacts& ca = *f.ca;
  const std::string dir = dirName(cfg.ca_cert);
  const std::string init = "tollgate ca init --dir " + dir +
                           (cfg.ca_cert == dir + "/ca.crt" && cfg.ca_key == dir + "/ca.key"
                                ? ""
                                : " (then point gateway.ca at the files it writes)");
  if (!ca.cert_exists && !ca.key_exists) {
    if (cfg.needs_ca) {
      out.push_back(fail("ca", "no CA at " + cfg.ca_cert + " but mitm rules need one", init));
    } else {
      out.push_back(pass("ca", "no CA at " + cfg.ca_cert + "; none needed (no mitm rules)"));
    }
    return;
  }
  auto bad = [&](std::string detail, std::string fix) {
    return cfg.needs_ca
               ? fail("ca", std::move(detail), std::move(fix))
               : warn("ca", std::move(detail) + " (no mitm rules use it yet)", std::move(fix));
  };
  if (!ca.cert_exists || !ca.key_exists) {
    out.push_back(bad(std::string("only the ") + (ca.cert_exists ? "certificate" : "key") +
                          " of the CA exists (" + cfg.ca_cert + ", " + cfg.ca_key + ")",
                      "restore the missing file, or move both away and " + init));
  } else if (ca.key_mode && (*ca.key_mode & 077) != 0) {
    out.push_back(
        bad(fmt::format("CA key {} has mode {:04o}: readable by others", cfg.ca_key, *ca.key_mode),
            "chmod 600 " + cfg.ca_key +
                ", and rotate the CA if others may have "
                "read it"));
  } else if (ca.key_uid && *ca.key_uid != f.euid) {
    out.push_back(bad(fmt::format("CA key {} is owned by uid {}, not uid {} that runs tollgate "
                                  "(it refuses such a key)",
                                  cfg.ca_key, *ca.key_uid, f.euid),
                      "chown root " + cfg.ca_key +
                          " (tollgate loads it before dropping to "
                          "gateway.user)"));
  } else if (!ca.load_error.empty()) {
    out.push_back(bad(ca.load_error, "fix the file named, or tollgate ca rotate --dir " + dir));
  } else if (ca.not_after && *ca.not_after - f.now < kCaWarnSeconds) {
    out.push_back(warn("ca",
                       fmt::format("CA {} expires on {} ({} days)", cfg.ca_cert,
                                   utcDate(*ca.not_after), (*ca.not_after - f.now) / 86400),
                       "tollgate ca rotate --dir " + dir +
                           ", then add the new ca.crt to the "
                           "sandboxes' trust stores before the old one expires"));
  } else {
    out.push_back(pass("ca", fmt::format("{} valid until {}; key 0600, owner uid {}", cfg.ca_cert,
                                         ca.not_after ? utcDate(*ca.not_after) : "?", f.euid)));
  }
}

void credentialFindings(const HostFacts& f, std::vector<Finding>& out) {
  for (const CredentialFacts& c : f.credentials) {
    const std::string id = "credential:" + c.source.name;
    const std::string& ref = c.source.ref;
    switch (c.source.kind) {
      case CredentialSource::Env:
        out.push_back(pass(id, "from the environment variable " + ref +
                                   " of the tollgate process (not visible from here)"));
        break;
      case CredentialSource::File:
        if (c.exists && !*c.exists) {
          out.push_back(fail(id, "secret file " + ref + " does not exist",
                             "create it (mode 0600, owned by root) or fix "
                             "credentials." +
                                 c.source.name + ".source.file"));
        } else if (c.mode && (*c.mode & 077) != 0) {
          out.push_back(warn(
              id, fmt::format("secret file {} has mode {:04o}: readable by others", ref, *c.mode),
              "chmod 600 " + ref + ", or use source: { credential: " + c.source.name +
                  " } with LoadCredential="));
        } else if (c.exists) {
          out.push_back(pass(id, "secret file " + ref + " exists (not read)"));
        }
        break;
      case CredentialSource::Credential:
        if (c.exists) {
          if (*c.exists) {
            out.push_back(pass(id, "$CREDENTIALS_DIRECTORY/" + ref + " exists (not read)"));
          } else {
            out.push_back(fail(id, "$CREDENTIALS_DIRECTORY/" + ref + " does not exist",
                               "add LoadCredential=" + ref + ":/path/to/secret to the unit"));
          }
        } else if (!c.unit_line_in) {
          out.push_back(warn(
              id, "systemd credential '" + ref + "', but no tollgate.service was found to check",
              "run tollgate under systemd with LoadCredential=" + ref +
                  ":/path/to/secret (outside systemd, use source: file or env)"));
        } else if (c.unit_line_in->empty()) {
          out.push_back(fail(
              id,
              "systemd credential '" + ref + "' is not loaded by tollgate.service or its drop-ins",
              "systemctl edit tollgate: [Service] LoadCredential=" + ref +
                  ":/path/to/secret (or LoadCredentialEncrypted=)"));
        } else {
          out.push_back(pass(id, "systemd credential '" + ref + "' loaded in " + *c.unit_line_in));
        }
        break;
    }
  }
}

void daemonFindings(const HostFacts& f, std::vector<Finding>& out) {
  auto table = ownTablePresent(f);
  bool running = false;
  if (f.daemon) {
    const DaemonFacts& d = *f.daemon;
    running = d.answered;
    if (d.answered) {
      out.push_back(pass("daemon", "tollgate is running; " + d.control + " answered GET /status"));
    } else if (!d.socket_exists || d.refused) {
      out.push_back(warn("daemon",
                         std::string("tollgate is not running (") +
                             (d.socket_exists ? "nobody listens on " : "no control socket at ") +
                             d.control + ")",
                         "systemctl start tollgate (or tollgate run --config FILE)"));
    } else {
      out.push_back(fail("daemon", d.control + " exists but did not answer: " + d.error,
                         "a crashed or hung daemon: journalctl -u tollgate, then systemctl "
                         "restart tollgate"));
    }
  }
  if (!table) {
    return;
  }
  if (*table && running) {
    out.push_back(pass("tollgate_table", "table inet tollgate installed"));
  } else if (*table) {
    out.push_back(warn("tollgate_table",
                       "table inet tollgate present but no daemon answers: sandboxes are blocked "
                       "(fail closed after a stop with on_exit: block, or a crash)",
                       "start tollgate, or `tollgate down` to release the sandboxes uncaptured"));
  } else if (running) {
    out.push_back(fail("tollgate_table",
                       "tollgate answers but its table inet tollgate is "
                       "missing: sandbox traffic is not captured",
                       "someone ran `nft flush ruleset` or `tollgate down`: systemctl restart "
                       "tollgate"));
  } else {
    out.push_back(warn("tollgate_table", "no table inet tollgate: sandbox traffic is not captured",
                       "start tollgate"));
  }
}

}  // namespace

std::string_view statusName(Status status) {
  switch (status) {
    case Status::Pass:
      return "pass";
    case Status::Warn:
      return "warn";
    case Status::Fail:
      return "fail";
  }
  return "fail";
}

ConfigSummary summarize(const Config& config) {
  ConfigSummary s;
  const GatewayConfig& g = config.gateway;
  s.interfaces = g.interfaces;
  s.capture = g.capture;
  s.ipv6 = g.ipv6;
  s.on_exit = g.on_exit;
  s.listen_port = g.listen_port;
  s.dns_port = g.dns_port;
  s.ca_cert = g.ca_cert;
  s.ca_key = g.ca_key;
  s.control = g.control;
  s.user = g.user;
  for (const auto& [name, cred] : config.credentials) {
    s.credentials.push_back(CredentialRef{name, cred.source.kind, cred.source.ref});
  }
  for (const Sandbox& sb : config.sandboxes) {
    s.sandbox_ports.emplace_back(sb.name, sb.ports);
    s.has_udp = s.has_udp || !sb.udp.empty();
    s.needs_ca = s.needs_ca || sb.default_action == Action::Mitm;
    for (const Rule& r : sb.rules) {
      s.needs_ca = s.needs_ca || r.action == Action::Mitm;
    }
  }
  return s;
}

const std::vector<KernelNeed>& kernelSymbols() {
  static const std::vector<KernelNeed> kSymbols = {
      {"CONFIG_NF_TABLES", "nftables"},
      {"CONFIG_NF_TABLES_INET", "the inet family tollgate's table uses"},
      {"CONFIG_NF_CONNTRACK", "connection tracking (original destination)"},
      {"CONFIG_NFT_CT", "ct expressions (established/related)"},
      {"CONFIG_NFT_NAT", "NAT chains"},
      {"CONFIG_NFT_REDIR", "capture: redirect"},
      {"CONFIG_NFT_TPROXY", "capture: tproxy"},
      {"CONFIG_NFT_SOCKET", "capture: tproxy (socket lookup)"},
      {"CONFIG_NF_TPROXY_IPV4", "capture: tproxy (IPv4)"},
      {"CONFIG_NF_TPROXY_IPV6", "capture: tproxy (IPv6)"},
      {"CONFIG_NFT_QUEUE", "UDP admission (native queue)"},
      {"CONFIG_NFT_COMPAT", "UDP admission (xt NFQUEUE fallback)"},
      {"CONFIG_NETFILTER_XT_TARGET_NFQUEUE", "UDP admission (xt NFQUEUE fallback)"},
      {"CONFIG_NFT_REJECT", "refusing QUIC with ICMP"},
      {"CONFIG_NFT_REJECT_INET", "refusing QUIC with ICMP (inet family)"},
      {"CONFIG_NF_TABLES_BRIDGE", "sandboxes[].ports (binding sandboxes to bridge ports)"},
  };
  return kSymbols;
}

std::vector<Finding> evaluate(const HostFacts& f) {
  std::vector<Finding> out;
  if (f.euid != 0) {
    out.push_back(warn("privileges",
                       fmt::format("running as uid {}, not root: nftables and the "
                                   "CA key may not be readable",
                                   f.euid),
                       "run `sudo tollgate doctor` for the full survey"));
  } else {
    out.push_back(pass("privileges", "running as root"));
  }

  const ConfigSummary* cfg = f.config ? &*f.config : nullptr;
  if (!f.config_errors.empty()) {
    std::vector<std::string> shown(
        f.config_errors.begin(),
        f.config_errors.begin() +
            static_cast<std::ptrdiff_t>(std::min(f.config_errors.size(), kMaxConfigErrorsShown)));
    std::string detail = join(shown, "; ");
    if (f.config_errors.size() > shown.size()) {
      detail += fmt::format(" (and {} more)", f.config_errors.size() - shown.size());
    }
    if (!f.config_given && !f.config_found) {
      out.push_back(
          warn("config",
               "no config at " + f.config_path + "; checks of interfaces, CA and daemon skipped",
               "pass --config FILE"));
    } else {
      out.push_back(fail("config", detail,
                         "`tollgate check --config " + f.config_path +
                             "` lists every error; keys are described in docs/config.md"));
    }
  } else if (cfg != nullptr) {
    out.push_back(pass(
        "config",
        fmt::format("{} is valid: interfaces {}, capture {}", f.config_path, join(cfg->interfaces),
                    cfg->capture == CaptureMode::Redirect ? "redirect" : "tproxy")));
  }

  kernelFindings(f, cfg, out);
  forwardingFinding(f, "ip_forward", "net.ipv4.ip_forward", f.ip_forward, out);
  forwardingFinding(f, "ipv6_forwarding", "net.ipv6.conf.all.forwarding", f.ipv6_forwarding, out);
  if (cfg != nullptr) {
    rpFilterFinding(f, *cfg, out);
  }
  brNetfilterFinding(f, cfg, out);
  nftFindings(f, cfg, out);
  if (cfg != nullptr) {
    interfaceFindings(f, *cfg, out);
    bindingFindings(f, *cfg, out);
    caFindings(f, *cfg, out);
    credentialFindings(f, out);
  }
  daemonFindings(f, out);
  return out;
}

int exitCode(const std::vector<Finding>& findings, bool strict) {
  if (!strict) {
    return 0;
  }
  bool failed = std::any_of(findings.begin(), findings.end(),
                            [](const Finding& x) { return x.status == Status::Fail; });
  return failed ? 1 : 0;
}

std::string renderJson(const std::vector<Finding>& findings) {
  nlohmann::ordered_json j;
  j["findings"] = nlohmann::ordered_json::array();
  std::map<Status, int> counts{{Status::Pass, 0}, {Status::Warn, 0}, {Status::Fail, 0}};
  for (const Finding& x : findings) {
    j["findings"].push_back({{"id", x.id},
                             {"status", std::string(statusName(x.status))},
                             {"detail", x.detail},
                             {"fix", x.fix}});
    ++counts[x.status];
  }
  j["summary"] = {{"pass", counts[Status::Pass]},
                  {"warn", counts[Status::Warn]},
                  {"fail", counts[Status::Fail]}};
  // Bytes we did not make (interface names, config errors) may be invalid
  // UTF-8: replace rather than throw.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string renderTable(const std::vector<Finding>& findings) {
  size_t width = 2;
  std::map<Status, int> counts{{Status::Pass, 0}, {Status::Warn, 0}, {Status::Fail, 0}};
  for (const Finding& x : findings) {
    width = std::max(width, x.id.size());
    ++counts[x.status];
  }
  std::string out = fmt::format("{:<6}  {:<{}}  {}\n", "STATUS", "ID", width, "DETAIL");
  for (const Finding& x : findings) {
    std::string status(statusName(x.status));
    if (x.status != Status::Pass) {
      std::transform(status.begin(), status.end(), status.begin(),
                     [](char c) { return static_cast<char>(c - 'a' + 'A'); });
    }
    out += fmt::format("{:<6}  {:<{}}  {}\n", status, x.id, width, x.detail);
    if (!x.fix.empty() && x.status != Status::Pass) {
      out += fmt::format("{:<6}  {:<{}}  fix: {}\n", "", "", width, x.fix);
    }
  }
  out += fmt::format("{} pass, {} warn, {} fail\n", counts[Status::Pass], counts[Status::Warn],
                     counts[Status::Fail]);
  return out;
}

}  // namespace tollgate::gateway::doctor
