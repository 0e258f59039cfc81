#include "pylon/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <type_traits>

#include "cluster/redis_url.hpp"
#include "net/cidr.hpp"
#include "net/socket.hpp"

namespace pylon {
namespace {

// "a", "a or b", "a, b or c".
template <typename Items, typename NameOf>
std::string spell_out(const Items& items, std::string_view conjunction, NameOf name_of) {
  std::string text;
  const std::size_t count = std::size(items);
  for (std::size_t index = 0; index < count; ++index) {
    if (index > 0 && index + 1 == count) {
      // Appended piece by piece: GCC 12 warns (-Wrestrict, wrongly) on " " + std::string(...).
      text += ' ';
      text += conjunction;
      text += ' ';
    } else if (index > 0) {
      text += ", ";
    }
    text += name_of(items[index]);
  }
  return text;
}

// The words of an enum key, in the order its help and its errors list them.
template <typename Enum>
struct Choice {
  std::string_view name;
  Enum value;
};

constexpr Choice<SlowConsumerPolicy> kSlowConsumerPolicies[] = {
    {"close", SlowConsumerPolicy::close},
    {"drop", SlowConsumerPolicy::drop},
};
constexpr Choice<CompressionMode> kCompressionModes[] = {
    {"off", CompressionMode::off},
    {"shared", CompressionMode::shared},
    {"dedicated", CompressionMode::dedicated},
};
constexpr Choice<EngineKind> kEngines[] = {
    {"memory", EngineKind::memory},
    {"redis", EngineKind::redis},
};
constexpr Choice<IoBackend> kIoBackends[] = {
    {"epoll", IoBackend::epoll},
    {"io_uring", IoBackend::io_uring},
};
constexpr Choice<LogLevel> kLogLevels[] = {
    {"trace", LogLevel::trace}, {"debug", LogLevel::debug}, {"info", LogLevel::info},
    {"warn", LogLevel::warn},   {"error", LogLevel::error},
};
constexpr Choice<LogFormat> kLogFormats[] = {
    {"json", LogFormat::json},
    {"console", LogFormat::console},
};

constexpr Choice<SubscribeRule> kSubscribeRules[] = {
    {"token", SubscribeRule::token},
    {"anyone", SubscribeRule::anyone},
    {"subscription_token", SubscribeRule::subscription_token},
};
constexpr Choice<ApiScope> kApiScopes[] = {
    {"publish", ApiScope::publish},
    {"disconnect", ApiScope::disconnect},
};
constexpr Choice<RecoveryMode> kRecoveryModes[] = {
    {"stream", RecoveryMode::stream},
    {"cache", RecoveryMode::cache},
};
constexpr Choice<PublishRule> kPublishRules[] = {
    {"token", PublishRule::token},
    {"subscribers", PublishRule::subscribers},
    {"anyone", PublishRule::anyone},
    {"nobody", PublishRule::nobody},
};

// Converters of a value to a field's type, one per kind, with the checks every key of that kind
// shares; the template arguments are a key's own limits. `name` is what errors call the key
// ("compression", or "endpoints./ws.compression").

template <std::uint64_t minimum, std::uint64_t maximum>
std::uint64_t to_count(const ConfigValue& value, const std::string& name) {
  const auto* number = std::get_if<std::int64_t>(&value);
  if (number == nullptr) throw ConfigError(name, "must be an integer");
  if (*number < static_cast<std::int64_t>(minimum))
    throw ConfigError(name, "must be at least " + std::to_string(minimum) + " (got " +
                                std::to_string(*number) + ")");
  if (static_cast<std::uint64_t>(*number) > maximum)
    throw ConfigError(name,
                      "must be from " + std::to_string(minimum) + " to " + std::to_string(maximum));
  return static_cast<std::uint64_t>(*number);
}

// minimum_ms: milliseconds, an integer because clang 14 (clang-tidy) takes no floating-point
// template arguments.
template <std::uint64_t minimum_ms>
double to_seconds(const ConfigValue& value, const std::string& name) {
  double seconds = 0;
  if (const auto* number = std::get_if<std::int64_t>(&value))
    seconds = static_cast<double>(*number);
  else if (const auto* real = std::get_if<double>(&value))
    seconds = *real;
  else
    throw ConfigError(name, "must be a number of seconds");
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 86400.0 * 365)
    throw ConfigError(name, "must be between 0 and one year of seconds");
  constexpr double kMinimum = static_cast<double>(minimum_ms) / 1000;
  if (seconds < kMinimum) {
    char text[32];
    const auto written = std::to_chars(text, text + sizeof text, kMinimum);  // shortest: "0.1"
    throw ConfigError(name, "must be at least " + std::string(text, written.ptr) + " seconds");
  }
  return seconds;
}

bool to_bool(const ConfigValue& value, const std::string& name) {
  const auto* flag = std::get_if<bool>(&value);
  if (flag == nullptr) throw ConfigError(name, "must be true or false");
  return *flag;
}

const std::string& as_text(const ConfigValue& value, const std::string& name) {
  const auto* text = std::get_if<std::string>(&value);
  if (text == nullptr) throw ConfigError(name, "must be a string");
  return *text;
}

// A check of one string beyond its type; throws ConfigError(name, ...).
using TextCheck = void (*)(const std::string& text, const std::string& name);

template <TextCheck check>
std::string to_text(const ConfigValue& value, const std::string& name) {
  const std::string& text = as_text(value, name);
  if constexpr (check != nullptr) check(text, name);
  return text;
}

// A list key also takes one string (TOML `key = "a"`, or a single flag).
template <TextCheck check>
std::vector<std::string> to_list(const ConfigValue& value, const std::string& name) {
  const auto* list = std::get_if<std::vector<std::string>>(&value);
  std::vector<std::string> items = list != nullptr ? *list : std::vector{as_text(value, name)};
  if constexpr (check != nullptr)
    for (const std::string& item : items) check(item, name);
  return items;
}

template <const auto& choices>
auto to_choice(const ConfigValue& value, const std::string& name) {
  const std::string& word = as_text(value, name);
  for (const auto& choice : choices)
    if (choice.name == word) return choice.value;
  const std::string words =
      spell_out(choices, "or", [](const auto& choice) { return std::string(choice.name); });
  throw ConfigError(name, "must be " + words + " (got \"" + word + "\")");
}

// The checks of the keys that need more than their kind's.

void check_address(const std::string& text, const std::string& name) {
  try {
    net::parse_endpoint(text);
  } catch (const std::invalid_argument& error) {
    throw ConfigError(name, std::string(error.what()) + " (got \"" + text + "\")");
  }
}

// metrics_listen: empty means /metrics on `listen`.
void check_optional_address(const std::string& text, const std::string& name) {
  if (!text.empty()) check_address(text, name);
}

void check_not_empty(const std::string& text, const std::string& name) {
  if (text.empty()) throw ConfigError(name, "must not be empty");
}

void check_cidr(const std::string& range, const std::string& name) {
  if (!net::parse_cidr(range))
    throw ConfigError(name, "not an address or CIDR range: \"" + range + "\"");
}

void check_redis_url(const std::string& url, const std::string& name) {
  try {
    cluster::parse_redis_url(url);
  } catch (const std::invalid_argument& error) {
    throw ConfigError(name, error.what());
  }
}

// How a row applies a value: convert it, then store it in a field.
template <typename Target>
using Setter = void (*)(Target& target, const ConfigValue& value, const std::string& name);

struct Field {
  ConfigKind kind;  // how a flag's text becomes a value (parse_text)
  Setter<Config> set;
  Setter<CompressionSettings> set_endpoint = nullptr;  // the keys [endpoints."/path"] take
};

template <typename Member>
struct MemberOf;
template <typename Owner, typename Value>
struct MemberOf<Value Owner::*> {
  using owner = Owner;
  using value = Value;
};

template <auto member, auto convert>
void assign(typename MemberOf<decltype(member)>::owner& target, const ConfigValue& value,
            const std::string& name) {
  using Value = typename MemberOf<decltype(member)>::value;
  // A count arrives as std::uint64_t: convert has checked that it fits the key's range.
  target.*member = static_cast<Value>(convert(value, name));
}

template <auto member, auto convert>
void assign_compression(Config& config, const ConfigValue& value, const std::string& name) {
  assign<member, convert>(config.compression, value, name);
}

// A member of Config, or of CompressionSettings: that key sets Config::compression and is an
// endpoint key too.
template <auto member, auto convert>
constexpr Field field(ConfigKind kind) {
  using Owner = typename MemberOf<decltype(member)>::owner;
  if constexpr (std::is_same_v<Owner, CompressionSettings>)
    return {kind, &assign_compression<member, convert>, &assign<member, convert>};
  else
    return {kind, &assign<member, convert>};
}

// The helpers rows are written with.

constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t kTenthOfASecond = 100;  // ms, for seconds<>

template <auto member, std::uint64_t minimum, std::uint64_t maximum = kUnlimited>
constexpr Field count() {
  return field<member, &to_count<minimum, maximum>>(ConfigKind::count);
}
template <auto member, std::uint64_t minimum>
constexpr Field bytes() {
  return field<member, &to_count<minimum, kUnlimited>>(ConfigKind::bytes);
}
template <auto member, std::uint64_t minimum_ms = 0>
constexpr Field seconds() {
  return field<member, &to_seconds<minimum_ms>>(ConfigKind::seconds);
}
template <auto member, TextCheck check = nullptr>
constexpr Field text() {
  return field<member, &to_text<check>>(ConfigKind::text);
}
template <auto member, TextCheck check = nullptr>
constexpr Field list() {
  return field<member, &to_list<check>>(ConfigKind::text_list);
}
template <auto member>
constexpr Field boolean() {
  return field<member, &to_bool>(ConfigKind::boolean);
}
template <auto member, const auto& choices>
constexpr Field choice() {
  return field<member, &to_choice<choices>>(ConfigKind::text);
}

// One row per key: its name, how it is set, and its --help line.
struct Row {
  std::string_view name;
  Field field;
  std::string_view help;
};

constexpr Row kRows[] = {
    {"listen", text<&Config::listen, check_address>(), "address to listen on, HOST:PORT"},
    {"threads", count<&Config::threads, 1, 64>(), "event loop threads (default: one per core)"},
    {"io_backend", choice<&Config::io_backend, kIoBackends>(),
     "how the event loops wait for sockets: io_uring (the default; epoll where the kernel refuses "
     "it) or epoll"},
    {"io_batch_wait_us", count<&Config::io_batch_wait_us, 0, 1000>(),
     "io_uring: microseconds a busy event loop waits to gather completions (0: off)"},
    {"max_connections", count<&Config::max_connections, 1>(),
     "open WebSockets allowed; beyond, upgrades get 503"},
    {"max_message_size", bytes<&Config::max_message_size, 1>(),
     "largest message accepted, bytes (else close 1009)"},
    {"max_backpressure", bytes<&Config::max_backpressure, 1024>(),
     "bytes queued per connection before sends are dropped"},
    {"ping_interval", seconds<&Config::ping_interval, kTenthOfASecond>(),
     "seconds between server pings"},
    {"pong_timeout", seconds<&Config::pong_timeout, kTenthOfASecond>(),
     "seconds to wait for a pong before closing"},
    {"handshake_timeout", seconds<&Config::handshake_timeout, kTenthOfASecond>(),
     "seconds a client has to send its request"},
    {"idle_timeout", seconds<&Config::idle_timeout>(),
     "close WebSockets silent this long, seconds (0: off)"},
    {"drain_timeout", seconds<&Config::drain_timeout>(),
     "seconds SIGTERM waits for connections to close"},
    {"drain_window", seconds<&Config::drain_window>(),
     "seconds over which SIGTERM spreads the 1001 closes"},
    {"allowed_origins", list<&Config::allowed_origins>(),
     "Origin values allowed to connect (empty: any)"},
    {"log_level", choice<&Config::log_level, kLogLevels>(),
     "trace, debug, info, warn or error (SIGHUP re-reads it)"},
    {"log_format", choice<&Config::log_format, kLogFormats>(),
     "json (one object per line) or console"},
    {"trusted_proxies", list<&Config::trusted_proxies, check_cidr>(),
     "CIDRs of proxies whose X-Forwarded-For is believed"},
    {"metrics_listen", text<&Config::metrics_listen, check_optional_address>(),
     "separate HOST:PORT for /metrics (empty: on listen)"},
    {"dashboard", boolean<&Config::dashboard>(),
     "serve the live dashboard at / and its stats on pylon/stats"},
    {"tls_cert", text<&Config::tls_cert>(),
     "PEM certificate (and chain): serve TLS on listen (SIGHUP and file changes reload it)"},
    {"tls_key", text<&Config::tls_key>(), "PEM private key of tls_cert (empty: in tls_cert)"},
    {"tls_sni_certs", list<&Config::tls_sni_certs>(),
     "more certificates chosen by SNI name, CERT_FILE or CERT_FILE:KEY_FILE"},
    {"tls_ciphers", text<&Config::tls_ciphers, check_not_empty>(),
     "TLS 1.2 cipher list (default: Mozilla intermediate)"},
    {"tls_max_handshakes", count<&Config::tls_max_handshakes, 1>(),
     "TLS handshakes in progress per worker; more connections are closed at once"},
    {"tls_ktls", boolean<&Config::tls_ktls>(), "kernel TLS where the kernel has it"},
    {"tls_watch_interval", seconds<&Config::tls_watch_interval>(),
     "seconds between checks of the certificate files for changes (0: SIGHUP only)"},
    {"tls_ocsp_stapling", boolean<&Config::tls_ocsp_stapling>(),
     "staple each certificate's OCSP response, read from CERT_FILE.ocsp (DER)"},
    {"tls_ticket_key_rotation", seconds<&Config::tls_ticket_key_rotation, 1000>(),
     "seconds between session ticket key rotations (a ticket resumes for one to two)"},
    {"max_subscriptions", count<&Config::max_subscriptions, 1>(),
     "topics one connection may subscribe to"},
    {"max_publish_rate", count<&Config::max_publish_rate, 1>(),
     "publishes per second per connection"},
    {"slow_consumer", choice<&Config::slow_consumer, kSlowConsumerPolicies>(),
     "close (1008) or drop: what happens past max_backpressure"},
    {"compression", choice<&CompressionSettings::mode, kCompressionModes>(),
     "permessage-deflate: off, shared (no context takeover) or dedicated"},
    {"compression_threshold", bytes<&CompressionSettings::threshold, 0>(),
     "messages smaller than this are sent uncompressed"},
    // zlib cannot compress raw deflate with a window of 8 bits
    {"compression_window_bits", count<&CompressionSettings::window_bits, 9, 15>(),
     "the server compressor's window, 9..15"},
    {"compression_memory_level", count<&CompressionSettings::memory_level, 1, 9>(),
     "zlib memLevel of dedicated compressors, 1..9"},
    {"engine", choice<&Config::engine, kEngines>(),
     "memory (this instance only) or redis (topics shared across instances)"},
    {"redis_url", text<&Config::redis_url, check_redis_url>(),
     "redis://[:password@]host[:port][/db] or unix:///path[?db=N]"},
    {"redis_prefix", text<&Config::redis_prefix>(), "prefix of the Redis channel names"},
    {"readyz_requires_engine", boolean<&Config::readyz_requires_engine>(),
     "report not ready while the engine is unavailable"},
    {"auth_hmac_secret_file", text<&Config::auth_hmac_secret_file>(),
     "file holding the HMAC secret of HS256/384/512 tokens"},
    {"auth_hmac_secret_env", text<&Config::auth_hmac_secret_env>(),
     "environment variable holding the HMAC secret (the secret itself is never a flag)"},
    {"auth_public_key_file", text<&Config::auth_public_key_file>(),
     "PEM public key of RS*/PS256/ES256/ES384/EdDSA tokens"},
    {"auth_jwks_file", text<&Config::auth_jwks_file>(),
     "JWKS file; a token's kid selects its key (SIGHUP re-reads it)"},
    {"auth_issuer", text<&Config::auth_issuer>(), "required iss of tokens (empty: any)"},
    {"auth_audience", text<&Config::auth_audience>(), "required aud of tokens (empty: any)"},
    {"auth_leeway", seconds<&Config::auth_leeway>(), "clock skew allowed on exp/nbf, seconds"},
    {"auth_require_exp", boolean<&Config::auth_require_exp>(), "refuse tokens without exp"},
    {"auth_anonymous", boolean<&Config::auth_anonymous>(),
     "let connections without a token in (they get no claims)"},
    {"auth_max_token_size", bytes<&Config::auth_max_token_size, 64>(), "longest token read, bytes"},
    {"auth_refresh_grace", seconds<&Config::auth_refresh_grace>(),
     "seconds a connection whose token expired has to send a new one before 4001"},
    {"auth_signature_cache", count<&Config::auth_signature_cache, 0>(),
     "public-key signatures remembered once verified (0: verify every time)"},
    {"max_connections_per_ip", count<&Config::max_connections_per_ip, 0>(),
     "open WebSockets of one client IP; beyond, upgrades get 429 (0: off)"},
    {"handshake_rate_per_ip", count<&Config::handshake_rate_per_ip, 0>(),
     "upgrades per second of one client IP; beyond, 429 (0: off)"},
    {"handshake_burst_per_ip", count<&Config::handshake_burst_per_ip, 1>(),
     "upgrades one client IP may make at once under handshake_rate_per_ip"},
    {"auth_failures_per_minute", count<&Config::auth_failures_per_minute, 0>(),
     "refused authentications of one IP that lock it out (0: off)"},
    {"auth_lockout", seconds<&Config::auth_lockout, 1000>(),
     "seconds a locked-out IP's upgrades get 429"},
    {"admission_rate", count<&Config::admission_rate, 0>(),
     "upgrades per second of all clients; beyond, 503 (0: off)"},
    {"admission_burst", count<&Config::admission_burst, 1>(),
     "upgrades admitted at once under admission_rate"},
    {"max_tracked_ips", count<&Config::max_tracked_ips, 16>(),
     "client IPs the per-IP limits remember at most"},
};

// One row per key of a [namespaces.NAME] table.
struct NamespaceRow {
  std::string_view name;
  ConfigKind kind;  // how a --namespace flag's text becomes a value
  Setter<NamespaceRules> set;
  std::string_view help;
};
// A topic's history holds shared frames; past this count a topic is a log, not a history.
constexpr std::uint64_t kMaxHistorySize = 1'000'000;
constexpr NamespaceRow kNamespaceRows[] = {
    {"subscribe", ConfigKind::text,
     &assign<&NamespaceRules::subscribe, &to_choice<kSubscribeRules>>,
     "token, anyone or subscription_token"},
    {"publish", ConfigKind::text, &assign<&NamespaceRules::publish, &to_choice<kPublishRules>>,
     "token, subscribers, anyone or nobody"},
    // History (docs/protocol.md "History and recovery").
    {"history_size", ConfigKind::count,
     &assign<&NamespaceRules::history_size, &to_count<0, kMaxHistorySize>>,
     "publications kept per topic for recovery (0: no history)"},
    {"history_ttl", ConfigKind::seconds, &assign<&NamespaceRules::history_ttl, &to_seconds<0>>,
     "seconds a publication is kept (required with history_size)"},
    {"recovery", ConfigKind::text, &assign<&NamespaceRules::recovery, &to_choice<kRecoveryModes>>,
     "stream (every missed publication) or cache (the latest only)"},
    // Presence (docs/protocol.md "Presence").
    {"presence", ConfigKind::boolean, &assign<&NamespaceRules::presence, &to_bool>,
     "subscribers may ask who is subscribed (presence, presence_stats)"},
    {"join_leave", ConfigKind::boolean, &assign<&NamespaceRules::join_leave, &to_bool>,
     "subscribers get join and leave messages (needs presence)"},
    {"presence_ttl", ConfigKind::seconds, &assign<&NamespaceRules::presence_ttl, &to_seconds<1000>>,
     "seconds a crashed instance's clients stay listed (engine = redis)"},
};

// What config_keys() shows of the rows.
constexpr auto kKeys = [] {
  std::array<ConfigKey, std::size(kRows)> keys{};
  for (std::size_t index = 0; index < keys.size(); ++index)
    keys[index] = {kRows[index].name, kRows[index].field.kind, kRows[index].help};
  return keys;
}();

const Row& row_of(std::string_view key) {
  for (const Row& row : kRows)
    if (row.name == key) return row;
  // The one shared key of earlier versions: a secret that a flag would show in `ps`.
  if (key == "api_key")
    throw ConfigError("api_key",
                      "replaced by [api_keys.NAME] tables with key_file or key_env and scopes "
                      "(docs/configuration.md)");
  throw ConfigError(std::string(key), "unknown key");
}

ConfigValue from_toml(std::string_view key, const toml::node& node) {
  if (const auto* integer = node.as_integer()) return integer->get();
  if (const auto* real = node.as_floating_point()) return real->get();
  if (const auto* text = node.as_string()) return text->get();
  if (const auto* flag = node.as_boolean()) return flag->get();
  if (const auto* array = node.as_array()) {
    std::vector<std::string> items;
    for (const toml::node& item : *array) {
      const auto* text = item.as_string();
      if (text == nullptr) throw ConfigError(std::string(key), "must be an array of strings");
      items.push_back(text->get());
    }
    return items;
  }
  throw ConfigError(std::string(key), "unsupported value type");
}

// A flag's text as the value its key's kind expects.
ConfigValue parse_text(ConfigKind kind, const std::string& name, std::string_view text) {
  switch (kind) {
    case ConfigKind::count:
    case ConfigKind::bytes: {
      std::int64_t number = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
      if (error != std::errc{} || end != text.data() + text.size())
        throw ConfigError(name, "must be an integer (got \"" + std::string(text) + "\")");
      return number;
    }
    case ConfigKind::seconds: {
      double seconds = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
      if (error != std::errc{} || end != text.data() + text.size())
        throw ConfigError(name, "must be a number of seconds (got \"" + std::string(text) + "\")");
      return seconds;
    }
    case ConfigKind::text:
    case ConfigKind::text_list:
      return std::string(text);
    case ConfigKind::boolean:
      if (text == "true") return true;
      if (text == "false") return false;
      throw ConfigError(name, "must be true or false (got \"" + std::string(text) + "\")");
  }
  return std::string(text);
}

std::string endpoint_key_name(std::string_view path, std::string_view key) {
  return "endpoints." + std::string(path) + (key.empty() ? "" : ".") + std::string(key);
}

// The row of an endpoint's key; throws ConfigError for a bad path or a key endpoints do not take.
const Row& endpoint_row_of(std::string_view path, std::string_view key) {
  if (!path.starts_with('/'))
    throw ConfigError(endpoint_key_name(path, {}), "an endpoint is a path starting with /");
  for (const Row& row : kRows)
    if (row.name == key && row.field.set_endpoint != nullptr) return row;
  std::vector<std::string_view> endpoint_keys;
  for (const Row& row : kRows)
    if (row.field.set_endpoint != nullptr) endpoint_keys.push_back(row.name);
  throw ConfigError(
      endpoint_key_name(path, key),
      "unknown endpoint key (an endpoint takes " +
          spell_out(endpoint_keys, "and", [](std::string_view name) { return std::string(name); }) +
          ")");
}

std::string namespace_key_name(std::string_view name, std::string_view key) {
  return "namespaces." + std::string(name) + (key.empty() ? "" : ".") + std::string(key);
}

// scopes: an array of words, or one string of words separated by commas (a flag's form).
std::vector<ApiScope> to_scopes(const ConfigValue& value, const std::string& name) {
  std::vector<std::string> words = to_list<nullptr>(value, name);
  if (words.size() == 1 && words[0].find(',') != std::string::npos) {
    const std::string joined = std::move(words[0]);
    words.clear();
    for (std::size_t begin = 0; begin <= joined.size();) {
      const std::size_t comma = std::min(joined.find(',', begin), joined.size());
      words.push_back(joined.substr(begin, comma - begin));
      begin = comma + 1;
    }
  }
  if (words.empty()) throw ConfigError(name, "must name at least one scope");
  std::vector<ApiScope> scopes;
  for (const std::string& word : words) scopes.push_back(to_choice<kApiScopes>(word, name));
  return scopes;
}

// One row per key of an [api_keys.NAME] table.
struct ApiKeyRow {
  std::string_view name;
  Setter<ApiKeySource> set;
};
constexpr ApiKeyRow kApiKeyRows[] = {
    {"key_file", &assign<&ApiKeySource::key_file, &to_text<nullptr>>},
    {"key_env", &assign<&ApiKeySource::key_env, &to_text<nullptr>>},
    {"scopes", &assign<&ApiKeySource::scopes, &to_scopes>},
};

std::string api_key_name(std::string_view name, std::string_view key) {
  return "api_keys." + std::string(name) + (key.empty() ? "" : ".") + std::string(key);
}

const NamespaceRow& namespace_row_of(std::string_view name, std::string_view key) {
  if (name.empty() || name.find(':') != std::string_view::npos)
    throw ConfigError(namespace_key_name(name, {}), "a namespace is a non-empty name without ':'");
  for (const NamespaceRow& row : kNamespaceRows)
    if (row.name == key) return row;
  throw ConfigError(namespace_key_name(name, key),
                    "unknown namespace key (a namespace takes " +
                        spell_out(kNamespaceRows, "and",
                                  [](const NamespaceRow& row) { return std::string(row.name); }) +
                        ")");
}

}  // namespace

std::span<const ConfigKey> config_keys() noexcept {
  return kKeys;
}

std::string_view log_level_name(LogLevel level) noexcept {
  for (const auto& choice : kLogLevels)
    if (choice.value == level) return choice.name;
  return {};
}

void set_config_value(Config& config, std::string_view key, const ConfigValue& value) {
  row_of(key).field.set(config, value, std::string(key));
}

void set_config_text(Config& config, std::string_view key, std::string_view text) {
  const Row& row = row_of(key);
  row.field.set(config, parse_text(row.field.kind, std::string(key), text), std::string(key));
}

void set_endpoint_value(Config& config, std::string_view path, std::string_view key,
                        const ConfigValue& value) {
  CompressionSettings check;  // checked now, applied per route later (endpoint_compression)
  endpoint_row_of(path, key).field.set_endpoint(check, value, endpoint_key_name(path, key));
  config.endpoints[std::string(path)].emplace_back(std::string(key), value);
}

void set_endpoint_text(Config& config, std::string_view text) {
  const std::size_t equals = text.find('=');
  const std::size_t colon = text.substr(0, equals).rfind(':');
  if (equals == std::string_view::npos || colon == std::string_view::npos)
    throw ConfigError("endpoint", "expected /path:key=value (got \"" + std::string(text) + "\")");
  const std::string_view path = text.substr(0, colon),
                         key = text.substr(colon + 1, equals - colon - 1);
  const Row& row = endpoint_row_of(path, key);
  set_endpoint_value(
      config, path, key,
      parse_text(row.field.kind, endpoint_key_name(path, key), text.substr(equals + 1)));
}

CompressionSettings endpoint_compression(const Config& config, std::string_view path,
                                         CompressionSettings base) {
  if (const auto endpoint = config.endpoints.find(path); endpoint != config.endpoints.end())
    for (const auto& [key, value] : endpoint->second)
      endpoint_row_of(path, key).field.set_endpoint(base, value, endpoint_key_name(path, key));
  return base;
}

void set_namespace_value(Config& config, std::string_view name, std::string_view key,
                         const ConfigValue& value) {
  const NamespaceRow& row = namespace_row_of(name, key);
  NamespaceRules& rules = config.namespaces.try_emplace(std::string(name)).first->second;
  row.set(rules, value, namespace_key_name(name, key));
}

void set_namespace_text(Config& config, std::string_view text) {
  const std::size_t equals = text.find('=');
  const std::size_t colon = text.substr(0, equals).find(':');
  if (equals == std::string_view::npos || colon == std::string_view::npos)
    throw ConfigError("namespace", "expected NAME:key=value (got \"" + std::string(text) + "\")");
  const std::string_view name = text.substr(0, colon),
                         key = text.substr(colon + 1, equals - colon - 1);
  const NamespaceRow& row = namespace_row_of(name, key);
  set_namespace_value(config, name, key,
                      parse_text(row.kind, namespace_key_name(name, key), text.substr(equals + 1)));
}

void set_api_key_value(Config& config, std::string_view name, std::string_view key,
                       const ConfigValue& value) {
  // The name is a metric label value and a log field: keep it plain.
  if (name.empty() || name.size() > 64 ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
          std::string_view::npos)
    throw ConfigError(api_key_name(name, {}),
                      "a key's name is 1-64 letters, digits, '_', '-' or '.'");
  for (const ApiKeyRow& row : kApiKeyRows) {
    if (row.name != key) continue;
    ApiKeySource& source = config.api_keys.try_emplace(std::string(name)).first->second;
    row.set(source, value, api_key_name(name, key));
    return;
  }
  throw ConfigError(api_key_name(name, key),
                    "unknown API key setting (a key takes key_file, key_env and scopes)");
}

void set_api_key_text(Config& config, std::string_view text) {
  const std::size_t equals = text.find('=');
  const std::size_t colon = text.substr(0, equals).find(':');
  if (equals == std::string_view::npos || colon == std::string_view::npos)
    throw ConfigError(
        "api_key",
        "expected NAME:key=value, e.g. backend:key_env=VARIABLE (the secret itself is "
        "never a flag)");
  set_api_key_value(config, text.substr(0, colon), text.substr(colon + 1, equals - colon - 1),
                    std::string(text.substr(equals + 1)));
}

std::string_view api_scope_name(ApiScope scope) noexcept {
  for (const auto& choice : kApiScopes)
    if (choice.value == scope) return choice.name;
  return {};
}

const NamespaceRules& namespace_rules(const Config& config, std::string_view topic) noexcept {
  static const NamespaceRules kDefaults;
  const std::size_t colon = topic.find(':');
  if (colon == std::string_view::npos) return kDefaults;
  const auto found = config.namespaces.find(topic.substr(0, colon));
  return found == config.namespaces.end() ? kDefaults : found->second;
}

bool auth_enabled(const Config& config) noexcept {
  return !config.auth_hmac_secret_file.empty() || !config.auth_hmac_secret_env.empty() ||
         !config.auth_public_key_file.empty() || !config.auth_jwks_file.empty();
}

void load_config_file(Config& config, const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& error) {
    const auto& where = error.source().begin;
    throw ConfigError(path, "line " + std::to_string(where.line) + ", column " +
                                std::to_string(where.column) + ": " +
                                std::string(error.description()));
  }
  // The tables of named tables: [endpoints."/ws"], [namespaces.chat], [api_keys.backend].
  using NamedSetter =
      void (*)(Config&, std::string_view name, std::string_view key, const ConfigValue& value);
  struct NamedTables {
    std::string_view table;
    NamedSetter set;
  };
  constexpr NamedTables kNamedTables[] = {
      {"endpoints", &set_endpoint_value},
      {"namespaces", &set_namespace_value},
      {"api_keys", &set_api_key_value},
  };
  for (const auto& [key, node] : table) {
    const auto* named = std::find_if(std::begin(kNamedTables), std::end(kNamedTables),
                                     [&](const NamedTables& t) { return t.table == key.str(); });
    if (named == std::end(kNamedTables)) {
      set_config_value(config, key.str(), from_toml(key.str(), node));
      continue;
    }
    const std::string table_name(named->table);
    const auto* names = node.as_table();
    if (names == nullptr)
      throw ConfigError(table_name, "must be a table of [" + table_name + ".NAME] tables");
    for (const auto& [name, keys] : *names) {
      const std::string prefix = table_name + '.' + std::string(name.str());
      const auto* entries = keys.as_table();
      if (entries == nullptr) throw ConfigError(prefix, "must be a table of keys");
      for (const auto& [entry, value] : *entries)
        named->set(config, name.str(), entry.str(),
                   from_toml(prefix + '.' + std::string(entry.str()), value));
    }
  }
}

void validate_config(const Config& config) {
  if (config.drain_window > config.drain_timeout)
    throw ConfigError("drain_window", "must not exceed drain_timeout (" +
                                          std::to_string(config.drain_timeout) + " s)");
  if (config.pong_timeout > config.ping_interval * 10)
    throw ConfigError("pong_timeout", "must not exceed ten ping intervals");
  if (config.tls_ocsp_stapling && config.tls_cert.empty())
    throw ConfigError("tls_ocsp_stapling", "needs tls_cert");
  const std::string_view sources[] = {"auth_hmac_secret_file", "auth_hmac_secret_env",
                                      "auth_public_key_file", "auth_jwks_file"};
  const std::string* values[] = {&config.auth_hmac_secret_file, &config.auth_hmac_secret_env,
                                 &config.auth_public_key_file, &config.auth_jwks_file};
  std::string_view chosen;
  for (std::size_t i = 0; i < std::size(sources); ++i) {
    if (values[i]->empty()) continue;
    if (!chosen.empty())
      throw ConfigError(std::string(sources[i]),
                        "only one key source may be set (" + std::string(chosen) + " is too)");
    chosen = sources[i];
  }
  for (const auto& [name, key] : config.api_keys) {
    if (key.key_file.empty() == key.key_env.empty())
      throw ConfigError(api_key_name(name, {}), "needs exactly one of key_file and key_env");
    if (key.scopes.empty()) throw ConfigError(api_key_name(name, "scopes"), "must name a scope");
  }
  for (const auto& [name, rules] : config.namespaces) {
    if (rules.join_leave && !rules.presence)
      throw ConfigError(namespace_key_name(name, "join_leave"), "needs presence = true");
    // A join or leave carries no offset, and a recovering subscriber's seam merges by offset.
    if (rules.join_leave && rules.history_size > 0)
      throw ConfigError(namespace_key_name(name, "join_leave"),
                        "cannot be combined with history_size (not supported yet)");
    if (rules.history_size == 0) continue;
    if (rules.history_ttl <= 0)
      throw ConfigError(namespace_key_name(name, "history_ttl"),
                        "must be more than 0 seconds when history_size is set");
  }
}

}  // namespace pylon
