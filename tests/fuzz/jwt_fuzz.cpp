// libFuzzer target for src/auth/jwt.hpp (JWT verification) against fixed keys: an HMAC secret,
// an EC P-256 key, and a JWKS holding both by kid (the same keys tests/unit/auth/make_vectors.py
// mints the seeds of corpus/jwt/ with).
//
// Input layout: byte 0's two low bits pick the mode, its other bits the options (token kind,
// exp required, an audience, an issuer, a small depth limit, a leeway); the rest is
//   mode 0, 3: a compact token, verified as it is against the three key sets;
//   mode 1:    a payload, which the harness signs with HS256 under {"alg":"HS256"}, so the
//              fuzzer reaches the claims without forging a MAC;
//   mode 2:    header '\n' payload, both chosen by the fuzzer, signed with HS256 here.
// A token is one string (no streaming), so there are no chunk splits to try.
// Checks: the result is an enumerator of the table and only "none" is named "none"; a refused
// token leaves empty claims; a verified token's claims are well formed (valid patterns, a valid
// topic exactly for subscription tokens, info valid JSON, a live exp when required, a known alg);
// a MAC the harness made is never called bad; and verifying again gives the same answer.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/base64url.hpp"
#include "auth/jwt.hpp"
#include "auth/topic_pattern.hpp"
#include "pubsub/json_syntax.hpp"
#include "pubsub/topic_name.hpp"

namespace {

using namespace pylon::auth;

constexpr std::string_view kSecret = "pylon-fuzz-hmac-secret-0123456789abcdef";
constexpr double kNow = 1700000000;
// P-256 public point of make_vectors.py's FUZZ_EC_SCALAR.
constexpr std::string_view kEcJwk =
    R"({"kty":"EC","crv":"P-256","x":"UO1FnnPpHxSBydlyqRI2Jisnew58Y8nLhQr-EOojT5E",)"
    R"("y":"IaAUuUCoxGwA8I4Q2csJUfDpd1VIGgDx2UjocwY3DbI")";

void check(bool condition) {
  if (!condition) __builtin_trap();
}

struct Keys {
  KeySet hmac = KeySet::from_hmac_secret(kSecret);
  KeySet ec = KeySet::from_jwks(std::string(kEcJwk) + "}");
  KeySet both =
      KeySet::from_jwks(R"({"keys":[{"kty":"oct","kid":"h","k":")" + base64url_encode(kSecret) +
                        R"("},)" + std::string(kEcJwk) + R"(,"kid":"e"}]})");
};

std::string sign_hs256(std::string_view header, std::string_view payload) {
  std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &size);
  return input + "." + base64url_encode(std::string_view(reinterpret_cast<char*>(mac), size));
}

bool is_empty(const Claims& c) {
  return c.key_id.empty() && c.subject.empty() && !c.expires_at && !c.not_before && !c.issued_at &&
         c.subscribe.empty() && c.publish.empty() && c.topic.empty() && c.info.empty();
}

void verify_and_check(std::string_view token, const KeySet& keys, const VerifyOptions& options,
                      bool harness_signed) {
  Claims claims;
  const auto now = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::duration<double>(kNow)));
  const TokenError error = verify(token, keys, options, now, claims);
  check(static_cast<std::size_t>(error) < kTokenErrorCount);
  check((name(error) == "none") == (error == TokenError::none));
  check(!describe(error).empty());
  if (error != TokenError::none) {
    check(is_empty(claims));
  } else {
    check(name(claims.algorithm) != "unknown");
    for (const auto* list : {&claims.subscribe, &claims.publish})
      for (const auto& pattern : *list) check(is_valid_topic_pattern(pattern));
    check(pylon::pubsub::is_valid_topic(claims.topic) == (options.kind == TokenKind::subscription));
    check(claims.info.empty() || pylon::pubsub::is_valid_json(claims.info));
    if (options.require_expiry)
      check(claims.expires_at && kNow < *claims.expires_at + options.leeway.count());
    check(token.size() <= options.max_token_size);
  }
  if (harness_signed)
    check(error != TokenError::bad_signature && error != TokenError::malformed &&
          error != TokenError::bad_base64url && error != TokenError::unknown_key_id);
  Claims again;
  check(verify(token, keys, options, now, again) == error);
  check(again.info == claims.info && again.subscribe == claims.subscribe);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Keys keys;
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  VerifyOptions options;
  if (control & 0x04) options.kind = TokenKind::subscription;
  if (control & 0x08) options.require_expiry = false;
  if (control & 0x10) options.audiences = {"pylon"};
  if (control & 0x20) options.issuer = "https://auth.example";
  if (control & 0x40) options.max_json_depth = 3;
  if (control & 0x80) options.leeway = std::chrono::seconds(60);

  switch (control & 0x03) {
    case 1:
      // An empty payload is a malformed token, however well signed; past the size limit the
      // token is refused unread.
      verify_and_check(sign_hs256(R"({"alg":"HS256"})", input), keys.hmac, options,
                       /*harness_signed=*/!input.empty() && input.size() < 4000);
      break;
    case 2: {
      const std::size_t newline = input.find('\n');
      if (newline == std::string_view::npos) return 0;
      const std::string token = sign_hs256(input.substr(0, newline), input.substr(newline + 1));
      // Only the header decides whether the MAC may be used, so no harness_signed check here.
      verify_and_check(token, keys.hmac, options, false);
      verify_and_check(token, keys.both, options, false);
      break;
    }
    default:
      verify_and_check(input, keys.hmac, options, false);
      verify_and_check(input, keys.ec, options, false);
      verify_and_check(input, keys.both, options, false);
      break;
  }
  return 0;
}
