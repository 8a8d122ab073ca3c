#include "sni/client_hello.h"

#include <bitset>
#include <string_view>

#include "base/reader.h"

namespace tollgate::sni {
namespace {

constexpr size_t kRandomLen = 32;
constexpr size_t kMaxSessionIdLen = 32;
constexpr size_t kMaxSniLen = 255;

// Extension types (IANA TLS ExtensionType registry).
constexpr uint16_t kExtServerName = 0;                 // RFC 6066 §3
constexpr uint16_t kExtAlpn = 16;                      // RFC 7301 §3.1
constexpr uint16_t kExtPreSharedKey = 41;              // RFC 8446 §4.2.11
constexpr uint16_t kExtSupportedVersions = 43;         // RFC 8446 §4.2.1
constexpr uint16_t kExtEncryptedClientHello = 0xfe0d;  // RFC 9849 (TLS ECH)

Error fail(const char* reason) { return makeError(reason); }

// RFC 6066 §3:
//   struct {
//     NameType name_type;
//     select (name_type) { case host_name: HostName; } name;
//   } ServerName;
//   enum { host_name(0), (255) } NameType;
//   opaque HostName<1..2^16-1>;
//   struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
// Like BoringSSL, exactly one entry of type host_name is accepted: the list
// "MUST NOT contain more than one name of the same name_type" and no other
// type is defined, so another entry could not even be parsed.
Result<void> parseServerName(Reader data, TlsInfo& out) {
  Reader list;
  Reader name;
  uint8_t name_type = 0;
  if (!data.u16Prefixed(list) || !data.empty() ||  //
      !list.u8(name_type) || name_type != 0 ||     //
      !list.u16Prefixed(name) || !list.empty() || name.empty()) {
    return fail("sni_malformed");
  }
  std::string_view raw;
  if (name.remaining() > kMaxSniLen || !name.chars(name.remaining(), raw)) {
    return fail("sni_invalid");
  }
  // IP literals are kept (flagged is_ip) although RFC 6066 forbids them:
  // policy decides what to do with them, and they never match a hosts: rule.
  auto host = normalizeHostName(raw);
  if (!host) {
    return fail("sni_invalid");
  }
  out.sni = std::move(*host);
  return {};
}

// RFC 7301 §3.1:
//   opaque ProtocolName<1..2^8-1>;
//   struct { ProtocolName protocol_name_list<2..2^16-1> } ProtocolNameList;
Result<void> parseAlpn(Reader data, TlsInfo& out) {
  Reader list;
  if (!data.u16Prefixed(list) || !data.empty() || list.empty()) {
    return fail("tls_bad_alpn");
  }
  while (!list.empty()) {
    Reader name;
    std::string_view proto;
    if (!list.u8Prefixed(name) || name.empty() || !name.chars(name.remaining(), proto)) {
      return fail("tls_bad_alpn");
    }
    out.alpn.emplace_back(proto);
  }
  return {};
}

// RFC 8446 §4.2.1, ClientHello form: ProtocolVersion versions<2..254>;
Result<void> parseSupportedVersions(Reader data, TlsInfo& out) {
  Reader versions;
  if (!data.u8Prefixed(versions) || !data.empty() ||  //
      versions.remaining() < 2 || versions.remaining() % 2 != 0) {
    return fail("tls_bad_supported_versions");
  }
  while (!versions.empty()) {
    uint16_t v = 0;
    if (!versions.u16(v)) {
      return fail("tls_bad_supported_versions");
    }
    if (!isGrease(v)) {
      out.supported_versions.push_back(v);
    }
  }
  return {};
}

// RFC 8446 §4.2:
//   struct {
//     ExtensionType extension_type;
//     opaque extension_data<0..2^16-1>;
//   } Extension;
// "There MUST NOT be more than one extension of the same type in a given
// extension block", and pre_shared_key "MUST be the last extension in the
// ClientHello" (§4.2.11).
Result<void> parseExtensions(Reader extensions, TlsInfo& out) {
  std::bitset<65536> seen;
  while (!extensions.empty()) {
    uint16_t type = 0;
    Reader data;
    if (!extensions.u16(type) || !extensions.u16Prefixed(data)) {
      return fail("tls_malformed_extensions");
    }
    if (seen.test(type)) {
      return fail("tls_duplicate_extension");
    }
    seen.set(type);
    if (type == kExtPreSharedKey && !extensions.empty()) {
      return fail("tls_psk_not_last");
    }
    Result<void> parsed;
    switch (type) {
      case kExtServerName:
        parsed = parseServerName(data, out);
        break;
      case kExtAlpn:
        parsed = parseAlpn(data, out);
        break;
      case kExtSupportedVersions:
        parsed = parseSupportedVersions(data, out);
        break;
      case kExtEncryptedClientHello:
        // The payload (outer/inner type, config id, enc, payload) is opaque to
        // us; its presence means the SNI above is only the public name.
        out.ech = true;
        break;
      default:
        break;
    }
    if (!parsed) {
      return parsed;
    }
  }
  return {};
}

}  // namespace

// RFC 8446 §4.1.2:
//   struct {
//     ProtocolVersion legacy_version = 0x0303;
//     Random random;                                      (32 bytes)
//     opaque legacy_session_id<0..32>;
//     CipherSuite cipher_suites<2..2^16-2>;
//     opaque legacy_compression_methods<1..2^8-1>;
//     Extension extensions<8..2^16-1>;
//   } ClientHello;
// RFC 5246 §7.4.1.2: before TLS 1.3 the extensions block may be absent.
Result<void> parseClientHello(std::span<const uint8_t> body, TlsInfo& out) {
  Reader hello(body);
  Reader session_id;
  Reader cipher_suites;
  Reader compression_methods;
  if (!hello.u16(out.legacy_version) || !hello.skip(kRandomLen) ||  //
      !hello.u8Prefixed(session_id) ||                              //
      !hello.u16Prefixed(cipher_suites) ||                          //
      !hello.u8Prefixed(compression_methods)) {
    return fail("tls_malformed_client_hello");
  }
  if ((out.legacy_version >> 8) != 3) {
    return fail("tls_bad_version");
  }
  if (session_id.remaining() > kMaxSessionIdLen) {
    return fail("tls_bad_session_id");
  }
  if (cipher_suites.empty() || cipher_suites.remaining() % 2 != 0) {
    return fail("tls_bad_cipher_suites");
  }
  if (compression_methods.empty()) {
    return fail("tls_bad_compression_methods");
  }
  if (hello.empty()) {
    return {};
  }
  Reader extensions;
  if (!hello.u16Prefixed(extensions) || !hello.empty()) {
    return fail("tls_malformed_client_hello");
  }
  return parseExtensions(extensions, out);
}

}  // namespace tollgate::sni
