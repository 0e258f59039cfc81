// pylon's configuration: one struct, filled from defaults, then a TOML file, then command-line
// flags (DESIGN.md "Configuration"). Every key is one row of a table (src/server/config.cpp)
// that says its kind and how it checks and sets its field; the TOML loader and the CLI both go
// through it (config_keys() lists it), so a key cannot exist in one and not the other, nor be
// accepted without being applied. Keys with a fixed set of words are enums, parsed at load.
// Loading happens at start-up on the main thread; errors are exceptions that name the key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pylon {

using ConfigValue = std::variant<std::int64_t, double, std::string, std::vector<std::string>, bool>;

// permessage-deflate (RFC 7692) of one WebSocket endpoint (docs/configuration.md "Compression").
enum class CompressionMode : std::uint8_t {
  off,
  shared,     // no context takeover: small memory, one compression per broadcast message
  dedicated,  // a sliding window per connection (better ratio): broadcasts compressed per
              // subscriber
};

// What a topic delivery does to a subscriber whose backlog is past max_backpressure.
enum class SlowConsumerPolicy : std::uint8_t {
  close,  // close it with 1008 "slow consumer" (the default: the client reconnects and resyncs)
  drop,   // skip the messages that do not fit, for that subscriber only
};

// Where topics go beyond this instance (docs/cluster.md).
enum class EngineKind : std::uint8_t {
  memory,  // nowhere: this instance only
  redis,   // every instance on the same Redis
};

// How the event loops wait for their sockets (src/net/poller.hpp).
enum class IoBackend : std::uint8_t {
  epoll,     // readiness, then one system call per read and per write
  io_uring,  // one io_uring_enter per loop iteration; plain sockets' reads complete into its
             // buffers
};

// The logger's (src/obs/log.hpp uses these same enums).
enum class LogLevel : std::uint8_t { trace, debug, info, warn, error };
enum class LogFormat : std::uint8_t {
  json,     // one object per line, zap's production shape
  console,  // one readable line
};

// Who may subscribe to, and publish on, the topics of one namespace ("chat" of "chat:room-1")
// when authentication is on (docs/security.md).
enum class SubscribeRule : std::uint8_t {
  token,               // a connection token whose subscribe patterns match the topic
  anyone,              // any connection, anonymous ones included
  subscription_token,  // a subscription token for the topic, or the connection token's patterns
};
enum class PublishRule : std::uint8_t {
  token,        // a connection token whose publish patterns match the topic
  subscribers,  // a connection subscribed to the topic
  anyone,       // any connection, anonymous ones included
  nobody,       // only the backend (POST /api/publish)
};
// What a subscriber recovering a topic of the namespace gets (docs/protocol.md "History and
// recovery").
enum class RecoveryMode : std::uint8_t {
  stream,  // every publication it missed, in order
  cache,   // the latest publication only: for topics whose latest value is the whole state
};
// The rules of one namespace: who may subscribe and publish (when authentication is on), and
// the history its topics keep (whether or not it is).
struct NamespaceRules {
  SubscribeRule subscribe = SubscribeRule::token;
  PublishRule publish = PublishRule::token;
  std::size_t history_size = 0;  // publications kept per topic; 0: no history
  double history_ttl = 0;        // seconds each is kept; more than 0 when history_size is set
  RecoveryMode recovery = RecoveryMode::stream;
  // Presence (docs/protocol.md "Presence"): who is subscribed can be asked, by subscribers.
  bool presence = false;
  bool join_leave = false;  // join/leave messages to the topic's subscribers; needs presence
  // Seconds a crashed instance's clients stay listed (engine = "redis": each instance refreshes
  // its own every third of it).
  double presence_ttl = 60;
  bool operator==(const NamespaceRules&) const = default;
};

// What a named API key may do (docs/security.md "Backend API").
enum class ApiScope : std::uint8_t {
  publish,     // POST /api/publish
  disconnect,  // POST /api/disconnect and POST /api/unsubscribe
};
// One [api_keys.NAME] table: where its secret is (exactly one of the two: never the secret itself,
// which a flag would show in `ps`) and what it may do. The name goes in logs and metrics.
struct ApiKeySource {
  std::string key_file;  // the secret's bytes in a file (one trailing newline ignored)
  std::string key_env;   // ... or in this environment variable
  std::vector<ApiScope> scopes = {ApiScope::publish};
  bool operator==(const ApiKeySource&) const = default;
};

struct CompressionSettings {
  CompressionMode mode = CompressionMode::shared;
  std::size_t threshold = 64;  // smaller messages go out uncompressed
  unsigned window_bits = 15;   // the server compressor's window, 9..15
  unsigned memory_level = 8;   // dedicated compressors' zlib memLevel, 1..9
  bool operator==(const CompressionSettings&) const = default;
};

struct Config {
  std::string listen = "127.0.0.1:8080";
  unsigned threads = 0;  // event loops; 0 (the default, not settable) means one per core
  IoBackend io_backend = IoBackend::io_uring;  // epoll where the kernel refuses io_uring
  unsigned io_batch_wait_us = 50;  // io_uring: a busy loop's wait holds a completion this long
  std::size_t max_connections = 100000;      // open WebSockets, all loops together
  std::size_t max_message_size = 16u << 20;  // bytes; larger messages are closed with 1009
  std::size_t max_backpressure = 1u << 20;   // bytes queued per connection before sends drop
  double ping_interval = 25;                 // seconds; below Nginx's 60 s proxy_read_timeout
  double pong_timeout = 10;                  // seconds without a pong after a ping before closing
  double handshake_timeout =
      10;                   // seconds to send a complete request (and between keep-alive requests)
  double idle_timeout = 0;  // seconds without any frame from the client; 0: off
  double drain_timeout = 30;                 // seconds SIGTERM waits for connections to close
  double drain_window = 5;                   // seconds over which SIGTERM spreads the 1001 closes
  std::vector<std::string> allowed_origins;  // empty: any Origin
  LogLevel log_level = LogLevel::info;
  LogFormat log_format = LogFormat::json;
  std::vector<std::string> trusted_proxies;  // CIDRs whose X-Forwarded-For / X-Real-IP are believed
  std::string metrics_listen;  // HOST:PORT for /metrics alone; empty: /metrics on `listen`
  bool dashboard = true;       // `pylon serve`: the live page at / and its stats on pylon/stats
  // Native TLS on `listen` (docs/security.md "TLS"): on when tls_cert is set. The metrics
  // listener (metrics_listen) stays plain. Certificates reload on SIGHUP and when the files change.
  std::string tls_cert;  // PEM: the default certificate, then its chain
  std::string tls_key;   // PEM private key; empty: in tls_cert's file
  // More certificates, "CERT_FILE" or "CERT_FILE:KEY_FILE": a client's SNI name picks the first
  // whose subjectAltName matches; no name or no match gets tls_cert.
  std::vector<std::string> tls_sni_certs;
  // TLS 1.2 cipher list (OpenSSL syntax); the default is Mozilla's "intermediate". TLS 1.3
  // suites are OpenSSL's (all AEAD).
  std::string tls_ciphers =
      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
      "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
      "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
  // TLS handshakes in progress per worker; a connection beyond is closed at once, so a flood of
  // ClientHellos cannot take a loop from its established connections.
  std::size_t tls_max_handshakes = 256;
  bool tls_ktls = true;  // let the kernel encrypt records where it can (Linux "tls" module)
  double tls_watch_interval = 5;  // seconds between checks of the certificate files; 0: SIGHUP only
  // OCSP stapling (docs/security.md "OCSP stapling"): each certificate staples the DER response
  // in its file's name + ".ocsp" (HAProxy's convention) while that response is valid for it.
  bool tls_ocsp_stapling = false;
  // Seconds between session ticket key rotations; a ticket resumes for one to two of them.
  double tls_ticket_key_rotation = 3600;
  // Topics (docs/protocol.md)
  // [api_keys.NAME] tables (flag --api-key NAME:key=value): the keys of the backend API
  // (POST /api/publish, /api/disconnect, /api/unsubscribe); none: the API does not exist.
  std::map<std::string, ApiKeySource, std::less<>> api_keys;
  std::size_t max_subscriptions = 100;  // per connection
  std::size_t max_publish_rate = 1000;  // publishes per second per connection (burst: one second)
  SlowConsumerPolicy slow_consumer = SlowConsumerPolicy::close;
  // permessage-deflate of every endpoint (keys compression, compression_threshold,
  // compression_window_bits, compression_memory_level) ...
  CompressionSettings compression;
  // ... unless an endpoint says otherwise: [endpoints."/path"] tables (flag --endpoint
  // /path:key=value) hold compression keys for one WebSocket path, in the order given. They
  // apply over the route's own settings (WebSocketBehavior::compression), which apply over
  // `compression`.
  std::map<std::string, std::vector<std::pair<std::string, ConfigValue>>, std::less<>> endpoints;
  // Cluster (docs/cluster.md)
  EngineKind engine = EngineKind::memory;
  std::string redis_url = "redis://127.0.0.1:6379";
  std::string redis_prefix = "pylon:";
  bool readyz_requires_engine = false;  // /readyz says 503 while the engine is unavailable
  // Authentication of /ws (docs/security.md): JWT connection tokens verified with ONE key
  // source. None set: development mode, every client may subscribe and publish anywhere.
  std::string auth_hmac_secret_file;       // HS256/384/512: the secret's bytes in a file
  std::string auth_hmac_secret_env;        // ... or in this environment variable (never a flag)
  std::string auth_public_key_file;        // RS*, PS256, ES256/384, EdDSA: one PEM public key
  std::string auth_jwks_file;              // a JWKS document: keys chosen by the token's kid
  std::string auth_issuer;                 // when set, the token's iss must be this
  std::string auth_audience;               // when set, the token's aud must hold this
  double auth_leeway = 5;                  // seconds of clock skew allowed on exp / nbf / iat
  bool auth_require_exp = true;            // a token without exp is refused
  bool auth_anonymous = false;             // connections without a token are let in (no claims)
  std::size_t auth_max_token_size = 8192;  // bytes; a longer token is refused unread
  // When a connection's token expires the server asks for a new one ("refresh") and closes with
  // 4001 if none arrives within this many seconds.
  double auth_refresh_grace = 30;
  // Public-key signatures remembered once verified (auth/signature_memo.hpp), so reconnecting
  // clients do not pay RSA/ECDSA/EdDSA again; 0: verify every time.
  std::size_t auth_signature_cache = 10000;
  // Abuse limits on WebSocket upgrades, every route (docs/security.md "Abuse limits"): per client
  // IP (the real one behind trusted_proxies), 429 + Retry-After past them; over all clients, a
  // pace for new upgrades, 503 + Retry-After past it. 0: off, the default of each limit.
  std::size_t max_connections_per_ip = 0;    // open WebSockets of one IP
  std::size_t handshake_rate_per_ip = 0;     // upgrades per second of one IP ...
  std::size_t handshake_burst_per_ip = 20;   // ... with this many at once
  std::size_t auth_failures_per_minute = 0;  // refused authentications (401) that lock an IP out
  double auth_lockout = 300;                 // seconds an IP stays locked out
  std::size_t admission_rate = 0;            // upgrades per second, all IPs together ...
  std::size_t admission_burst = 1000;        // ... with this many at once
  std::size_t max_tracked_ips = 100000;      // IPs the per-IP limits remember at most
  // [namespaces.NAME] tables (flag --namespace NAME:key=value): the rules of one namespace;
  // a topic of a namespace not listed follows the defaults (token, token, no history).
  std::map<std::string, NamespaceRules, std::less<>> namespaces;

  bool operator==(const Config&) const = default;
};

// A bad key or value: what() is the one line printed at start-up ("max_connections: must be ...").
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string key, const std::string& reason)
      : std::runtime_error(key + ": " + reason), key_(std::move(key)) {}
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

enum class ConfigKind : std::uint8_t { count, bytes, seconds, text, text_list, boolean };

struct ConfigKey {
  std::string_view name;  // TOML key; the flag is --name with '-' for '_' (both spellings work)
  ConfigKind kind;
  std::string_view help;
};

std::span<const ConfigKey> config_keys() noexcept;
// A level as log_level spells it ("warn").
std::string_view log_level_name(LogLevel level) noexcept;

// Sets one key, checking the value's type and range; throws ConfigError naming the key.
void set_config_value(Config& config, std::string_view key, const ConfigValue& value);
// Parses a flag's text per the key's kind, then set_config_value.
void set_config_text(Config& config, std::string_view key, std::string_view text);
// Sets one key of one endpoint ("endpoints./path.key" in errors): only the compression keys.
void set_endpoint_value(Config& config, std::string_view path, std::string_view key,
                        const ConfigValue& value);
// Parses a --endpoint flag, "/path:key=value".
void set_endpoint_text(Config& config, std::string_view text);
// The compression of the WebSocket endpoint at path: `base` with the endpoint's keys over it.
CompressionSettings endpoint_compression(const Config& config, std::string_view path,
                                         CompressionSettings base);
// Sets one key of one namespace ("namespaces.NAME.key" in errors): subscribe, publish,
// history_size, history_ttl, recovery, presence, join_leave, presence_ttl.
void set_namespace_value(Config& config, std::string_view name, std::string_view key,
                         const ConfigValue& value);
// Parses a --namespace flag, "NAME:key=value".
void set_namespace_text(Config& config, std::string_view text);
// Sets one key of one API key ("api_keys.NAME.key" in errors): key_file, key_env, scopes.
void set_api_key_value(Config& config, std::string_view name, std::string_view key,
                       const ConfigValue& value);
// Parses a --api-key flag, "NAME:key=value" (scopes: words separated by commas).
void set_api_key_text(Config& config, std::string_view text);
// "publish" or "disconnect".
std::string_view api_scope_name(ApiScope scope) noexcept;
// The rules of a topic: its namespace's (the part before the first ':'), else the defaults.
const NamespaceRules& namespace_rules(const Config& config, std::string_view topic) noexcept;
// Whether authentication is on (a key source is set).
bool auth_enabled(const Config& config) noexcept;
// Reads a TOML file over config; unknown keys, wrong types and bad values throw ConfigError.
void load_config_file(Config& config, const std::string& path);
// Checks relations between keys (e.g. pong_timeout vs ping_interval); throws ConfigError.
void validate_config(const Config& config);

}  // namespace pylon
