#include "auth/key_set.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <climits>
#include <iterator>

#include "auth/base64url.hpp"

namespace pylon::auth {
namespace {

enum class Family : std::uint8_t { hmac, rsa_pkcs1, rsa_pss, ecdsa, eddsa };

struct AlgorithmInfo {
  std::string_view name;
  Family family;
  const char* digest;               // OpenSSL's name; nullptr for EdDSA (it hashes internally)
  std::size_t coordinate_size;      // ECDSA: bytes of R and of S in the JWS signature
  std::size_t min_hmac_secret = 0;  // RFC 7518 §3.2: a key at least as long as the hash output
};

// Indexed by Algorithm; the order must follow the enum.
constexpr AlgorithmInfo kAlgorithms[] = {
    {"HS256", Family::hmac, "SHA256", 0, 32},  {"HS384", Family::hmac, "SHA384", 0, 48},
    {"HS512", Family::hmac, "SHA512", 0, 64},  {"RS256", Family::rsa_pkcs1, "SHA256", 0},
    {"RS384", Family::rsa_pkcs1, "SHA384", 0}, {"RS512", Family::rsa_pkcs1, "SHA512", 0},
    {"PS256", Family::rsa_pss, "SHA256", 0},   {"PS384", Family::rsa_pss, "SHA384", 0},
    {"PS512", Family::rsa_pss, "SHA512", 0},   {"ES256", Family::ecdsa, "SHA256", 32},
    {"ES384", Family::ecdsa, "SHA384", 48},    {"EdDSA", Family::eddsa, nullptr, 0},
};
static_assert(std::size(kAlgorithms) == kAlgorithmCount);

const AlgorithmInfo& info(Algorithm algorithm) {
  return kAlgorithms[static_cast<std::size_t>(algorithm)];
}

// Fetched once per process (OpenSSL 3 would otherwise look each one up on every verification);
// EVP_MD and EVP_MAC objects are immutable and shared by all threads.
struct Fetched {
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD* sha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  EVP_MD* sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);

  const EVP_MD* digest(const char* name) const {
    if (name == nullptr) return nullptr;
    const std::string_view n(name);
    return n == "SHA256" ? sha256 : n == "SHA384" ? sha384 : sha512;
  }
};

const Fetched& fetched() {
  static const Fetched instance;
  return instance;
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

bool verify_hmac(const std::string& secret, const AlgorithmInfo& algorithm, std::string_view input,
                 std::span<const std::uint8_t> signature) {
  EVP_MAC_CTX* context = EVP_MAC_CTX_new(fetched().hmac);
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                          const_cast<char*>(algorithm.digest), 0),
                         OSSL_PARAM_construct_end()};
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t mac_size = 0;
  bool ok = context != nullptr &&
            EVP_MAC_init(context, reinterpret_cast<const unsigned char*>(secret.data()),
                         secret.size(), params) == 1 &&
            EVP_MAC_update(context, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1 &&
            EVP_MAC_final(context, mac, &mac_size, sizeof mac) == 1;
  EVP_MAC_CTX_free(context);
  // The size is public (fixed by the algorithm); the bytes are compared in constant time so the
  // time taken says nothing about how many leading bytes of a forged MAC were right.
  ok = ok && mac_size == signature.size() && CRYPTO_memcmp(mac, signature.data(), mac_size) == 0;
  OPENSSL_cleanse(mac, sizeof mac);  // the valid MAC of an attacker-chosen input
  return ok;
}

// Largest DER ECDSA-Sig-Value for P-384: SEQUENCE { INTEGER r, INTEGER s }, each integer at most
// 48 bytes plus a sign byte and a 2-byte header, the sequence header 2 bytes.
constexpr std::size_t kMaxDerSignature = 2 + 2 * (2 + 48 + 1);

// RFC 7518 §3.4: a JWS ECDSA signature is R || S, each zero-padded to the coordinate size; EVP
// wants the DER ECDSA-Sig-Value of X9.62. Returns the DER size, 0 when the input has the wrong
// size (a DER signature in place of R || S is refused here).
std::size_t raw_to_der(std::span<const std::uint8_t> raw, std::size_t coordinate_size,
                       std::uint8_t (&der)[kMaxDerSignature]) {
  if (raw.size() != 2 * coordinate_size) return 0;
  ECDSA_SIG* signature = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(raw.data(), static_cast<int>(coordinate_size), nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + coordinate_size, static_cast<int>(coordinate_size), nullptr);
  if (signature == nullptr || r == nullptr || s == nullptr ||
      ECDSA_SIG_set0(signature, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(signature);
    return 0;
  }
  std::size_t size = 0;
  const int needed = i2d_ECDSA_SIG(signature, nullptr);
  if (needed > 0 && static_cast<std::size_t>(needed) <= sizeof der) {
    unsigned char* out = der;
    size = static_cast<std::size_t>(i2d_ECDSA_SIG(signature, &out));
  }
  ECDSA_SIG_free(signature);  // frees r and s
  return size;
}

bool verify_public(EVP_PKEY* key, const AlgorithmInfo& algorithm, std::string_view input,
                   std::span<const std::uint8_t> signature) {
  std::uint8_t der[kMaxDerSignature];
  if (algorithm.family == Family::ecdsa) {
    const std::size_t size = raw_to_der(signature, algorithm.coordinate_size, der);
    if (size == 0) return false;
    signature = {der, size};
  }
  const EVP_MD* digest = fetched().digest(algorithm.digest);
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  EVP_PKEY_CTX* key_context = nullptr;  // owned by context
  bool ok =
      context != nullptr && EVP_DigestVerifyInit(context, &key_context, digest, nullptr, key) == 1;
  if (ok && algorithm.family == Family::rsa_pss) {
    // RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output.
    ok = EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PSS_PADDING) > 0 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(key_context, RSA_PSS_SALTLEN_DIGEST) > 0 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(key_context, digest) > 0;
  } else if (ok && algorithm.family == Family::rsa_pkcs1) {
    ok = EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PADDING) > 0;
  }
  // One-shot: Ed25519 cannot be fed in pieces.
  ok = ok &&
       EVP_DigestVerify(context, signature.data(), signature.size(),
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(context);
  return ok;
}

// Whoever runs OpenSSL next on this thread must not find our failures on its error queue: a TLS
// read after a refused token would otherwise see a stale error (SSL_get_error consults it).
struct ClearOpenSslErrors {
  ~ClearOpenSslErrors() { ERR_clear_error(); }
};

// --- loading ---

// Where a loading error happened, for the exception message: never key material.
std::string describe_key(std::string_view where, std::string_view key_id) {
  std::string text(where);
  if (!key_id.empty()) {
    text += " (kid \"";
    text.append(key_id.substr(0, 64));
    text += "\")";
  }
  return text;
}

bool is_public_key_valid(EVP_PKEY* key) {
  EVP_PKEY_CTX* context = EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr);
  const bool ok = context != nullptr && EVP_PKEY_public_check(context) == 1;
  EVP_PKEY_CTX_free(context);
  return ok;
}

// The type of a public key, or a KeyError for one pylon does not take.
KeyType classify(EVP_PKEY* key, const std::string& where) {
  if (EVP_PKEY_is_a(key, "RSA")) {
    if (EVP_PKEY_get_bits(key) < kMinRsaBits)
      throw KeyError(where + ": RSA key of " + std::to_string(EVP_PKEY_get_bits(key)) +
                     " bits; at least " + std::to_string(kMinRsaBits) + " are required");
    // SP 800-56B checks (odd modulus, public exponent in range): a bogus key (e = 1) would make
    // every signature trivial to forge.
    if (!is_public_key_valid(key)) throw KeyError(where + ": not a valid RSA public key");
    return KeyType::rsa;
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[80] = {};
    std::size_t size = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &size) != 1)
      throw KeyError(where + ": EC key without a named curve");
    const std::string_view curve(group, size);
    KeyType type;
    if (curve == "prime256v1" || curve == "P-256") {
      type = KeyType::ec_p256;
    } else if (curve == "secp384r1" || curve == "P-384") {
      type = KeyType::ec_p384;
    } else {
      throw KeyError(where + ": EC curve " + std::string(curve) +
                     " is not supported (P-256 for ES256, P-384 for ES384)");
    }
    // The point must be on the curve (invalid-curve attacks).
    if (!is_public_key_valid(key)) throw KeyError(where + ": not a valid EC public key");
    return type;
  }
  if (EVP_PKEY_is_a(key, "ED25519")) return KeyType::ed25519;
  const char* type_name = EVP_PKEY_get0_type_name(key);
  throw KeyError(where + ": unsupported key type " + (type_name ? type_name : "?") +
                 " (RSA, EC P-256/P-384 or Ed25519)");
}

PkeyPtr key_from_params(const char* type, const OSSL_PARAM* params) {
  EVP_PKEY_CTX* context = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* key = nullptr;
  if (context != nullptr && EVP_PKEY_fromdata_init(context) == 1)
    EVP_PKEY_fromdata(context, &key, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params));
  EVP_PKEY_CTX_free(context);
  return PkeyPtr(key);
}

PkeyPtr rsa_from_jwk(const std::string& n, const std::string& e) {
  BIGNUM* modulus = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                              static_cast<int>(n.size()), nullptr);
  BIGNUM* exponent = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                               static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  if (modulus != nullptr && exponent != nullptr && builder != nullptr &&
      OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_N, modulus) == 1 &&
      OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_E, exponent) == 1)
    params = OSSL_PARAM_BLD_to_param(builder);
  PkeyPtr key = params != nullptr ? key_from_params("RSA", params) : nullptr;
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(builder);
  BN_free(modulus);
  BN_free(exponent);
  return key;
}

PkeyPtr ec_from_jwk(const char* curve, const std::string& x, const std::string& y) {
  std::string point = "\x04";  // SEC 1 §2.3.3: uncompressed point
  point += x;
  point += y;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(curve), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  return key_from_params("EC", params);
}

using simdjson::dom::element;
using simdjson::dom::object;

// A string member, nullopt when absent; a KeyError when present with another type.
std::optional<std::string_view> string_member(object jwk, std::string_view member,
                                              const std::string& where) {
  element value;
  if (jwk.at_key(member).get(value) != simdjson::SUCCESS) return std::nullopt;
  std::string_view text;
  if (value.get_string().get(text) != simdjson::SUCCESS)
    throw KeyError(where + ": \"" + std::string(member) + "\" is not a string");
  return text;
}

// A required base64url member, decoded.
std::string bytes_member(object jwk, std::string_view member, const std::string& where) {
  const auto text = string_member(jwk, member, where);
  if (!text) throw KeyError(where + ": \"" + std::string(member) + "\" is missing");
  std::string bytes(base64url_decoded_size(text->size()), '\0');
  if (!base64url_decode(*text, reinterpret_cast<std::uint8_t*>(bytes.data())))
    throw KeyError(where + ": \"" + std::string(member) + "\" is not unpadded base64url");
  return bytes;
}

void refuse_private_members(object jwk, const std::string& where) {
  element ignored;
  if (jwk.at_key("d").get(ignored) == simdjson::SUCCESS)
    throw KeyError(where + ": holds a private key (\"d\"); configure only the public key");
}

}  // namespace

std::string_view name(Algorithm algorithm) noexcept {
  const auto index = static_cast<std::size_t>(algorithm);
  return index < kAlgorithmCount ? kAlgorithms[index].name : std::string_view("unknown");
}

std::optional<Algorithm> algorithm_from_name(std::string_view text) noexcept {
  for (std::size_t i = 0; i < kAlgorithmCount; ++i)
    if (kAlgorithms[i].name == text) return static_cast<Algorithm>(i);
  return std::nullopt;
}

std::string_view name(KeyType type) noexcept {
  switch (type) {
    case KeyType::hmac:
      return "hmac";
    case KeyType::rsa:
      return "rsa";
    case KeyType::ec_p256:
      return "ec-p256";
    case KeyType::ec_p384:
      return "ec-p384";
    case KeyType::ed25519:
      return "ed25519";
  }
  return "unknown";
}

bool is_allowed(KeyType type, Algorithm algorithm) noexcept {
  const Family family = info(algorithm).family;
  switch (type) {
    case KeyType::hmac:
      return family == Family::hmac;
    case KeyType::rsa:
      return family == Family::rsa_pkcs1 || family == Family::rsa_pss;
    case KeyType::ec_p256:
      return algorithm == Algorithm::es256;
    case KeyType::ec_p384:
      return algorithm == Algorithm::es384;
    case KeyType::ed25519:
      return algorithm == Algorithm::eddsa;
  }
  return false;
}

struct KeySet::Key {
  std::string id;
  KeyType type = KeyType::hmac;
  std::optional<Algorithm> algorithm;  // the JWK's "alg"
  std::string secret;                  // HMAC keys
  PkeyPtr public_key;                  // every other type

  Key() = default;
  Key(Key&&) noexcept = default;
  Key& operator=(Key&&) noexcept = default;
  ~Key() { OPENSSL_cleanse(secret.data(), secret.size()); }
};

KeySet::KeySet() : keys_(std::make_shared<const std::vector<Key>>()) {}
KeySet::KeySet(std::shared_ptr<const std::vector<Key>> keys) : keys_(std::move(keys)) {}

std::size_t KeySet::size() const noexcept {
  return keys_->size();
}

KeySet::KeyInfo KeySet::key(std::size_t index) const noexcept {
  const Key& key = (*keys_)[index];
  return {key.id, key.type, key.algorithm};
}

KeySet KeySet::from_hmac_secret(std::string_view secret, std::string_view key_id) {
  if (secret.size() < kMinHmacSecretSize)
    throw KeyError(describe_key("HMAC secret", key_id) + ": " + std::to_string(secret.size()) +
                   " bytes; at least " + std::to_string(kMinHmacSecretSize) + " are required");
  std::vector<Key> keys(1);
  keys[0].id = key_id;
  keys[0].type = KeyType::hmac;
  keys[0].secret = secret;
  return KeySet(std::make_shared<const std::vector<Key>>(std::move(keys)));
}

KeySet KeySet::from_pem(std::string_view pem, std::string_view key_id) {
  const std::string where = describe_key("PEM key", key_id);
  if (pem.find("PRIVATE KEY") != std::string_view::npos)
    throw KeyError(where +
                   ": this is a private key; configure the public key (openssl pkey -pubout)");
  if (pem.size() > INT_MAX) throw KeyError(where + ": too large");
  const ClearOpenSslErrors clear;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  PkeyPtr key(bio != nullptr ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr);
  BIO_free(bio);
  if (!key)
    throw KeyError(where +
                   ": no \"PUBLIC KEY\" PEM block could be read (from a certificate: openssl "
                   "x509 -pubkey -noout)");
  std::vector<Key> keys(1);
  keys[0].id = key_id;
  keys[0].type = classify(key.get(), where);
  keys[0].public_key = std::move(key);
  return KeySet(std::make_shared<const std::vector<Key>>(std::move(keys)));
}

KeySet KeySet::from_jwks(std::string_view json) {
  const ClearOpenSslErrors clear;
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(json);
  element root;
  if (const auto error = parser.parse(padded).get(root); error != simdjson::SUCCESS)
    throw KeyError(std::string("JWKS: not valid JSON (") + simdjson::error_message(error) + ")");
  object top;
  if (root.get_object().get(top) != simdjson::SUCCESS) throw KeyError("JWKS: not a JSON object");
  std::vector<element> members;
  element keys_member;
  if (top.at_key("keys").get(keys_member) == simdjson::SUCCESS) {
    simdjson::dom::array list;
    if (keys_member.get_array().get(list) != simdjson::SUCCESS)
      throw KeyError("JWKS: \"keys\" is not an array");
    for (element item : list) members.push_back(item);
  } else if (top.at_key("kty").error() == simdjson::SUCCESS) {
    members.push_back(root);  // a single JWK
  } else {
    throw KeyError("JWKS: neither a JWK Set (\"keys\") nor a JWK (\"kty\")");
  }

  std::vector<Key> keys;
  for (std::size_t index = 0; index < members.size(); ++index) {
    std::string where = "JWKS key #" + std::to_string(index);
    object jwk;
    if (members[index].get_object().get(jwk) != simdjson::SUCCESS)
      throw KeyError(where + ": not a JSON object");
    const auto key_id = string_member(jwk, "kid", where);
    where = describe_key(where, key_id.value_or(""));
    const auto kty = string_member(jwk, "kty", where);
    if (!kty) throw KeyError(where + ": \"kty\" is missing");

    // RFC 7517 §4.2, §4.3: keys meant for something other than verifying signatures are skipped.
    if (const auto use = string_member(jwk, "use", where); use && *use != "sig") continue;
    element key_ops;
    if (jwk.at_key("key_ops").get(key_ops) == simdjson::SUCCESS) {
      simdjson::dom::array ops;
      if (key_ops.get_array().get(ops) != simdjson::SUCCESS)
        throw KeyError(where + ": \"key_ops\" is not an array");
      bool verifies = false;
      for (element op : ops) {
        std::string_view text;
        if (op.get_string().get(text) != simdjson::SUCCESS)
          throw KeyError(where + ": \"key_ops\" holds a non-string");
        verifies = verifies || text == "verify";
      }
      if (!verifies) continue;
    }
    const auto alg_name = string_member(jwk, "alg", where);
    std::optional<Algorithm> algorithm;
    if (alg_name) {
      algorithm = algorithm_from_name(*alg_name);
      if (!algorithm) continue;  // an algorithm we do not verify ("none" included)
    }

    Key key;
    key.id = key_id.value_or("");
    key.algorithm = algorithm;
    if (*kty == "oct") {
      key.type = KeyType::hmac;
      key.secret = bytes_member(jwk, "k", where);
      const std::size_t minimum =
          algorithm ? std::max(info(*algorithm).min_hmac_secret, kMinHmacSecretSize)
                    : kMinHmacSecretSize;
      if (key.secret.size() < minimum)
        throw KeyError(where + ": " + std::to_string(key.secret.size()) +
                       "-byte secret; at least " + std::to_string(minimum) + " are required");
    } else if (*kty == "RSA") {
      refuse_private_members(jwk, where);
      const std::string n = bytes_member(jwk, "n", where);
      const std::string e = bytes_member(jwk, "e", where);
      key.public_key = rsa_from_jwk(n, e);
      if (!key.public_key) throw KeyError(where + ": not a valid RSA public key");
      key.type = classify(key.public_key.get(), where);
    } else if (*kty == "EC") {
      const auto curve = string_member(jwk, "crv", where);
      if (!curve) throw KeyError(where + ": \"crv\" is missing");
      std::size_t size;
      if (*curve == "P-256") {
        size = 32;
      } else if (*curve == "P-384") {
        size = 48;
      } else {
        continue;  // P-521, secp256k1: curves we do not verify
      }
      refuse_private_members(jwk, where);
      std::string x = bytes_member(jwk, "x", where);
      std::string y = bytes_member(jwk, "y", where);
      // RFC 7518 §6.2.1.2 wants the full coordinate size, leading zeros included, but some
      // producers (PyJWT 2.6) drop leading zero bytes; the integer is the same, so pad it back.
      if (x.empty() || y.empty() || x.size() > size || y.size() > size)
        throw KeyError(where + ": \"x\" or \"y\" is longer than " + std::to_string(size) +
                       " bytes");
      x.insert(0, size - x.size(), '\0');
      y.insert(0, size - y.size(), '\0');
      key.public_key = ec_from_jwk(size == 32 ? "P-256" : "P-384", x, y);
      if (!key.public_key) throw KeyError(where + ": not a valid EC public key");
      key.type = classify(key.public_key.get(), where);
    } else if (*kty == "OKP") {
      const auto curve = string_member(jwk, "crv", where);
      if (!curve) throw KeyError(where + ": \"crv\" is missing");
      if (*curve != "Ed25519") continue;  // Ed448, X25519, X448
      refuse_private_members(jwk, where);
      const std::string x = bytes_member(jwk, "x", where);
      if (x.size() != 32) throw KeyError(where + ": \"x\" is not 32 bytes");
      key.public_key.reset(EVP_PKEY_new_raw_public_key(
          EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()), x.size()));
      if (!key.public_key) throw KeyError(where + ": not a valid Ed25519 public key");
      key.type = KeyType::ed25519;
    } else {
      continue;  // a key type we do not implement
    }
    if (algorithm && !is_allowed(key.type, *algorithm))
      throw KeyError(where + ": \"alg\" " + std::string(*alg_name) + " does not fit a " +
                     std::string(name(key.type)) + " key");
    for (const Key& other : keys)
      if (other.id == key.id && !key.id.empty())
        throw KeyError(where + ": a second key with the same kid");
    keys.push_back(std::move(key));
  }
  if (keys.empty()) throw KeyError("JWKS: no key usable to verify signatures");
  if (keys.size() > 1)
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i].id.empty())
        throw KeyError("JWKS: several keys, and one of them has no kid (tokens could not name it)");
  return KeySet(std::make_shared<const std::vector<Key>>(std::move(keys)));
}

TokenError KeySet::verify_signature(Algorithm algorithm, std::optional<std::string_view> key_id,
                                    std::string_view signing_input,
                                    std::span<const std::uint8_t> signature) const noexcept {
  const std::vector<Key>& keys = *keys_;
  const Key* key = nullptr;
  if (!key_id) {
    if (keys.size() != 1)
      return keys.empty() ? TokenError::unknown_key_id : TokenError::missing_key_id;
    key = &keys[0];
  } else {
    for (const Key& candidate : keys)
      if (!candidate.id.empty() && candidate.id == *key_id) key = &candidate;
    if (key == nullptr && keys.size() == 1 && keys[0].id.empty()) key = &keys[0];
    if (key == nullptr) return TokenError::unknown_key_id;
  }
  if (!is_allowed(key->type, algorithm) || (key->algorithm && *key->algorithm != algorithm))
    return TokenError::algorithm_not_allowed_for_key;
  const ClearOpenSslErrors clear;
  const AlgorithmInfo& details = info(algorithm);
  const bool ok = key->type == KeyType::hmac
                      ? verify_hmac(key->secret, details, signing_input, signature)
                      : verify_public(key->public_key.get(), details, signing_input, signature);
  return ok ? TokenError::none : TokenError::bad_signature;
}

}  // namespace pylon::auth
