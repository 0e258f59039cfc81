#include "pylon/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pylon {
namespace {

std::string write_file(const std::string& text) {
  char name[] = "/tmp/pylon-config-XXXXXX";
  const int fd = mkstemp(name);
  std::ofstream(name) << text;
  ::close(fd);
  return name;
}

std::string error_of(const std::string& toml) {
  Config config;
  const std::string path = write_file(toml);
  try {
    load_config_file(config, path);
    validate_config(config);
  } catch (const ConfigError& error) {
    std::remove(path.c_str());
    return error.what();
  }
  std::remove(path.c_str());
  return {};
}

TEST(Config, LoadsEveryKindOfKey) {
  Config config;
  const std::string path = write_file(
      "listen = \"127.0.0.1:9000\"\nthreads = 3\nmax_connections = 5\nping_interval = 1.5\n"
      "allowed_origins = [\"https://a.example\", \"https://b.example\"]\nlog_level = \"debug\"\n");
  load_config_file(config, path);
  std::remove(path.c_str());
  EXPECT_EQ(config.listen, "127.0.0.1:9000");
  EXPECT_EQ(config.threads, 3u);
  EXPECT_EQ(config.max_connections, 5u);
  EXPECT_DOUBLE_EQ(config.ping_interval, 1.5);
  EXPECT_EQ(config.allowed_origins.size(), 2u);
  EXPECT_EQ(config.log_level, LogLevel::debug);
}

TEST(Config, ErrorsNameTheKey) {
  EXPECT_EQ(error_of("max_conections = 5\n"), "max_conections: unknown key");
  EXPECT_NE(error_of("max_connections = -1\n").find("max_connections:"), std::string::npos);
  EXPECT_NE(error_of("max_connections = \"abc\"\n").find("max_connections: must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of("listen = \"nowhere\"\n").find("listen:"), std::string::npos);
  EXPECT_NE(error_of("log_level = \"loud\"\n").find("log_level:"), std::string::npos);
  EXPECT_NE(error_of("ping_interval = -2\n").find("ping_interval:"), std::string::npos);
  EXPECT_NE(error_of("drain_window = 60\n").find("drain_window:"), std::string::npos);
  EXPECT_EQ(error_of("tls_ocsp_stapling = \"yes\"\n"), "tls_ocsp_stapling: must be true or false");
  EXPECT_EQ(error_of("tls_ocsp_stapling = true\n"), "tls_ocsp_stapling: needs tls_cert");
  EXPECT_EQ(error_of("tls_ocsp_stapling = true\ntls_cert = \"/etc/pylon/tls/server.pem\"\n"), "");
}

TEST(Config, SyntaxErrorsNameTheFileAndLine) {
  const std::string message = error_of("threads = \n");
  EXPECT_NE(message.find("line 1"), std::string::npos) << message;
}

TEST(Config, FlagTextIsParsedPerKind) {
  Config config;
  set_config_text(config, "max_message_size", "65536");
  set_config_text(config, "pong_timeout", "0.5");
  EXPECT_EQ(config.max_message_size, 65536u);
  EXPECT_DOUBLE_EQ(config.pong_timeout, 0.5);
  EXPECT_THROW(set_config_text(config, "threads", "two"), ConfigError);
  EXPECT_THROW(set_config_text(config, "nonsense", "1"), ConfigError);
}

TEST(Config, EveryKeyAppliesItsFlagText) {
  // A sample value for each key: a key added without one fails here, so the table stays complete.
  const std::map<std::string_view, const char*> samples = {
      {"listen", "127.0.0.1:1"},
      {"threads", "2"},
      {"max_connections", "2"},
      {"max_message_size", "2048"},
      {"max_backpressure", "2048"},
      {"ping_interval", "1"},
      {"pong_timeout", "1"},
      {"handshake_timeout", "1"},
      {"idle_timeout", "1"},
      {"drain_timeout", "1"},
      {"drain_window", "1"},
      {"allowed_origins", "https://x.example"},
      {"log_level", "warn"},
      {"log_format", "console"},
      {"trusted_proxies", "10.0.0.0/8"},
      {"metrics_listen", "127.0.0.1:2"},
      {"tls_cert", "/etc/pylon/cert.pem"},
      {"tls_key", "/etc/pylon/key.pem"},
      {"tls_sni_certs", "/etc/pylon/other.pem:/etc/pylon/other.key"},
      {"tls_ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"},
      {"tls_max_handshakes", "16"},
      {"tls_ktls", "false"},
      {"tls_watch_interval", "0"},
      {"tls_ocsp_stapling", "true"},
      {"tls_ticket_key_rotation", "60"},
      {"max_subscriptions", "5"},
      {"max_publish_rate", "5"},
      {"auth_hmac_secret_file", "/etc/pylon/secret"},
      {"auth_hmac_secret_env", "PYLON_SECRET"},
      {"auth_public_key_file", "/etc/pylon/key.pem"},
      {"auth_jwks_file", "/etc/pylon/jwks.json"},
      {"auth_issuer", "https://issuer.example"},
      {"auth_audience", "pylon"},
      {"auth_leeway", "1"},
      {"auth_require_exp", "false"},
      {"auth_anonymous", "true"},
      {"auth_max_token_size", "1024"},
      {"auth_refresh_grace", "5"},
      {"auth_signature_cache", "0"},
      {"max_connections_per_ip", "10"},
      {"handshake_rate_per_ip", "5"},
      {"handshake_burst_per_ip", "5"},
      {"auth_failures_per_minute", "10"},
      {"auth_lockout", "60"},
      {"admission_rate", "500"},
      {"admission_burst", "100"},
      {"max_tracked_ips", "1000"},
      {"slow_consumer", "drop"},
      {"io_backend", "epoll"},
      {"io_batch_wait_us", "20"},
      {"engine", "redis"},
      {"redis_url", "redis://:secret@127.0.0.1:6380/2"},
      {"redis_prefix", "app:"},
      {"readyz_requires_engine", "true"},
      {"dashboard", "false"},
      {"compression", "dedicated"},
      {"compression_threshold", "128"},
      {"compression_window_bits", "10"},
      {"compression_memory_level", "4"},
  };
  // Each sample differs from the default: a row that accepted its value without storing it
  // would leave the Config as it was.
  for (const ConfigKey& key : config_keys()) {
    const auto sample = samples.find(key.name);
    ASSERT_NE(sample, samples.end()) << "no sample value for " << key.name;
    Config config;
    // As apply_flags (src/cli/main.cpp): list keys take every value, the others their text.
    if (key.kind == ConfigKind::text_list)
      EXPECT_NO_THROW(set_config_value(config, key.name, std::vector<std::string>{sample->second}))
          << key.name;
    else
      EXPECT_NO_THROW(set_config_text(config, key.name, sample->second)) << key.name;
    EXPECT_NE(config, Config{}) << key.name << " = " << sample->second
                                << " was accepted but not applied";
  }
}

std::string text_error(std::string_view key, std::string_view text) {
  Config config;
  try {
    set_config_text(config, key, text);
  } catch (const ConfigError& error) {
    EXPECT_EQ(error.key(), key);
    return error.what();
  }
  return {};
}

TEST(Config, EnumKeysAreParsedOnce) {
  Config config;
  set_config_text(config, "slow_consumer", "drop");
  set_config_text(config, "engine", "redis");
  set_config_text(config, "log_level", "error");
  set_config_text(config, "log_format", "console");
  set_config_text(config, "compression", "off");
  EXPECT_EQ(config.slow_consumer, SlowConsumerPolicy::drop);
  EXPECT_EQ(config.engine, EngineKind::redis);
  EXPECT_EQ(config.log_level, LogLevel::error);
  EXPECT_EQ(config.log_format, LogFormat::console);
  EXPECT_EQ(config.compression.mode, CompressionMode::off);
  for (const LogLevel level :
       {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error}) {
    set_config_text(config, "log_level", log_level_name(level));
    EXPECT_EQ(config.log_level, level) << log_level_name(level);
  }
}

TEST(Config, EnumKeysNameTheKeyAndTheirChoices) {
  EXPECT_EQ(text_error("slow_consumer", "wait"),
            "slow_consumer: must be close or drop (got \"wait\")");
  EXPECT_EQ(text_error("engine", "etcd"), "engine: must be memory or redis (got \"etcd\")");
  EXPECT_EQ(text_error("log_level", "loud"),
            "log_level: must be trace, debug, info, warn or error (got \"loud\")");
  EXPECT_EQ(text_error("log_format", "xml"), "log_format: must be json or console (got \"xml\")");
  EXPECT_EQ(text_error("compression", "gzip"),
            "compression: must be off, shared or dedicated (got \"gzip\")");
  EXPECT_EQ(error_of("engine = 1\n"), "engine: must be a string");
}

TEST(Config, KeysWithTheirOwnChecksKeepThem) {
  EXPECT_EQ(text_error("listen", "").rfind("listen: ", 0), 0u);
  EXPECT_EQ(text_error("metrics_listen", ""), "") << "empty: /metrics on listen";
  EXPECT_NE(text_error("metrics_listen", "nowhere").find("(got \"nowhere\")"), std::string::npos);
  EXPECT_EQ(text_error("trusted_proxies", "10.0.0.0/99"),
            "trusted_proxies: not an address or CIDR range: \"10.0.0.0/99\"");
  EXPECT_EQ(text_error("redis_url", "http://x").rfind("redis_url: ", 0), 0u);
  EXPECT_EQ(text_error("threads", "0"), "threads: must be at least 1 (got 0)");
  EXPECT_EQ(text_error("threads", "65"), "threads: must be from 1 to 64");
  EXPECT_EQ(text_error("max_backpressure", "1023"),
            "max_backpressure: must be at least 1024 (got 1023)");
  EXPECT_EQ(text_error("ping_interval", "0.05"), "ping_interval: must be at least 0.1 seconds");
  EXPECT_EQ(text_error("idle_timeout", "0"), "");
  EXPECT_EQ(text_error("compression_memory_level", "10"),
            "compression_memory_level: must be from 1 to 9");
  EXPECT_EQ(text_error("dashboard", "yes"), "dashboard: must be true or false (got \"yes\")");
}

TEST(Config, AbuseLimitKeysNameThemselves) {
  EXPECT_EQ(text_error("max_connections_per_ip", "0"), "") << "0: off";
  EXPECT_EQ(text_error("max_connections_per_ip", "-1"),
            "max_connections_per_ip: must be at least 0 (got -1)");
  EXPECT_EQ(text_error("handshake_rate_per_ip", "fast"),
            "handshake_rate_per_ip: must be an integer (got \"fast\")");
  EXPECT_EQ(text_error("handshake_burst_per_ip", "0"),
            "handshake_burst_per_ip: must be at least 1 (got 0)");
  EXPECT_EQ(text_error("auth_lockout", "0.5"), "auth_lockout: must be at least 1 seconds");
  EXPECT_EQ(text_error("admission_burst", "0"), "admission_burst: must be at least 1 (got 0)");
  EXPECT_EQ(text_error("max_tracked_ips", "15"), "max_tracked_ips: must be at least 16 (got 15)");
  EXPECT_EQ(error_of("admission_rate = 1.5\n"), "admission_rate: must be an integer");
}

TEST(Config, CompressionKeysFillTheServerWideSettings) {
  Config config;
  set_config_text(config, "compression", "dedicated");
  set_config_text(config, "compression_threshold", "128");
  set_config_text(config, "compression_window_bits", "10");
  set_config_text(config, "compression_memory_level", "4");
  EXPECT_EQ(config.compression.mode, CompressionMode::dedicated);
  EXPECT_EQ(config.compression.threshold, 128u);
  EXPECT_EQ(config.compression.window_bits, 10u);
  EXPECT_EQ(config.compression.memory_level, 4u);
  EXPECT_THROW(set_config_text(config, "compression", "gzip"), ConfigError);
}

TEST(Config, EndpointTablesOverrideCompressionForOnePath) {
  Config config;
  const std::string path = write_file(
      "compression = \"shared\"\ncompression_threshold = 32\n"
      "[endpoints.\"/ws/echo\"]\ncompression = \"dedicated\"\ncompression_window_bits = 12\n"
      "[endpoints.\"/quiet\"]\ncompression = \"off\"\n");
  load_config_file(config, path);
  std::remove(path.c_str());
  const CompressionSettings echo = endpoint_compression(config, "/ws/echo", config.compression);
  EXPECT_EQ(echo.mode, CompressionMode::dedicated);
  EXPECT_EQ(echo.window_bits, 12u);
  EXPECT_EQ(echo.threshold, 32u) << "keys the endpoint does not set come from the base";
  EXPECT_EQ(endpoint_compression(config, "/quiet", config.compression).mode, CompressionMode::off);
  const CompressionSettings other = endpoint_compression(config, "/ws", config.compression);
  EXPECT_EQ(other.mode, CompressionMode::shared);
  EXPECT_EQ(other.window_bits, 15u);
  // The base is the route's own setting when it has one: the endpoint's keys still win.
  const CompressionSettings route_default{.mode = CompressionMode::off, .threshold = 1000};
  const CompressionSettings echo_over_route =
      endpoint_compression(config, "/ws/echo", route_default);
  EXPECT_EQ(echo_over_route.mode, CompressionMode::dedicated);
  EXPECT_EQ(echo_over_route.threshold, 1000u);
}

TEST(Config, EndpointFlagsAreParsedPerKey) {
  Config config;
  set_endpoint_text(config, "/ws:compression=off");
  set_endpoint_text(config,
                    "/a:b:compression_threshold=7");  // the last ':' before '=' ends the path
  EXPECT_EQ(endpoint_compression(config, "/ws", config.compression).mode, CompressionMode::off);
  EXPECT_EQ(endpoint_compression(config, "/a:b", config.compression).threshold, 7u);
  // Later values of a key win, as with every flag.
  set_endpoint_text(config, "/ws:compression=dedicated");
  EXPECT_EQ(endpoint_compression(config, "/ws", config.compression).mode,
            CompressionMode::dedicated);
}

std::string endpoint_flag_error(const std::string& flag) {
  Config config;
  try {
    set_endpoint_text(config, flag);
  } catch (const ConfigError& error) {
    return error.what();
  }
  return {};
}

TEST(Config, EndpointErrorsNameTheKey) {
  EXPECT_EQ(error_of("[endpoints.\"/ws\"]\ncompresion = \"off\"\n")
                .rfind("endpoints./ws.compresion: unknown endpoint key", 0),
            0u);
  EXPECT_EQ(error_of("[endpoints.\"/ws\"]\nmax_connections = 5\n")
                .rfind("endpoints./ws.max_connections: unknown endpoint key", 0),
            0u);
  EXPECT_EQ(error_of("[endpoints.\"/ws\"]\ncompression = \"zip\"\n"),
            "endpoints./ws.compression: must be off, shared or dedicated (got \"zip\")");
  EXPECT_EQ(error_of("[endpoints.\"/ws\"]\ncompression_window_bits = 20\n"),
            "endpoints./ws.compression_window_bits: must be from 9 to 15");
  EXPECT_EQ(error_of("[endpoints.\"ws\"]\ncompression = \"off\"\n")
                .rfind("endpoints.ws: an endpoint is a path", 0),
            0u);
  EXPECT_EQ(error_of("endpoints = 3\n").rfind("endpoints: must be a table", 0), 0u);
  EXPECT_EQ(endpoint_flag_error("/ws:compression_threshold=many"),
            "endpoints./ws.compression_threshold: must be an integer (got \"many\")");
  EXPECT_EQ(endpoint_flag_error("/ws=off").rfind("endpoint: expected /path:key=value", 0), 0u);
  EXPECT_EQ(endpoint_flag_error("/ws:threads=2"),
            "endpoints./ws.threads: unknown endpoint key (an endpoint takes compression, "
            "compression_threshold, "
            "compression_window_bits and compression_memory_level)");
}

TEST(Config, NamespaceTablesSetTheRulesOfTheirTopics) {
  Config config;
  const std::string path = write_file(
      "[namespaces.chat]\nsubscribe = \"anyone\"\npublish = \"subscribers\"\n"
      "[namespaces.private]\nsubscribe = \"subscription_token\"\n");
  load_config_file(config, path);
  std::remove(path.c_str());
  set_namespace_text(config, "news:publish=nobody");
  EXPECT_EQ(namespace_rules(config, "chat:room-1"),
            (NamespaceRules{SubscribeRule::anyone, PublishRule::subscribers}));
  EXPECT_EQ(namespace_rules(config, "private:a"),
            (NamespaceRules{SubscribeRule::subscription_token, PublishRule::token}));
  EXPECT_EQ(namespace_rules(config, "news:x").publish, PublishRule::nobody);
  EXPECT_EQ(namespace_rules(config, "elsewhere:x"), NamespaceRules{});
  EXPECT_EQ(namespace_rules(config, "chat"), NamespaceRules{});  // no ':': no namespace
}

TEST(Config, NamespaceAndAuthErrorsNameTheKey) {
  EXPECT_EQ(error_of("[namespaces.chat]\nsubscribe = \"everyone\"\n"),
            "namespaces.chat.subscribe: must be token, anyone or subscription_token (got "
            "\"everyone\")");
  EXPECT_EQ(error_of("[namespaces.chat]\nhistory = 10\n"),
            "namespaces.chat.history: unknown namespace key (a namespace takes subscribe, "
            "publish, history_size, history_ttl, recovery, presence, join_leave and "
            "presence_ttl)");
  EXPECT_EQ(error_of("auth_hmac_secret_file = \"/a\"\nauth_jwks_file = \"/b\"\n"),
            "auth_jwks_file: only one key source may be set (auth_hmac_secret_file is too)");
  Config config;
  EXPECT_THROW(set_namespace_text(config, "chat-publish=nobody"), ConfigError);
  EXPECT_FALSE(auth_enabled(config));
  config.auth_hmac_secret_env = "X";
  EXPECT_TRUE(auth_enabled(config));
}

TEST(Config, ApiKeyTablesNameKeysWithScopes) {
  Config config;
  const std::string path = write_file(
      "[api_keys.backend]\nkey_file = \"/etc/pylon/backend.key\"\n"
      "scopes = [\"publish\", \"disconnect\"]\n"
      "[api_keys.notifier]\nkey_env = \"NOTIFIER_KEY\"\n");
  load_config_file(config, path);
  std::remove(path.c_str());
  set_api_key_text(config, "ops:key_env=OPS_KEY");
  set_api_key_text(config, "ops:scopes=disconnect,publish");
  validate_config(config);
  ASSERT_EQ(config.api_keys.size(), 3u);
  EXPECT_EQ(
      config.api_keys["backend"],
      (ApiKeySource{"/etc/pylon/backend.key", "", {ApiScope::publish, ApiScope::disconnect}}));
  // Without scopes a key may publish only: the least it can do.
  EXPECT_EQ(config.api_keys["notifier"], (ApiKeySource{"", "NOTIFIER_KEY", {ApiScope::publish}}));
  EXPECT_EQ(config.api_keys["ops"],
            (ApiKeySource{"", "OPS_KEY", {ApiScope::disconnect, ApiScope::publish}}));
  EXPECT_EQ(api_scope_name(ApiScope::disconnect), "disconnect");
}

TEST(Config, ApiKeyErrorsNameTheKeyAndTheOldKeyIsRefused) {
  EXPECT_EQ(error_of("api_key = \"secret\"\n"),
            "api_key: replaced by [api_keys.NAME] tables with key_file or key_env and scopes "
            "(docs/configuration.md)");
  EXPECT_EQ(error_of("[api_keys.a]\nkey_env = \"A\"\nscopes = [\"admin\"]\n"),
            "api_keys.a.scopes: must be publish or disconnect (got \"admin\")");
  EXPECT_EQ(error_of("[api_keys.a]\nkey_env = \"A\"\nscopes = []\n"),
            "api_keys.a.scopes: must name at least one scope");
  EXPECT_EQ(error_of("[api_keys.a]\nkey = \"secret\"\n"),
            "api_keys.a.key: unknown API key setting (a key takes key_file, key_env and scopes)");
  EXPECT_EQ(error_of("[api_keys.a]\nscopes = [\"publish\"]\n"),
            "api_keys.a: needs exactly one of key_file and key_env");
  EXPECT_EQ(error_of("[api_keys.a]\nkey_env = \"A\"\nkey_file = \"/a\"\n"),
            "api_keys.a: needs exactly one of key_file and key_env");
  EXPECT_EQ(error_of("[api_keys.\"a b\"]\nkey_env = \"A\"\n"),
            "api_keys.a b: a key's name is 1-64 letters, digits, '_', '-' or '.'");
  EXPECT_EQ(error_of("api_keys = 1\n"), "api_keys: must be a table of [api_keys.NAME] tables");
  Config config;
  // The old flag's form, a bare secret, says what replaced it.
  try {
    set_api_key_text(config, "s3cret");
    FAIL() << "a bare secret was accepted";
  } catch (const ConfigError& error) {
    EXPECT_EQ(error.key(), "api_key");
    EXPECT_NE(std::string(error.what()).find("never a flag"), std::string::npos);
  }
}

TEST(Config, NamespacesKeepHistoryWhenAsked) {
  Config config;
  const std::string path = write_file(
      "[namespaces.chat]\nhistory_size = 100\nhistory_ttl = 300\n"
      "[namespaces.prices]\nhistory_size = 1\nhistory_ttl = 2.5\nrecovery = \"cache\"\n");
  load_config_file(config, path);
  std::remove(path.c_str());
  set_namespace_text(config, "news:history_size=10");
  set_namespace_text(config, "news:history_ttl=60");
  validate_config(config);
  const NamespaceRules& chat = namespace_rules(config, "chat:1");
  EXPECT_EQ(chat.history_size, 100u);
  EXPECT_EQ(chat.history_ttl, 300);
  EXPECT_EQ(chat.recovery, RecoveryMode::stream);
  EXPECT_EQ(namespace_rules(config, "prices:x").recovery, RecoveryMode::cache);
  EXPECT_EQ(namespace_rules(config, "prices:x").history_ttl, 2.5);
  EXPECT_EQ(namespace_rules(config, "news:x").history_size, 10u);
  EXPECT_EQ(namespace_rules(config, "other:x").history_size, 0u);  // off by default
}

TEST(Config, NamespacesListPresenceWhenAsked) {
  Config config;
  set_namespace_text(config, "room:presence=true");
  set_namespace_text(config, "room:join_leave=true");
  set_namespace_text(config, "room:presence_ttl=5");
  validate_config(config);
  EXPECT_TRUE(namespace_rules(config, "room:1").presence);
  EXPECT_TRUE(namespace_rules(config, "room:1").join_leave);
  EXPECT_EQ(namespace_rules(config, "room:1").presence_ttl, 5);
  EXPECT_FALSE(namespace_rules(config, "other:1").presence);  // off by default
  EXPECT_EQ(namespace_rules(config, "other:1").presence_ttl, 60);
}

TEST(Config, PresenceErrorsNameTheKey) {
  EXPECT_EQ(error_of("[namespaces.chat]\njoin_leave = true\n"),
            "namespaces.chat.join_leave: needs presence = true");
  EXPECT_EQ(error_of("[namespaces.chat]\npresence = true\njoin_leave = true\nhistory_size = 5\n"
                     "history_ttl = 60\n"),
            "namespaces.chat.join_leave: cannot be combined with history_size (not supported yet)");
  EXPECT_EQ(error_of("[namespaces.chat]\npresence = \"yes\"\n"),
            "namespaces.chat.presence: must be true or false");
  EXPECT_EQ(error_of("[namespaces.chat]\npresence_ttl = 0.5\n"),
            "namespaces.chat.presence_ttl: must be at least 1 seconds");
}

TEST(Config, HistoryErrorsNameTheKey) {
  EXPECT_EQ(error_of("[namespaces.chat]\nhistory_size = 10\n"),
            "namespaces.chat.history_ttl: must be more than 0 seconds when history_size is set");
  EXPECT_EQ(error_of("[namespaces.chat]\nhistory_size = -1\n"),
            "namespaces.chat.history_size: must be at least 0 (got -1)");
  EXPECT_EQ(error_of("[namespaces.chat]\nhistory_size = \"many\"\n"),
            "namespaces.chat.history_size: must be an integer");
  EXPECT_EQ(error_of("[namespaces.chat]\nrecovery = \"all\"\n"),
            "namespaces.chat.recovery: must be stream or cache (got \"all\")");
  // The Redis engine keeps history in Redis (docs/cluster.md "History").
  EXPECT_EQ(error_of("engine = \"redis\"\n[namespaces.chat]\nhistory_size = 10\n"
                     "history_ttl = 60\n"),
            "");
  Config config;
  try {
    set_namespace_text(config, "chat:history_size=ten");
    FAIL() << "accepted history_size=ten";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()),
              "namespaces.chat.history_size: must be an integer (got \"ten\")");
  }
}

}  // namespace
}  // namespace pylon
