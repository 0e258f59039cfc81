#include "pylon/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "cluster/redis_url.hpp"
#include "net/cidr.hpp"
#include "net/socket.hpp"

namespace pylon {
namespace {

constexpr ConfigKey kKeys[] = {
    {"listen", ConfigKind::text, "address to listen on, HOST:PORT"},
    {"threads", ConfigKind::count, "event loop threads (default: one per core)"},
    {"max_connections", ConfigKind::count, "open WebSockets allowed; beyond, upgrades get 503"},
    {"max_message_size", ConfigKind::bytes, "largest message accepted, bytes (else close 1009)"},
    {"max_backpressure", ConfigKind::bytes, "bytes queued per connection before sends are dropped"},
    {"ping_interval", ConfigKind::seconds, "seconds between server pings"},
    {"pong_timeout", ConfigKind::seconds, "seconds to wait for a pong before closing"},
    {"handshake_timeout", ConfigKind::seconds, "seconds a client has to send its request"},
    {"idle_timeout", ConfigKind::seconds, "close WebSockets silent this long, seconds (0: off)"},
    {"drain_timeout", ConfigKind::seconds, "seconds SIGTERM waits for connections to close"},
    {"drain_window", ConfigKind::seconds, "seconds over which SIGTERM spreads the 1001 closes"},
    {"allowed_origins", ConfigKind::text_list, "Origin values allowed to connect (empty: any)"},
    {"log_level", ConfigKind::text, "trace, debug, info, warn or error (SIGHUP re-reads it)"},
    {"log_format", ConfigKind::text, "json (one object per line) or console"},
    {"trusted_proxies", ConfigKind::text_list,
     "CIDRs of proxies whose X-Forwarded-For is believed"},
    {"metrics_listen", ConfigKind::text, "separate HOST:PORT for /metrics (empty: on listen)"},
    {"dashboard", ConfigKind::boolean,
     "serve the live dashboard at / and its stats on pylon/stats"},
    {"api_key", ConfigKind::text, "bearer key for POST /api/publish (empty: endpoint off)"},
    {"max_subscriptions", ConfigKind::count, "topics one connection may subscribe to"},
    {"max_publish_rate", ConfigKind::count, "publishes per second per connection"},
    {"slow_consumer", ConfigKind::text, "close (1008) or drop: what happens past max_backpressure"},
    {"compression", ConfigKind::text,
     "permessage-deflate: off, shared (no context takeover) or dedicated"},
    {"compression_threshold", ConfigKind::bytes,
     "messages smaller than this are sent uncompressed"},
    {"compression_window_bits", ConfigKind::count, "the server compressor's window, 9..15"},
    {"compression_memory_level", ConfigKind::count, "zlib memLevel of dedicated compressors, 1..9"},
    {"engine", ConfigKind::text,
     "memory (this instance only) or redis (topics shared across instances)"},
    {"redis_url", ConfigKind::text, "redis://[:password@]host[:port][/db] or unix:///path[?db=N]"},
    {"redis_prefix", ConfigKind::text, "prefix of the Redis channel names"},
    {"readyz_requires_engine", ConfigKind::boolean,
     "report not ready while the engine is unavailable"},
};

const ConfigKey& key_spec(std::string_view key) {
  for (const ConfigKey& spec : kKeys)
    if (spec.name == key) return spec;
  throw ConfigError(std::string(key), "unknown key");
}

std::uint64_t as_count(std::string_view key, const ConfigValue& value, std::uint64_t minimum) {
  const auto* number = std::get_if<std::int64_t>(&value);
  if (number == nullptr) throw ConfigError(std::string(key), "must be an integer");
  if (*number < static_cast<std::int64_t>(minimum))
    throw ConfigError(std::string(key), "must be at least " + std::to_string(minimum) + " (got " +
                                            std::to_string(*number) + ")");
  return static_cast<std::uint64_t>(*number);
}

double as_seconds(std::string_view key, const ConfigValue& value) {
  double seconds = 0;
  if (const auto* number = std::get_if<std::int64_t>(&value))
    seconds = static_cast<double>(*number);
  else if (const auto* real = std::get_if<double>(&value))
    seconds = *real;
  else
    throw ConfigError(std::string(key), "must be a number of seconds");
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 86400.0 * 365)
    throw ConfigError(std::string(key), "must be between 0 and one year of seconds");
  return seconds;
}

const std::string& as_text(std::string_view key, const ConfigValue& value) {
  const auto* text = std::get_if<std::string>(&value);
  if (text == nullptr) throw ConfigError(std::string(key), "must be a string");
  return *text;
}

bool as_bool(std::string_view key, const ConfigValue& value) {
  const auto* flag = std::get_if<bool>(&value);
  if (flag == nullptr) throw ConfigError(std::string(key), "must be true or false");
  return *flag;
}

std::vector<std::string> as_list(std::string_view key, const ConfigValue& value) {
  if (const auto* items = std::get_if<std::vector<std::string>>(&value)) return *items;
  return {as_text(key, value)};
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

bool is_compression_key(std::string_view key) noexcept {
  return key.starts_with("compression");
}

// One compression key; `name` is what errors call it ("compression" or
// "endpoints./ws.compression").
void set_compression(CompressionSettings& settings, std::string_view key, const ConfigValue& value,
                     const std::string& name) {
  if (key == "compression") {
    const std::string& mode = as_text(name, value);
    if (mode == "off")
      settings.mode = CompressionMode::off;
    else if (mode == "shared")
      settings.mode = CompressionMode::shared;
    else if (mode == "dedicated")
      settings.mode = CompressionMode::dedicated;
    else
      throw ConfigError(name, "must be off, shared or dedicated (got \"" + mode + "\")");
  } else if (key == "compression_threshold") {
    settings.threshold = as_count(name, value, 0);
  } else if (key == "compression_window_bits") {
    const auto bits = as_count(name, value, 9);  // zlib cannot compress raw deflate with 8
    if (bits > 15) throw ConfigError(name, "must be from 9 to 15");
    settings.window_bits = static_cast<unsigned>(bits);
  } else if (key == "compression_memory_level") {
    const auto level = as_count(name, value, 1);
    if (level > 9) throw ConfigError(name, "must be from 1 to 9");
    settings.memory_level = static_cast<unsigned>(level);
  }
}

// A flag's text as the value its key's kind expects.
ConfigValue parse_text(const ConfigKey& spec, const std::string& name, std::string_view text) {
  switch (spec.kind) {
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

}  // namespace

std::span<const ConfigKey> config_keys() noexcept {
  return kKeys;
}

void set_config_value(Config& config, std::string_view key, const ConfigValue& value) {
  const std::string name(key);
  key_spec(key);  // unknown keys first, whatever the value
  if (key == "listen" || key == "metrics_listen") {
    const std::string& text = as_text(key, value);
    if (!text.empty() || key == "listen") {
      try {
        net::parse_endpoint(text);
      } catch (const std::invalid_argument& error) {
        throw ConfigError(name, std::string(error.what()) + " (got \"" + text + "\")");
      }
    }
    (key == "listen" ? config.listen : config.metrics_listen) = text;
  } else if (key == "threads") {
    const auto threads = as_count(key, value, 1);
    if (threads > 64) throw ConfigError(name, "must be at most 64");
    config.threads = static_cast<unsigned>(threads);
  } else if (key == "max_connections") {
    config.max_connections = as_count(key, value, 1);
  } else if (key == "max_message_size") {
    config.max_message_size = as_count(key, value, 1);
  } else if (key == "max_backpressure") {
    config.max_backpressure = as_count(key, value, 1024);
  } else if (key == "ping_interval") {
    config.ping_interval = as_seconds(key, value);
    if (config.ping_interval < 0.1) throw ConfigError(name, "must be at least 0.1 seconds");
  } else if (key == "pong_timeout") {
    config.pong_timeout = as_seconds(key, value);
    if (config.pong_timeout < 0.1) throw ConfigError(name, "must be at least 0.1 seconds");
  } else if (key == "handshake_timeout") {
    config.handshake_timeout = as_seconds(key, value);
    if (config.handshake_timeout < 0.1) throw ConfigError(name, "must be at least 0.1 seconds");
  } else if (key == "idle_timeout") {
    config.idle_timeout = as_seconds(key, value);
  } else if (key == "drain_timeout") {
    config.drain_timeout = as_seconds(key, value);
  } else if (key == "drain_window") {
    config.drain_window = as_seconds(key, value);
  } else if (key == "allowed_origins") {
    config.allowed_origins = as_list(key, value);
  } else if (key == "trusted_proxies") {
    const auto ranges = as_list(key, value);
    for (const std::string& range : ranges)
      if (!net::parse_cidr(range))
        throw ConfigError(name, "not an address or CIDR range: \"" + range + "\"");
    config.trusted_proxies = ranges;
  } else if (is_compression_key(key)) {
    set_compression(config.compression, key, value, name);
  } else if (key == "engine") {
    const std::string& engine = as_text(key, value);
    if (engine != "memory" && engine != "redis")
      throw ConfigError(name, "must be memory or redis (got \"" + engine + "\")");
    config.engine = engine;
  } else if (key == "redis_url") {
    const std::string& url = as_text(key, value);
    try {
      cluster::parse_redis_url(url);
    } catch (const std::invalid_argument& error) {
      throw ConfigError(name, error.what());
    }
    config.redis_url = url;
  } else if (key == "redis_prefix") {
    config.redis_prefix = as_text(key, value);
  } else if (key == "readyz_requires_engine") {
    config.readyz_requires_engine = as_bool(key, value);
  } else if (key == "dashboard") {
    config.dashboard = as_bool(key, value);
  } else if (key == "log_format") {
    const std::string& format = as_text(key, value);
    if (format != "json" && format != "console")
      throw ConfigError(name, "must be json or console (got \"" + format + "\")");
    config.log_format = format;
  } else if (key == "log_level") {
    static const std::set<std::string, std::less<>> levels = {"trace", "debug", "info", "warn",
                                                              "error"};
    const std::string& level = as_text(key, value);
    if (!levels.contains(level))
      throw ConfigError(name, "must be trace, debug, info, warn or error (got \"" + level + "\")");
    config.log_level = level;
  } else if (key == "api_key") {
    config.api_key = as_text(key, value);
  } else if (key == "max_subscriptions") {
    config.max_subscriptions = as_count(key, value, 1);
  } else if (key == "max_publish_rate") {
    config.max_publish_rate = as_count(key, value, 1);
  } else if (key == "slow_consumer") {
    const std::string& policy = as_text(key, value);
    if (policy != "close" && policy != "drop")
      throw ConfigError(name, "must be close or drop (got \"" + policy + "\")");
    config.slow_consumer = policy;
  }
}

void set_config_text(Config& config, std::string_view key, std::string_view text) {
  set_config_value(config, key, parse_text(key_spec(key), std::string(key), text));
}

namespace {

// The spec of an endpoint's key; throws ConfigError for a bad path or a key endpoints do not take.
const ConfigKey& endpoint_key_spec(std::string_view path, std::string_view key) {
  if (!path.starts_with('/'))
    throw ConfigError(endpoint_key_name(path, {}), "an endpoint is a path starting with /");
  if (is_compression_key(key))
    for (const ConfigKey& spec : kKeys)
      if (spec.name == key) return spec;
  throw ConfigError(endpoint_key_name(path, key),
                    "unknown endpoint key (an endpoint takes compression, compression_threshold, "
                    "compression_window_bits and compression_memory_level)");
}

}  // namespace

void set_endpoint_value(Config& config, std::string_view path, std::string_view key,
                        const ConfigValue& value) {
  endpoint_key_spec(path, key);
  CompressionSettings check;
  set_compression(check, key, value,
                  endpoint_key_name(path, key));  // checked now, applied per route later
  config.endpoints[std::string(path)].emplace_back(std::string(key), value);
}

void set_endpoint_text(Config& config, std::string_view text) {
  const std::size_t equals = text.find('=');
  const std::size_t colon = text.substr(0, equals).rfind(':');
  if (equals == std::string_view::npos || colon == std::string_view::npos)
    throw ConfigError("endpoint", "expected /path:key=value (got \"" + std::string(text) + "\")");
  const std::string_view path = text.substr(0, colon),
                         key = text.substr(colon + 1, equals - colon - 1);
  const ConfigKey& spec = endpoint_key_spec(path, key);
  set_endpoint_value(config, path, key,
                     parse_text(spec, endpoint_key_name(path, key), text.substr(equals + 1)));
}

CompressionSettings endpoint_compression(const Config& config, std::string_view path,
                                         CompressionSettings base) {
  if (const auto endpoint = config.endpoints.find(path); endpoint != config.endpoints.end())
    for (const auto& [key, value] : endpoint->second)
      set_compression(base, key, value, endpoint_key_name(path, key));
  return base;
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
  for (const auto& [key, node] : table) {
    if (key.str() != "endpoints") {
      set_config_value(config, key.str(), from_toml(key.str(), node));
      continue;
    }
    // [endpoints."/ws"] tables: a table per path, compression keys in each.
    const auto* paths = node.as_table();
    if (paths == nullptr)
      throw ConfigError("endpoints", "must be a table of [endpoints.\"/path\"] tables");
    for (const auto& [path, keys] : *paths) {
      const auto* endpoint = keys.as_table();
      if (endpoint == nullptr)
        throw ConfigError(endpoint_key_name(path.str(), {}), "must be a table of keys");
      for (const auto& [name, value] : *endpoint)
        set_endpoint_value(config, path.str(), name.str(),
                           from_toml(endpoint_key_name(path.str(), name.str()), value));
    }
  }
}

void validate_config(const Config& config) {
  if (config.drain_window > config.drain_timeout)
    throw ConfigError("drain_window", "must not exceed drain_timeout (" +
                                          std::to_string(config.drain_timeout) + " s)");
  if (config.pong_timeout > config.ping_interval * 10)
    throw ConfigError("pong_timeout", "must not exceed ten ping intervals");
}

}  // namespace pylon
