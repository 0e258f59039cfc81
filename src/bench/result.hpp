// Everything a finished bench run reports: the summary, the JSON and the HTML report are three
// views of one BenchResult (docs/bench.md). Built by the coordinator after the workers joined.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/errors.hpp"
#include "bench/histogram.hpp"
#include "bench/options.hpp"

namespace pylon::bench {

// One point of the timeline: what happened during the second (or less, for the last one) that
// ended at `t` seconds after the run began.
struct Sample {
  double t = 0;
  std::string phase;  // "connect", "warmup", "measure", "drain"
  std::uint64_t open = 0;
  double sent_per_second = 0;
  double received_per_second = 0;
  std::uint64_t errors = 0;        // in this interval
  std::uint64_t errors_total = 0;  // since the run began
  // Latency of the messages received in this interval (fanout: deliveries), microseconds.
  double p50_us = 0, p90_us = 0, p99_us = 0, max_us = 0;
  std::uint64_t rss_bytes = 0;  // the --pid process; 0 without
};

struct ServerStats {
  std::vector<int> pids;
  std::uint64_t rss_before = 0;  // before the first connection
  std::uint64_t rss_after = 0;   // at the end of the measured window (connect: of the hold)
  std::uint64_t rss_max = 0;
  double cpu_seconds = 0;       // utime + stime over the measured window
  double cpu_user_seconds = 0;  // utime alone over the same window
};

struct BenchResult {
  const Options* options = nullptr;
  double measured_seconds = 0;  // the measured window (connect: the hold)
  double connect_seconds = 0;   // from the first connect to the last connection settled

  std::uint64_t connections_target = 0;
  std::uint64_t opened = 0;
  std::uint64_t failed = 0;
  std::uint64_t peak_open = 0;
  std::uint64_t open_at_end = 0;

  std::uint64_t sent = 0;      // measured (fanout: published)
  std::uint64_t received = 0;  // measured (fanout: deliveries)
  std::uint64_t lost = 0;      // measured, in flight on connections that ended
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;

  // fanout
  std::uint64_t subscribed = 0;
  std::uint64_t expected_deliveries = 0;  // published * subscribers acked
  std::uint64_t completed = 0;            // messages every subscriber received
  // fanout on a topic with history (docs/bench.md "Loss and duplicates"), over the whole run
  std::uint64_t with_offsets = 0;  // subscribers whose ack gave a position
  std::uint64_t offset_lost = 0;
  std::uint64_t duplicated = 0;

  LatencyHistogram latency;
  LatencyHistogram last_delivery;
  LatencyHistogram handshake;
  ErrorCounts errors;
  std::uint64_t operations = 0;  // connection attempts + measured messages sent
  double error_rate = 0;         // errors.total() / operations
  bool passed = true;            // error_rate <= --max-error-rate

  std::optional<ServerStats> server;
  std::vector<Sample> timeline;

  double throughput() const noexcept {
    return measured_seconds > 0 ? static_cast<double>(received) / measured_seconds : 0;
  }
  double connection_rate() const noexcept {
    return connect_seconds > 0 ? static_cast<double>(opened) / connect_seconds : 0;
  }
};

}  // namespace pylon::bench
