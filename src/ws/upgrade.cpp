#include "ws/upgrade.hpp"

#include <algorithm>

#include "http/response_writer.hpp"

namespace pylon::ws {

namespace {

constexpr http::Header kAllowGet[] = {{"Allow", "GET"}};
// RFC 6455 §4.2.2 item 2 and §4.4: a 426 says which protocol and which version we speak.
constexpr http::Header kUpgradeRequired[] = {{"Upgrade", "websocket"},
                                             {"Sec-WebSocket-Version", "13"}};

// Indexed by UpgradeError; the order must follow the enum (checked below). The reasons are the
// response bodies clients and the conformance tests see, so they only change with those. The
// names are the `reason` labels of pylon_handshake_failures_total.
constexpr UpgradeRefusal kRefusalTable[] = {
    {405, "a WebSocket handshake is a GET request", kAllowGet, "method"},
    {426, "this endpoint speaks WebSocket: Upgrade: websocket required", kUpgradeRequired,
     "not_websocket"},
    {400, "a WebSocket handshake needs HTTP/1.1", {}, "http10_request"},
    {426, "unsupported Sec-WebSocket-Version: only 13", kUpgradeRequired, "bad_version"},
    {400, "missing or invalid Sec-WebSocket-Key", {}, "bad_key"},
    {403, "origin not allowed", {}, "origin"},
    {503, "server is shutting down", {}, "draining"},
    {503, "connection limit reached", {}, "limit"},
    {503, "too many client addresses", {}, "ip_table_full"},
    {429, "too many failed authentications from this address", {}, "ip_locked_out"},
    {429, "too many connections from this address", {}, "ip_connections"},
    {429, "too many handshakes from this address", {}, "ip_handshake_rate"},
    {503, "new connections are admitted at a limited pace", {}, "admission_rate"},
};
static_assert(std::size(kRefusalTable) == kUpgradeErrorCount);
static_assert(std::ranges::all_of(kRefusalTable, [](const UpgradeRefusal& row) {
  return row.status >= 400 && row.status <= 599 && !row.reason.empty() && !row.name.empty();
}));

// The headers the opening handshake reads (§4.2.1), found in one pass over the request's: each
// name has a length of its own, so a header costs a switch and at most one comparison.
struct HandshakeHeaders {
  bool upgrade_websocket = false;   // an Upgrade header lists "websocket"
  bool connection_upgrade = false;  // a Connection header lists "upgrade"
  const http::Header* version = nullptr;
  const http::Header* key = nullptr;
  const http::Header* origin = nullptr;
  std::size_t versions = 0, keys = 0;
  bool protocol = false, extensions = false;
};

HandshakeHeaders scan_headers(const http::Request& request) noexcept {
  constexpr std::string_view kUpgrade = "Upgrade", kConnection = "Connection",
                             kVersion = "Sec-WebSocket-Version", kKey = "Sec-WebSocket-Key",
                             kOrigin = "Origin", kProtocol = "Sec-WebSocket-Protocol",
                             kExtensions = "Sec-WebSocket-Extensions";
  HandshakeHeaders found;
  for (std::size_t i = 0; i < request.header_count; ++i) {
    const http::Header& header = request.headers[i];
    switch (header.name.size()) {
      case kUpgrade.size():
        // §4.2.1: Upgrade and Connection are token lists, compared case-insensitively, and may
        // appear more than once ("Connection: keep-alive, Upgrade" from browsers).
        if (http::iequals(header.name, kUpgrade))
          found.upgrade_websocket |= http::detail::list_has_token(header.value, "websocket");
        break;
      case kConnection.size():
        if (http::iequals(header.name, kConnection))
          found.connection_upgrade |= http::detail::list_has_token(header.value, "upgrade");
        break;
      case kVersion.size():
        if (http::iequals(header.name, kVersion) && found.versions++ == 0) found.version = &header;
        break;
      case kKey.size():
        if (http::iequals(header.name, kKey) && found.keys++ == 0) found.key = &header;
        break;
      case kOrigin.size():
        if (found.origin == nullptr && http::iequals(header.name, kOrigin)) found.origin = &header;
        break;
      case kProtocol.size():
        found.protocol = found.protocol || http::iequals(header.name, kProtocol);
        break;
      case kExtensions.size():
        found.extensions = found.extensions || http::iequals(header.name, kExtensions);
        break;
      default:
        break;
    }
  }
  return found;
}

std::optional<UpgradeError> check_request(const http::Request& request,
                                          const HandshakeHeaders& found,
                                          const UpgradePolicy& policy) noexcept {
  if (request.method != "GET") return UpgradeError::method_not_get;
  if (!found.upgrade_websocket || !found.connection_upgrade) return UpgradeError::not_websocket;
  if (request.version_minor < 1) return UpgradeError::http10_request;
  if (found.version == nullptr || found.version->value != "13" || found.versions != 1)
    return UpgradeError::bad_version;
  if (found.key == nullptr || found.keys != 1 || !is_valid_client_key(found.key->value))
    return UpgradeError::bad_key;
  // Browsers always send Origin; its absence means a non-browser client, which cross-site
  // WebSocket hijacking (§10.2) cannot use.
  if (found.origin != nullptr && !policy.allowed_origins.empty()) {
    const auto& allowed = policy.allowed_origins;
    if (std::find(allowed.begin(), allowed.end(), found.origin->value) == allowed.end())
      return UpgradeError::origin_not_allowed;
  }
  return std::nullopt;
}

std::optional<std::size_t> select_subprotocol_index(const http::Request& request,
                                                    std::span<const std::string> supported) {
  if (supported.empty()) return std::nullopt;
  // §11.3.4: repeated Sec-WebSocket-Protocol headers are one list, in the client's order.
  const std::string offered = request.join("Sec-WebSocket-Protocol");
  const std::string_view chosen = select_subprotocol(offered, supported);
  if (chosen.empty()) return std::nullopt;
  return static_cast<std::size_t>(std::find(supported.begin(), supported.end(), chosen) -
                                  supported.begin());
}

}  // namespace

UpgradeRefusal describe(UpgradeError error) noexcept {
  const auto index = static_cast<std::size_t>(error);
  return index < kUpgradeErrorCount ? kRefusalTable[index]
                                    : UpgradeRefusal{500, "unknown upgrade error", {}, "unknown"};
}

UpgradeDecision decide_upgrade(const http::Request& request, const UpgradePolicy& policy) {
  const HandshakeHeaders found = scan_headers(request);
  if (const std::optional<UpgradeError> error = check_request(request, found, policy))
    return *error;
  UpgradeAcceptance accepted;
  compute_accept_key(found.key->value, accepted.accept.data());
  if (found.protocol) accepted.subprotocol = select_subprotocol_index(request, policy.subprotocols);
  if (policy.deflate && found.extensions) {
    // RFC 7692 §5: the first acceptable permessage-deflate offer of all the headers, joined.
    accepted.deflate = negotiate_deflate(request.join("Sec-WebSocket-Extensions"), *policy.deflate,
                                         accepted.extensions);
  }
  return accepted;
}

}  // namespace pylon::ws
