#include "cluster/redis_url.hpp"

#include <charconv>
#include <stdexcept>

namespace pylon::cluster {
namespace {

[[noreturn]] void fail(std::string_view url, std::string_view what) {
  std::string message = "redis_url: ";
  message += what;
  // The URL may carry a password: quote only its scheme so errors are safe to log.
  const auto scheme_end = url.find("://");
  if (scheme_end != std::string_view::npos) {
    message += " (in a ";
    message += url.substr(0, scheme_end);
    message += ":// URL)";
  }
  throw std::invalid_argument(message);
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view url, std::string_view text, std::string_view part) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) fail(url, std::string(part) + ": incomplete %-escape");
    const int high = hex_value(text[i + 1]);
    const int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) fail(url, std::string(part) + ": bad %-escape");
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

template <typename Integer>
Integer parse_number(std::string_view url, std::string_view text, Integer max,
                     std::string_view part) {
  if (text.empty()) fail(url, std::string(part) + " is empty");
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size())
    fail(url, std::string(part) + " '" + std::string(text) + "' is not a number");
  if (value > max) fail(url, std::string(part) + " " + std::string(text) + " is out of range");
  return static_cast<Integer>(value);
}

// "user:password", ":password" or "password" (the last as redis-cli accepts it).
void parse_credentials(std::string_view url, std::string_view userinfo, RedisAddress& address) {
  const auto colon = userinfo.find(':');
  if (colon == std::string_view::npos) {
    address.password = percent_decode(url, userinfo, "password");
  } else {
    address.user = percent_decode(url, userinfo.substr(0, colon), "user");
    address.password = percent_decode(url, userinfo.substr(colon + 1), "password");
  }
  if (address.password.empty() && !address.user.empty()) fail(url, "a user without a password");
}

void parse_tcp(std::string_view url, std::string_view rest, RedisAddress& address) {
  address.kind = RedisAddress::Kind::tcp;
  std::string_view authority = rest;
  std::string_view path;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }
  if (authority.find('?') != std::string_view::npos || path.find('?') != std::string_view::npos)
    fail(url, "query parameters are only supported in unix:// URLs");
  // The last '@' ends the credentials: a password may contain '@' unescaped.
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    parse_credentials(url, authority.substr(0, at), address);
    authority = authority.substr(at + 1);
  }
  std::string_view host = authority;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) fail(url, "'[' of an IPv6 host without ']'");
    const auto after = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!after.empty()) {
      if (after.front() != ':') fail(url, "unexpected characters after the IPv6 host");
      port = after.substr(1);
      if (port.empty()) fail(url, "port is empty");
    }
  } else if (const auto colon = host.find(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
    if (port.empty()) fail(url, "port is empty");
  }
  if (host.empty()) fail(url, "host is missing");
  address.host = std::string(host);
  if (!port.empty()) {
    address.port = parse_number<std::uint16_t>(url, port, 65535, "port");
    if (address.port == 0) fail(url, "port 0 is out of range");
  }
  if (!path.empty()) address.db = parse_number<std::uint32_t>(url, path, 0x7fffffff, "db");
}

void parse_unix(std::string_view url, std::string_view rest, RedisAddress& address) {
  address.kind = RedisAddress::Kind::unix_socket;
  std::string_view query;
  if (const auto question = rest.find('?'); question != std::string_view::npos) {
    query = rest.substr(question + 1);
    rest = rest.substr(0, question);
  }
  // unix:///path: the authority between "//" and the path is empty.
  if (rest.empty() || rest.front() != '/')
    fail(url, "unix socket path must be absolute (unix:///path/to/redis.sock)");
  address.path = percent_decode(url, rest, "path");
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto equals = pair.find('=');
    if (equals == std::string_view::npos)
      fail(url, "query parameter '" + std::string(pair) + "' has no value");
    const std::string_view key = pair.substr(0, equals);
    const std::string_view value = pair.substr(equals + 1);
    if (key == "db") {
      address.db = parse_number<std::uint32_t>(url, value, 0x7fffffff, "db");
    } else if (key == "password") {
      address.password = percent_decode(url, value, "password");
    } else if (key == "user") {
      address.user = percent_decode(url, value, "user");
    } else {
      fail(url, "unknown query parameter '" + std::string(key) + "' (db, password, user)");
    }
  }
  if (address.password.empty() && !address.user.empty()) fail(url, "a user without a password");
}

}  // namespace

std::string RedisAddress::redacted() const {
  std::string out;
  if (kind == Kind::unix_socket) {
    out = "unix://";
    out += path;
    const char* separator = "?";
    auto parameter = [&](std::string_view key, std::string_view value) {
      out += separator;
      out += key;
      out += '=';
      out += value;
      separator = "&";
    };
    if (db != 0) parameter("db", std::to_string(db));
    if (!user.empty()) parameter("user", user);
    if (!password.empty()) parameter("password", "***");
    return out;
  }
  out = "redis://";
  if (!password.empty()) {
    out += user;
    out += ":***@";
  }
  const bool ipv6 = host.find(':') != std::string::npos;
  if (ipv6) out += '[';
  out += host;
  if (ipv6) out += ']';
  out += ':';
  out += std::to_string(port);
  if (db != 0) {
    out += '/';
    out += std::to_string(db);
  }
  return out;
}

RedisAddress parse_redis_url(std::string_view url) {
  RedisAddress address;
  constexpr std::string_view kTcp = "redis://";
  constexpr std::string_view kUnix = "unix://";
  if (url.starts_with(kTcp)) {
    parse_tcp(url, url.substr(kTcp.size()), address);
  } else if (url.starts_with(kUnix)) {
    parse_unix(url, url.substr(kUnix.size()), address);
  } else if (url.starts_with("rediss://")) {
    fail(url, "TLS (rediss://) is not supported; use redis:// or unix://");
  } else if (url.empty()) {
    fail(url, "empty URL");
  } else {
    fail(url, "must start with redis:// or unix://");
  }
  return address;
}

}  // namespace pylon::cluster
