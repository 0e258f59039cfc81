// WebSocket URLs (RFC 6455 §3): ws://HOST[:PORT][/PATH][?QUERY] and wss://. Hosts are numeric IPv4,
// bracketed IPv6 or "localhost": the client does no DNS. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pylon::client {

struct Url {
  bool secure = false;      // wss://
  std::string host;         // numeric address to connect to, IPv6 without brackets
  std::string name;         // the host as the URL names it ("localhost", "::1"): TLS checks this
  std::uint16_t port = 0;   // 80 / 443 when the URL names none
  std::string host_header;  // Host as the URL wrote it: "localhost:9001", "[::1]:9001", "10.0.0.1"
  std::string target;       // request target: path and query, "/" when the URL has no path
};

// Throws std::invalid_argument with a one-line reason starting with "url: ".
Url parse_url(std::string_view text);

}  // namespace pylon::client
