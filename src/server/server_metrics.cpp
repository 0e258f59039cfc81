#include "server/server_metrics.hpp"

#include <string>

namespace pylon::detail {
namespace {

constexpr const char* kHttpFailureNames[kHttpFailureCount] = {"bad_request", "not_found", "timeout",
                                                              "refused_by_route"};

// Close codes become a bounded label set: every registered code exactly, applications' codes by
// range, so a client cannot create series at will.
constexpr std::uint16_t kFirstExactCode = 1000;
constexpr std::uint16_t kLastExactCode = 1015;
constexpr std::size_t kExactCodes = kLastExactCode - kFirstExactCode + 1;
constexpr std::size_t kCodeClasses = kExactCodes + 3;  // + 3xxx, 4xxx, other

std::size_t code_class(std::uint16_t code) {
  if (code >= kFirstExactCode && code <= kLastExactCode) return code - kFirstExactCode;
  if (code >= 3000 && code <= 3999) return kExactCodes;
  if (code >= 4000 && code <= 4999) return kExactCodes + 1;
  return kExactCodes + 2;
}

std::string code_label(std::size_t code_class_index) {
  if (code_class_index < kExactCodes) return std::to_string(kFirstExactCode + code_class_index);
  if (code_class_index == kExactCodes) return "3xxx";
  if (code_class_index == kExactCodes + 1) return "4xxx";
  return "other";
}

const std::vector<double> kLatencyBuckets = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                             0.001,   0.0025,   0.005,   0.01,   0.05};
const std::vector<double> kRttBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5};

Counter tls_handshake_counter(MetricsRegistry& registry, const char* result) {
  return registry.counter("pylon_tls_handshakes_total", "Native TLS handshakes by how they ended.",
                          {{"result", result}});
}

Counter batch_trial_counter(MetricsRegistry& registry, const char* verdict) {
  return registry.counter("pylon_io_batch_trials_total",
                          "Trials of batched io_uring waits, by verdict.", {{"verdict", verdict}});
}

}  // namespace

RouteMetrics::RouteMetrics(MetricsRegistry& registry, const std::string& path)
    : connections(
          registry.gauge("pylon_connections", "Open WebSocket connections.", {{"endpoint", path}})),
      handshakes(registry.counter("pylon_handshakes_total", "Successful WebSocket upgrades.",
                                  {{"endpoint", path}})),
      messages_received{
          registry.counter("pylon_messages_received_total", "Messages received from clients.",
                           {{"endpoint", path}, {"kind", "text"}}),
          registry.counter("pylon_messages_received_total", "Messages received from clients.",
                           {{"endpoint", path}, {"kind", "binary"}})},
      bytes_received{
          registry.counter("pylon_bytes_received_total", "Payload bytes received from clients.",
                           {{"endpoint", path}, {"kind", "text"}}),
          registry.counter("pylon_bytes_received_total", "Payload bytes received from clients.",
                           {{"endpoint", path}, {"kind", "binary"}})},
      messages_sent{registry.counter("pylon_messages_sent_total", "Messages sent to clients.",
                                     {{"endpoint", path}, {"kind", "text"}}),
                    registry.counter("pylon_messages_sent_total", "Messages sent to clients.",
                                     {{"endpoint", path}, {"kind", "binary"}})},
      bytes_sent{registry.counter("pylon_bytes_sent_total", "Payload bytes sent to clients.",
                                  {{"endpoint", path}, {"kind", "text"}}),
                 registry.counter("pylon_bytes_sent_total", "Payload bytes sent to clients.",
                                  {{"endpoint", path}, {"kind", "binary"}})},
      handling(registry.histogram("pylon_message_handling_seconds",
                                  "Time spent in the message handler.", kLatencyBuckets,
                                  {{"endpoint", path}})),
      backpressure_drops(
          registry.counter("pylon_backpressure_drops_total",
                           "Messages not sent because the backlog was past max_backpressure.",
                           {{"endpoint", path}})),
      backpressure_closes(registry.counter("pylon_backpressure_closes_total",
                                           "Connections closed as slow consumers.",
                                           {{"endpoint", path}})) {}

ServerMetrics::ServerMetrics(MetricsRegistry& registry_in)
    : registry(registry_in),
      accepted(registry.counter("pylon_connections_accepted_total", "TCP connections accepted.")),
      ping_rtt(registry.histogram("pylon_ping_rtt_seconds", "Round trip time of server pings.",
                                  kRttBuckets)),
      send_backlog(registry.gauge("pylon_send_backlog_bytes",
                                  "Bytes waiting for the kernel, all connections.")),
      subscriptions(registry.gauge("pylon_subscriptions", "Topic subscriptions on this instance.")),
      compressed_bytes{
          registry.counter("pylon_compressed_bytes_total", "Compressed payload bytes on the wire.",
                           {{"direction", "in"}}),
          registry.counter("pylon_compressed_bytes_total", "Compressed payload bytes on the wire.",
                           {{"direction", "out"}})},
      uncompressed_bytes{
          registry.counter("pylon_uncompressed_bytes_total",
                           "The same messages' size uncompressed.", {{"direction", "in"}}),
          registry.counter("pylon_uncompressed_bytes_total",
                           "The same messages' size uncompressed.", {{"direction", "out"}})},
      compressions(
          registry.counter("pylon_compressions_total", "permessage-deflate compressor runs.")),
      recoveries{registry.counter("pylon_recoveries_total",
                                  "Subscribes that asked to recover missed publications.",
                                  {{"result", "recovered"}}),
                 registry.counter("pylon_recoveries_total",
                                  "Subscribes that asked to recover missed publications.",
                                  {{"result", "not_recovered"}})},
      history_sent(registry.counter("pylon_history_sent_total",
                                    "Publications sent from history to recovering subscribers.")),
      tls_handshakes{
          tls_handshake_counter(registry, "full"), tls_handshake_counter(registry, "resumed"),
          tls_handshake_counter(registry, "failed"), tls_handshake_counter(registry, "timeout"),
          tls_handshake_counter(registry, "refused")},
      tls_handshake_duration(registry.histogram(
          "pylon_tls_handshake_seconds",
          "From accept to the end of a successful TLS handshake (network round trips included).",
          kRttBuckets)),
      tls_connections{registry.gauge("pylon_tls_connections",
                                     "Open TLS connections past the handshake, by who encrypts.",
                                     {{"ktls", "false"}}),
                      registry.gauge("pylon_tls_connections",
                                     "Open TLS connections past the handshake, by who encrypts.",
                                     {{"ktls", "true"}})},
      tls_ticket_key_rotations(
          registry.counter("pylon_tls_ticket_key_rotations_total",
                           "Session ticket key rotations (tls_ticket_key_rotation).")),
      batching_loops(registry.gauge("pylon_io_batching_loops",
                                    "Event loops whose io_uring waits are batched now.")),
      batch_trials{batch_trial_counter(registry, "kept"), batch_trial_counter(registry, "slowed"),
                   batch_trial_counter(registry, "no_gain")} {
  const auto add_handshake_failure = [&](std::string_view reason) {
    handshake_failures.push_back(registry.counter("pylon_handshake_failures_total",
                                                  "Refused upgrades and bad requests.",
                                                  {{"reason", std::string(reason)}}));
  };
  for (std::size_t i = 0; i < ws::kUpgradeErrorCount; ++i)
    add_handshake_failure(ws::describe(static_cast<ws::UpgradeError>(i)).name);
  for (const char* name : kHttpFailureNames) add_handshake_failure(name);
  for (std::size_t i = 1; i < ws::kProtocolErrorCount; ++i)
    protocol_errors.push_back(
        registry.counter("pylon_protocol_errors_total", "RFC 6455 violations by clients.",
                         {{"reason", std::string(ws::name(static_cast<ws::ProtocolError>(i)))}}));
  for (std::size_t code = 0; code < kCodeClasses; ++code)
    for (const char* side : {"client", "server"})
      closes.push_back(registry.counter("pylon_closes_total", "Closed WebSocket connections.",
                                        {{"code", code_label(code)}, {"side", side}}));
}

void ServerMetrics::closed(std::uint16_t code, CloseSide side) const {
  closes[code_class(code) * 2 + static_cast<std::size_t>(side)].add();
}

}  // namespace pylon::detail
