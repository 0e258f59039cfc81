// The server's decision on a WebSocket opening handshake (RFC 6455 §4.2.1, §4.2.2): a pure
// function from a parsed HTTP request and the route's policy to either a refusal or an acceptance.
// The server writes the 101 or the error response; nothing here does I/O.
//
// decide_upgrade() makes the checks in the order the server answers them (the first that fails
// is the refusal): method, Upgrade/Connection tokens, HTTP version, Sec-WebSocket-Version,
// Sec-WebSocket-Key, Origin. When they all pass it computes Sec-WebSocket-Accept, picks the
// subprotocol and negotiates permessage-deflate.
//
// UpgradeError also holds the refusals that come from the server's own state, `draining`,
// `connection_limit` and the abuse limits (server/admission.hpp), so that every handshake refusal
// has one row in describe()'s table; decide_upgrade() never returns them: the caller checks them
// after an acceptance, before it answers 101. The abuse limits' rows carry no Retry-After: its
// value is the caller's to compute.
//
// Ownership: the caller owns the request (views into its buffer) and the policy's strings, which
// need to live only during the call. The decision owns everything it holds (the subprotocol is an
// index into policy.subprotocols), so it outlives both. Thread: any (no state).
//
//   const ws::UpgradePolicy policy{.subprotocols = route.subprotocols,
//                                  .allowed_origins = config.allowed_origins,
//                                  .deflate = ws::DeflateServerPolicy{}};
//   const ws::UpgradeDecision decision = ws::decide_upgrade(request, policy);
//   if (const auto* error = std::get_if<ws::UpgradeError>(&decision)) {
//     const ws::UpgradeRefusal refusal = ws::describe(*error);
//     return refuse(refusal.status, refusal.reason, refusal.headers);  // metrics: refusal.name
//   }
//   const auto& accepted = std::get<ws::UpgradeAcceptance>(decision);
//   // 101 with Sec-WebSocket-Accept: accepted.accept_value(), plus Sec-WebSocket-Protocol:
//   // route.subprotocols[*accepted.subprotocol] when set, and Sec-WebSocket-Extensions:
//   // accepted.extensions when not empty (accepted.deflate holds the agreed parameters).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "http/request_parser.hpp"
#include "ws/handshake.hpp"
#include "ws/permessage_deflate.hpp"

namespace pylon::ws {

// One enumerator per reason the server refuses an upgrade, in the order it checks them.
enum class UpgradeError : std::uint8_t {
  method_not_get,      // 405 §4.2.1 item 1: the handshake is a GET
  not_websocket,       // 426 §4.2.1 items 3, 4: no "Upgrade: websocket" or "Connection: upgrade"
  http10_request,      // 400 §4.2.1 item 1: HTTP/1.1 or higher
  bad_version,         // 426 §4.2.1 item 6, §4.4: exactly one Sec-WebSocket-Version, 13
  bad_key,             // 400 §4.2.1 item 5: exactly one Sec-WebSocket-Key, base64 of 16 bytes
  origin_not_allowed,  // 403 §4.2.2 (/origin/), §10.2: Origin not in the configured list
  draining,            // 503 server state, not decided here: the server is shutting down
  connection_limit,    // 503 server state, not decided here: max_connections reached
  // The abuse limits (RFC 6585 §4: 429 for one client's excess; RFC 9110 §15.6.4: 503 while the
  // server as a whole is overloaded), with Retry-After.
  ip_table_full,        // 503 max_tracked_ips reached, all of them busy
  ip_locked_out,        // 429 too many failed authentications from this IP
  ip_connection_limit,  // 429 max_connections_per_ip reached
  ip_handshake_rate,    // 429 handshake_rate_per_ip exceeded
  admission_rate,       // 503 admission_rate exceeded: a reconnect storm is let in at a pace
};

// decide_upgrade() returns only the errors before this one.
inline constexpr UpgradeError kFirstServerStateError = UpgradeError::draining;

inline constexpr std::size_t kUpgradeErrorCount =
    static_cast<std::size_t>(UpgradeError::admission_rate) + 1;

// A row of the refusal table: what the server answers and how it counts the refusal.
struct UpgradeRefusal {
  int status = 0;                         // 400, 403, 405, 426, 429 or 503
  std::string_view reason;                // response body (the server adds '\n') and log text
  std::span<const http::Header> headers;  // extra response headers, e.g. Allow: GET
  std::string_view name;                  // stable short name, for metric labels and logs
};

UpgradeRefusal describe(UpgradeError error) noexcept;

// What the route and the configuration allow.
struct UpgradePolicy {
  std::span<const std::string> subprotocols;     // the route's, any order (the client's wins)
  std::span<const std::string> allowed_origins;  // exact Origin values; empty: any Origin
  std::optional<DeflateServerPolicy> deflate;    // nullopt: permessage-deflate is off
};

struct UpgradeAcceptance {
  std::array<char, kAcceptKeySize> accept{};  // Sec-WebSocket-Accept (§4.2.2 item 5.4)
  // Index into UpgradePolicy::subprotocols of the first protocol of the client's list that the
  // route supports; nullopt: the answer has no Sec-WebSocket-Protocol.
  std::optional<std::size_t> subprotocol;
  // The Sec-WebSocket-Extensions answer and the agreed permessage-deflate parameters: both empty
  // when none was agreed (compression off, no offer, or no acceptable offer).
  std::string extensions;
  std::optional<DeflateParams> deflate;

  std::string_view accept_value() const noexcept { return {accept.data(), accept.size()}; }
};

// Exactly one of the two: the handshake is refused, or accepted with these answers.
using UpgradeDecision = std::variant<UpgradeError, UpgradeAcceptance>;

// Only allocates for the answers (the joined Sec-WebSocket-Protocol and -Extensions values and
// the extensions answer); may throw std::bad_alloc.
UpgradeDecision decide_upgrade(const http::Request& request, const UpgradePolicy& policy);

}  // namespace pylon::ws
