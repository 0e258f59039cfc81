// Errors of a bench run, by kind (docs/bench.md "errors"): what the client reported, sorted into
// refused, timeout, TLS failures (wss://), handshake status, closed by the server with a code,
// protocol violations of the server, and the bench's own checks (dropped sends, mismatched echoes,
// server error replies).
//
// One ErrorCounts per worker thread, touched only there; the coordinator adds them up with
// merge(). Errors are rare: the maps allocate, the message path does not come here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace pylon::bench {

struct ErrorCounts {
  std::uint64_t refused = 0;               // TCP connect refused (nothing listening, backlog full)
  std::uint64_t timeout = 0;               // connect or handshake timed out
  std::uint64_t protocol = 0;              // the server broke RFC 6455; we failed the connection
  std::uint64_t dropped_sends = 0;         // a send dropped by the client's backpressure bound
  std::uint64_t mismatched = 0;            // an echo that is not the message sent (or unexpected)
  std::map<int, std::uint64_t> handshake;  // HTTP status of a refused upgrade -> count
  // wss://: TLS failures by reason ("certificate verify failed: hostname mismatch (...)") -> count
  std::map<std::string, std::uint64_t> tls;
  std::map<int, std::uint64_t> closed;  // close code sent by the server (1006: dropped) -> count
  std::map<std::string, std::uint64_t> server_errors;  // pub/sub error replies by "code"
  std::map<std::string, std::uint64_t> other;          // anything else, by message

  // Sorts a ClientHandlers::on_error message ("connect: Connection refused",
  // "handshake: HTTP 503 Service Unavailable", "tls: certificate verify failed: ...",
  // "protocol error: ...").
  void count_client_error(std::string_view message);
  void count_closed(std::uint16_t code) { ++closed[code]; }
  void merge(const ErrorCounts& other);
  std::uint64_t total() const noexcept;
};

}  // namespace pylon::bench
