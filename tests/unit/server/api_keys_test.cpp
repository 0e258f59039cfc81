#include "server/api_keys.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace pylon {
namespace {

class FakeRequest final : public HttpRequest {
 public:
  explicit FakeRequest(std::string authorization) : authorization_(std::move(authorization)) {}
  std::string_view method() const noexcept override { return "POST"; }
  std::string_view path() const noexcept override { return "/api/publish"; }
  std::string_view query() const noexcept override { return {}; }
  std::string_view body() const noexcept override { return "{}"; }
  std::string_view header(std::string_view name) const noexcept override {
    return name == "Authorization" ? std::string_view(authorization_) : std::string_view();
  }
  std::string client_ip() const override { return "127.0.0.1"; }
  DeferredResponse defer() const override { return DeferredResponse(nullptr, nullptr, 0); }

 private:
  std::string authorization_;
};

std::string write_file(const std::string& text) {
  char name[] = "/tmp/pylon-api-key-XXXXXX";
  const int fd = mkstemp(name);
  std::ofstream(name) << text;
  ::close(fd);
  return name;
}

double metric(const MetricsRegistry& metrics, const Labels& labels) {
  for (const auto& family : metrics.snapshot())
    if (family.name == "pylon_api_requests_total")
      for (const auto& sample : family.samples)
        if (sample.labels == labels) return sample.value;
  return -1;
}

TEST(ApiKeys, MatchComparesWithEveryKey) {
  const std::vector<SecretDigest> digests = {secret_digest("first-secret"), secret_digest("second"),
                                             secret_digest("third")};
  EXPECT_EQ(match_secret(digests, "first-secret"), 0u);
  EXPECT_EQ(match_secret(digests, "second"), 1u);
  EXPECT_EQ(match_secret(digests, "third"), 2u);
  EXPECT_EQ(match_secret(digests, "secon"), std::nullopt);    // a prefix
  EXPECT_EQ(match_secret(digests, "second2"), std::nullopt);  // longer
  EXPECT_EQ(match_secret(digests, ""), std::nullopt);
  EXPECT_EQ(match_secret({}, "second"), std::nullopt);
}

class ApiKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("PYLON_API_KEYS_TEST", "publisher-secret", 1);
    file_ = write_file("admin-secret\n");
    config_.api_keys["admin"] = {file_, "", {ApiScope::publish, ApiScope::disconnect}};
    config_.api_keys["publisher"] = {"", "PYLON_API_KEYS_TEST", {ApiScope::publish}};
  }
  void TearDown() override {
    std::remove(file_.c_str());
    ::unsetenv("PYLON_API_KEYS_TEST");
  }
  HttpResponse call(ApiKeys& keys, std::string authorization, ApiEndpoint endpoint) {
    called_with_.clear();
    return keys.guard(FakeRequest(std::move(authorization)), endpoint,
                      [this](std::string_view name) {
                        called_with_ = name;
                        return HttpResponse{.status = 202};
                      });
  }
  Config config_;
  std::string file_;
  std::string called_with_;
};

TEST_F(ApiKeysTest, ScopesDecideAndTheNameIsCounted) {
  MetricsRegistry metrics;
  ApiKeys keys(config_, metrics);
  EXPECT_EQ(call(keys, "Bearer admin-secret", ApiEndpoint::disconnect).status, 202);
  EXPECT_EQ(called_with_, "admin");
  EXPECT_EQ(call(keys, "bearer publisher-secret", ApiEndpoint::publish).status, 202);
  EXPECT_EQ(called_with_, "publisher");

  const HttpResponse forbidden = call(keys, "Bearer publisher-secret", ApiEndpoint::unsubscribe);
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(
      forbidden.body,
      R"({"error":"missing_scope","message":"the key publisher lacks the disconnect scope"})");
  EXPECT_EQ(called_with_, "");

  for (const char* wrong : {"Bearer wrong", "Bearer ", "admin-secret", "Basic admin-secret", "",
                            "Bearer admin-secret\n"}) {
    const HttpResponse refused = call(keys, wrong, ApiEndpoint::publish);
    EXPECT_EQ(refused.status, 401) << wrong;
    EXPECT_EQ(refused.headers.at(0),
              (std::pair<std::string, std::string>("WWW-Authenticate", "Bearer")));
    EXPECT_EQ(called_with_, "");
  }
  EXPECT_EQ(metric(metrics, {{"key", "admin"}, {"endpoint", "disconnect"}, {"status", "202"}}), 1);
  EXPECT_EQ(metric(metrics, {{"key", "publisher"}, {"endpoint", "publish"}, {"status", "200"}}), 1)
      << "a 2xx counts in the endpoint's success series";
  EXPECT_EQ(metric(metrics, {{"key", "publisher"}, {"endpoint", "unsubscribe"}, {"status", "403"}}),
            1);
  EXPECT_EQ(metric(metrics, {{"key", ""}, {"endpoint", "publish"}, {"status", "401"}}), 6);
  // No series carries a secret.
  EXPECT_EQ(metrics.expose().find("secret"), std::string::npos);
}

TEST_F(ApiKeysTest, ReloadReadsTheSecretsAgainAndABadOneKeepsTheRunningOnes) {
  MetricsRegistry metrics;
  ApiKeys keys(config_, metrics);
  std::ofstream(file_) << "rotated-admin-secret";
  keys.reload();
  EXPECT_EQ(call(keys, "Bearer admin-secret", ApiEndpoint::publish).status, 401);
  EXPECT_EQ(call(keys, "Bearer rotated-admin-secret", ApiEndpoint::publish).status, 202);

  std::remove(file_.c_str());
  keys.reload();  // logged; nothing changes
  EXPECT_EQ(call(keys, "Bearer rotated-admin-secret", ApiEndpoint::publish).status, 202);
  EXPECT_EQ(call(keys, "Bearer publisher-secret", ApiEndpoint::publish).status, 202);
}

TEST_F(ApiKeysTest, StartUpErrorsNameTheKey) {
  MetricsRegistry metrics;
  const auto error_of = [&](const Config& config) -> std::string {
    try {
      ApiKeys keys(config, metrics);
    } catch (const ConfigError& error) {
      return error.what();
    }
    return {};
  };
  Config config = config_;
  config.api_keys["publisher"].key_env = "PYLON_API_KEYS_TEST_UNSET";
  EXPECT_EQ(error_of(config),
            "api_keys.publisher.key_env: the environment has no PYLON_API_KEYS_TEST_UNSET");
  ::setenv("PYLON_API_KEYS_TEST_EMPTY", "", 1);
  config.api_keys["publisher"].key_env = "PYLON_API_KEYS_TEST_EMPTY";
  EXPECT_EQ(error_of(config), "api_keys.publisher.key_env: the secret is empty");
  ::setenv("PYLON_API_KEYS_TEST_EMPTY", "admin-secret", 1);
  EXPECT_EQ(error_of(config), "api_keys.publisher.key_env: the same secret as api_keys.admin");
  ::unsetenv("PYLON_API_KEYS_TEST_EMPTY");
}

}  // namespace
}  // namespace pylon
