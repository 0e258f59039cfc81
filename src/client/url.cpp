#include "client/url.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <stdexcept>
#include <string>

#include "http/response_writer.hpp"

namespace pylon::client {
namespace {

[[noreturn]] void reject(std::string_view reason) {
  throw std::invalid_argument("url: " + std::string(reason));
}

bool is_numeric_address(const std::string& host, int family) {
  in6_addr scratch{};
  return inet_pton(family, host.c_str(), &scratch) == 1;
}

// RFC 3986 §3.3/§3.4 characters allowed in a path and query, with '%' for escapes. Anything
// else (space, controls, quotes, non-ASCII) would have to be percent-encoded by the caller.
bool is_target_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '@':
    case '/':
    case '?':
    case '%':
      return true;
    default:
      return false;
  }
}

}  // namespace

Url parse_url(std::string_view text) {
  Url url;
  const auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) reject("expected ws://HOST[:PORT][/PATH][?QUERY]");
  const std::string_view scheme = text.substr(0, scheme_end);
  if (http::iequals(scheme, "wss"))
    url.secure = true;
  else if (!http::iequals(scheme, "ws"))
    reject("scheme must be ws:// or wss://, not " + std::string(scheme) + "://");
  std::string_view rest = text.substr(scheme_end + 3);

  // RFC 6455 §3: "Fragment identifiers are meaningless in the context of WebSocket URIs and
  // MUST NOT be used on these URIs."
  if (rest.find('#') != std::string_view::npos)
    reject("a fragment (#) is not allowed in a WebSocket URL");
  const auto authority_end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, authority_end);
  const std::string_view target =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos)
    reject("user info (user@host) is not supported");
  if (authority.empty()) reject("missing host");

  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) reject("missing ']' after an IPv6 address");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') reject("unexpected characters after ']'");
      port_text = after.substr(1);
      has_port = true;
    }
    url.host = std::string(host);
    if (!is_numeric_address(url.host, AF_INET6)) reject("not an IPv6 address: [" + url.host + "]");
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) reject("missing host");
    if (http::iequals(host, "localhost")) {
      url.host = "127.0.0.1";
    } else {
      url.host = std::string(host);
      if (!is_numeric_address(url.host, AF_INET)) {
        reject("host must be a numeric IPv4 address, [IPv6] or localhost (no DNS): " + url.host);
      }
    }
  }

  url.port = url.secure ? 443 : 80;
  if (has_port) {
    unsigned port = 0;
    const auto [end, error] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || error != std::errc{} || end != port_text.data() + port_text.size() ||
        port == 0 || port > 65535) {
      reject("port must be a number from 1 to 65535, not '" + std::string(port_text) + "'");
    }
    url.port = static_cast<std::uint16_t>(port);
  }

  for (const char c : target) {
    if (!is_target_char(c))
      reject("character not allowed in the path or query (percent-encode it)");
  }
  // RFC 6455 §3: an empty path is "/", also in front of a query.
  if (target.empty() || target.front() == '?') url.target.push_back('/');
  url.target.append(target);

  url.name = std::string(host);
  url.host_header = std::string(authority);
  return url;
}

}  // namespace pylon::client
