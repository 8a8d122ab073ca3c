#include "base/secret.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ostream>
#include <utility>

namespace tollgate {
namespace {

// mlock(2) / munlock(2) as raw system calls: sanitizer runtimes intercept the
// libc wrappers and turn them into no-ops, which would make tests see a lock
// that is not there.
int lockPages(void* p, size_t len) { return static_cast<int>(::syscall(SYS_mlock, p, len)); }
void unlockPages(void* p, size_t len) { ::syscall(SYS_munlock, p, len); }

size_t pageSize() {
  static const size_t kPage = [] {
    long v = ::sysconf(_SC_PAGESIZE);
    return v > 0 ? static_cast<size_t>(v) : size_t{4096};
  }();
  return kPage;
}

}  // namespace

SecretBuffer::~SecretBuffer() { release(); }

SecretBuffer::SecretBuffer(SecretBuffer&& other) noexcept { steal(other); }

SecretBuffer& SecretBuffer::operator=(SecretBuffer&& other) noexcept {
  if (this != &other) {
    release();
    steal(other);
  }
  return *this;
}

void SecretBuffer::steal(SecretBuffer& other) noexcept {
  data_ = std::exchange(other.data_, nullptr);
  size_ = std::exchange(other.size_, 0);
  region_len_ = std::exchange(other.region_len_, 0);
  locked_ = std::exchange(other.locked_, false);
  dont_dump_ = std::exchange(other.dont_dump_, false);
  lock_errno_ = std::exchange(other.lock_errno_, 0);
  dump_errno_ = std::exchange(other.dump_errno_, 0);
}

Result<SecretBuffer> SecretBuffer::copyOf(std::string_view secret) {
  SecretBuffer out;
  if (auto r = out.assign(secret); !r) {
    return r.error();
  }
  return out;
}

Result<SecretBuffer> SecretBuffer::allocate(size_t size) {
  SecretBuffer out;
  if (size == 0) {
    return out;
  }
  if (auto r = out.map(size); !r) {
    return r.error();
  }
  return out;
}

Result<void> SecretBuffer::map(size_t size) {
  const size_t page = pageSize();
  if (size > SIZE_MAX - (page - 1)) {
    return makeError("secret buffer: size too large");
  }
  const size_t len = (size + page - 1) / page * page;
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return makeError(std::string("secret buffer: mmap failed: ") + std::strerror(errno));
  }
  data_ = static_cast<char*>(p);
  size_ = size;
  region_len_ = len;
  // Keep it out of core dumps first: that needs no privilege.
  if (::madvise(p, len, MADV_DONTDUMP) == 0) {
    dont_dump_ = true;
  } else {
    dump_errno_ = errno;
  }
  // Keep it out of swap where RLIMIT_MEMLOCK / CAP_IPC_LOCK allow; a refusal
  // (EPERM, ENOMEM, EAGAIN) is recorded, not fatal.
  if (lockPages(p, len) == 0) {
    locked_ = true;
  } else {
    lock_errno_ = errno;
  }
  return {};
}

Result<void> SecretBuffer::assign(std::string_view secret) {
  if (data_ != nullptr && secret.size() <= region_len_) {
    ::explicit_bzero(data_, region_len_);
    if (!secret.empty()) {
      std::memcpy(data_, secret.data(), secret.size());
    }
    size_ = secret.size();
    return {};
  }
  SecretBuffer fresh;
  if (!secret.empty()) {
    if (auto r = fresh.map(secret.size()); !r) {
      return r;
    }
    std::memcpy(fresh.data_, secret.data(), secret.size());
  }
  *this = std::move(fresh);  // wipes and releases the old mapping
  return {};
}

void SecretBuffer::clear() noexcept { release(); }

void SecretBuffer::release() noexcept {
  if (data_ != nullptr) {
    ::explicit_bzero(data_, region_len_);
    if (locked_) {
      unlockPages(data_, region_len_);
    }
    ::munmap(data_, region_len_);
  }
  data_ = nullptr;
  size_ = 0;
  region_len_ = 0;
  locked_ = false;
  dont_dump_ = false;
  lock_errno_ = 0;
  dump_errno_ = 0;
}

std::string SecretBuffer::redacted() const {
  return "<redacted " + std::to_string(size_) + " bytes>";
}

void PrintTo(const SecretBuffer& secret, std::ostream* os) { *os << secret.redacted(); }

}  // namespace tollgate
