// Tests for src/auth/jwt.*: tokens minted by PyJWT (vectors.json, make_vectors.py) for every
// algorithm, JWKS selection by kid, hostile tokens each with its exact error, claims, and the
// rough cost of one verification per algorithm (printed, not asserted).
#include "auth/jwt.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "auth/base64url.hpp"
#include "vectors.hpp"

namespace pylon::auth {
namespace {

using test::at;
using test::Vectors;

const char* const kAlgorithms[] = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
                                   "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"};

struct Result {
  TokenError error;
  Claims claims;
};

Result check(std::string_view token, const KeySet& keys, const VerifyOptions& options = {},
             double now = Vectors::get().now) {
  Result result;
  result.error = verify(token, keys, options, at(now), result.claims);
  return result;
}

// Verifies the named vector with the key set it was minted for.
Result check_named(std::string_view name, const VerifyOptions& options = {},
                   double now = Vectors::get().now) {
  const auto& vector = Vectors::get().token(name);
  return check(vector.token, Vectors::get().keys(vector.key), options, now);
}

TokenError error_of(std::string_view name, const VerifyOptions& options = {},
                    double now = Vectors::get().now) {
  return check_named(name, options, now).error;
}

// A token signed here (OpenSSL's HMAC) for the structural tests: header and payload as given.
std::string sign_hs256(std::string_view header, std::string_view payload) {
  const std::string& secret = Vectors::get().secrets.at("hmac");
  std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &size);
  return input + "." + base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), size));
}

KeySet hmac_keys() {
  return Vectors::get().keys("hmac");
}

TEST(JwtTest, EveryAlgorithmVerifiesPyJwtTokens) {
  const double now = Vectors::get().now;
  for (const char* alg : kAlgorithms) {
    SCOPED_TRACE(alg);
    for (const std::string prefix : {"valid_", "kid_"}) {
      const Result result = check_named(prefix + alg);
      ASSERT_EQ(result.error, TokenError::none) << name(result.error);
      const Claims& claims = result.claims;
      EXPECT_EQ(name(claims.algorithm), alg);
      EXPECT_EQ(claims.key_id.empty(), prefix == "valid_");
      EXPECT_EQ(claims.subject, "user-42");
      EXPECT_EQ(claims.expires_at, now + 600);
      EXPECT_EQ(claims.not_before, now - 60);
      EXPECT_EQ(claims.issued_at, now - 60);
      EXPECT_EQ(claims.subscribe, (std::vector<std::string>{"chat:*", "news"}));
      EXPECT_EQ(claims.publish, (std::vector<std::string>{"chat:room-1"}));
      EXPECT_TRUE(claims.topic.empty());
      // Untouched: PyJWT's \u00e9 escape and 1.5 exactly as written.
      EXPECT_EQ(claims.info, Vectors::get().info);
      EXPECT_NE(claims.info.find("\\u00e9"), std::string::npos);
    }
  }
}

TEST(JwtTest, JwksWithTwoKeysSelectsByKid) {
  const KeySet two = Vectors::get().keys("jwks_two");
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(check(Vectors::get().token("kid_RS256").token, two).error, TokenError::none);
  EXPECT_EQ(error_of("kid_rsa2b_RS256"), TokenError::none);
  EXPECT_EQ(check_named("kid_rsa2b_RS256").claims.key_id, "rsa-2b");
  // The header names rsa-1, rsa-2 signed: the kid decides, and the signature fails.
  EXPECT_EQ(check(Vectors::get().token("kid_rsa1_signed_by_rsa2").token, two).error,
            TokenError::bad_signature);
  // No kid with several keys, or a kid that is not in the set.
  EXPECT_EQ(check(Vectors::get().token("valid_RS256").token, two).error,
            TokenError::missing_key_id);
  EXPECT_EQ(check(Vectors::get().token("wrong_kid").token, two).error, TokenError::unknown_key_id);
}

TEST(JwtTest, JwksKeysOfEveryTypeAndPinnedAlgorithms) {
  EXPECT_EQ(error_of("kid_p256_short"), TokenError::none);  // coordinate padded back
  EXPECT_EQ(error_of("kid_rsa2_PS256"), TokenError::none);
  EXPECT_EQ(error_of("kid_rsa2_RS256"), TokenError::algorithm_not_allowed_for_key);
  EXPECT_EQ(error_of("kid_hmac2_HS512"), TokenError::none);
  EXPECT_EQ(error_of("kid_hmac2_HS256"), TokenError::algorithm_not_allowed_for_key);
  EXPECT_EQ(error_of("kid_rsa1_signed_by_rsa2"), TokenError::bad_signature);
  EXPECT_EQ(error_of("wrong_kid"), TokenError::unknown_key_id);
  EXPECT_EQ(check(Vectors::get().token("valid_HS256").token, Vectors::get().keys("jwks")).error,
            TokenError::missing_key_id);
}

TEST(JwtTest, SingleUnnamedKeyTakesAnyKid) {
  // A key configured without a kid (a secret, a PEM) still verifies tokens that carry one.
  EXPECT_EQ(check(Vectors::get().token("kid_ES256").token, Vectors::get().keys("p256")).error,
            TokenError::none);
  EXPECT_EQ(check(Vectors::get().token("valid_HS256").token, KeySet{}).error,
            TokenError::unknown_key_id);
  const KeySet named = KeySet::from_hmac_secret(Vectors::get().secrets.at("hmac"), "hmac-1");
  EXPECT_EQ(check(Vectors::get().token("kid_HS256").token, named).error, TokenError::none);
  EXPECT_EQ(check(Vectors::get().token("valid_HS256").token, named).error, TokenError::none);
  EXPECT_EQ(check(Vectors::get().token("kid_ES256").token, named).error,
            TokenError::unknown_key_id);
}

TEST(JwtTest, AlgorithmNoneIsRefused) {
  EXPECT_EQ(error_of("alg_none"), TokenError::algorithm_none);
  EXPECT_EQ(check(Vectors::get().token("alg_none").token, hmac_keys()).error,
            TokenError::algorithm_none);
  EXPECT_EQ(check(sign_hs256(R"({"alg":"none"})", R"({"exp":1})"), hmac_keys()).error,
            TokenError::algorithm_none);
  // "alg" is case-sensitive: "None" is merely unknown.
  EXPECT_EQ(check(sign_hs256(R"({"alg":"None"})", R"({})"), hmac_keys()).error,
            TokenError::unsupported_algorithm);
  EXPECT_EQ(check(sign_hs256(R"({"alg":"ES512"})", R"({})"), hmac_keys()).error,
            TokenError::unsupported_algorithm);
  EXPECT_EQ(check(sign_hs256(R"({"alg":"hs256"})", R"({})"), hmac_keys()).error,
            TokenError::unsupported_algorithm);
}

TEST(JwtTest, NoAlgorithmConfusion) {
  // HS256 keyed with the RSA public key's PEM text, verified by that RSA key.
  EXPECT_EQ(error_of("hs256_with_rsa_pem"), TokenError::algorithm_not_allowed_for_key);
  const auto& v = Vectors::get();
  // Every algorithm against every key type it does not belong to.
  const std::vector<std::pair<std::string, std::vector<std::string>>> wrong = {
      {"hmac", {"RS256", "PS256", "ES256", "ES384", "EdDSA"}},
      {"rsa", {"HS256", "HS512", "ES256", "EdDSA"}},
      {"p256", {"HS256", "RS256", "PS256", "ES384", "EdDSA"}},
      {"p384", {"HS384", "RS384", "ES256", "EdDSA"}},
      {"ed25519", {"HS256", "RS256", "ES256"}},
  };
  for (const auto& [key, algs] : wrong)
    for (const auto& alg : algs)
      EXPECT_EQ(check(v.token("valid_" + alg).token, v.keys(key)).error,
                TokenError::algorithm_not_allowed_for_key)
          << alg << " with " << key;
}

TEST(JwtTest, SignaturesThatDoNotVerify) {
  const auto& v = Vectors::get();
  EXPECT_EQ(error_of("es256_der_signature"), TokenError::bad_signature);
  EXPECT_EQ(error_of("rsa_signed_by_other_rsa"), TokenError::bad_signature);
  // A signature taken from another token signed by the same key.
  for (const char* alg : kAlgorithms) {
    const std::string& token = v.token(std::string("valid_") + alg).token;
    const std::string& other = v.token(std::string("kid_") + alg).token;
    const std::string spliced = token.substr(0, token.rfind('.')) + other.substr(other.rfind('.'));
    EXPECT_EQ(check(spliced, v.keys(v.token(std::string("valid_") + alg).key)).error,
              TokenError::bad_signature)
        << alg;
  }
  // One bit of the payload changed (a '.' stays a '.', the text stays base64url).
  std::string flipped = v.token("valid_ES256").token;
  const std::size_t i = flipped.find('.') + 5;
  flipped[i] = flipped[i] == 'A' ? 'B' : 'A';
  EXPECT_EQ(check(flipped, v.keys("p256")).error, TokenError::bad_signature);
  // A signature of another token's size and shape but not its own, and an empty one.
  const std::string& hs = v.token("valid_HS256").token;
  EXPECT_EQ(check(hs.substr(0, hs.rfind('.') + 1), hmac_keys()).error, TokenError::bad_signature);
  const std::string& es = v.token("valid_ES256").token;
  EXPECT_EQ(check(es.substr(0, es.rfind('.') + 1), v.keys("p256")).error,
            TokenError::bad_signature);
}

TEST(JwtTest, TruncatedTokens) {
  const std::string& token = Vectors::get().token("valid_HS256").token;
  const std::size_t last_dot = token.rfind('.');
  ASSERT_EQ(token.size() - last_dot - 1, 43u);  // 32 bytes of MAC
  EXPECT_EQ(check(token.substr(0, last_dot), hmac_keys()).error, TokenError::malformed);
  EXPECT_EQ(check(token.substr(0, 40), hmac_keys()).error, TokenError::malformed);
  // 40 of the 43 signature characters: whole groups, 30 bytes.
  EXPECT_EQ(check(token.substr(0, token.size() - 3), hmac_keys()).error, TokenError::bad_signature);
  EXPECT_EQ(check("", hmac_keys()).error, TokenError::malformed);
}

TEST(JwtTest, EmptyPartsAndWrongPartCount) {
  const std::string& token = Vectors::get().token("valid_HS256").token;
  const std::size_t first = token.find('.'), last = token.rfind('.');
  const std::string header = token.substr(0, first);
  const std::string payload = token.substr(first + 1, last - first - 1);
  const std::string signature = token.substr(last + 1);
  for (const std::string& bad :
       {std::string(".."), "." + payload + "." + signature, header + ".." + signature,
        header + "." + payload + "." + signature + ".x",  // four parts
        header + "." + payload + "." + signature + "..",  // a JWE has five
        std::string("abc")})
    EXPECT_EQ(check(bad, hmac_keys()).error, TokenError::malformed) << bad;
}

TEST(JwtTest, TokenSizeLimit) {
  const std::string& token = Vectors::get().token("valid_HS256").token;
  EXPECT_EQ(check(std::string(64 * 1024, 'a'), hmac_keys()).error, TokenError::too_large);
  // 64 KiB that would otherwise be a perfectly good token: refused before being read.
  const std::string big =
      sign_hs256(R"({"alg":"HS256"})",
                 R"({"exp":1800000000,"pylon":{"info":")" + std::string(48000, 'x') + R"("}})");
  ASSERT_GT(big.size(), 64000u);
  EXPECT_EQ(check(big, hmac_keys()).error, TokenError::too_large);
  EXPECT_EQ(check(big, hmac_keys(), {.max_token_size = big.size()}).error, TokenError::none);
  EXPECT_EQ(check(token, hmac_keys(), {.max_token_size = token.size()}).error, TokenError::none);
  EXPECT_EQ(check(token, hmac_keys(), {.max_token_size = token.size() - 1}).error,
            TokenError::too_large);
}

TEST(JwtTest, InvalidBase64url) {
  const std::string& token = Vectors::get().token("valid_HS256").token;
  const std::size_t first = token.find('.');
  auto with_header = [&](std::string header) { return header + token.substr(first); };
  const std::string header = token.substr(0, first);  // 36 chars: {"alg":"HS256","typ":"JWT"}
  std::string spaced = header;
  spaced[0] = ' ';
  for (const std::string& bad : {
           with_header(header + "="),                   // padding
           with_header(header.substr(0, 35) + "+"),     // standard alphabet
           with_header(header.substr(0, 35) + "/"),     // standard alphabet
           with_header(spaced),                         // whitespace
           with_header(header + "A"),                   // 4k+1 characters
           with_header(header.substr(0, 35) + "\xC3"),  // not even ASCII
       })
    EXPECT_EQ(check(bad, hmac_keys()).error, TokenError::bad_base64url) << bad;
  // A signature with non-zero unused bits in its last character: lax decoders give the same
  // bytes, so this would be a second spelling of the same token. 43 characters: the last one
  // holds 2 unused bits, zero in the canonical text, and the next letter of the alphabet sets one.
  ASSERT_EQ((token.size() - token.rfind('.') - 1) % 4, 3u);
  std::string loose = token;
  loose.back() = static_cast<char>(loose.back() + 1);
  EXPECT_EQ(check(loose, hmac_keys()).error, TokenError::bad_base64url);
  EXPECT_EQ(check(sign_hs256(R"({"alg":"HS256"})", "{}") + "=", hmac_keys()).error,
            TokenError::bad_base64url);
}

TEST(JwtTest, InvalidJson) {
  EXPECT_EQ(error_of("header_bad_json"), TokenError::bad_json);
  EXPECT_EQ(error_of("payload_bad_json"), TokenError::bad_json);
  EXPECT_EQ(error_of("payload_not_object"), TokenError::payload_not_object);
  EXPECT_EQ(error_of("payload_big_integer"), TokenError::bad_json);
  EXPECT_EQ(error_of("header_duplicate_alg"), TokenError::duplicate_member);
  EXPECT_EQ(error_of("payload_duplicate_exp"), TokenError::duplicate_member);
  EXPECT_EQ(check(sign_hs256(R"(["HS256"])", "{}"), hmac_keys()).error, TokenError::bad_header);
  EXPECT_EQ(check(sign_hs256(R"({"typ":"JWT"})", "{}"), hmac_keys()).error, TokenError::bad_header);
  EXPECT_EQ(check(sign_hs256(R"({"alg":256})", "{}"), hmac_keys()).error, TokenError::bad_header);
  EXPECT_EQ(check(sign_hs256(R"({"alg":"HS256","kid":7})", "{}"), hmac_keys()).error,
            TokenError::bad_header);
  // Invalid UTF-8 inside a string.
  EXPECT_EQ(check(sign_hs256(R"({"alg":"HS256"})", "{\"sub\":\"\xC3\x28\"}"), hmac_keys()).error,
            TokenError::bad_json);
  // Duplicate names we do not read are not looked at.
  EXPECT_EQ(
      check(sign_hs256(R"({"alg":"HS256","x":1,"x":2})", R"({"exp":1800000000})"), hmac_keys())
          .error,
      TokenError::none);
}

TEST(JwtTest, JsonDepthLimit) {
  EXPECT_EQ(error_of("payload_deep"), TokenError::json_too_deep);  // 22 levels
  EXPECT_EQ(error_of("payload_deep", {.max_json_depth = 22}), TokenError::none);
  EXPECT_EQ(error_of("payload_deep", {.max_json_depth = 21}), TokenError::json_too_deep);
  EXPECT_EQ(check_named("payload_deep", {.max_json_depth = 22}).claims.info,
            std::string(20, '[') + "1" + std::string(20, ']'));
  // {"exp":..,"pylon":{"info":[[[1]]]}} is 5 deep.
  const std::string token =
      sign_hs256(R"({"alg":"HS256"})", R"({"exp":1800000000,"pylon":{"info":[[[1]]]}})");
  EXPECT_EQ(check(token, hmac_keys(), {.max_json_depth = 5}).error, TokenError::none);
  EXPECT_EQ(check(token, hmac_keys(), {.max_json_depth = 4}).error, TokenError::json_too_deep);
  EXPECT_EQ(check(token, hmac_keys(), {.max_json_depth = 1}).error, TokenError::json_too_deep);
  // The header is limited too.
  EXPECT_EQ(
      check(sign_hs256(R"({"alg":"HS256","x":[[1]]})", "{}"), hmac_keys(), {.max_json_depth = 2})
          .error,
      TokenError::json_too_deep);
}

TEST(JwtTest, HeaderTypeAndCritical) {
  EXPECT_EQ(error_of("typ_jwt_lowercase"), TokenError::none);
  EXPECT_EQ(error_of("typ_at_jwt"), TokenError::bad_token_type);
  EXPECT_EQ(error_of("crit"), TokenError::unsupported_critical_header);
  EXPECT_EQ(
      check(sign_hs256(R"({"alg":"HS256","typ":"application/JWT"})", R"({"exp":2e9})"), hmac_keys())
          .error,
      TokenError::none);
  // Keys are never taken from the token ("jwk", "jku" are ignored, the configured key decides).
  EXPECT_EQ(
      check(sign_hs256(R"({"alg":"HS256","jku":"https://evil.example/jwks"})", R"({"exp":2e9})"),
            hmac_keys())
          .error,
      TokenError::none);
}

TEST(JwtTest, ExpiryNotBeforeAndLeeway) {
  using namespace std::chrono_literals;
  const double now = Vectors::get().now;
  EXPECT_EQ(error_of("expired"), TokenError::expired);  // exp = now - 30
  EXPECT_EQ(error_of("expired", {.leeway = 29s}), TokenError::expired);
  EXPECT_EQ(error_of("expired", {.leeway = 31s}), TokenError::none);
  EXPECT_EQ(error_of("not_yet_valid"), TokenError::not_yet_valid);  // nbf = now + 30
  EXPECT_EQ(error_of("not_yet_valid", {.leeway = 29s}), TokenError::not_yet_valid);
  EXPECT_EQ(error_of("not_yet_valid", {.leeway = 30s}), TokenError::none);
  EXPECT_EQ(error_of("not_yet_valid", {}, now + 30), TokenError::none);  // at nbf: valid
  // RFC 7519 §4.1.4: valid only before exp (exp = now + 600).
  EXPECT_EQ(error_of("valid_HS256", {}, now + 599.999), TokenError::none);
  EXPECT_EQ(error_of("valid_HS256", {}, now + 600), TokenError::expired);
  // Decimal NumericDates: exp = now + 0.5, iat = now - 0.25.
  const Result decimal = check_named("decimal_exp", {}, now + 0.4);
  EXPECT_EQ(decimal.error, TokenError::none);
  EXPECT_EQ(decimal.claims.expires_at, now + 0.5);
  EXPECT_EQ(decimal.claims.issued_at, now - 0.25);
  EXPECT_EQ(error_of("decimal_exp", {}, now + 0.5), TokenError::expired);
  EXPECT_EQ(error_of("decimal_exp", {.leeway = std::chrono::duration<double>(0.2)}, now + 0.6),
            TokenError::none);
}

TEST(JwtTest, IssuedInTheFuture) {
  using namespace std::chrono_literals;
  const double now = Vectors::get().now;
  const auto issued_at = [&](double seconds) {
    return sign_hs256(R"({"alg":"HS256"})", R"({"exp":2e9,"iat":)" + std::to_string(seconds) + "}");
  };
  EXPECT_EQ(check(issued_at(now + 30), hmac_keys()).error, TokenError::issued_in_future);
  EXPECT_EQ(check(issued_at(now + 30), hmac_keys(), {.leeway = 29s}).error,
            TokenError::issued_in_future);
  EXPECT_EQ(check(issued_at(now + 30), hmac_keys(), {.leeway = 30s}).error, TokenError::none);
  EXPECT_EQ(check(issued_at(now), hmac_keys()).error, TokenError::none);  // issued just now
  EXPECT_EQ(check(issued_at(now + 0.5), hmac_keys(), {}, now + 0.5).error, TokenError::none);
  EXPECT_EQ(check(issued_at(now + 0.5), hmac_keys(), {}, now + 0.25).error,
            TokenError::issued_in_future);
}

TEST(JwtTest, MissingExpiry) {
  EXPECT_EQ(error_of("no_exp"), TokenError::missing_expiry);
  EXPECT_EQ(error_of("no_exp", {.require_expiry = false}), TokenError::none);
  EXPECT_FALSE(check_named("no_exp", {.require_expiry = false}).claims.expires_at);
  const Result minimal = check_named("minimal");
  ASSERT_EQ(minimal.error, TokenError::none);
  EXPECT_TRUE(minimal.claims.subject.empty());  // anonymous
  EXPECT_TRUE(minimal.claims.subscribe.empty());
  EXPECT_TRUE(minimal.claims.info.empty());
}

TEST(JwtTest, Audience) {
  const VerifyOptions ours{.audiences = {"pylon"}};
  EXPECT_EQ(error_of("aud_single", ours), TokenError::none);
  EXPECT_EQ(error_of("aud_list", ours), TokenError::none);
  EXPECT_EQ(error_of("aud_wrong", ours), TokenError::wrong_audience);
  EXPECT_EQ(error_of("valid_HS256", ours), TokenError::missing_audience);
  EXPECT_EQ(error_of("aud_wrong", {.audiences = {"a", "other"}}), TokenError::none);
  // RFC 7519 §4.1.3: a token meant for someone must not be taken by a server that is nobody.
  EXPECT_EQ(error_of("aud_single"), TokenError::wrong_audience);
  EXPECT_EQ(error_of("aud_number", ours), TokenError::bad_claim_type);
}

TEST(JwtTest, Issuer) {
  const VerifyOptions ours{.issuer = "https://auth.example"};
  EXPECT_EQ(error_of("iss_right", ours), TokenError::none);
  EXPECT_EQ(error_of("iss_wrong", ours), TokenError::wrong_issuer);
  EXPECT_EQ(error_of("valid_HS256", ours), TokenError::missing_issuer);
  EXPECT_EQ(error_of("iss_wrong"), TokenError::none);  // not configured: not checked
}

TEST(JwtTest, ClaimTypes) {
  EXPECT_EQ(error_of("exp_string"), TokenError::bad_claim_type);
  EXPECT_EQ(error_of("sub_number"), TokenError::bad_claim_type);
  EXPECT_EQ(error_of("subscribe_not_array"), TokenError::bad_claim_type);
  EXPECT_EQ(error_of("pylon_not_object"), TokenError::bad_claim_type);
  EXPECT_EQ(error_of("subscribe_bad_pattern"), TokenError::bad_topic_claim);
  EXPECT_EQ(error_of("topic_bad", {.kind = TokenKind::subscription}), TokenError::bad_topic_claim);
  const KeySet keys = hmac_keys();
  for (const char* payload :
       {R"({"exp":true})", R"({"exp":null})", R"({"nbf":"1"})", R"({"iat":[1]})", R"({"iss":1})",
        R"({"aud":{}})", R"({"pylon":{"publish":[1]}})", R"({"pylon":{"topic":1}})"})
    EXPECT_EQ(
        check(sign_hs256(R"({"alg":"HS256"})", payload), keys, {.require_expiry = false}).error,
        TokenError::bad_claim_type)
        << payload;
  EXPECT_EQ(
      check(sign_hs256(R"({"alg":"HS256"})", R"({"exp":2e9,"pylon":{"publish":["a b"]}})"), keys)
          .error,
      TokenError::bad_topic_claim);
  // info may be any JSON value, given back as written.
  const Result text = check(
      sign_hs256(R"({"alg":"HS256"})", R"({"exp":2e9,"pylon":{"info":"x\ty" , "subscribe":[]}})"),
      keys);
  EXPECT_EQ(text.error, TokenError::none);
  EXPECT_EQ(text.claims.info, R"("x\ty")");
  const Result spaced = check(
      sign_hs256(R"({"alg":"HS256"})", R"({"exp":2e9,"pylon":{"info": { "a" : [1, 2.50] } }})"),
      keys);
  EXPECT_EQ(spaced.claims.info, R"({ "a" : [1, 2.50] })");
  // Unknown members inside "pylon" are ignored (room for later claims).
  EXPECT_EQ(
      check(sign_hs256(R"({"alg":"HS256"})", R"({"exp":2e9,"pylon":{"later":{}}})"), keys).error,
      TokenError::none);
}

TEST(JwtTest, SubscriptionTokens) {
  const VerifyOptions subscription{.kind = TokenKind::subscription};
  const Result result = check_named("subscription", subscription);
  ASSERT_EQ(result.error, TokenError::none);
  EXPECT_EQ(result.claims.topic, "private:42");
  EXPECT_EQ(result.claims.subject, "user-42");
  EXPECT_EQ(result.claims.info, R"("vip")");
  // Each kind is refused where the other is expected.
  EXPECT_EQ(error_of("subscription"), TokenError::wrong_token_kind);
  EXPECT_EQ(error_of("valid_HS256", subscription), TokenError::wrong_token_kind);
}

TEST(JwtTest, ClaimsAreEmptyAfterAFailureAndResultsRepeat) {
  Claims claims;
  const auto& v = Vectors::get();
  ASSERT_EQ(verify(v.token("valid_HS256").token, hmac_keys(), {}, at(v.now), claims),
            TokenError::none);
  EXPECT_EQ(verify(v.token("expired").token, hmac_keys(), {}, at(v.now), claims),
            TokenError::expired);
  EXPECT_TRUE(claims.subject.empty());
  EXPECT_TRUE(claims.subscribe.empty());
  EXPECT_TRUE(claims.info.empty());
  EXPECT_FALSE(claims.expires_at);
  // The same inputs give the same answer, whatever was verified in between (pure function).
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(error_of("payload_deep"), TokenError::json_too_deep);
    EXPECT_EQ(error_of("payload_deep", {.max_json_depth = 30}), TokenError::none);
    EXPECT_EQ(check_named("valid_EdDSA").claims.info, v.info);
  }
}

// Rough cost of one verification per algorithm on this machine (not asserted: the machine is
// shared and the numbers only say which algorithms are cheap).
TEST(JwtTest, RoughCostPerAlgorithm) {
  const auto& v = Vectors::get();
  std::printf("  verification cost (token of %zu bytes, %s):\n",
              v.token("valid_HS256").token.size(), "claims included");
  for (const char* alg : kAlgorithms) {
    const auto& vector = v.token(std::string("valid_") + alg);
    const KeySet keys = v.keys(vector.key);
    Claims claims;
    int runs = 0;
    const auto start = std::chrono::steady_clock::now();
    auto elapsed = std::chrono::steady_clock::duration{};
    while (elapsed < std::chrono::milliseconds(100) || runs < 20) {
      ASSERT_EQ(verify(vector.token, keys, {}, at(v.now), claims), TokenError::none);
      ++runs;
      elapsed = std::chrono::steady_clock::now() - start;
    }
    std::printf("    %-6s %8.1f us\n", alg,
                std::chrono::duration<double, std::micro>(elapsed).count() / runs);
  }
}

}  // namespace
}  // namespace pylon::auth
