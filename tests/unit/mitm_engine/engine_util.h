// Loopback harness for the MITM engine without root: socketpairs stand in
// for the sandbox and upstream connections, a throwaway CA signs both the
// sandbox-facing leaf and the fake upstream's certificate, and the peers
// are blocking OpenSSL endpoints on their own threads.
#pragma once

#include <event2/event.h>
#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/unique.h"
#include "ca/ca.h"
#include "mitm/sandbox_tls.h"
#include "mitm/upstream_tls.h"

namespace tollgate::mitm::testing_util {

// Upper bound for every wait in these tests: a hang fails, never blocks CI.
inline constexpr std::chrono::seconds kTestDeadline{10};

// A temporary directory holding a fresh CA (ca.crt, ca.key), its minter
// and a sandbox-facing server context.
class TestCa {
 public:
  TestCa();
  ~TestCa();
  const std::string& dir() const { return dir_; }
  std::string certPath() const { return dir_ + "/ca.crt"; }
  X509* cert() const { return authority_->cert(); }
  SandboxTls sandboxTls() { return {ctx_.get(), minter_.get()}; }
  ca::LeafMinter& minter() { return *minter_; }

 private:
  std::string dir_;
  std::shared_ptr<const ca::Authority> authority_;
  std::unique_ptr<ca::LeafMinter> minter_;
  SslCtxPtr ctx_;
};

// A connected AF_UNIX stream pair; both ends blocking, with receive and send
// timeouts of kTestDeadline.
struct SocketPair {
  UniqueFd a;
  UniqueFd b;
};
SocketPair socketPair();

// What the gateway would have peeked: the bytes available on fd within the
// deadline (one read, after waiting for the first byte). Leaves fd
// non-blocking.
std::vector<uint8_t> peekFirstBytes(int fd);

// Blocking TLS client on fd trusting `ca`, asking for `host`: sends
// `request`, returns everything read until close (or "ERROR: ..." on a
// handshake failure).
std::string tlsClientExchange(int fd, X509* ca, const std::string& host,
                              const std::string& request);

// Blocking TLS server on fd presenting the leaf for `host`: reads one
// request head into `*head`, then writes `response` and close_notify.
void tlsServerOnce(int fd, ca::LeafMinter& minter, const std::string& host, std::string* head,
                   const std::string& response);

// Runs the loop until `*done` or kTestDeadline.
void runUntil(event_base* base, const bool* done);

}  // namespace tollgate::mitm::testing_util
