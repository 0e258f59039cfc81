#include "auth/jwt.hpp"

#include <simdjson.h>

#include <cstdint>

#include "auth/base64url.hpp"
#include "auth/topic_pattern.hpp"
#include "pubsub/topic_name.hpp"

namespace pylon::auth {
namespace {

// Decoded JSON followed by the SIMDJSON_PADDING readable bytes simdjson requires after the
// text; size is the JSON's own length. The buffer only grows, so steady state allocates nothing.
struct PaddedJson {
  std::string buffer;
  std::size_t size = 0;

  bool decode(std::string_view base64url) {
    size = base64url_decoded_size(base64url.size());
    if (buffer.size() < size + simdjson::SIMDJSON_PADDING)
      buffer.resize(size + simdjson::SIMDJSON_PADDING);
    return base64url_decode(base64url, reinterpret_cast<std::uint8_t*>(buffer.data()));
  }
};

// Per-thread parsing state, reused by every verify() of the thread.
struct Scratch {
  simdjson::dom::parser dom;
  simdjson::ondemand::parser ondemand;
  std::size_t depth = SIZE_MAX;  // the max_json_depth both parsers were sized for
  PaddedJson header, payload;
  std::vector<std::uint8_t> signature;
  std::vector<std::string_view> audiences;  // views into dom's strings: valid during one call
};

Scratch& scratch(std::size_t depth) {
  thread_local Scratch instance;
  if (instance.depth != depth) {
    // simdjson counts the levels it may open, one more than the nesting it allows.
    // On failure (no memory) the parsers stay unsized and every parse fails: bad_json.
    if (instance.dom.allocate(kDefaultMaxTokenSize, depth + 1) == simdjson::SUCCESS &&
        instance.ondemand.allocate(kDefaultMaxTokenSize, depth + 1) == simdjson::SUCCESS)
      instance.depth = depth;
  }
  return instance;
}

TokenError parse(simdjson::dom::parser& parser, const PaddedJson& json,
                 simdjson::dom::element& root) {
  const auto error = parser.parse(json.buffer.data(), json.size, false).get(root);
  if (error == simdjson::SUCCESS) return TokenError::none;
  return error == simdjson::DEPTH_ERROR ? TokenError::json_too_deep : TokenError::bad_json;
}

// RFC 7515 §4.1.9: a media type, "application/" may be left out, compared case-insensitively.
bool is_jwt_type(std::string_view type) {
  constexpr std::string_view kPrefix = "application/";
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  const auto equals = [&](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (lower(a[i]) != lower(b[i])) return false;
    return true;
  };
  if (type.size() > kPrefix.size() && equals(type.substr(0, kPrefix.size()), kPrefix))
    type.remove_prefix(kPrefix.size());
  return equals(type, "jwt");
}

// A member name the reader looks at, at most once (RFC 7515 §4, RFC 7519 §4: names unique).
struct Seen {
  std::uint32_t bits = 0;
  // False when the name was seen before.
  bool first(unsigned index) {
    const std::uint32_t bit = 1u << index;
    const bool fresh = (bits & bit) == 0;
    bits |= bit;
    return fresh;
  }
};

struct Header {
  std::optional<std::string_view> algorithm, key_id, type;
  bool critical = false;
};

TokenError read_header(simdjson::dom::element root, Header& header) {
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) return TokenError::bad_header;
  Seen seen;
  for (const auto field : object) {
    std::optional<std::string_view>* target = nullptr;
    unsigned index = 0;
    if (field.key == "alg") {
      target = &header.algorithm;
    } else if (field.key == "kid") {
      target = &header.key_id;
      index = 1;
    } else if (field.key == "typ") {
      target = &header.type;
      index = 2;
    } else if (field.key == "crit") {
      if (!seen.first(3)) return TokenError::duplicate_member;
      header.critical = true;
      continue;
    } else {
      continue;
    }
    if (!seen.first(index)) return TokenError::duplicate_member;
    std::string_view text;
    if (field.value.get_string().get(text) != simdjson::SUCCESS) return TokenError::bad_header;
    *target = text;
  }
  if (!header.algorithm) return TokenError::bad_header;
  if (header.type && !is_jwt_type(*header.type)) return TokenError::bad_token_type;
  if (header.critical) return TokenError::unsupported_critical_header;
  return TokenError::none;
}

// What the payload says beyond the Claims fields, for the checks after reading it.
struct Payload {
  std::optional<std::string_view> issuer;
  bool has_audience = false, has_topic = false, has_info = false;
};

TokenError read_numeric_date(simdjson::dom::element value, std::optional<NumericDate>& out) {
  double seconds;
  // get_double() takes integers too; simdjson refuses NaN, infinities and out-of-range numbers.
  if (value.get_double().get(seconds) != simdjson::SUCCESS) return TokenError::bad_claim_type;
  out = seconds;
  return TokenError::none;
}

TokenError read_patterns(simdjson::dom::element value, std::vector<std::string>& out) {
  simdjson::dom::array array;
  if (value.get_array().get(array) != simdjson::SUCCESS) return TokenError::bad_claim_type;
  for (const auto item : array) {
    std::string_view pattern;
    if (item.get_string().get(pattern) != simdjson::SUCCESS) return TokenError::bad_claim_type;
    if (!is_valid_topic_pattern(pattern)) return TokenError::bad_topic_claim;
    out.emplace_back(pattern);
  }
  return TokenError::none;
}

TokenError read_pylon_claim(simdjson::dom::element value, Claims& claims, Payload& payload) {
  simdjson::dom::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) return TokenError::bad_claim_type;
  Seen seen;
  for (const auto field : object) {
    TokenError error = TokenError::none;
    if (field.key == "subscribe") {
      if (!seen.first(0)) return TokenError::duplicate_member;
      error = read_patterns(field.value, claims.subscribe);
    } else if (field.key == "publish") {
      if (!seen.first(1)) return TokenError::duplicate_member;
      error = read_patterns(field.value, claims.publish);
    } else if (field.key == "topic") {
      if (!seen.first(2)) return TokenError::duplicate_member;
      std::string_view topic;
      if (field.value.get_string().get(topic) != simdjson::SUCCESS)
        return TokenError::bad_claim_type;
      if (!pubsub::is_valid_topic(topic)) return TokenError::bad_topic_claim;
      claims.topic = topic;
      payload.has_topic = true;
    } else if (field.key == "info") {
      if (!seen.first(3)) return TokenError::duplicate_member;
      payload.has_info = true;  // its raw text is taken by a second pass (raw_info)
    }
    if (error != TokenError::none) return error;
  }
  return TokenError::none;
}

TokenError read_payload(simdjson::dom::element root, Claims& claims, Payload& payload,
                        std::vector<std::string_view>& audiences) {
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) return TokenError::payload_not_object;
  Seen seen;
  for (const auto field : object) {
    TokenError error = TokenError::none;
    std::string_view text;
    if (field.key == "sub") {
      if (!seen.first(0)) return TokenError::duplicate_member;
      if (field.value.get_string().get(text) != simdjson::SUCCESS)
        return TokenError::bad_claim_type;
      claims.subject = text;
    } else if (field.key == "exp") {
      if (!seen.first(1)) return TokenError::duplicate_member;
      error = read_numeric_date(field.value, claims.expires_at);
    } else if (field.key == "nbf") {
      if (!seen.first(2)) return TokenError::duplicate_member;
      error = read_numeric_date(field.value, claims.not_before);
    } else if (field.key == "iat") {
      if (!seen.first(3)) return TokenError::duplicate_member;
      error = read_numeric_date(field.value, claims.issued_at);
    } else if (field.key == "iss") {
      if (!seen.first(4)) return TokenError::duplicate_member;
      if (field.value.get_string().get(text) != simdjson::SUCCESS)
        return TokenError::bad_claim_type;
      payload.issuer = text;
    } else if (field.key == "aud") {
      if (!seen.first(5)) return TokenError::duplicate_member;
      payload.has_audience = true;
      simdjson::dom::array array;
      if (field.value.get_string().get(text) == simdjson::SUCCESS) {
        audiences.push_back(text);
      } else if (field.value.get_array().get(array) == simdjson::SUCCESS) {
        for (const auto item : array) {
          if (item.get_string().get(text) != simdjson::SUCCESS) return TokenError::bad_claim_type;
          audiences.push_back(text);
        }
      } else {
        return TokenError::bad_claim_type;
      }
    } else if (field.key == "pylon") {
      if (!seen.first(6)) return TokenError::duplicate_member;
      error = read_pylon_claim(field.value, claims, payload);
    }
    if (error != TokenError::none) return error;
  }
  return TokenError::none;
}

std::string_view trim_right(std::string_view text) {
  while (!text.empty() &&
         (text.back() == ' ' || text.back() == '\n' || text.back() == '\r' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

// The raw text of pylon.info, as the issuer wrote it. The DOM parse keeps no source positions,
// so this is a second, on-demand pass over a payload the first pass found valid and free of
// duplicate names (so the first "pylon" and "info" met are the only ones).
bool raw_info(Scratch& s, std::string& out) {
  simdjson::ondemand::document document;
  simdjson::ondemand::object top;
  if (s.ondemand.iterate(s.payload.buffer.data(), s.payload.size, s.payload.buffer.size())
              .get(document) != simdjson::SUCCESS ||
      document.get_object().get(top) != simdjson::SUCCESS)
    return false;
  for (auto field : top) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return false;
    if (key != "pylon") continue;
    simdjson::ondemand::object pylon;
    if (field.value().get_object().get(pylon) != simdjson::SUCCESS) return false;
    for (auto member : pylon) {
      if (member.unescaped_key().get(key) != simdjson::SUCCESS) return false;
      if (key != "info") continue;
      simdjson::ondemand::value value;
      simdjson::ondemand::json_type type;
      if (member.value().get(value) != simdjson::SUCCESS ||
          value.type().get(type) != simdjson::SUCCESS)
        return false;
      std::string_view text;
      if (type == simdjson::ondemand::json_type::object) {
        simdjson::ondemand::object object;
        if (value.get_object().get(object) != simdjson::SUCCESS ||
            object.raw_json().get(text) != simdjson::SUCCESS)
          return false;
      } else if (type == simdjson::ondemand::json_type::array) {
        simdjson::ondemand::array array;
        if (value.get_array().get(array) != simdjson::SUCCESS ||
            array.raw_json().get(text) != simdjson::SUCCESS)
          return false;
      } else {
        text = value.raw_json_token();
      }
      out.assign(trim_right(text));
      return true;
    }
    return false;
  }
  return false;
}

TokenError check(std::string_view token, const KeySet& keys, const VerifyOptions& options,
                 std::chrono::system_clock::time_point now, Claims& claims) {
  if (token.size() > options.max_token_size) return TokenError::too_large;
  // RFC 7515 §7.1: BASE64URL(header) '.' BASE64URL(payload) '.' BASE64URL(signature). Five parts
  // would be a JWE (RFC 7516), which we do not take.
  const std::size_t first = token.find('.');
  if (first == std::string_view::npos) return TokenError::malformed;
  const std::size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos)
    return TokenError::malformed;
  const std::string_view header_text = token.substr(0, first);
  const std::string_view payload_text = token.substr(first + 1, second - first - 1);
  const std::string_view signature_text = token.substr(second + 1);
  // An empty signature is left to the signature check: it is what "alg":"none" sends, and that
  // deserves its own answer.
  if (header_text.empty() || payload_text.empty()) return TokenError::malformed;

  Scratch& s = scratch(options.max_json_depth);
  s.signature.resize(base64url_decoded_size(signature_text.size()));
  if (!s.header.decode(header_text) || !s.payload.decode(payload_text) ||
      !base64url_decode(signature_text, s.signature.data()))
    return TokenError::bad_base64url;

  simdjson::dom::element root;
  if (const TokenError error = parse(s.dom, s.header, root); error != TokenError::none)
    return error;
  Header header;
  if (const TokenError error = read_header(root, header); error != TokenError::none) return error;
  if (*header.algorithm == "none") return TokenError::algorithm_none;
  const std::optional<Algorithm> algorithm = algorithm_from_name(*header.algorithm);
  if (!algorithm) return TokenError::unsupported_algorithm;
  claims.algorithm = *algorithm;
  std::optional<std::string_view> key_id;
  if (header.key_id) {
    claims.key_id = *header.key_id;  // the header's strings die with the next parse
    key_id = claims.key_id;
  }

  // RFC 7515 §5.2 step 8: the signing input is the token's first two parts as they are. An HMAC
  // costs no more than the memo's own hash, so only public-key signatures are remembered.
  const bool memoize = options.memo != nullptr && !is_allowed(KeyType::hmac, *algorithm);
  SignatureMemo::Digest digest{};
  if (memoize) digest = SignatureMemo::digest(token);
  if (!memoize || !options.memo->contains(digest)) {
    if (const TokenError error =
            keys.verify_signature(*algorithm, key_id, token.substr(0, second), s.signature);
        error != TokenError::none)
      return error;
    if (memoize) options.memo->remember(digest);
  }

  // From here on the payload is the issuer's.
  if (const TokenError error = parse(s.dom, s.payload, root); error != TokenError::none)
    return error;
  Payload payload;
  s.audiences.clear();
  if (const TokenError error = read_payload(root, claims, payload, s.audiences);
      error != TokenError::none)
    return error;

  const double now_seconds = std::chrono::duration<double>(now.time_since_epoch()).count();
  const double leeway = options.leeway.count();
  if (!claims.expires_at && options.require_expiry) return TokenError::missing_expiry;
  // RFC 7519 §4.1.4: the current time MUST be before exp; §4.1.5: at or after nbf.
  if (claims.expires_at && now_seconds >= *claims.expires_at + leeway) return TokenError::expired;
  if (claims.not_before && now_seconds + leeway < *claims.not_before)
    return TokenError::not_yet_valid;
  // RFC 7519 §4.1.6 only defines iat; a token issued after now + leeway is refused all the same
  // (as PyJWT 2.6 does): an honest issuer's clock is within the leeway of ours, so a later iat
  // comes from a clock that is wrong (its exp cannot be trusted either) or from a forger.
  if (claims.issued_at && now_seconds + leeway < *claims.issued_at)
    return TokenError::issued_in_future;
  if (!options.issuer.empty()) {
    if (!payload.issuer) return TokenError::missing_issuer;
    if (*payload.issuer != options.issuer) return TokenError::wrong_issuer;
  }
  if (!options.audiences.empty() && !payload.has_audience) return TokenError::missing_audience;
  if (payload.has_audience) {
    bool ours = false;
    for (const std::string_view audience : s.audiences)
      for (const std::string& accepted : options.audiences) ours = ours || audience == accepted;
    if (!ours) return TokenError::wrong_audience;
  }
  if (payload.has_topic != (options.kind == TokenKind::subscription))
    return TokenError::wrong_token_kind;
  if (payload.has_info && !raw_info(s, claims.info)) return TokenError::bad_json;
  return TokenError::none;
}

}  // namespace

TokenError verify(std::string_view token, const KeySet& keys, const VerifyOptions& options,
                  std::chrono::system_clock::time_point now, Claims& claims) {
  claims = Claims{};
  const TokenError error = check(token, keys, options, now, claims);
  if (error != TokenError::none) claims = Claims{};
  return error;
}

}  // namespace pylon::auth
