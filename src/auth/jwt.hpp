// JWT verification (RFC 7519) for pylon's connection and subscription tokens: a compact JWS
// (RFC 7515) in, either the claims pylon reads or the one reason it was refused. Sans-I/O:
// verify() is a pure function of (token, keys, options, now) — no clock, no file, no network,
// nothing remembered between calls — so a result may later be cached by whoever calls it.
// Any thread may call it; each thread keeps its own parsing buffers, reused from call to call
// (what still allocates per call: the Claims handed back, and OpenSSL's verification contexts).
//
// What a token looks like:
//   header  {"alg":"ES256","kid":"k1","typ":"JWT"}: "alg" required; "kid" optional (selects the
//           key, auth/key_set.hpp); "typ" optional, "JWT" or "application/jwt" in any case;
//           "crit" refused (we implement no extension); everything else ("jku", "jwk", "x5u",
//           "x5c" included) ignored: keys come from the configuration only, never from a token.
//   payload the claims below; other claims are ignored.
//   parts   unpadded base64url (auth/base64url.hpp); header and payload non-empty. Names pylon
//           reads must appear once (RFC 7515 §4; duplicates of other names are not looked at).
//
// Claims pylon reads:
//   sub              string: the user id; absent means an anonymous user ("" in Claims)
//   exp, nbf, iat    NumericDate (RFC 7519 §2): seconds since the epoch, integer or decimal;
//                    exp required unless VerifyOptions::require_expiry is false; iat not after
//                    now + leeway
//   iss              string, compared exactly when VerifyOptions::issuer is set
//   aud              string or array of strings; when present one must be in
//                    VerifyOptions::audiences (RFC 7519 §4.1.3: so a token with an "aud" is
//                    refused by a server that has none configured)
//   pylon            object, pylon's private claim (RFC 7519 §4.3); every member optional:
//     subscribe      array of topic patterns (auth/topic_pattern.hpp) the connection may
//                    subscribe to
//     publish        array of topic patterns it may publish on
//     info           any JSON value: handed to the application as its raw text, untouched
//     topic          a topic name: present exactly in subscription tokens, the one topic the
//                    token grants (the lists above are not what a subscription token grants)
//   e.g. connection: {"sub":"42","exp":1700000600,
//                     "pylon":{"subscribe":["chat:*","news"],"publish":["chat:room-1"],
//                              "info":{"name":"Ada"}}}
//        subscription: {"sub":"42","exp":1700000600,"pylon":{"topic":"private:42"}}
// Why one "pylon" object: our names cannot collide with claims an identity provider or another
// service puts in the same token, and one token can carry grants for several services. The
// words are the protocol's (docs/protocol.md: topic, subscribe, publish), not Centrifugo's
// "channels", which there means server-side subscriptions rather than permissions; "info" keeps
// Centrifugo's name and meaning; the subscription token's "topic" is Centrifugo's "channel".
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/error.hpp"
#include "auth/key_set.hpp"
#include "auth/signature_memo.hpp"

namespace pylon::auth {

inline constexpr std::size_t kDefaultMaxTokenSize = 8 * 1024;
inline constexpr std::size_t kDefaultMaxJsonDepth = 16;

// A connection token authenticates a WebSocket (upgrade, refresh); a subscription token grants
// one topic on "subscribe". Each is refused where the other is expected (wrong_token_kind).
enum class TokenKind : std::uint8_t { connection, subscription };

struct VerifyOptions {
  TokenKind kind = TokenKind::connection;
  std::size_t max_token_size = kDefaultMaxTokenSize;  // bytes of the whole compact token
  // Nested arrays and objects allowed in the header and in the payload: {"a":1} is depth 1.
  std::size_t max_json_depth = kDefaultMaxJsonDepth;
  std::chrono::duration<double> leeway{0.0};  // clock skew allowed on exp, nbf, iat; seconds
  bool require_expiry = true;
  std::string issuer;                  // empty: "iss" is not checked
  std::vector<std::string> audiences;  // the values of "aud" we answer to
  // Public-key signatures verified before with these keys (auth/signature_memo.hpp): a token
  // seen again skips its signature check, nothing else. Null: every signature is checked.
  SignatureMemo* memo = nullptr;
};

using NumericDate = double;  // seconds since 1970-01-01T00:00:00Z, RFC 7519 §2

// What a verified token says. Owns its strings: valid after the next verify().
struct Claims {
  Algorithm algorithm = Algorithm::hs256;  // "alg" of the header
  std::string key_id;                      // "kid" of the header, "" when absent
  std::string subject;                     // "sub", "" when absent
  std::optional<NumericDate> expires_at, not_before, issued_at;
  std::vector<std::string> subscribe, publish;  // valid topic patterns
  std::string topic;  // subscription tokens: a valid topic name; connection tokens: ""
  std::string info;   // raw JSON text of pylon.info, "" when absent
};

// Verifies token against keys at time now. On none, claims holds what the token says; on any
// other result claims is empty. Throws nothing but std::bad_alloc.
TokenError verify(std::string_view token, const KeySet& keys, const VerifyOptions& options,
                  std::chrono::system_clock::time_point now, Claims& claims);

}  // namespace pylon::auth
