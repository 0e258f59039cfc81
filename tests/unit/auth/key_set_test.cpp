// Tests for src/auth/key_set.*: loading secrets, PEM keys and JWKS (PyJWT's, from vectors.json),
// the errors that stop start-up, and the key-type / algorithm table.
#include "auth/key_set.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

#include "vectors.hpp"

namespace pylon::auth {
namespace {

using test::Vectors;

// The KeyError message of loading, "" when it loads.
template <typename Load>
std::string load_error(Load load) {
  try {
    load();
  } catch (const KeyError& error) {
    return error.what();
  }
  return "";
}

std::string jwks_error(const std::string& json) {
  return load_error([&] { KeySet::from_jwks(json); });
}

// A member of one of the committed JWKS's keys.
std::string jwk_member(std::string_view kid, std::string_view member) {
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(Vectors::get().jwks);
  const simdjson::dom::array keys = parser.parse(padded)["keys"].get_array().value();
  for (const auto key : keys)
    if (key["kid"].get_string().value() == kid)
      return std::string(key[member].get_string().value());
  throw std::runtime_error("no such JWK member");
}

TEST(KeySetTest, AlgorithmNamesAndTable) {
  for (std::size_t i = 0; i < kAlgorithmCount; ++i) {
    const auto algorithm = static_cast<Algorithm>(i);
    EXPECT_EQ(algorithm_from_name(name(algorithm)), algorithm);
    int types = 0;
    for (const KeyType type :
         {KeyType::hmac, KeyType::rsa, KeyType::ec_p256, KeyType::ec_p384, KeyType::ed25519})
      types += is_allowed(type, algorithm);
    EXPECT_EQ(types, 1) << name(algorithm);  // each algorithm belongs to exactly one key type
  }
  EXPECT_EQ(algorithm_from_name("none"), std::nullopt);
  EXPECT_EQ(algorithm_from_name("es256"), std::nullopt);
  EXPECT_EQ(algorithm_from_name("ES512"), std::nullopt);
  EXPECT_TRUE(is_allowed(KeyType::rsa, Algorithm::ps512));
  EXPECT_FALSE(is_allowed(KeyType::ec_p256, Algorithm::es384));
  EXPECT_FALSE(is_allowed(KeyType::hmac, Algorithm::rs256));
}

TEST(KeySetTest, HmacSecret) {
  const KeySet keys = KeySet::from_hmac_secret(std::string(32, 'k'), "main");
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys.key(0).key_id, "main");
  EXPECT_EQ(keys.key(0).type, KeyType::hmac);
  const std::string message = load_error([] { KeySet::from_hmac_secret("hunter2-secret"); });
  EXPECT_NE(message.find("at least 32"), std::string::npos) << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;  // never the secret
}

TEST(KeySetTest, PemKeysOfEveryType) {
  const auto& v = Vectors::get();
  const std::pair<const char*, KeyType> cases[] = {{"rsa", KeyType::rsa},
                                                   {"p256", KeyType::ec_p256},
                                                   {"p384", KeyType::ec_p384},
                                                   {"ed25519", KeyType::ed25519}};
  for (const auto& [key, type] : cases) {
    const KeySet keys = KeySet::from_pem(v.pems.at(key));
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(keys.key(0).type, type) << key;
    EXPECT_TRUE(keys.key(0).key_id.empty());
  }
}

TEST(KeySetTest, PemErrors) {
  const auto& v = Vectors::get();
  EXPECT_NE(load_error([&] { KeySet::from_pem(v.pems.at("private_pem")); }).find("private key"),
            std::string::npos);
  EXPECT_NE(load_error([&] { KeySet::from_pem(v.pems.at("rsa1024")); }).find("1024 bits"),
            std::string::npos);
  EXPECT_NE(load_error([] { KeySet::from_pem("not a key"); }).find("PUBLIC KEY"),
            std::string::npos);
  std::string damaged = v.pems.at("p256");
  damaged[40] = damaged[40] == 'A' ? 'B' : 'A';
  EXPECT_NE(load_error([&] { KeySet::from_pem(damaged); }), "");
}

TEST(KeySetTest, PyJwtJwks) {
  const KeySet keys = KeySet::from_jwks(Vectors::get().jwks);
  // The "enc" key and the P-521 key are skipped (RFC 7517 §5).
  ASSERT_EQ(keys.size(), 8u);
  const std::pair<std::string_view, KeyType> expected[] = {
      {"hmac-1", KeyType::hmac},    {"hmac-2", KeyType::hmac},
      {"rsa-1", KeyType::rsa},      {"rsa-2", KeyType::rsa},
      {"p256-1", KeyType::ec_p256}, {"p256-short", KeyType::ec_p256},
      {"p384-1", KeyType::ec_p384}, {"ed25519-1", KeyType::ed25519}};
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(keys.key(i).key_id, expected[i].first);
    EXPECT_EQ(keys.key(i).type, expected[i].second);
  }
  EXPECT_EQ(keys.key(1).algorithm, Algorithm::hs512);
  EXPECT_EQ(keys.key(3).algorithm, Algorithm::ps256);
  EXPECT_EQ(keys.key(0).algorithm, std::nullopt);
  // A single JWK, not in a set.
  const std::string single =
      R"({"kty":"OKP","crv":"Ed25519","x":")" + jwk_member("ed25519-1", "x") + R"("})";
  EXPECT_EQ(KeySet::from_jwks(single).size(), 1u);
}

TEST(KeySetTest, JwksErrors) {
  const std::string x = jwk_member("p256-1", "x"), n = jwk_member("rsa-1", "n");
  const std::string k32 = base64url_encode(std::string(32, 's'));
  const auto has = [](const std::string& message, std::string_view text) {
    return message.find(text) != std::string::npos;
  };
  EXPECT_TRUE(has(jwks_error("{"), "not valid JSON"));
  EXPECT_TRUE(has(jwks_error("[]"), "not a JSON object"));
  EXPECT_TRUE(has(jwks_error("{}"), "neither"));
  EXPECT_TRUE(has(jwks_error(R"({"keys":{}})"), "not an array"));
  EXPECT_TRUE(has(jwks_error(R"({"keys":[]})"), "no key usable"));
  EXPECT_TRUE(
      has(jwks_error(R"({"keys":[{"kty":"X"},{"kty":"EC","crv":"P-521"}]})"), "no key usable"));
  EXPECT_TRUE(has(jwks_error(R"({"keys":[{"kid":"a"}]})"), "\"kty\" is missing"));
  EXPECT_TRUE(has(jwks_error(R"({"keys":[{"kty":"oct","k":")" + k32 + R"(","kid":"a"},)" +
                             R"({"kty":"oct","k":")" + k32 + R"(","kid":"a"}]})"),
                  "same kid"));
  EXPECT_TRUE(has(jwks_error(R"({"keys":[{"kty":"oct","k":")" + k32 + R"(","kid":"a"},)" +
                             R"({"kty":"oct","k":")" + k32 + R"("}]})"),
                  "has no kid"));
  // Secrets: too short (and the message does not show it), pinned to HS512 needs 64 bytes.
  const std::string short_secret = jwks_error(R"({"kty":"oct","k":"c2VjcmV0"})");
  EXPECT_TRUE(has(short_secret, "6-byte secret")) << short_secret;
  EXPECT_FALSE(has(short_secret, "c2VjcmV0"));
  EXPECT_TRUE(
      has(jwks_error(R"({"kty":"oct","alg":"HS512","k":")" + k32 + R"("})"), "at least 64"));
  EXPECT_TRUE(has(jwks_error(R"({"kty":"oct","k":"c2VjcmV0=="})"), "base64url"));
  // Private keys, off-curve points, algorithms of another key type.
  EXPECT_TRUE(
      has(jwks_error(R"({"kty":"RSA","n":")" + n + R"(","e":"AQAB","d":"AQAB"})"), "private key"));
  EXPECT_TRUE(has(jwks_error(R"({"kty":"EC","crv":"P-256","x":")" + x +
                             R"(","y":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})"),
                  "not a valid EC public key"));
  EXPECT_TRUE(has(jwks_error(R"({"kty":"EC","crv":"P-384","x":")" + x + R"(","y":")" + x + R"("})"),
                  "not a valid EC public key"));
  EXPECT_TRUE(has(jwks_error(R"({"kty":"RSA","alg":"ES256","n":")" + n + R"(","e":"AQAB"})"),
                  "does not fit"));
  EXPECT_TRUE(has(jwks_error(R"({"kty":"RSA","n":")" + n + R"(","e":"AQ"})"),
                  "not a valid RSA public key"));  // e = 1
  EXPECT_TRUE(has(jwks_error(R"({"kty":"RSA","n":"AQAB","e":"AQAB"})"), "bits"));
  EXPECT_TRUE(has(jwks_error(R"({"kty":"OKP","crv":"Ed25519","x":"AQAB"})"), "32 bytes"));
  EXPECT_TRUE(has(jwks_error(R"({"kty":"RSA","kid":7})"), "not a string"));
  // Keys not meant for signatures, or with an algorithm we do not verify, are skipped.
  EXPECT_TRUE(has(jwks_error(R"({"keys":[{"kty":"oct","use":"enc","k":")" + k32 + R"("}]})"),
                  "no key usable"));
  EXPECT_TRUE(has(jwks_error(R"({"keys":[{"kty":"oct","alg":"none","k":")" + k32 + R"("}]})"),
                  "no key usable"));
  EXPECT_TRUE(has(jwks_error(R"({"keys":[{"kty":"oct","key_ops":["sign"],"k":")" + k32 + R"("}]})"),
                  "no key usable"));
}

}  // namespace
}  // namespace pylon::auth
