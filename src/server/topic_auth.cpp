#include "server/topic_auth.hpp"

#include <chrono>

#include "auth/topic_pattern.hpp"
#include "http/response_writer.hpp"
#include "obs/log.hpp"
#include "server/secret_source.hpp"

namespace pylon {
namespace {

// Where a client may put its connection token (docs/security.md).
constexpr std::string_view kBearer = "Bearer ";               // RFC 6750 §2.1, the header
constexpr std::string_view kQueryName = "token";              // ?token=, for browsers
constexpr std::string_view kProtocolPrefix = "pylon.token.";  // a Sec-WebSocket-Protocol entry

// Series beyond the verification errors: no token where one is required, one in two places.
constexpr std::size_t kMissingToken = auth::kTokenErrorCount;
constexpr std::size_t kAmbiguousToken = auth::kTokenErrorCount + 1;

// The key set the configuration names; throws ConfigError naming the key.
std::optional<auth::KeySet> load_key_set(const Config& config) {
  const char* key = "auth_hmac_secret_file";
  try {
    if (!config.auth_hmac_secret_file.empty())
      return auth::KeySet::from_hmac_secret(read_secret_file(config.auth_hmac_secret_file, key));
    key = "auth_hmac_secret_env";
    if (!config.auth_hmac_secret_env.empty())
      return auth::KeySet::from_hmac_secret(read_secret_env(config.auth_hmac_secret_env, key));
    key = "auth_public_key_file";
    if (!config.auth_public_key_file.empty())
      return auth::KeySet::from_pem(read_config_file(config.auth_public_key_file, key));
    key = "auth_jwks_file";
    if (!config.auth_jwks_file.empty())
      return auth::KeySet::from_jwks(read_config_file(config.auth_jwks_file, key));
  } catch (const auth::KeyError& error) {
    throw ConfigError(key, error.what());
  }
  return std::nullopt;
}

// The value of one query parameter, as written (a JWT needs no percent-decoding).
std::string_view query_parameter(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.size() > name.size() && pair.starts_with(name) && pair[name.size()] == '=')
      return pair.substr(name.size() + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

// The token of a Sec-WebSocket-Protocol entry "pylon.token.<jwt>", a comma-separated list.
std::string_view protocol_token(std::string_view protocols) {
  while (!protocols.empty()) {
    const std::size_t comma = protocols.find(',');
    std::string_view entry = protocols.substr(0, comma);
    while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t'))
      entry.remove_prefix(1);
    while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t')) entry.remove_suffix(1);
    if (entry.starts_with(kProtocolPrefix)) return entry.substr(kProtocolPrefix.size());
    if (comma == std::string_view::npos) break;
    protocols.remove_prefix(comma + 1);
  }
  return {};
}

}  // namespace

TopicAuth::TopicAuth(const Config& config, MetricsRegistry& metrics)
    : config_(config),
      enabled_(auth_enabled(config)),
      keys_(load_keys(config)),
      denied_subscribe_(metrics.counter("pylon_auth_denied_total",
                                        "Subscribes and publishes refused by a topic's rules.",
                                        {{"action", "subscribe"}})),
      denied_publish_(metrics.counter("pylon_auth_denied_total",
                                      "Subscribes and publishes refused by a topic's rules.",
                                      {{"action", "publish"}})) {
  options_.max_token_size = config.auth_max_token_size;
  options_.leeway = std::chrono::duration<double>(config.auth_leeway);
  options_.require_expiry = config.auth_require_exp;
  options_.issuer = config.auth_issuer;
  if (!config.auth_audience.empty()) options_.audiences.push_back(config.auth_audience);
  const auto add = [&](std::string_view reason) {
    failures_.push_back(metrics.counter("pylon_auth_failures_total",
                                        "Connection and subscription tokens refused.",
                                        {{"reason", std::string(reason)}}));
  };
  for (std::size_t i = 1; i < auth::kTokenErrorCount; ++i)
    add(auth::name(static_cast<auth::TokenError>(i)));
  failures_.insert(failures_.begin(), failures_.front());  // `none` has no series of its own
  add("missing_token");
  add("ambiguous_token");
}

void TopicAuth::reload() {
  if (!enabled_) return;
  try {
    std::shared_ptr<const Keys> fresh = load_keys(config_);
    std::lock_guard lock(keys_mutex_);
    keys_ = std::move(fresh);
    obs::log(obs::LogLevel::info, "authentication keys reloaded", {});
  } catch (const ConfigError& error) {
    obs::log(obs::LogLevel::error, "authentication keys not reloaded; keeping the running ones",
             {{"error", std::string_view(error.what())}});
  }
}

std::shared_ptr<const TopicAuth::Keys> TopicAuth::load_keys(const Config& config) {
  std::optional<auth::KeySet> set = load_key_set(config);
  return set ? std::make_shared<const Keys>(std::move(*set), config.auth_signature_cache) : nullptr;
}

std::shared_ptr<const TopicAuth::Keys> TopicAuth::keys() const {
  std::lock_guard lock(keys_mutex_);
  return keys_;
}

auth::TokenError TopicAuth::verify(std::string_view token, auth::TokenKind kind,
                                   auth::Claims& claims) const {
  const std::shared_ptr<const Keys> current = keys();
  auth::VerifyOptions options = options_;
  options.kind = kind;
  if (config_.auth_signature_cache > 0) options.memo = &current->memo;
  const auth::TokenError error =
      auth::verify(token, current->set, options, std::chrono::system_clock::now(), claims);
  if (error != auth::TokenError::none) failures_[static_cast<std::size_t>(error)].add();
  return error;
}

HttpResponse TopicAuth::refuse(std::string_view reason, std::string_view message) const {
  // RFC 6750 §3: the challenge says why; the body says it again for people reading logs.
  HttpResponse response{.status = 401, .content_type = "application/json"};
  response.headers.emplace_back(
      "WWW-Authenticate",
      "Bearer error=\"invalid_token\", error_description=\"" + std::string(reason) + "\"");
  response.body = R"({"error":")" + std::string(reason) + R"(","message":)";
  obs::append_json_string(response.body, message);
  response.body += "}\n";
  static obs::LogRateLimit limit(10);
  limit.log(obs::LogLevel::warn, "token refused", {{"reason", reason}});
  return response;
}

std::variant<HttpResponse, std::unique_ptr<Grant>> TopicAuth::authenticate(
    const HttpRequest& request) const {
  if (!enabled_) return std::unique_ptr<Grant>();
  std::string_view token;
  std::size_t places = 0;
  const std::string_view header = request.header("Authorization");
  if (header.size() > kBearer.size() && http::iequals(header.substr(0, kBearer.size()), kBearer)) {
    token = header.substr(kBearer.size());
    ++places;
  }
  for (const std::string_view candidate :
       {query_parameter(request.query(), kQueryName),
        protocol_token(request.header("Sec-WebSocket-Protocol"))}) {
    if (candidate.empty()) continue;
    token = candidate;
    ++places;
  }
  if (places > 1) {
    failures_[kAmbiguousToken].add();
    HttpResponse response = refuse("ambiguous_token", "a token in more than one place");
    response.status = 400;
    return response;
  }
  if (places == 0) {
    if (config_.auth_anonymous) return std::unique_ptr<Grant>();
    failures_[kMissingToken].add();
    return refuse("missing_token",
                  "a token is required: Authorization: Bearer, ?token= or a pylon.token. "
                  "subprotocol");
  }
  auth::Claims claims;
  if (const auth::TokenError error = verify(token, auth::TokenKind::connection, claims);
      error != auth::TokenError::none)
    return refuse(auth::name(error), auth::describe(error));
  return grant_of(claims);
}

std::unique_ptr<Grant> TopicAuth::grant_of(auth::Claims& claims) {
  return std::make_unique<Grant>(Grant{.subject = std::move(claims.subject),
                                       .subscribe = std::move(claims.subscribe),
                                       .publish = std::move(claims.publish),
                                       .info = std::move(claims.info),
                                       .expires_at = claims.expires_at});
}

Denial TopicAuth::deny(const Counter& counter, std::string_view action, Denial denial) const {
  counter.add();
  // The topic and the rule, never the token or the user (docs/security.md "tokens in logs").
  static obs::LogRateLimit limit(10);
  limit.log(
      obs::LogLevel::info, "topic request refused",
      {{"action", action}, {"code", denial.code}, {"reason", std::string_view(denial.message)}});
  return denial;
}

std::variant<Denial, std::unique_ptr<Grant>> TopicAuth::refresh(const Grant* current,
                                                                std::string_view token) const {
  if (!enabled_) return Denial{"forbidden", "authentication is off: there is nothing to refresh"};
  if (current == nullptr)
    return Denial{"forbidden", "an anonymous connection cannot take a token; reconnect with one"};
  auth::Claims claims;
  if (const auth::TokenError error = verify(token, auth::TokenKind::connection, claims);
      error != auth::TokenError::none)
    return Denial{"bad_token", "refresh token: " + std::string(auth::describe(error))};
  if (claims.subject != current->subject)
    return Denial{"forbidden", "the refresh token is for another user"};
  return grant_of(claims);
}

std::optional<Denial> TopicAuth::may_subscribe(const Grant* grant, std::string_view topic,
                                               std::string_view subscription_token) const {
  if (!enabled_) return std::nullopt;
  const NamespaceRules& rules = namespace_rules(config_, topic);
  if (rules.subscribe == SubscribeRule::anyone) return std::nullopt;
  if (grant != nullptr && auth::any_topic_matches(grant->subscribe, topic)) return std::nullopt;
  if (rules.subscribe == SubscribeRule::subscription_token) {
    if (subscription_token.empty()) {
      return deny(denied_subscribe_, "subscribe",
                  Denial{"subscription_token_required",
                         "subscribing to " + std::string(topic) + " needs a subscription token"});
    }
    auth::Claims claims;
    if (const auth::TokenError error =
            verify(subscription_token, auth::TokenKind::subscription, claims);
        error != auth::TokenError::none) {
      return deny(denied_subscribe_, "subscribe",
                  Denial{"bad_token", "subscription token: " + std::string(auth::describe(error))});
    }
    // The same user as the connection's token, for the topic it names.
    const bool same_user =
        grant == nullptr ? claims.subject.empty() : claims.subject == grant->subject;
    if (claims.topic == topic && same_user) return std::nullopt;
    return deny(
        denied_subscribe_, "subscribe",
        Denial{"forbidden", claims.topic != topic ? "the subscription token is for another topic"
                                                  : "the subscription token is for another user"});
  }
  return deny(
      denied_subscribe_, "subscribe",
      Denial{"forbidden", grant == nullptr
                              ? "anonymous connections may not subscribe to " + std::string(topic)
                              : "the token does not grant subscribe on " + std::string(topic)});
}

std::optional<Denial> TopicAuth::may_publish(const Grant* grant, std::string_view topic,
                                             bool subscribed) const {
  if (!enabled_) return std::nullopt;
  switch (namespace_rules(config_, topic).publish) {
    case PublishRule::anyone:
      return std::nullopt;
    case PublishRule::subscribers:
      if (subscribed) return std::nullopt;
      return deny(
          denied_publish_, "publish",
          Denial{"forbidden", "only subscribers of " + std::string(topic) + " may publish"});
    case PublishRule::nobody:
      return deny(denied_publish_, "publish",
                  Denial{"forbidden", "clients may not publish on " + std::string(topic)});
    case PublishRule::token:
      break;
  }
  if (grant != nullptr && auth::any_topic_matches(grant->publish, topic)) return std::nullopt;
  return deny(
      denied_publish_, "publish",
      Denial{"forbidden", grant == nullptr
                              ? "anonymous connections may not publish on " + std::string(topic)
                              : "the token does not grant publish on " + std::string(topic)});
}

}  // namespace pylon
