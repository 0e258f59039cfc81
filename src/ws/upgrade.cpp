#include "ws/upgrade.hpp"

#include <algorithm>

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

std::optional<UpgradeError> check_request(const http::Request& request,
                                          const UpgradePolicy& policy) noexcept {
  if (request.method != "GET") return UpgradeError::method_not_get;
  // §4.2.1: Upgrade and Connection are token lists, compared case-insensitively, and may appear
  // more than once ("Connection: keep-alive, Upgrade" from browsers).
  if (!request.has_token("Upgrade", "websocket") || !request.has_token("Connection", "upgrade"))
    return UpgradeError::not_websocket;
  if (request.version_minor < 1) return UpgradeError::http10_request;
  const http::Header* version = request.find("Sec-WebSocket-Version");
  if (version == nullptr || version->value != "13" || request.count("Sec-WebSocket-Version") != 1)
    return UpgradeError::bad_version;
  const http::Header* key = request.find("Sec-WebSocket-Key");
  if (key == nullptr || request.count("Sec-WebSocket-Key") != 1 || !is_valid_client_key(key->value))
    return UpgradeError::bad_key;
  // Browsers always send Origin; its absence means a non-browser client, which cross-site
  // WebSocket hijacking (§10.2) cannot use.
  if (const http::Header* origin = request.find("Origin");
      origin != nullptr && !policy.allowed_origins.empty()) {
    const auto& allowed = policy.allowed_origins;
    if (std::find(allowed.begin(), allowed.end(), origin->value) == allowed.end())
      return UpgradeError::origin_not_allowed;
  }
  return std::nullopt;
}

std::optional<std::size_t> select_subprotocol_index(const http::Request& request,
                                                    std::span<const std::string> supported) {
  if (supported.empty() || request.find("Sec-WebSocket-Protocol") == nullptr) return std::nullopt;
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
  if (const std::optional<UpgradeError> error = check_request(request, policy)) return *error;
  UpgradeAcceptance accepted;
  compute_accept_key(request.find("Sec-WebSocket-Key")->value, accepted.accept.data());
  accepted.subprotocol = select_subprotocol_index(request, policy.subprotocols);
  if (policy.deflate && request.find("Sec-WebSocket-Extensions") != nullptr) {
    // RFC 7692 §5: the first acceptable permessage-deflate offer of all the headers, joined.
    accepted.deflate = negotiate_deflate(request.join("Sec-WebSocket-Extensions"), *policy.deflate,
                                         accepted.extensions);
  }
  return accepted;
}

}  // namespace pylon::ws
