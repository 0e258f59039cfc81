#include "server/tls_ticket_keys.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <stdexcept>

namespace pylon::detail {
namespace {

// Where a context finds its ring from inside OpenSSL's callback, which gets no argument of ours.
int ring_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

TicketKeys::TicketKeys() : current_(random_key()), previous_(current_) {}

TicketKeys::Key TicketKeys::random_key() {
  Key key{};
  if (RAND_bytes(key.name.data(), key.name.size()) != 1 ||
      RAND_bytes(key.cipher.data(), key.cipher.size()) != 1 ||
      RAND_bytes(key.mac.data(), key.mac.size()) != 1)
    throw std::runtime_error("tls: no randomness for a session ticket key");
  return key;
}

void TicketKeys::install(SSL_CTX* context) {
  SSL_CTX_set_ex_data(context, ring_index(), this);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(context, &TicketKeys::seal_or_open);
}

void TicketKeys::rotate() {
  Key fresh = random_key();
  std::lock_guard lock(mutex_);
  OPENSSL_cleanse(&previous_, sizeof previous_);
  previous_ = current_;
  current_ = fresh;
  OPENSSL_cleanse(&fresh, sizeof fresh);
}

// OpenSSL's ticket callback (SSL_CTX_set_tlsext_ticket_key_evp_cb): seal (1) a new ticket, or open
// (0) one: returns 1 (opened with the current key), 2 (opened, but send a new ticket: the
// previous key), 0 (no such key: full handshake), -1 (error).
int TicketKeys::seal_or_open(SSL* ssl, unsigned char* name, unsigned char* iv,
                             EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int seal) {
  const auto* ring =
      static_cast<const TicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index()));
  if (ring == nullptr) return -1;
  Key key;
  int found = 1;
  {
    std::lock_guard lock(ring->mutex_);
    if (seal == 1) {
      key = ring->current_;
    } else if (std::equal(ring->current_.name.begin(), ring->current_.name.end(), name)) {
      key = ring->current_;
    } else if (std::equal(ring->previous_.name.begin(), ring->previous_.name.end(), name)) {
      key = ring->previous_;
      found = 2;
    } else {
      return 0;
    }
  }
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.mac.data(), key.mac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  int ok = EVP_MAC_CTX_set_params(mac, params);
  if (seal == 1) {
    std::copy(key.name.begin(), key.name.end(), name);
    const int iv_length = EVP_CIPHER_get_iv_length(EVP_aes_256_cbc());
    ok = ok && RAND_bytes(iv, iv_length) == 1 &&
         EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.cipher.data(), iv) == 1;
  } else {
    ok = ok && EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.cipher.data(), iv) == 1;
  }
  OPENSSL_cleanse(&key, sizeof key);
  return ok ? found : -1;
}

}  // namespace pylon::detail
