// Bounds-checked reader over untrusted bytes, after BoringSSL's CBS.
//
// Shared by every parser of wire bytes (sni/, dns/, nat/'s NFQUEUE packet
// parser): every untrusted byte they read goes through a Reader. Each call
// either succeeds, fills its out-parameter and advances past what it read,
// or fails and leaves the reader (and the out-parameter) untouched. A
// Reader never owns the bytes it reads: the caller keeps them alive for as
// long as the Reader and any span it handed out are used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tollgate {

class Reader {
 public:
  Reader() = default;
  explicit Reader(std::span<const uint8_t> data) : data_(data) {}

  size_t remaining() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  // The bytes not read yet.
  std::span<const uint8_t> rest() const { return data_; }

  bool u8(uint8_t& out) {
    uint64_t v = 0;
    if (!readBigEndian(1, v)) {
      return false;
    }
    out = static_cast<uint8_t>(v);
    return true;
  }
  bool u16(uint16_t& out) {
    uint64_t v = 0;
    if (!readBigEndian(2, v)) {
      return false;
    }
    out = static_cast<uint16_t>(v);
    return true;
  }
  bool u24(uint32_t& out) {
    uint64_t v = 0;
    if (!readBigEndian(3, v)) {
      return false;
    }
    out = static_cast<uint32_t>(v);
    return true;
  }

  // Reads a length of 1, 2 or 3 bytes and then that many bytes into out_child.
  bool u8Prefixed(Reader& out_child) { return readPrefixed(1, out_child); }
  bool u16Prefixed(Reader& out_child) { return readPrefixed(2, out_child); }
  bool u24Prefixed(Reader& out_child) { return readPrefixed(3, out_child); }

  bool skip(size_t n) {
    std::span<const uint8_t> ignored;
    return bytes(n, ignored);
  }

  bool bytes(size_t n, std::span<const uint8_t>& out) {
    if (n > data_.size()) {
      return false;
    }
    out = data_.first(n);
    data_ = data_.subspan(n);
    return true;
  }

  // Like bytes(), viewed as characters (for names and protocol strings).
  bool chars(size_t n, std::string_view& out) {
    std::span<const uint8_t> b;
    if (!bytes(n, b)) {
      return false;
    }
    out = std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
    return true;
  }

 private:
  bool readBigEndian(size_t len, uint64_t& out) {
    if (len > data_.size()) {
      return false;
    }
    uint64_t v = 0;
    for (uint8_t b : data_.first(len)) {
      v = (v << 8) | b;
    }
    data_ = data_.subspan(len);
    out = v;
    return true;
  }

  bool readPrefixed(size_t len_len, Reader& out_child) {
    Reader copy = *this;
    uint64_t len = 0;
    std::span<const uint8_t> body;
    if (!copy.readBigEndian(len_len, len) || !copy.bytes(static_cast<size_t>(len), body)) {
      return false;
    }
    *this = copy;
    out_child = Reader(body);
    return true;
  }

  std::span<const uint8_t> data_;
};

}  // namespace tollgate
