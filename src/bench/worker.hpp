// One client thread of a bench run: a ClientLoop, the connections assigned to it, and their
// histograms and counters. The scenarios (echo, rate, fanout, connect) derive from Worker and
// add what their connections do with messages; opening, error sorting and closing are here.
//
// Threads: the coordinator builds a Worker, then start() runs its loop on a new thread. From then
// on only the loop thread touches the connections and histograms; the coordinator reads
// `counters` at any time, talks to the loop through the posting calls below, and reads the
// totals (histograms, errors) after join().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/counters.hpp"
#include "bench/errors.hpp"
#include "bench/fanout_ledger.hpp"
#include "bench/histogram.hpp"
#include "bench/options.hpp"
#include "pylon/client.hpp"

namespace pylon::bench {

// The moments of the message phase (CLOCK_MONOTONIC ns, ClientTimer::monotonic_ns()).
struct RunTimes {
  std::uint64_t start_ns = 0;          // sending begins (warmup)
  std::uint64_t measure_start_ns = 0;  // messages sent from here on are measured
  std::uint64_t measure_end_ns = 0;    // no new messages from here on
};

// What every worker shares, read-only once the threads run (except the atomics).
struct SharedPlan {
  explicit SharedPlan(const Options& run_options) : options(run_options) {}
  const Options& options;
  // One profile per (URL, source address): connection k uses urls[k % U] and
  // source_addresses[(k / U) % S], so that both lists are spread evenly.
  std::vector<std::shared_ptr<const ClientProfile>> profiles;
  std::uint64_t connect_start_ns = 0;                  // the ramp's time zero
  std::unique_ptr<FanoutLedger> ledger;                // fanout only
  std::atomic<std::uint64_t> next_sequence{0};         // fanout: message numbers across publishers
  std::atomic<std::uint32_t> expected_subscribers{0};  // fanout: acked when publishing began
  std::atomic<std::uint64_t> top_offset{0};  // fanout: the highest offset any subscriber received

  const std::shared_ptr<const ClientProfile>& profile_for(std::size_t connection) const;
};

// Interval histograms gathered for one timeline sample, under the collector's mutex.
struct IntervalSnapshot {
  std::mutex mutex;
  LatencyHistogram latency;
  LatencyHistogram handshake;
  std::size_t pending = 0;  // workers that have not answered yet
  std::condition_variable done;
};
// Paces an open-loop stream of sends over some of a worker's connections: send j is due at
// first_ns + j * interval_ns, so each connection has its own fixed schedule (one every
// interval * connections). A late send is sent late and keeps its intended time, which the
// latency is measured from: a stall of the server shows in the latency instead of slowing the
// schedule down (no coordinated omission).
class Pacer {
 public:
  void start(std::uint64_t first_ns, double interval_ns, std::uint64_t end_ns) noexcept {
    first_ns_ = first_ns;
    interval_ns_ = interval_ns;
    end_ns_ = end_ns;
    next_ = 0;
  }
  std::uint64_t due_ns() const noexcept {
    return first_ns_ + static_cast<std::uint64_t>(static_cast<double>(next_) * interval_ns_);
  }
  bool finished() const noexcept { return due_ns() >= end_ns_; }
  // The number of the next send, then advances.
  std::uint64_t take() noexcept { return next_++; }

 private:
  std::uint64_t first_ns_ = 0;
  double interval_ns_ = 0;
  std::uint64_t end_ns_ = 0;
  std::uint64_t next_ = 0;
};

class Worker {
 public:
  Worker(SharedPlan& plan, unsigned index, unsigned worker_count);
  virtual ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();  // coordinator: run the loop on a new thread; connecting begins at once
  void join();
  void stop_loop() noexcept;  // any thread: stop the loop now (after finish() took too long)
  bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }  // any thread

  // Coordinator -> loop thread.
  void post_begin(RunTimes times);                             // start the message phase
  void post_snapshot(std::shared_ptr<IntervalSnapshot> into);  // merge + reset interval data
  void post_finish();  // close every connection; the loop stops once they are gone

  WorkerCounters counters;
  // Totals of measured messages, complete after join().
  LatencyHistogram latency;        // echo round trip / rate from intended send / fanout delivery
  LatencyHistogram last_delivery;  // fanout: per message, until the last subscriber had it
  LatencyHistogram handshake;      // TCP connect + upgrade, every connection
  ErrorCounts errors;

  std::size_t connection_count() const noexcept { return slots_.size(); }

 protected:
  enum class Role : std::uint8_t { client, subscriber, publisher };
  enum class SlotState : std::uint8_t { idle, connecting, open, done };

  // One connection of this worker. Its address is the client's user_data.
  struct Slot {
    Worker* worker = nullptr;
    WebSocketClient* client = nullptr;
    std::size_t index = 0;  // global connection number
    std::uint64_t connect_ns = 0;
    SlotState state = SlotState::idle;
    Role role = Role::client;
    bool closing_by_us = false;
    bool failed_by_us = false;  // we failed it (protocol error): its close is not the server's
    bool acked = false;         // fanout subscriber
    bool has_offset = false;    // fanout subscriber of a topic with history: `offset` is known
    std::uint64_t offset = 0;   // the last offset it received (from its ack, then deliveries)
    // Send times (or intended send times) of messages in flight, oldest first: a ring that
    // doubles when full, so it allocates only while the backlog grows, never per message.
    std::vector<std::uint64_t> in_flight;
    std::size_t in_flight_head = 0;
    std::size_t in_flight_size = 0;
    std::uint64_t next_sequence = 0;      // of the next message sent
    std::uint64_t expected_sequence = 0;  // of the next echo
  };

  // Scenario hooks (loop thread).
  virtual void on_open(Slot& slot) {}
  virtual void on_message(Slot& slot, std::string_view message, MessageKind kind,
                          std::uint64_t now_ns) {}
  virtual void on_begin() {}   // the message phase starts: times_ is set
  virtual void on_finish() {}  // the run has drained; connections are about to be closed

  bool measuring() const noexcept { return times_.start_ns != 0; }
  bool is_measured(std::uint64_t send_ns) const noexcept {
    return send_ns >= times_.measure_start_ns && send_ns < times_.measure_end_ns;
  }
  // Starts `pacer` on this worker's share of options_.rate: `local` of the `total` senders are
  // here; each worker's schedule is phased by its index so the workers do not send in step.
  void start_pacer(Pacer& pacer, std::size_t local, std::size_t total) noexcept;
  // Marks the slot ready (counted in `resolved`); fanout subscribers call it on their ack.
  void resolve(Slot& slot);
  void count_server_error(std::string_view code);
  void record_latency(std::uint64_t latency_ns, bool measured) noexcept;

  // Echo and rate messages: `size` bytes whose first 16 carry the sequence number in hex, so the
  // echo can be matched to what was sent. Returns false when the send was dropped.
  bool send_sequenced(Slot& slot, std::uint64_t timestamp_ns);
  // Pops the matching timestamp; false (counted as mismatched) when the echo is not the next
  // message this connection sent.
  bool match_echo(Slot& slot, std::string_view message, MessageKind kind,
                  std::uint64_t& timestamp_ns);

  SharedPlan& plan_;
  const Options& options_;
  unsigned index_;
  unsigned worker_count_;
  RunTimes times_;
  std::vector<Slot> slots_;  // sized once: addresses stay valid
  std::string payload_;      // variants_ messages end to end; a send stamps its sequence into one
  std::size_t variants_ = 1;
  ClientLoop loop_;  // declared before the timers, which must go first
  ClientTimer ramp_timer_;
  ClientTimer close_timer_;

 private:
  static Slot& slot_of(WebSocketClient& client);
  static void handle_open(WebSocketClient& client);
  static void handle_message(WebSocketClient& client, std::string_view message, MessageKind kind);
  static void handle_close(WebSocketClient& client, std::uint16_t code, std::string_view reason);
  static void handle_error(WebSocketClient& client, std::string_view error);

  void begin_connecting();
  void open_next();  // opens connections that are due (ramp) or fit (no ramp)
  void open(Slot& slot);
  void connection_settled();  // one attempt opened or failed: room for the next (no ramp)
  void slot_ended(Slot& slot);
  void finish();
  void check_closed();

  std::size_t next_to_open_ = 0;
  std::size_t connecting_ = 0;
  bool finishing_ = false;
  LatencyHistogram interval_latency_;
  LatencyHistogram interval_handshake_;
  std::atomic<bool> stopped_{false};
  std::thread thread_;

 public:
  // The handlers every profile of a run uses: they find the Slot through user_data().
  static ClientHandlers handlers();
};

// The worker of `options.scenario` (echo_scenario.cpp, rate_scenario.cpp ...).
std::unique_ptr<Worker> make_worker(SharedPlan& plan, unsigned index, unsigned worker_count);

}  // namespace pylon::bench
