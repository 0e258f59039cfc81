// The keys that verify token signatures, and the algorithms each may verify.
//
// A KeySet is built once at start-up (or on a reload) from an HMAC secret, a PEM public key, or a
// JWKS document (RFC 7517); loading problems throw KeyError with a message that names the key
// (its kid or position) and the reason, never key material. After that a KeySet is immutable:
// copies share the keys, and any thread may verify with it concurrently.
//
// No algorithm confusion (RFC 8725 §2.1, §3.1): the key's type alone decides which algorithms it
// verifies, never the token. An HMAC secret verifies HS256/384/512 only; an RSA key RS256/384/512
// and PS256/384/512; an EC P-256 key ES256, a P-384 key ES384; an Ed25519 key EdDSA. A PEM text is
// never used as an HMAC secret. A JWK's "alg" narrows its key to that one algorithm.
//
// Key selection: a token's "kid" selects the key with that kid; a token without "kid" uses the
// set's only key. A set holding one key without a kid (from a secret or a PEM without an id)
// also takes tokens that carry some kid: the operator did not name the key, and the signature
// still has to verify with it. Otherwise an unknown kid fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "auth/error.hpp"

namespace pylon::auth {

// The JWS "alg" values verified here: RFC 7518 §3.1 and RFC 8037 §3.1 (EdDSA, Ed25519 only).
enum class Algorithm : std::uint8_t {
  hs256,
  hs384,
  hs512,
  rs256,
  rs384,
  rs512,
  ps256,
  ps384,
  ps512,
  es256,
  es384,
  eddsa,
};
inline constexpr std::size_t kAlgorithmCount = static_cast<std::size_t>(Algorithm::eddsa) + 1;

// The "alg" value, e.g. "HS256".
std::string_view name(Algorithm algorithm) noexcept;
// Exact, case-sensitive (RFC 7515 §4.1.1); "none" and anything unknown give nullopt.
std::optional<Algorithm> algorithm_from_name(std::string_view name) noexcept;

enum class KeyType : std::uint8_t { hmac, rsa, ec_p256, ec_p384, ed25519 };
std::string_view name(KeyType type) noexcept;  // "hmac", "rsa", "ec-p256", "ec-p384", "ed25519"
// The confusion table above.
bool is_allowed(KeyType type, Algorithm algorithm) noexcept;

// Smallest HMAC secret (RFC 7518 §3.2: a key at least as long as the HS256 hash) and RSA modulus
// (RFC 7518 §3.3) accepted.
inline constexpr std::size_t kMinHmacSecretSize = 32;
inline constexpr int kMinRsaBits = 2048;

class KeyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class KeySet {
 public:
  KeySet();  // empty: verifies nothing (unknown_key_id)

  // The secret's raw bytes; at least kMinHmacSecretSize of them.
  static KeySet from_hmac_secret(std::string_view secret, std::string_view key_id = {});
  // A "PUBLIC KEY" PEM block (SubjectPublicKeyInfo): RSA of kMinRsaBits or more, EC P-256 or
  // P-384, Ed25519. Private keys are refused: the server needs only the public half.
  static KeySet from_pem(std::string_view pem, std::string_view key_id = {});
  // A JWK Set ({"keys":[...]}) or a single JWK. kty RSA (n, e), EC (crv P-256/P-384, x, y), OKP
  // (crv Ed25519, x), oct (k); optional kid, alg, use, key_ops. Keys that are not for signatures
  // ("use" other than "sig", "key_ops" without "verify") or whose kty, crv or alg this module
  // does not implement are skipped (RFC 7517 §5); a key of a known type that is malformed, holds
  // private members, pairs its alg with the wrong key type, or repeats a kid, is a KeyError, as
  // is a set with no usable key or with several keys one of which has no kid.
  static KeySet from_jwks(std::string_view json);

  std::size_t size() const noexcept;
  struct KeyInfo {
    std::string_view key_id;  // empty when the key has none
    KeyType type;
    std::optional<Algorithm> algorithm;  // set when the JWK's "alg" pins one
  };
  // For start-up logs: what key index holds (index < size()).
  KeyInfo key(std::size_t index) const noexcept;

  // Selects the key (rules above), checks that it may verify algorithm, and verifies signature
  // over signing_input with OpenSSL's EVP interface. none, missing_key_id, unknown_key_id,
  // algorithm_not_allowed_for_key or bad_signature.
  TokenError verify_signature(Algorithm algorithm, std::optional<std::string_view> key_id,
                              std::string_view signing_input,
                              std::span<const std::uint8_t> signature) const noexcept;

 private:
  struct Key;
  explicit KeySet(std::shared_ptr<const std::vector<Key>> keys);
  std::shared_ptr<const std::vector<Key>> keys_;
};

}  // namespace pylon::auth
