#include "wire_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>

namespace tollgate {

void PrintTo(const HostName& h, std::ostream* os) {
  *os << '"' << h.name << '"' << (h.is_ip ? " (ip)" : "");
}

}  // namespace tollgate

namespace tollgate::sni {

void PrintTo(const PeekResult& r, std::ostream* os) {
  static constexpr const char* kStatus[] = {"NeedMore", "Done", "Invalid"};
  static constexpr const char* kProtocol[] = {"Unknown", "Tls", "Http", "Opaque"};
  *os << "{" << kStatus[static_cast<int>(r.status)] << " "
      << kProtocol[static_cast<int>(r.protocol)];
  if (!r.reason.empty()) {
    *os << " reason=" << r.reason;
  }
  *os << " consumed=" << r.consumed;
  if (r.protocol == Protocol::Tls) {
    *os << " sni=";
    if (r.tls.sni) {
      PrintTo(*r.tls.sni, os);
    } else {
      *os << "none";
    }
    *os << " alpn=[";
    for (const auto& a : r.tls.alpn) {
      *os << a << ",";
    }
    *os << "] versions=[";
    for (auto v : r.tls.supported_versions) {
      *os << std::hex << v << std::dec << ",";
    }
    *os << "] legacy=" << std::hex << r.tls.legacy_version << std::dec << " ech=" << r.tls.ech;
  }
  if (r.protocol == Protocol::Http) {
    *os << " " << r.http.method << " " << r.http.target << " " << r.http.version << " host=";
    if (r.http.host) {
      PrintTo(*r.http.host, os);
    } else {
      *os << "none";
    }
    if (r.http.host_port) {
      *os << ":" << *r.http.host_port;
    }
  }
  *os << "}";
}

namespace wire {

Writer& Writer::u8(uint8_t v) {
  out_.push_back(v);
  return *this;
}

Writer& Writer::u16(uint16_t v) {
  return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v));
}

Writer& Writer::u24(uint32_t v) {
  return u8(static_cast<uint8_t>(v >> 16)).u16(static_cast<uint16_t>(v));
}

Writer& Writer::bytes(std::span<const uint8_t> b) {
  out_.insert(out_.end(), b.begin(), b.end());
  return *this;
}

Writer& Writer::str(std::string_view s) {
  for (char c : s) {
    u8(static_cast<uint8_t>(c));
  }
  return *this;
}

Writer& Writer::zeros(size_t n) {
  out_.insert(out_.end(), n, 0);
  return *this;
}

Writer& Writer::prefixed(size_t len_len, const std::function<void(Writer&)>& fill) {
  const size_t at = out_.size();
  for (size_t i = 0; i < len_len; ++i) {
    if (opaque_depth_ == 0) {
      length_offsets_.push_back(at + i);
    }
    out_.push_back(0);
  }
  fill(*this);
  const size_t len = out_.size() - at - len_len;
  EXPECT_LT(len, size_t{1} << (8 * len_len)) << "builder: length does not fit its prefix";
  for (size_t i = 0; i < len_len; ++i) {
    out_[at + i] = static_cast<uint8_t>(len >> (8 * (len_len - 1 - i)));
  }
  return *this;
}

Writer& Writer::opaque(const std::function<void(Writer&)>& fill) {
  ++opaque_depth_;
  fill(*this);
  --opaque_depth_;
  return *this;
}

namespace {

void extension(Writer& w, uint16_t type, const std::function<void(Writer&)>& fill) {
  w.u16(type).u16Prefixed(fill);
}

// An extension whose contents the peeker skips: only its own length counts.
void opaqueExtension(Writer& w, uint16_t type, const std::function<void(Writer&)>& fill) {
  w.u16(type).u16Prefixed([&](Writer& e) { e.opaque(fill); });
}

}  // namespace

HelloSpec pqSpec() {
  HelloSpec s;
  s.sni = "api.example.test";
  s.alpn = {"h2", "http/1.1"};
  s.grease = true;
  s.key_share_group = 0x11ec;
  s.key_share_len = 1216;
  s.cipher_suites = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9,
                     0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035, 0x000a};
  s.padding = 64;
  return s;
}

Bytes clientHelloMessage(const HelloSpec& spec, std::vector<size_t>* length_offsets) {
  Writer w;
  w.u8(1).u24Prefixed([&](Writer& body) {
    body.u16(spec.legacy_version);
    for (uint8_t i = 0; i < 32; ++i) {
      body.u8(static_cast<uint8_t>(0xa0 + i));  // Random
    }
    body.u8Prefixed([&](Writer& sid) {
      for (size_t i = 0; i < spec.session_id_len; ++i) {
        sid.u8(static_cast<uint8_t>(i));
      }
    });
    body.u16Prefixed([&](Writer& suites) {
      if (spec.grease) {
        suites.u16(0x1a1a);
      }
      for (auto s : spec.cipher_suites) {
        suites.u16(s);
      }
    });
    body.u8Prefixed([&](Writer& comp) { comp.bytes(spec.compression_methods); });
    if (spec.omit_extensions) {
      return;
    }
    body.u16Prefixed([&](Writer& exts) {
      if (spec.grease) {
        extension(exts, 0x2a2a, [](Writer&) {});
      }
      if (spec.sni) {
        // RFC 6066 §3
        extension(exts, kExtServerName, [&](Writer& e) {
          e.u16Prefixed(
              [&](Writer& list) { list.u8(0).u16Prefixed([&](Writer& n) { n.str(*spec.sni); }); });
        });
      }
      opaqueExtension(exts, kExtSupportedGroups, [](Writer& e) {
        e.u16Prefixed([](Writer& g) { g.u16(0x11ec).u16(0x001d).u16(0x0017).u16(0x0018); });
      });
      opaqueExtension(exts, kExtSignatureAlgorithms, [](Writer& e) {
        e.u16Prefixed([](Writer& a) { a.u16(0x0403).u16(0x0804).u16(0x0401); });
      });
      if (!spec.alpn.empty()) {
        // RFC 7301 §3.1
        extension(exts, kExtAlpn, [&](Writer& e) {
          e.u16Prefixed([&](Writer& list) {
            for (const auto& name : spec.alpn) {
              list.u8Prefixed([&](Writer& n) { n.str(name); });
            }
          });
        });
      }
      if (!spec.versions.empty() || spec.grease) {
        // RFC 8446 §4.2.1
        extension(exts, kExtSupportedVersions, [&](Writer& e) {
          e.u8Prefixed([&](Writer& list) {
            if (spec.grease) {
              list.u16(0x7a7a);
            }
            for (auto v : spec.versions) {
              list.u16(v);
            }
          });
        });
      }
      opaqueExtension(exts, kExtPskKeyExchangeModes,
                      [](Writer& e) { e.u8Prefixed([](Writer& m) { m.u8(1); }); });
      if (spec.key_share_len > 0) {
        // RFC 8446 §4.2.8: KeyShareEntry client_shares<0..2^16-1>
        opaqueExtension(exts, kExtKeyShare, [&](Writer& e) {
          e.u16Prefixed([&](Writer& shares) {
            shares.u16(spec.key_share_group).u16Prefixed([&](Writer& k) {
              for (size_t i = 0; i < spec.key_share_len; ++i) {
                k.u8(static_cast<uint8_t>(i * 7));
              }
            });
            if (spec.key_share_group != 0x001d) {
              shares.u16(0x001d).u16Prefixed([](Writer& k) { k.zeros(32); });
            }
          });
        });
      }
      if (spec.ech) {
        // ECHClientHello, outer: type, cipher suite, config_id, enc, payload.
        opaqueExtension(exts, kExtEch, [](Writer& e) {
          e.u8(0).u16(0x0001).u16(0x0001).u8(0x42);
          e.u16Prefixed([](Writer& enc) { enc.zeros(32); });
          e.u16Prefixed([](Writer& payload) { payload.zeros(200); });
        });
      }
      if (spec.padding > 0) {
        opaqueExtension(exts, kExtPadding, [&](Writer& e) { e.zeros(spec.padding); });
      }
      for (const auto& ext : spec.extra_extensions) {
        extension(exts, ext.first, [&](Writer& e) { e.bytes(ext.second); });
      }
    });
  });
  if (length_offsets != nullptr) {
    length_offsets->insert(length_offsets->end(), w.lengthOffsets().begin(),
                           w.lengthOffsets().end());
  }
  return w.data();
}

Bytes toRecords(std::span<const uint8_t> message, size_t fragment_len, uint16_t record_version,
                const std::vector<size_t>* message_length_offsets,
                std::vector<size_t>* length_offsets) {
  Writer w;
  for (size_t at = 0; at < message.size(); at += fragment_len) {
    const size_t n = std::min(fragment_len, message.size() - at);
    w.u8(22).u16(record_version).u16Prefixed([&](Writer& f) { f.bytes(message.subspan(at, n)); });
  }
  if (length_offsets != nullptr) {
    length_offsets->insert(length_offsets->end(), w.lengthOffsets().begin(),
                           w.lengthOffsets().end());
    if (message_length_offsets != nullptr) {
      for (size_t m : *message_length_offsets) {
        length_offsets->push_back((m / fragment_len + 1) * 5 + m);
      }
    }
  }
  return w.data();
}

Bytes clientHello(const HelloSpec& spec, size_t fragment_len, std::vector<size_t>* length_offsets) {
  std::vector<size_t> message_offsets;
  Bytes message = clientHelloMessage(spec, &message_offsets);
  return toRecords(message, fragment_len, 0x0301, &message_offsets, length_offsets);
}

Bytes toBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes concat(Bytes a, std::span<const uint8_t> b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Bytes readCapture(const std::string& name) {
  const std::string path = std::string(TOLLGATE_TEST_DATA) + "/sni/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

PeekResult peekWhole(std::span<const uint8_t> data) {
  Peeker p;
  return p.update(data);
}

PeekResult peekInChunks(std::span<const uint8_t> data, size_t chunk) {
  Peeker p;
  PeekResult r = p.update(data.first(0));
  for (size_t n = std::min(chunk, data.size());; n = std::min(n + chunk, data.size())) {
    r = p.update(data.first(n));
    if (r.status != Status::NeedMore || n == data.size()) {
      return r;
    }
  }
}

PeekResult peekSplitAt(std::span<const uint8_t> data, const std::vector<size_t>& cuts) {
  Peeker p;
  PeekResult r;
  for (size_t cut : cuts) {
    r = p.update(data.first(std::min(cut, data.size())));
    if (r.status != Status::NeedMore) {
      return r;
    }
  }
  return p.update(data);
}

}  // namespace wire
}  // namespace tollgate::sni
