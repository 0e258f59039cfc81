// Counters a worker thread writes and the coordinator reads while the run goes on (progress
// line, timeline, "are all echoes back yet?"). Single writer: an increment is a relaxed load and
// store (a plain add on x86), never a locked read-modify-write on the message path.
#pragma once

#include <atomic>
#include <cstdint>

namespace pylon::bench {

class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// "Measured" counts only messages whose (intended) send time lies in the measured window, so
// that sent == received + lost holds once the run has drained; "_all" counts everything, by the
// time it happened, for the timeline.
struct alignas(64) WorkerCounters {
  Counter opened;      // handshakes completed
  Counter failed;      // connection attempts that never opened
  Counter ended;       // opened connections that ended (for any reason, ours included)
  Counter resolved;    // connections ready or failed (a fanout subscriber is ready once acked)
  Counter subscribed;  // fanout: subscriptions acknowledged
  Counter errors;      // every error counted, for the progress line
  Counter sent_all;
  Counter received_all;
  Counter sent;      // measured
  Counter received;  // measured: echoes matched, or fanout deliveries
  Counter lost;      // measured messages in flight on a connection that ended
  Counter bytes_sent;
  Counter bytes_received;
  Counter published;  // fanout, measured
  Counter completed;  // fanout, measured: messages every expected subscriber has received
  // fanout on a topic with history, every message of the run (measured or not), judged by offset:
  Counter with_offsets;  // subscribers whose ack gave a position
  Counter offset_lost;   // offsets a subscriber never received (gaps, and the tail it missed)
  Counter duplicated;    // deliveries at or below an offset the subscriber already had
};

}  // namespace pylon::bench
