// SecretBuffer: a credential value held in memory of its own.
//
// The bytes live in a private anonymous mapping (page-rounded) that is
//   - mlock()ed where the process may (RLIMIT_MEMLOCK / CAP_IPC_LOCK), so
//     they are never written to swap; a refusal (EPERM, ENOMEM, EAGAIN) is
//     not an error, it is recorded (lockError()) for `doctor` / status;
//   - madvise(MADV_DONTDUMP)ed, so they never appear in a core dump;
//   - wiped with explicit_bzero() before the mapping is released, on
//     destruction, clear() and assign().
// A SecretBuffer is move-only and never printable: there is no operator<<
// (it is deleted), and redacted() says only how long the secret is. The
// memory does not move when the SecretBuffer object moves, so a view()
// stays valid until the buffer is cleared, reassigned or destroyed.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace tollgate {

class SecretBuffer {
 public:
  // An empty buffer: no mapping, view() is empty.
  SecretBuffer() noexcept = default;
  ~SecretBuffer();

  SecretBuffer(const SecretBuffer&) = delete;
  SecretBuffer& operator=(const SecretBuffer&) = delete;
  // The moved-from buffer is empty.
  SecretBuffer(SecretBuffer&& other) noexcept;
  SecretBuffer& operator=(SecretBuffer&& other) noexcept;

  // A buffer holding a copy of `secret`. Fails only when the mapping cannot
  // be created (mmap failed); the error message never holds secret bytes.
  static Result<SecretBuffer> copyOf(std::string_view secret);
  // A zero-filled buffer of `size` bytes to be written through writable()
  // (e.g. serialising a request head that carries a credential).
  static Result<SecretBuffer> allocate(size_t size);

  // Replaces the contents: the old bytes are wiped first. Reuses the
  // mapping when the new secret fits, so views stay valid only if the caller
  // knows that; treat every view as invalidated.
  Result<void> assign(std::string_view secret);
  // Wipes and releases the memory; the buffer becomes empty.
  void clear() noexcept;

  std::string_view view() const { return {data_, size_}; }
  // The same bytes, writable (for buffers filled in place).
  std::span<char> writable() { return {data_, size_}; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // "<redacted N bytes>": the only text form of a secret.
  std::string redacted() const;

  // Protection actually obtained for the current mapping (an empty buffer
  // reports locked() and dontDump() false and errors 0).
  bool locked() const { return locked_; }
  int lockError() const { return lock_errno_; }  // errno of the failed mlock(), else 0
  bool dontDump() const { return dont_dump_; }
  int dontDumpError() const { return dump_errno_; }  // errno of the failed madvise(), else 0

  // Printing a secret is a compile error, not a runtime leak.
  friend std::ostream& operator<<(std::ostream&, const SecretBuffer&) = delete;
  // GoogleTest's printer hook (found by ADL): prints redacted().
  friend void PrintTo(const SecretBuffer& secret, std::ostream* os);

 private:
  // Maps a region for `size` bytes and protects it; the buffer must be empty.
  Result<void> map(size_t size);
  void release() noexcept;
  void steal(SecretBuffer& other) noexcept;

  char* data_ = nullptr;
  size_t size_ = 0;
  size_t region_len_ = 0;  // page-rounded length of the mapping at data_
  bool locked_ = false;
  bool dont_dump_ = false;
  int lock_errno_ = 0;
  int dump_errno_ = 0;
};

}  // namespace tollgate
