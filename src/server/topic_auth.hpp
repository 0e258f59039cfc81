// Authentication and authorization of the topic protocol (/ws, docs/security.md): the key set the
// configuration names, the connection token of an upgrade, and whether a connection may subscribe
// to or publish on a topic (its token's grants and its namespace's rules).
//
// Built on the main thread at start-up; authenticate() and the checks run on loop threads and may
// run concurrently with reload() (SIGHUP, the signal thread): the key set is swapped whole.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "auth/jwt.hpp"
#include "pylon/app.hpp"
#include "pylon/metrics.hpp"

namespace pylon {

// What a connection's token grants, kept with the connection (no token: none).
struct Grant {
  std::string subject;                          // "sub"
  std::vector<std::string> subscribe, publish;  // topic patterns
  std::string info;                             // raw JSON of pylon.info
  std::optional<double> expires_at;             // "exp", seconds since the epoch
};

// A refused subscribe or publish: the protocol's error code and the reason, naming the topic's
// rule (never the token).
struct Denial {
  std::string_view code;  // "forbidden", "subscription_token_required", "bad_token"
  std::string message;
};

class TopicAuth {
 public:
  // Reads the key source; throws ConfigError naming the key that cannot be used.
  TopicAuth(const Config& config, MetricsRegistry& metrics);

  bool enabled() const noexcept { return enabled_; }
  // SIGHUP: the key source again (a rotated JWKS file, a new secret). A source that does not
  // load keeps the keys in use and says why in the log.
  void reload();

  // The upgrade's verdict: a refusal, or the connection's grant (null for an anonymous one, and
  // when authentication is off).
  std::variant<HttpResponse, std::unique_ptr<Grant>> authenticate(const HttpRequest& request) const;

  // A `refresh` request's new connection token for a connection holding `current` (null:
  // anonymous): the new grant, or why not. The token must be for the same user: a refresh
  // renews and may narrow or widen permissions, it never turns one user into another.
  std::variant<Denial, std::unique_ptr<Grant>> refresh(const Grant* current,
                                                       std::string_view token) const;

  // Whether `grant` (null: anonymous) may subscribe to topic; subscription_token is the request's
  // "token" field ("" when absent). Authentication off: always.
  std::optional<Denial> may_subscribe(const Grant* grant, std::string_view topic,
                                      std::string_view subscription_token) const;
  // subscribed: the connection is subscribed to topic.
  std::optional<Denial> may_publish(const Grant* grant, std::string_view topic,
                                    bool subscribed) const;

 private:
  // A key set as loaded, with the signatures verified by it (a reload starts afresh).
  struct Keys {
    Keys(auth::KeySet keys, std::size_t memo_capacity)
        : set(std::move(keys)), memo(memo_capacity) {}
    const auth::KeySet set;
    mutable auth::SignatureMemo memo;  // capacity 0: unused
  };
  static std::shared_ptr<const Keys> load_keys(const Config& config);
  std::shared_ptr<const Keys> keys() const;
  auth::TokenError verify(std::string_view token, auth::TokenKind kind, auth::Claims& claims) const;
  HttpResponse refuse(std::string_view reason, std::string_view message) const;
  static std::unique_ptr<Grant> grant_of(auth::Claims& claims);
  // A refused subscribe or publish: counted and logged (rate-limited), then returned.
  Denial deny(const Counter& counter, std::string_view action, Denial denial) const;

  const Config& config_;
  bool enabled_;
  auth::VerifyOptions options_;
  mutable std::mutex keys_mutex_;
  std::shared_ptr<const Keys> keys_;
  std::vector<Counter> failures_;  // [auth::TokenError], then missing and ambiguous tokens
  Counter denied_subscribe_, denied_publish_;
};

}  // namespace pylon
