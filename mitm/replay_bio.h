// tollgate: internal to mitm/
// The one way peeked bytes are replayed into a TLS session toward the
// sandbox: a filter BIO that returns the bytes the gateway already read (the
// ClientHello) before reading the socket. Used by the MITM session and the
// http-403 deny answer alike.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <span>

#include "base/result.h"

namespace tollgate::mitm {

// Gives `ssl` a read path of `replay`-then-fd and a write path to fd. The
// socket BIO does not close fd (its owner does). On success `ssl` owns the
// BIO chain (SSL_set_bio takes one reference for both directions).
Result<void> attachReplayedSocket(SSL* ssl, int fd, std::span<const uint8_t> replay);

}  // namespace tollgate::mitm
