// The keys that seal `pylon serve`'s TLS session tickets (RFC 5077 / RFC 8446 §4.6.1), rotated on
// a schedule (tls_ticket_key_rotation) so that a stolen key opens at most two periods of
// recorded resumptions (docs/security.md "TLS").
//
// One ring per server, shared by every SSL_CTX (the SNI contexts, and the sets of a reload: a
// reload does not invalidate the tickets clients hold) and every loop: new tickets are sealed
// with the current key; a ticket sealed with the previous key still resumes and is replaced by
// one under the current key; older ones fall back to a full handshake. install() and
// the callback run on any thread (loops, SIGHUP, the watcher); rotate() on the rotation thread.
#pragma once

#include <openssl/evp.h>
#include <openssl/types.h>

#include <array>
#include <cstdint>
#include <mutex>

namespace pylon::detail {

class TicketKeys {
 public:
  TicketKeys();  // a first random key; throws std::runtime_error when OpenSSL has no randomness
  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;

  // This ring seals and opens the tickets of `context` from now on.
  void install(SSL_CTX* context);
  // A new current key; the current one becomes the previous (still opens), the previous goes.
  void rotate();

 private:
  struct Key {
    std::array<unsigned char, 16> name;    // in the clear in the ticket: picks the key
    std::array<unsigned char, 32> cipher;  // AES-256-CBC
    std::array<unsigned char, 32> mac;     // HMAC-SHA256
  };
  static Key random_key();
  static int seal_or_open(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                          EVP_MAC_CTX* mac, int seal);

  mutable std::mutex mutex_;
  Key current_, previous_;  // under mutex_; previous_ starts as current_
};

}  // namespace pylon::detail
