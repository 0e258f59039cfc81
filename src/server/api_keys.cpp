#include "server/api_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>

#include "http/response_writer.hpp"
#include "server/secret_source.hpp"

namespace pylon {
namespace {

constexpr ApiEndpoint kEndpoints[] = {ApiEndpoint::publish, ApiEndpoint::disconnect,
                                      ApiEndpoint::unsubscribe};

// The status slot of an answer; kStatusCount when it is not one a handler gives.
std::size_t status_slot(int status) {
  if (status >= 200 && status < 300) return 0;
  if (status == 400) return 1;
  if (status == 403) return 2;
  if (status == 503) return 3;
  return 4;
}
constexpr std::string_view kSlotLabels[] = {"", "400", "403", "503"};

}  // namespace

HttpResponse api_error(int status, std::string_view error, std::string_view message) {
  HttpResponse response;
  response.status = status;
  response.content_type = "application/json";
  response.body = R"({"error":")" + std::string(error) + R"(","message":)";
  obs::append_json_string(response.body, message);
  response.body += '}';
  return response;
}

std::string_view api_endpoint_name(ApiEndpoint endpoint) noexcept {
  switch (endpoint) {
    case ApiEndpoint::publish:
      return "publish";
    case ApiEndpoint::disconnect:
      return "disconnect";
    case ApiEndpoint::unsubscribe:
      return "unsubscribe";
  }
  return "publish";
}

ApiScope api_endpoint_scope(ApiEndpoint endpoint) noexcept {
  return endpoint == ApiEndpoint::publish ? ApiScope::publish : ApiScope::disconnect;
}

SecretDigest secret_digest(std::string_view secret) {
  SecretDigest digest{};
  unsigned int length = 0;
  EVP_Digest(secret.data(), secret.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

std::optional<std::size_t> match_secret(std::span<const SecretDigest> digests,
                                        std::string_view presented) {
  const SecretDigest candidate = secret_digest(presented);
  // Every digest is compared and the result selected without a branch on it: the time taken
  // depends on the number of keys only.
  std::size_t found = 0;
  std::size_t matches = 0;
  for (std::size_t index = 0; index < digests.size(); ++index) {
    const std::size_t equal = static_cast<std::size_t>(
        CRYPTO_memcmp(candidate.data(), digests[index].data(), candidate.size()) == 0);
    const std::size_t mask = std::size_t{0} - equal;
    found = (found & ~mask) | (index & mask);
    matches |= equal;
  }
  if (matches == 0) return std::nullopt;
  return found;
}

ApiKeys::ApiKeys(const Config& config, MetricsRegistry& metrics) : config_(config) {
  constexpr std::string_view kName = "pylon_api_requests_total";
  constexpr std::string_view kHelp = "Backend API requests by key name, endpoint and status.";
  for (const auto& [name, source] : config.api_keys) {
    keys_.push_back({name, source.scopes});
    for (const ApiEndpoint endpoint : kEndpoints) {
      const std::string ok = endpoint == ApiEndpoint::publish ? "200" : "202";
      for (const std::string_view label : kSlotLabels)
        requests_.push_back(metrics.counter(kName, kHelp,
                                            {{"key", name},
                                             {"endpoint", std::string(api_endpoint_name(endpoint))},
                                             {"status", label.empty() ? ok : std::string(label)}}));
    }
  }
  for (const ApiEndpoint endpoint : kEndpoints)
    unauthorized_.push_back(metrics.counter(
        kName, kHelp,
        {{"key", ""}, {"endpoint", std::string(api_endpoint_name(endpoint))}, {"status", "401"}}));
  digests_ = std::make_shared<const std::vector<SecretDigest>>(load());
}

std::vector<SecretDigest> ApiKeys::load() const {
  std::vector<SecretDigest> digests;
  for (const auto& [name, source] : config_.api_keys) {
    const bool from_file = !source.key_file.empty();
    const std::string key = "api_keys." + name + (from_file ? ".key_file" : ".key_env");
    const std::string secret =
        from_file ? read_secret_file(source.key_file, key) : read_secret_env(source.key_env, key);
    if (secret.empty()) throw ConfigError(key, "the secret is empty");
    digests.push_back(secret_digest(secret));
    // Two names for one secret would make the name in logs and metrics a guess.
    for (std::size_t other = 0; other + 1 < digests.size(); ++other)
      if (digests[other] == digests.back())
        throw ConfigError(key, "the same secret as api_keys." + keys_[other].name);
  }
  return digests;
}

void ApiKeys::reload() {
  try {
    auto fresh = std::make_shared<const std::vector<SecretDigest>>(load());
    std::lock_guard lock(digests_mutex_);
    digests_ = std::move(fresh);
  } catch (const ConfigError& error) {
    obs::log(obs::LogLevel::error, "API keys not reloaded; keeping the running ones",
             {{"error", std::string_view(error.what())}});
  }
}

std::shared_ptr<const std::vector<SecretDigest>> ApiKeys::digests() const {
  std::lock_guard lock(digests_mutex_);
  return digests_;
}

void ApiKeys::count(std::size_t key, ApiEndpoint endpoint, int status) const {
  const std::size_t slot = status_slot(status);
  if (slot >= kStatusCount) return;  // a status no handler gives
  requests_[(key * kApiEndpointCount + static_cast<std::size_t>(endpoint)) * kStatusCount + slot]
      .add();
}

HttpResponse ApiKeys::guard(const HttpRequest& request, ApiEndpoint endpoint,
                            const Handler& handler) {
  constexpr std::string_view kScheme = "Bearer ";  // RFC 6750 §2.1; the scheme is case-insensitive
  const std::string_view header = request.header("Authorization");
  std::optional<std::size_t> key;
  if (header.size() > kScheme.size() && http::iequals(header.substr(0, kScheme.size()), kScheme))
    key = match_secret(*digests(), header.substr(kScheme.size()));
  const std::string_view endpoint_name = api_endpoint_name(endpoint);
  if (!key) {
    unauthorized_[static_cast<std::size_t>(endpoint)].add();
    const std::string client = request.client_ip();
    refusal_log_.log(obs::LogLevel::warn, "backend API request without a known key",
                     {{"endpoint", endpoint_name}, {"client_ip", std::string_view(client)}});
    HttpResponse response = api_error(401, "unauthorized", "missing or wrong bearer key");
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return response;
  }
  const Key& named = keys_[*key];
  const ApiScope needed = api_endpoint_scope(endpoint);
  if (std::find(named.scopes.begin(), named.scopes.end(), needed) == named.scopes.end()) {
    count(*key, endpoint, 403);
    const std::string_view scope = api_scope_name(needed);
    refusal_log_.log(
        obs::LogLevel::warn, "backend API key lacks the scope",
        {{"key", std::string_view(named.name)}, {"endpoint", endpoint_name}, {"scope", scope}});
    return api_error(403, "missing_scope",
                     "the key " + named.name + " lacks the " + std::string(scope) + " scope");
  }
  HttpResponse response = handler(named.name);
  count(*key, endpoint, response.status);
  return response;
}

}  // namespace pylon
