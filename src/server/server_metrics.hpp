// The server's own metric series (docs/metrics.md), registered once at start-up so the hot path
// only touches pre-made handles: an array index and a per-thread add.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pylon/app.hpp"
#include "pylon/metrics.hpp"
#include "ws/error.hpp"
#include "ws/upgrade.hpp"

namespace pylon::detail {

// A failed handshake that is not an upgrade refusal (ws::UpgradeError, whose table names its
// series): a request that does not parse, an upgrade of a path with no route, a client too slow,
// an upgrade the route's own check refused (WebSocketBehavior::upgrade: authentication).
enum class HttpFailure : std::uint8_t { bad_request, not_found, timeout, refused_by_route };
inline constexpr std::size_t kHttpFailureCount = 4;

enum class CloseSide : std::uint8_t { client, server };

// How a TLS handshake of native TLS ended: a full one, a resumed session (a ticket), a failure
// (garbage, no common cipher, a client that hung up), handshake_timeout, or refused because
// tls_max_handshakes were already in progress on the worker.
enum class TlsHandshake : std::uint8_t { full, resumed, failed, timeout, refused };
inline constexpr std::size_t kTlsHandshakeCount = 5;

// Series of one WebSocket route (label endpoint="<path>").
struct RouteMetrics {
  RouteMetrics(MetricsRegistry& registry, const std::string& path);
  Gauge connections;
  Counter handshakes;
  std::array<Counter, 2> messages_received, bytes_received, messages_sent,
      bytes_sent;  // [MessageKind]
  Histogram handling;
  Counter backpressure_drops, backpressure_closes;
};

struct ServerMetrics {
  explicit ServerMetrics(MetricsRegistry& registry);

  void handshake_failed(ws::UpgradeError reason) const {
    handshake_failures[static_cast<std::size_t>(reason)].add();
  }
  void handshake_failed(HttpFailure reason) const {
    handshake_failures[ws::kUpgradeErrorCount + static_cast<std::size_t>(reason)].add();
  }
  void protocol_error(ws::ProtocolError error) const {
    protocol_errors[static_cast<std::size_t>(error) - 1].add();  // `none` has no series
  }
  void closed(std::uint16_t code, CloseSide side) const;

  MetricsRegistry& registry;
  Counter accepted;
  std::vector<Counter> handshake_failures;  // [UpgradeError], then [HttpFailure]
  std::vector<Counter> protocol_errors;     // [ProtocolError]
  std::vector<Counter> closes;              // [close code class][side]
  Histogram ping_rtt;
  Gauge send_backlog;
  Gauge subscriptions;
  // permessage-deflate: payload bytes of compressed messages on the wire, and their size
  // uncompressed ([0] in, [1] out); compressor runs (once per broadcast per window size).
  std::array<Counter, 2> compressed_bytes, uncompressed_bytes;
  Counter compressions;
  // History (docs/protocol.md "History and recovery"): subscribes that asked to recover, [0]
  // recovered, [1] not; publications sent from history to them.
  std::array<Counter, 2> recoveries;
  Counter history_sent;
  // Native TLS: handshakes by how they ended ([TlsHandshake]), their duration, and connections
  // past the handshake, [0] encrypted by OpenSSL, [1] by the kernel (kTLS).
  std::array<Counter, kTlsHandshakeCount> tls_handshakes;
  Histogram tls_handshake_duration;
  std::array<Gauge, 2> tls_connections;
  // Registered with or without TLS, like every series without labels (docs/metrics.md).
  Counter tls_ticket_key_rotations;
  // Batched io_uring waits (io_batch_wait_us): loops batching now (or on trial), and the trials
  // that ended, [net::WaitBatching::Verdict]. Reported by each loop once a second.
  Gauge batching_loops;
  std::array<Counter, 3> batch_trials;
  void tls_handshake(TlsHandshake outcome) const {
    tls_handshakes[static_cast<std::size_t>(outcome)].add();
  }
};

}  // namespace pylon::detail
