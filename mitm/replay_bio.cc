#include "mitm/replay_bio.h"

#include <cstring>
#include <string>

#include "base/handles.h"

namespace tollgate::mitm {
namespace {

// A BIO that first returns bytes already read from the socket (the peeked
// ClientHello), then reads from the next BIO (the socket). Everything else
// (writes, BIO_get_fd, flush) goes to the next BIO, so libevent's socket
// bufferevent drives it like a plain socket BIO.

struct PrefixData {
  std::string bytes;
  size_t off = 0;
};

int prefixCreate(BIO* b) {
  BIO_set_data(b, nullptr);
  BIO_set_init(b, 1);
  return 1;
}

int prefixDestroy(BIO* b) {
  delete static_cast<PrefixData*>(BIO_get_data(b));
  BIO_set_data(b, nullptr);
  return 1;
}

int prefixRead(BIO* b, char* out, size_t len, size_t* got) {
  auto* d = static_cast<PrefixData*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (d != nullptr && d->off < d->bytes.size()) {
    size_t n = std::min(len, d->bytes.size() - d->off);
    std::memcpy(out, d->bytes.data() + d->off, n);
    d->off += n;
    *got = n;
    if (d->off == d->bytes.size()) {
      std::string().swap(d->bytes);
      d->off = 0;
    }
    return 1;
  }
  BIO* next = BIO_next(b);
  if (next == nullptr) {
    return 0;
  }
  int r = BIO_read_ex(next, out, len, got);
  BIO_copy_next_retry(b);
  return r;
}

int prefixWrite(BIO* b, const char* in, size_t len, size_t* put) {
  BIO* next = BIO_next(b);
  if (next == nullptr) {
    return 0;
  }
  BIO_clear_retry_flags(b);
  int r = BIO_write_ex(next, in, len, put);
  BIO_copy_next_retry(b);
  return r;
}

long prefixCtrl(BIO* b, int cmd, long num, void* ptr) {
  auto* d = static_cast<PrefixData*>(BIO_get_data(b));
  BIO* next = BIO_next(b);
  if (cmd == BIO_CTRL_PENDING && d != nullptr && d->off < d->bytes.size()) {
    return static_cast<long>(d->bytes.size() - d->off);
  }
  return next == nullptr ? 0 : BIO_ctrl(next, cmd, num, ptr);
}

void freeMethod(BIO_METHOD* m) { BIO_meth_free(m); }

const BIO_METHOD* prefixMethod() {
  static const CPtr<BIO_METHOD, freeMethod> method = [] {
    CPtr<BIO_METHOD, freeMethod> m(
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "tollgate prefix"));
    if (m) {
      BIO_meth_set_create(m.get(), prefixCreate);
      BIO_meth_set_destroy(m.get(), prefixDestroy);
      BIO_meth_set_read_ex(m.get(), prefixRead);
      BIO_meth_set_write_ex(m.get(), prefixWrite);
      BIO_meth_set_ctrl(m.get(), prefixCtrl);
    }
    return m;
  }();
  return method.get();
}


}  // namespace

Result<void> attachReplayedSocket(SSL* ssl, int fd, std::span<const uint8_t> prefix) {
  const BIO_METHOD* m = prefixMethod();
  if (m == nullptr) {
    return makeError("BIO_meth_new failed");
  }
  BioPtr top(BIO_new(m));
  BioPtr sock(BIO_new_socket(fd, BIO_NOCLOSE));
  if (!top || !sock) {
    return makeError("BIO_new failed");
  }
  auto* d =
      new PrefixData{std::string(reinterpret_cast<const char*>(prefix.data()), prefix.size())};
  BIO_set_data(top.get(), d);
  BIO* chain = BIO_push(top.release(), sock.release());
  SSL_set_bio(ssl, chain, chain);  // one reference for both directions
  return {};
}

}  // namespace tollgate::mitm
