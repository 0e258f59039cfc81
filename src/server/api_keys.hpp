// The named keys of the backend API (docs/security.md "Backend API"): POST /api/publish,
// /api/disconnect and /api/unsubscribe take `Authorization: Bearer <secret>`, and the secret must
// be one of the [api_keys.NAME] secrets with the endpoint's scope. The key's name (never the
// secret) goes in logs and in pylon_api_requests_total{key,endpoint,status}.
//
// Matching is constant time over every configured key: each secret is kept as its SHA-256 digest
// and the presented secret's digest is compared with all of them (CRYPTO_memcmp, no early exit),
// so timing reveals neither which key matched nor any key's length.
//
// Built on the main thread before App::run(); guard() runs on loop threads, concurrently with
// reload() (SIGHUP, the signal thread): the digests are swapped whole.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "obs/log.hpp"
#include "pylon/app.hpp"
#include "pylon/metrics.hpp"

namespace pylon {

enum class ApiEndpoint : std::uint8_t { publish, disconnect, unsubscribe };
inline constexpr std::size_t kApiEndpointCount = 3;

// "publish", "disconnect", "unsubscribe": the metric label and the log field.
std::string_view api_endpoint_name(ApiEndpoint endpoint) noexcept;
// The scope an endpoint needs: publish for publish, disconnect for the other two.
ApiScope api_endpoint_scope(ApiEndpoint endpoint) noexcept;

// A JSON error answer of the backend API: {"error":ERROR,"message":MESSAGE}.
HttpResponse api_error(int status, std::string_view error, std::string_view message);

using SecretDigest = std::array<unsigned char, 32>;  // SHA-256

SecretDigest secret_digest(std::string_view secret);
// The index of the digest equal to presented's, comparing with every one of them whatever the
// outcome; nullopt when none is.
std::optional<std::size_t> match_secret(std::span<const SecretDigest> digests,
                                        std::string_view presented);

class ApiKeys {
 public:
  // Reads every key's secret; throws ConfigError naming the key ("api_keys.NAME.key_env: ...")
  // for a secret that cannot be read, is empty, or is another key's too.
  ApiKeys(const Config& config, MetricsRegistry& metrics);

  // SIGHUP: every secret again. When one cannot be read, all keep their running secrets (logged).
  void reload();

  using Handler = std::function<HttpResponse(std::string_view key_name)>;
  // 401 without a known bearer key, 403 naming the scope when the key lacks the endpoint's; else
  // the handler's answer. Counts the answer by key, endpoint and status.
  HttpResponse guard(const HttpRequest& request, ApiEndpoint endpoint, const Handler& handler);

 private:
  struct Key {
    std::string name;
    std::vector<ApiScope> scopes;
  };
  // The statuses counted per key and endpoint; a refused key has only 401.
  static constexpr std::size_t kStatusCount = 4;  // 2xx, 400, 403, 503

  std::vector<SecretDigest> load() const;
  std::shared_ptr<const std::vector<SecretDigest>> digests() const;
  void count(std::size_t key, ApiEndpoint endpoint, int status) const;

  const Config& config_;
  std::vector<Key> keys_;  // in the configuration's (name) order, as the digests
  mutable std::mutex digests_mutex_;
  std::shared_ptr<const std::vector<SecretDigest>> digests_;
  std::vector<Counter> requests_;      // [key][endpoint][status slot]
  std::vector<Counter> unauthorized_;  // [endpoint], key=""
  obs::LogRateLimit refusal_log_{5};
};

}  // namespace pylon
