// Why a token was refused. TokenError has one enumerator per check of auth/jwt.hpp that a token
// can fail; describe() and name() are the single table that turns it into a reason for the
// client and a stable name for logs and metric labels (STYLE rule 5). Neither ever contains
// anything from the token or the key: a refused token is not echoed. Pure functions; callable
// from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pylon::auth {

// In the order verify() checks (auth/jwt.cpp): everything that is only syntax is refused before
// any cryptography runs; what the payload says is read only after the signature verified.
enum class TokenError : std::uint8_t {
  none = 0,
  too_large,                    // longer than VerifyOptions::max_token_size
  malformed,                    // not header.payload.signature with a non-empty header and payload
  bad_base64url,                // RFC 7515 §2: a part is not unpadded, canonical base64url
  bad_json,                     // header or payload is not valid JSON (RFC 8259, UTF-8)
  json_too_deep,                // nesting deeper than VerifyOptions::max_json_depth
  duplicate_member,             // RFC 7515 §4, RFC 7519 §4: a header or claim name appears twice
  bad_header,                   // header not an object, "alg" missing, or a member of a wrong type
  bad_token_type,               // "typ" present and not "JWT" (RFC 7519 §5.1, RFC 8725 §3.11)
  unsupported_critical_header,  // RFC 7515 §4.1.11: "crit" names extensions we do not implement
  algorithm_none,               // "alg":"none", an unsecured JWS (RFC 7518 §3.6): never accepted
  unsupported_algorithm,        // an "alg" this module does not implement
  missing_key_id,               // no "kid" and the key set holds several keys
  unknown_key_id,               // "kid" names no key of the set
  algorithm_not_allowed_for_key,  // "alg" is not one the selected key may verify
  bad_signature,                  // the signature does not verify (or has the wrong size)
  payload_not_object,             // RFC 7519 §7.2 step 10: the claims set must be a JSON object
  bad_claim_type,                 // a registered or pylon claim of the wrong JSON type
  bad_topic_claim,                // a topic or topic pattern outside the topic syntax
  missing_expiry,                 // no "exp" while VerifyOptions::require_expiry
  expired,                        // RFC 7519 §4.1.4: now >= exp + leeway
  not_yet_valid,                  // RFC 7519 §4.1.5: now + leeway < nbf
  issued_in_future,               // now + leeway < iat: minted by a clock ahead of ours or forged
  missing_issuer,                 // an issuer is configured and the token has no "iss"
  wrong_issuer,                   // RFC 7519 §4.1.1: "iss" is not the configured issuer
  missing_audience,               // audiences are configured and the token has no "aud"
  wrong_audience,                 // RFC 7519 §4.1.3: no "aud" value is one of ours
  wrong_token_kind,  // a subscription token (with a topic) where a connection token is expected,
                     // or the reverse
};

// Number of enumerators, for tables and tests.
inline constexpr std::size_t kTokenErrorCount =
    static_cast<std::size_t>(TokenError::wrong_token_kind) + 1;

// Short text for an error reply or a log line, e.g. "token expired".
std::string_view describe(TokenError error) noexcept;
// The enumerator's name, e.g. "expired" (logs, metric labels).
std::string_view name(TokenError error) noexcept;

}  // namespace pylon::auth
