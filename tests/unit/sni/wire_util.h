// Test helpers for sni/: build wire bytes from parameters (a ClientHello
// builder in the style of BoringSSL's CBB), feed them to a Peeker in pieces,
// and print results for gtest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sni/sni.h"

namespace tollgate {
// gtest printer (found by ADL: HostName lives in base/).
void PrintTo(const HostName& h, std::ostream* os);
}  // namespace tollgate

namespace tollgate::sni {

// gtest printer (found by ADL).
void PrintTo(const PeekResult& r, std::ostream* os);

namespace wire {

using Bytes = std::vector<uint8_t>;

// Append-only writer that remembers the offset of every length byte it
// writes, so tests can corrupt each one.
class Writer {
 public:
  Writer& u8(uint8_t v);
  Writer& u16(uint16_t v);
  Writer& u24(uint32_t v);
  Writer& bytes(std::span<const uint8_t> b);
  Writer& str(std::string_view s);
  Writer& zeros(size_t n);
  // Writes a big-endian length of len_len bytes, then what fill writes; the
  // length is patched in afterwards (and must fit).
  Writer& prefixed(size_t len_len, const std::function<void(Writer&)>& fill);
  Writer& u8Prefixed(const std::function<void(Writer&)>& fill) { return prefixed(1, fill); }
  Writer& u16Prefixed(const std::function<void(Writer&)>& fill) { return prefixed(2, fill); }
  Writer& u24Prefixed(const std::function<void(Writer&)>& fill) { return prefixed(3, fill); }
  // Writes what fill writes without remembering its length bytes: for the
  // contents of extensions the peeker does not parse (key_share, ...).
  Writer& opaque(const std::function<void(Writer&)>& fill);

  const Bytes& data() const { return out_; }
  const std::vector<size_t>& lengthOffsets() const { return length_offsets_; }

 private:
  Bytes out_;
  std::vector<size_t> length_offsets_;
  int opaque_depth_ = 0;
};

// Extension type numbers used by the builder.
constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtSupportedGroups = 10;
constexpr uint16_t kExtSignatureAlgorithms = 13;
constexpr uint16_t kExtAlpn = 16;
constexpr uint16_t kExtPadding = 21;
constexpr uint16_t kExtPreSharedKey = 41;
constexpr uint16_t kExtSupportedVersions = 43;
constexpr uint16_t kExtPskKeyExchangeModes = 45;
constexpr uint16_t kExtKeyShare = 51;
constexpr uint16_t kExtEch = 0xfe0d;

struct HelloSpec {
  std::optional<std::string> sni;  // host_name bytes as sent; nullopt: no server_name ext
  std::vector<std::string> alpn;   // empty: no ALPN ext
  std::vector<uint16_t> versions = {0x0304, 0x0303};  // empty: no supported_versions ext
  bool ech = false;                                   // add an encrypted_client_hello ext
  size_t padding = 0;                 // padding ext (RFC 7685) of this many zero bytes; 0: none
  size_t key_share_len = 32;          // one key share of this size; 0: no key_share ext
  uint16_t key_share_group = 0x001d;  // x25519; 0x11ec is X25519MLKEM768 (1216 bytes),
                                      // sent with a second, x25519 share as browsers do
  bool grease = false;                // GREASE cipher, extension and version (RFC 8701)
  uint16_t legacy_version = 0x0303;
  size_t session_id_len = 32;
  std::vector<uint16_t> cipher_suites = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f};
  Bytes compression_methods = {0};
  bool omit_extensions = false;  // no extensions block at all (pre-TLS 1.3 style)
  // Raw extensions appended after the ones above, in order.
  std::vector<std::pair<uint16_t, Bytes>> extra_extensions;
};

// What a current browser sends: an X25519MLKEM768 hybrid key share next to
// an x25519 one, 16 cipher suites, GREASE and some padding; over 1500 bytes.
HelloSpec pqSpec();

// The handshake message: msg_type client_hello(1), u24 length, body.
// Offsets of length bytes are appended to length_offsets if given.
Bytes clientHelloMessage(const HelloSpec& spec, std::vector<size_t>* length_offsets = nullptr);

// Wraps a handshake message into handshake records of at most fragment_len
// bytes each. Offsets in message_length_offsets are mapped into the result
// and appended, with the records' own length bytes, to length_offsets.
Bytes toRecords(std::span<const uint8_t> message, size_t fragment_len = 16384,
                uint16_t record_version = 0x0301,
                const std::vector<size_t>* message_length_offsets = nullptr,
                std::vector<size_t>* length_offsets = nullptr);

// Both steps at once: the wire bytes a client sends.
Bytes clientHello(const HelloSpec& spec, size_t fragment_len = 16384,
                  std::vector<size_t>* length_offsets = nullptr);

Bytes toBytes(std::string_view s);
Bytes concat(Bytes a, std::span<const uint8_t> b);
// Contents of a file under TOLLGATE_TEST_DATA/sni/; empty (and a test
// failure) if it cannot be read.
Bytes readCapture(const std::string& name);

// Feeds a fresh Peeker: everything at once; `chunk` bytes more per call; or
// cut at the given offsets (ascending).
PeekResult peekWhole(std::span<const uint8_t> data);
PeekResult peekInChunks(std::span<const uint8_t> data, size_t chunk);
PeekResult peekSplitAt(std::span<const uint8_t> data, const std::vector<size_t>& cuts);

}  // namespace wire
}  // namespace tollgate::sni
