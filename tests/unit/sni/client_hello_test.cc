// TLS ClientHello peeking: wire bytes are built from parameters by
// wire_util's builder and fed to a Peeker whole and in pieces.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sni/sni.h"
#include "wire_util.h"

namespace tollgate::sni {
namespace {

using wire::Bytes;
using wire::clientHello;
using wire::clientHelloMessage;
using wire::HelloSpec;
using wire::peekInChunks;
using wire::peekWhole;
using wire::toRecords;
using wire::Writer;

HostName name(std::string n) { return HostName{std::move(n), false}; }

Bytes raw(std::initializer_list<uint8_t> b) { return Bytes(b); }

// ---------------------------------------------------------------------------
// Valid hellos.

// What a hello parses to; the defaults match spec()'s defaults.
struct Expected {
  std::optional<HostName> sni = name("api.example.test");
  std::vector<std::string> alpn = {"h2", "http/1.1"};
  std::vector<uint16_t> versions = {0x0304, 0x0303};
  bool ech = false;
  std::string version_name = "TLSv1.3";
};

struct ValidCase {
  std::string label;
  HelloSpec spec;
  size_t fragment_len = 16384;
  Expected want = {};
};

void PrintTo(const ValidCase& c, std::ostream* os) { *os << c.label; }

// A hello to api.example.test offering h2 and http/1.1, TLS 1.3 and 1.2,
// changed by edit.
HelloSpec spec(const std::function<void(HelloSpec&)>& edit) {
  HelloSpec s;
  s.sni = "api.example.test";
  s.alpn = {"h2", "http/1.1"};
  edit(s);
  return s;
}

Expected expect(const std::function<void(Expected&)>& edit) {
  Expected e;
  edit(e);
  return e;
}

void nothing(HelloSpec&) {}

const std::string kName253 = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                             std::string(63, 'c') + "." + std::string(61, 'd');

const std::vector<ValidCase>& validCases() {
  static const std::vector<ValidCase> cases = {
      {"tls13_sni_alpn", spec(nothing)},
      {"no_sni", spec([](HelloSpec& s) { s.sni.reset(); }), 16384,
       expect([](Expected& e) { e.sni.reset(); })},
      {"no_alpn", spec([](HelloSpec& s) { s.alpn.clear(); }), 16384,
       expect([](Expected& e) { e.alpn.clear(); })},
      {"tls12_no_supported_versions", spec([](HelloSpec& s) { s.versions.clear(); }), 16384,
       expect([](Expected& e) {
         e.versions.clear();
         e.version_name = "TLSv1.2";
       })},
      {"tls10_no_extensions", spec([](HelloSpec& s) {
         s.omit_extensions = true;
         s.legacy_version = 0x0301;
       }),
       16384, Expected{std::nullopt, {}, {}, false, "TLSv1"}},
      {"grease_dropped", spec([](HelloSpec& s) { s.grease = true; })},
      // With ECH the outer SNI is the client-facing server's public name.
      {"ech", spec([](HelloSpec& s) {
         s.ech = true;
         s.sni = "public.example.net";
       }),
       16384, expect([](Expected& e) {
         e.ech = true;
         e.sni = name("public.example.net");
       })},
      {"sni_normalised", spec([](HelloSpec& s) { s.sni = "API.Example.TEST."; })},
      {"sni_ip_literal_kept", spec([](HelloSpec& s) { s.sni = "192.0.2.7"; }), 16384,
       expect([](Expected& e) {
         e.sni = HostName{"192.0.2.7", true};
       })},
      {"sni_idna", spec([](HelloSpec& s) { s.sni = "xn--bcher-kva.example"; }), 16384,
       expect([](Expected& e) { e.sni = name("xn--bcher-kva.example"); })},
      {"sni_253_bytes", spec([](HelloSpec& s) { s.sni = kName253; }), 16384,
       expect([](Expected& e) { e.sni = name(kName253); })},
      {"alpn_binary_and_long", spec([](HelloSpec& s) {
         s.alpn = {std::string(255, 'x'), std::string("\x00\xff", 2)};
       }),
       16384, expect([](Expected& e) {
         e.alpn = {std::string(255, 'x'), std::string("\x00\xff", 2)};
       })},
      {"future_version", spec([](HelloSpec& s) {
         s.versions = {0x0305, 0x0304};
       }),
       16384, expect([](Expected& e) {
         e.versions = {0x0305, 0x0304};
         e.version_name = "0x0305";
       })},
      {"empty_session_id", spec([](HelloSpec& s) { s.session_id_len = 0; })},
      {"psk_last", spec([](HelloSpec& s) {
         s.extra_extensions = {{wire::kExtPreSharedKey, raw({0, 0, 0, 0})}};
       })},
      {"unknown_extensions_skipped", spec([](HelloSpec& s) {
         s.extra_extensions = {{0x1234, raw({1, 2, 3})}, {0xfffe, {}}, {0x0023, {}}};
       })},
      {"padding_512", spec([](HelloSpec& s) { s.padding = 512; })},
      // A post-quantum hybrid key share (X25519MLKEM768: 1216 bytes) makes the
      // hello larger than one Ethernet MTU; clients may cut it into records.
      {"pq_one_record", wire::pqSpec()},
      {"pq_records_of_512", wire::pqSpec(), 512},
      {"pq_records_of_1000", wire::pqSpec(), 1000},
      {"records_of_3_bytes_split_header", spec(nothing), 3},
      {"records_of_1_byte", spec(nothing), 1},
  };
  return cases;
}

class ValidHelloTest : public ::testing::TestWithParam<ValidCase> {};

TEST_P(ValidHelloTest, ParsesWhole) {
  const ValidCase& c = GetParam();
  const Bytes wire = clientHello(c.spec, c.fragment_len);
  PeekResult r = peekWhole(wire);
  ASSERT_EQ(r.status, Status::Done) << ::testing::PrintToString(r);
  EXPECT_EQ(r.protocol, Protocol::Tls);
  EXPECT_EQ(r.reason, "");
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(r.tls.sni, c.want.sni);
  EXPECT_EQ(r.tls.alpn, c.want.alpn);
  EXPECT_EQ(r.tls.supported_versions, c.want.versions);
  EXPECT_EQ(r.tls.legacy_version, c.spec.legacy_version);
  EXPECT_EQ(r.tls.ech, c.want.ech);
  EXPECT_EQ(r.tls.versionName(), c.want.version_name);
}

TEST_P(ValidHelloTest, OneByteAtATimeGivesTheSameResult) {
  const ValidCase& c = GetParam();
  const Bytes wire = clientHello(c.spec, c.fragment_len);
  const PeekResult whole = peekWhole(wire);
  Peeker p;
  for (size_t n = 0; n < wire.size(); ++n) {
    PeekResult partial = p.update(std::span(wire).first(n));
    ASSERT_EQ(partial.status, Status::NeedMore)
        << "at " << n << ": " << ::testing::PrintToString(partial);
    if (n > 0) {
      EXPECT_EQ(partial.protocol, Protocol::Tls) << "the first byte decides";
    }
  }
  EXPECT_EQ(p.update(wire), whole);
}

TEST_P(ValidHelloTest, AnyChunkSizeGivesTheSameResult) {
  const ValidCase& c = GetParam();
  const Bytes wire = clientHello(c.spec, c.fragment_len);
  const PeekResult whole = peekWhole(wire);
  for (size_t chunk : {2, 3, 5, 7, 64, 511, 1500}) {
    EXPECT_EQ(peekInChunks(wire, chunk), whole) << "chunk " << chunk;
  }
}

TEST_P(ValidHelloTest, BytesAfterTheHelloAreNotConsumed) {
  const ValidCase& c = GetParam();
  const Bytes wire = clientHello(c.spec, c.fragment_len);
  // 0-RTT application data record, and then garbage: neither is looked at.
  Bytes more = wire::concat(wire, raw({23, 3, 3, 0, 2, 0xde, 0xad, 0xff, 0xff}));
  PeekResult r = peekWhole(more);
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(r, peekWhole(wire));
}

INSTANTIATE_TEST_SUITE_P(Cases, ValidHelloTest, ::testing::ValuesIn(validCases()),
                         [](const ::testing::TestParamInfo<ValidCase>& info) {
                           return info.param.label;
                         });

TEST(ClientHelloTest, PqHelloIsLargerThanAnMtu) {
  HelloSpec s = wire::pqSpec();
  EXPECT_GT(clientHello(s).size(), 1500u);
}

TEST(ClientHelloTest, RecordVersions) {
  const Bytes message = clientHelloMessage(spec([](HelloSpec&) {}));
  for (uint16_t v : {0x0300, 0x0301, 0x0302, 0x0303}) {
    EXPECT_EQ(peekWhole(toRecords(message, 16384, v)).status, Status::Done) << std::hex << v;
  }
  for (uint16_t v : {0x0200, 0x02ff, 0x0304, 0x0401, 0x1603}) {
    PeekResult r = peekWhole(toRecords(message, 16384, v));
    EXPECT_EQ(r.status, Status::Invalid) << std::hex << v;
    EXPECT_EQ(r.reason, "tls_bad_record_version");
  }
}

// ---------------------------------------------------------------------------
// Invalid hellos: built from a spec, or from raw extension bytes.

struct InvalidCase {
  std::string label;
  HelloSpec spec;
  std::string reason;
};

void PrintTo(const InvalidCase& c, std::ostream* os) { *os << c.label; }

// A spec whose only interesting part is one raw extension.
HelloSpec withRawExtension(uint16_t type, Bytes data) {
  return spec([&](HelloSpec& s) {
    s.sni.reset();
    s.alpn.clear();
    s.versions.clear();
    s.extra_extensions = {{type, std::move(data)}};
  });
}

const std::vector<InvalidCase>& invalidCases() {
  using wire::kExtAlpn;
  using wire::kExtServerName;
  using wire::kExtSupportedVersions;
  static const std::vector<InvalidCase> cases = {
      // RFC 8446 §4.1.2 body fields.
      {"legacy_version_2", spec([](HelloSpec& s) { s.legacy_version = 0x0200; }),
       "tls_bad_version"},
      {"session_id_33", spec([](HelloSpec& s) { s.session_id_len = 33; }), "tls_bad_session_id"},
      {"no_cipher_suites", spec([](HelloSpec& s) { s.cipher_suites.clear(); }),
       "tls_bad_cipher_suites"},
      {"no_compression_methods", spec([](HelloSpec& s) { s.compression_methods.clear(); }),
       "tls_bad_compression_methods"},
      // RFC 8446 §4.2 extension block rules.
      {"duplicate_unknown_extension", spec([](HelloSpec& s) {
         s.extra_extensions = {{0x1234, {}}, {0x1234, {}}};
       }),
       "tls_duplicate_extension"},
      {"duplicate_server_name", spec([](HelloSpec& s) {
         s.extra_extensions = {{kExtServerName, raw({0, 4, 0, 0, 1, 'a'})}};
       }),
       "tls_duplicate_extension"},
      {"duplicate_alpn", spec([](HelloSpec& s) {
         s.extra_extensions = {{kExtAlpn, raw({0, 2, 1, 'x'})}};
       }),
       "tls_duplicate_extension"},
      {"duplicate_grease_value", spec([](HelloSpec& s) {
         s.grease = true;
         s.extra_extensions = {{0x2a2a, {}}};
       }),
       "tls_duplicate_extension"},
      {"psk_not_last", spec([](HelloSpec& s) {
         s.extra_extensions = {{wire::kExtPreSharedKey, raw({0, 0, 0, 0})}, {0x1234, {}}};
       }),
       "tls_psk_not_last"},
      // RFC 6066 §3 server_name.
      {"sni_underscore", spec([](HelloSpec& s) { s.sni = "bad_name.example"; }), "sni_invalid"},
      {"sni_nul",
       spec([](HelloSpec& s) { s.sni = std::string("evil.example\0.good.example", 25); }),
       "sni_invalid"},
      {"sni_space", spec([](HelloSpec& s) { s.sni = "a b.example"; }), "sni_invalid"},
      {"sni_three_part_number", spec([](HelloSpec& s) { s.sni = "1.2.3"; }), "sni_invalid"},
      {"sni_octal_ip", spec([](HelloSpec& s) { s.sni = "010.1.1.1"; }), "sni_invalid"},
      {"sni_label_64", spec([](HelloSpec& s) { s.sni = std::string(64, 'a') + ".example"; }),
       "sni_invalid"},
      {"sni_256_bytes", spec([](HelloSpec& s) { s.sni = std::string(256, 'a'); }), "sni_invalid"},
      {"sni_utf8", spec([](HelloSpec& s) {
         s.sni =
             "b\xc3\xbc"
             "cher.example";
       }),
       "sni_invalid"},
      {"sni_empty_name", spec([](HelloSpec& s) { s.sni = ""; }), "sni_malformed"},
      {"sni_empty_extension", withRawExtension(kExtServerName, {}), "sni_malformed"},
      {"sni_empty_list", withRawExtension(kExtServerName, raw({0, 0})), "sni_malformed"},
      {"sni_name_type_1", withRawExtension(kExtServerName, raw({0, 4, 1, 0, 1, 'a'})),
       "sni_malformed"},
      {"sni_two_entries", withRawExtension(kExtServerName, raw({0, 8, 0, 0, 1, 'a', 0, 0, 1, 'b'})),
       "sni_malformed"},
      {"sni_trailing_in_list", withRawExtension(kExtServerName, raw({0, 5, 0, 0, 1, 'a', 0})),
       "sni_malformed"},
      {"sni_trailing_in_extension", withRawExtension(kExtServerName, raw({0, 4, 0, 0, 1, 'a', 0})),
       "sni_malformed"},
      {"sni_name_overruns_list", withRawExtension(kExtServerName, raw({0, 4, 0, 0, 2, 'a', 'b'})),
       "sni_malformed"},
      // RFC 7301 §3.1 ALPN.
      {"alpn_empty_extension", withRawExtension(kExtAlpn, {}), "tls_bad_alpn"},
      {"alpn_empty_list", withRawExtension(kExtAlpn, raw({0, 0})), "tls_bad_alpn"},
      {"alpn_empty_name", withRawExtension(kExtAlpn, raw({0, 3, 0, 1, 'x'})), "tls_bad_alpn"},
      {"alpn_trailing_in_list", withRawExtension(kExtAlpn, raw({0, 3, 1, 'x', 9})), "tls_bad_alpn"},
      {"alpn_trailing_in_extension", withRawExtension(kExtAlpn, raw({0, 2, 1, 'x', 0})),
       "tls_bad_alpn"},
      {"alpn_name_overruns_list", withRawExtension(kExtAlpn, raw({0, 2, 2, 'x', 'y'})),
       "tls_bad_alpn"},
      // RFC 8446 §4.2.1 supported_versions.
      {"versions_empty_extension", withRawExtension(kExtSupportedVersions, {}),
       "tls_bad_supported_versions"},
      {"versions_empty_list", withRawExtension(kExtSupportedVersions, raw({0})),
       "tls_bad_supported_versions"},
      {"versions_odd_list", withRawExtension(kExtSupportedVersions, raw({3, 3, 4, 3})),
       "tls_bad_supported_versions"},
      {"versions_trailing", withRawExtension(kExtSupportedVersions, raw({2, 3, 4, 0})),
       "tls_bad_supported_versions"},
      {"versions_overrun", withRawExtension(kExtSupportedVersions, raw({4, 3, 4})),
       "tls_bad_supported_versions"},
  };
  return cases;
}

class InvalidHelloTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidHelloTest, IsRejectedWithReason) {
  const InvalidCase& c = GetParam();
  const Bytes wire = clientHello(c.spec);
  PeekResult r = peekWhole(wire);
  EXPECT_EQ(r.status, Status::Invalid) << ::testing::PrintToString(r);
  EXPECT_EQ(r.protocol, Protocol::Tls);
  EXPECT_EQ(r.reason, c.reason);
  EXPECT_EQ(peekInChunks(wire, 1), r);
}

INSTANTIATE_TEST_SUITE_P(Cases, InvalidHelloTest, ::testing::ValuesIn(invalidCases()),
                         [](const ::testing::TestParamInfo<InvalidCase>& info) {
                           return info.param.label;
                         });

// Builds a ClientHello body by hand, to put stray bytes where the builder
// would not.
Bytes messageWithBody(const std::function<void(Writer&)>& body) {
  Writer w;
  w.u8(1).u24Prefixed(body);
  return w.data();
}

void minimalBodyStart(Writer& b) {
  b.u16(0x0303).zeros(32).u8(0);
  b.u16Prefixed([](Writer& s) { s.u16(0x1301); });
  b.u8Prefixed([](Writer& c) { c.u8(0); });
}

TEST(ClientHelloTest, MinimalBodiesParse) {
  // No extensions at all, and an empty extensions block.
  EXPECT_EQ(peekWhole(toRecords(messageWithBody(minimalBodyStart))).status, Status::Done);
  Bytes empty_block = messageWithBody([](Writer& b) {
    minimalBodyStart(b);
    b.u16(0);
  });
  EXPECT_EQ(peekWhole(toRecords(empty_block)).status, Status::Done);
}

struct BodyCase {
  std::string label;
  std::function<void(Writer&)> body;
  std::string reason;
};

void PrintTo(const BodyCase& c, std::ostream* os) { *os << c.label; }

class MalformedBodyTest : public ::testing::TestWithParam<BodyCase> {};

TEST_P(MalformedBodyTest, IsRejectedWithReason) {
  PeekResult r = peekWhole(toRecords(messageWithBody(GetParam().body)));
  EXPECT_EQ(r.status, Status::Invalid) << ::testing::PrintToString(r);
  EXPECT_EQ(r.reason, GetParam().reason);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedBodyTest,
    ::testing::Values(BodyCase{"empty_body", [](Writer&) {}, "tls_malformed_client_hello"},
                      BodyCase{"truncated_random", [](Writer& b) { b.u16(0x0303).zeros(31); },
                               "tls_malformed_client_hello"},
                      BodyCase{"odd_cipher_suites",
                               [](Writer& b) {
                                 b.u16(0x0303).zeros(32).u8(0);
                                 b.u16Prefixed([](Writer& s) { s.u16(0x1301).u8(0x13); });
                                 b.u8Prefixed([](Writer& c) { c.u8(0); });
                               },
                               "tls_bad_cipher_suites"},
                      BodyCase{"one_stray_byte_after_compression",
                               [](Writer& b) {
                                 minimalBodyStart(b);
                                 b.u8(0);
                               },
                               "tls_malformed_client_hello"},
                      BodyCase{"trailing_after_extensions",
                               [](Writer& b) {
                                 minimalBodyStart(b);
                                 b.u16Prefixed([](Writer& e) { e.u16(0x1234).u16(0); });
                                 b.u8(0);
                               },
                               "tls_malformed_client_hello"},
                      BodyCase{"extension_header_truncated",
                               [](Writer& b) {
                                 minimalBodyStart(b);
                                 b.u16Prefixed([](Writer& e) { e.u16(0x1234).u8(0); });
                               },
                               "tls_malformed_extensions"},
                      BodyCase{"extension_data_overruns_block",
                               [](Writer& b) {
                                 minimalBodyStart(b);
                                 b.u16Prefixed([](Writer& e) { e.u16(0x1234).u16(5).u8(0); });
                               },
                               "tls_malformed_extensions"},
                      BodyCase{"extensions_block_overruns_body",
                               [](Writer& b) {
                                 minimalBodyStart(b);
                                 b.u16(10).u16(0x1234);
                               },
                               "tls_malformed_client_hello"}),
    [](const ::testing::TestParamInfo<BodyCase>& info) { return info.param.label; });

// ---------------------------------------------------------------------------
// Record layer and handshake framing (RFC 8446 §5.1, §4).

TEST(RecordLayerTest, OtherRecordTypesAreRejected) {
  const Bytes message = clientHelloMessage(spec([](HelloSpec&) {}));
  Bytes wire = toRecords(message, 100);
  wire[105] = 23;  // second record: application_data
  PeekResult r = peekWhole(wire);
  EXPECT_EQ(r.status, Status::Invalid);
  EXPECT_EQ(r.reason, "tls_bad_record_type");
  wire[105] = 21;  // alert
  EXPECT_EQ(peekWhole(wire).reason, "tls_bad_record_type");
}

TEST(RecordLayerTest, RecordLongerThan2To14IsRejected) {
  Bytes wire = raw({22, 3, 1, 0x40, 0x01});
  PeekResult r = peekWhole(wire);
  EXPECT_EQ(r.status, Status::Invalid);
  EXPECT_EQ(r.reason, "tls_record_too_long");
  // Exactly 2^14 is fine (still waiting for the fragment).
  EXPECT_EQ(peekWhole(raw({22, 3, 1, 0x40, 0x00})).status, Status::NeedMore);
}

TEST(RecordLayerTest, ZeroLengthRecordIsRejected) {
  PeekResult r = peekWhole(raw({22, 3, 1, 0, 0}));
  EXPECT_EQ(r.status, Status::Invalid);
  EXPECT_EQ(r.reason, "tls_empty_record");
}

TEST(RecordLayerTest, OtherHandshakeMessagesAreRejected) {
  for (uint8_t type : {0, 2, 11, 16, 20, 255}) {
    Bytes message = clientHelloMessage(spec([](HelloSpec&) {}));
    message[0] = type;
    PeekResult r = peekWhole(toRecords(message));
    EXPECT_EQ(r.status, Status::Invalid) << int{type};
    EXPECT_EQ(r.reason, "tls_not_client_hello");
  }
}

TEST(RecordLayerTest, SecondHandshakeMessageInTheRecordIsRejected) {
  Bytes message = clientHelloMessage(spec([](HelloSpec&) {}));
  Bytes two = wire::concat(message, raw({1, 0, 0, 0}));
  PeekResult r = peekWhole(toRecords(two));
  EXPECT_EQ(r.status, Status::Invalid);
  EXPECT_EQ(r.reason, "tls_handshake_trailing_data");
  // Also when the hello's last byte and a stray one share a later record.
  r = peekWhole(toRecords(wire::concat(message, raw({1})), message.size() - 1));
  EXPECT_EQ(r.reason, "tls_handshake_trailing_data");
}

TEST(RecordLayerTest, DeclaredHelloLargerThanTheCapIsRejectedAtOnce) {
  // One record holding only a handshake header that announces 32 KiB + 1.
  const uint32_t len = kMaxPeekBytes - 3;
  Bytes wire = raw({22, 3, 1, 0, 4, 1, static_cast<uint8_t>(len >> 16),
                    static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)});
  PeekResult r = peekWhole(wire);
  EXPECT_EQ(r.status, Status::Invalid);
  EXPECT_EQ(r.reason, "clienthello_too_large");
  // 4 bytes less fits the header; it waits for more.
  const uint32_t fits = kMaxPeekBytes - 4;
  wire = raw({22, 3, 1, 0, 4, 1, static_cast<uint8_t>(fits >> 16), static_cast<uint8_t>(fits >> 8),
              static_cast<uint8_t>(fits)});
  EXPECT_EQ(peekWhole(wire).status, Status::NeedMore);
}

// Pads a hello until its records take exactly `wire_len` bytes.
Bytes helloOfWireLength(size_t wire_len) {
  HelloSpec s = spec([](HelloSpec& h) { h.padding = 1; });
  const size_t base = clientHello(s).size();
  // Two records of at most 2^14: 10 bytes of record headers.
  s.padding = 1 + (wire_len - 10) - (base - 5);
  return clientHello(s);
}

TEST(RecordLayerTest, HelloFillingTheCapExactlyIsAccepted) {
  Bytes wire = helloOfWireLength(kMaxPeekBytes);
  ASSERT_EQ(wire.size(), kMaxPeekBytes);
  PeekResult r = peekWhole(wire);
  EXPECT_EQ(r.status, Status::Done) << ::testing::PrintToString(r);
  EXPECT_EQ(r.consumed, kMaxPeekBytes);
  EXPECT_EQ(peekInChunks(wire, 1000), r);
}

TEST(RecordLayerTest, LargestHelloOneByteAtATime) {
  // Each update looks only at new bytes: 32 Ki updates stay cheap.
  Bytes wire = helloOfWireLength(kMaxPeekBytes);
  EXPECT_EQ(peekInChunks(wire, 1), peekWhole(wire));
}

TEST(RecordLayerTest, HelloOneByteOverTheCapIsRejected) {
  Bytes wire = helloOfWireLength(kMaxPeekBytes + 1);
  ASSERT_EQ(wire.size(), kMaxPeekBytes + 1);
  PeekResult r = peekWhole(wire);
  EXPECT_EQ(r.status, Status::Invalid);
  EXPECT_EQ(r.reason, "clienthello_too_large");
  // Decided on the record header, before the last byte arrives.
  EXPECT_EQ(peekWhole(std::span(wire).first(16384 + 5 + 5)).reason, "clienthello_too_large");
}

TEST(RecordLayerTest, TinyRecordsCountAgainstTheCap) {
  // 6000 bytes of hello in 1-byte records is 36000 bytes on the wire.
  HelloSpec s = spec([](HelloSpec& h) { h.padding = 5500; });
  Bytes wire = clientHello(s, 1);
  ASSERT_GT(wire.size(), kMaxPeekBytes);
  PeekResult r = peekInChunks(wire, 4096);
  EXPECT_EQ(r.status, Status::Invalid);
  EXPECT_EQ(r.reason, "clienthello_too_large");
}

// ---------------------------------------------------------------------------
// Corruption: every length byte, then every byte.

std::vector<std::pair<std::string, Bytes>> corruptionSubjects(
    std::vector<std::vector<size_t>>* offsets) {
  std::vector<std::pair<std::string, Bytes>> out;
  auto add = [&](std::string label, const HelloSpec& s, size_t frag) {
    std::vector<size_t> o;
    out.emplace_back(std::move(label), clientHello(s, frag, &o));
    offsets->push_back(std::move(o));
  };
  add("basic", spec([](HelloSpec& h) { h.ech = true; }), 16384);
  add("grease_padding", spec([](HelloSpec& h) {
        h.grease = true;
        h.padding = 300;
        h.extra_extensions = {{wire::kExtPreSharedKey, raw({0, 0, 0, 0})}};
      }),
      16384);
  add("pq_fragmented", wire::pqSpec(), 600);
  return out;
}

TEST(CorruptionTest, EveryLengthByteCorruptedIsCleanlyRejected) {
  std::vector<std::vector<size_t>> offsets;
  auto subjects = corruptionSubjects(&offsets);
  size_t mutations = 0;
  size_t still_done = 0;
  for (size_t i = 0; i < subjects.size(); ++i) {
    const auto& [label, wire] = subjects[i];
    const PeekResult original = peekWhole(wire);
    ASSERT_EQ(original.status, Status::Done) << label;
    ASSERT_GT(offsets[i].size(), 20u) << label;
    for (size_t at : offsets[i]) {
      ASSERT_LT(at, wire.size());
      for (int delta : {1, -1, 0x10, 0x80}) {
        Bytes bad = wire;
        bad[at] = static_cast<uint8_t>(bad[at] + delta);
        PeekResult r = peekWhole(bad);
        ++mutations;
        if (r.status == Status::Done) {
          // Possible only when a grown extension length swallows whole
          // extensions after it, which is again a well-formed hello (one
          // with fewer extensions); it can never parse to the original.
          ++still_done;
          EXPECT_NE(r, original) << label << ": length byte at " << at << " + " << delta;
        }
        EXPECT_EQ(r.protocol, Protocol::Tls);
        if (r.status == Status::Invalid) {
          EXPECT_FALSE(r.reason.empty());
        }
        EXPECT_EQ(peekInChunks(bad, 97), r) << label << " at " << at;
      }
    }
  }
  EXPECT_LE(still_done * 100, mutations) << still_done << " of " << mutations << " still parse";
}

TEST(CorruptionTest, EveryByteCorruptedNeverCrashesAndIsSplitInvariant) {
  std::vector<std::vector<size_t>> offsets;
  auto subjects = corruptionSubjects(&offsets);
  for (const auto& [label, wire] : subjects) {
    for (size_t at = 0; at < wire.size(); ++at) {
      for (uint8_t x : {0x01, 0xff}) {
        Bytes bad = wire;
        bad[at] ^= x;
        PeekResult whole = peekWhole(bad);
        if (whole.status == Status::Invalid) {
          EXPECT_FALSE(whole.reason.empty());
        }
        if (whole.status == Status::Done) {
          EXPECT_LE(whole.consumed, bad.size());
        }
        EXPECT_EQ(peekInChunks(bad, 251), whole) << label << " at " << at;
      }
    }
  }
}

TEST(CorruptionTest, EveryTruncationNeedsMore) {
  const Bytes wire = clientHello(spec([](HelloSpec& h) { h.ech = true; }), 200);
  for (size_t n = 0; n < wire.size(); ++n) {
    EXPECT_EQ(peekWhole(std::span(wire).first(n)).status, Status::NeedMore) << n;
  }
}

}  // namespace
}  // namespace tollgate::sni
