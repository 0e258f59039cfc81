#include "auth/error.hpp"

#include <iterator>

namespace pylon::auth {
namespace {

struct ErrorInfo {
  std::string_view text;
  std::string_view name;  // the enumerator, for logs and metric labels
};

// Indexed by TokenError; the order must follow the enum (checked below and in error_test.cpp).
constexpr ErrorInfo kErrorTable[] = {
    {"no error", "none"},
    {"token too large", "too_large"},
    {"token is not a compact JWS", "malformed"},
    {"token is not base64url", "bad_base64url"},
    {"token is not valid JSON", "bad_json"},
    {"token JSON nested too deeply", "json_too_deep"},
    {"duplicate member in token", "duplicate_member"},
    {"bad token header", "bad_header"},
    {"token type is not JWT", "bad_token_type"},
    {"unsupported critical header", "unsupported_critical_header"},
    {"unsecured token (alg none)", "algorithm_none"},
    {"unsupported algorithm", "unsupported_algorithm"},
    {"token names no key", "missing_key_id"},
    {"unknown key id", "unknown_key_id"},
    {"algorithm not allowed for key", "algorithm_not_allowed_for_key"},
    {"bad signature", "bad_signature"},
    {"token claims are not an object", "payload_not_object"},
    {"claim of the wrong type", "bad_claim_type"},
    {"invalid topic in token", "bad_topic_claim"},
    {"token has no expiry", "missing_expiry"},
    {"token expired", "expired"},
    {"token not yet valid", "not_yet_valid"},
    {"token issued in the future", "issued_in_future"},
    {"token has no issuer", "missing_issuer"},
    {"wrong token issuer", "wrong_issuer"},
    {"token has no audience", "missing_audience"},
    {"wrong token audience", "wrong_audience"},
    {"wrong kind of token", "wrong_token_kind"},
};
static_assert(std::size(kErrorTable) == kTokenErrorCount);

}  // namespace

std::string_view describe(TokenError error) noexcept {
  const auto index = static_cast<std::size_t>(error);
  return index < kTokenErrorCount ? kErrorTable[index].text : std::string_view("unknown error");
}

std::string_view name(TokenError error) noexcept {
  const auto index = static_cast<std::size_t>(error);
  return index < kTokenErrorCount ? kErrorTable[index].name : std::string_view("unknown");
}

}  // namespace pylon::auth
