#include "bench/run.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <thread>

#include "bench/process_sampler.hpp"
#include "bench/progress.hpp"
#include "bench/report_writers.hpp"
#include "bench/result.hpp"
#include "bench/worker.hpp"

namespace pylon::bench {

namespace {

constexpr std::uint64_t kSecondNs = 1'000'000'000;
constexpr std::uint64_t kPollNs = 10'000'000;
// After the measured window: how long to wait for messages still in flight.
constexpr std::uint64_t kDrainNs = 5 * kSecondNs;
// Beyond the ramp itself: the client's connect and handshake timeouts and some slack.
constexpr std::uint64_t kConnectSlackNs = 25 * kSecondNs;
constexpr std::uint64_t kFinishNs = 5 * kSecondNs;
// Sending begins a little after the coordinator posts the start, so that every worker has the
// times before the first message can reach any of them.
constexpr std::uint64_t kStartDelayNs = 5'000'000;

std::uint64_t now_ns() {
  return ClientTimer::monotonic_ns();
}

void sleep_until_ns(std::uint64_t deadline_ns) {
  // steady_clock is CLOCK_MONOTONIC, the clock of ClientTimer::monotonic_ns().
  std::this_thread::sleep_until(
      std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline_ns)));
}

double to_us(std::uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

class Coordinator {
 public:
  explicit Coordinator(Options& options) : options_(options), plan_(options) {
    result_.options = &options_;
    result_.connections_target = total_connections(options_);
  }

  int run() {
    if (const int code = build_profiles(); code != kExitOk) return code;
    if (!options_.pids.empty()) {
      const auto before = sample_processes(options_.pids);
      if (!before) {
        std::fprintf(
            stderr, "pylon bench: --pid: cannot read /proc/PID/status and stat of every process\n");
        return kExitUsage;
      }
      result_.server = ServerStats{
          .pids = options_.pids, .rss_before = before->rss_bytes, .rss_max = before->rss_bytes};
    }
    if (options_.scenario == Scenario::fanout) {
      // Room for 30 s of messages in flight.
      const double capacity = std::min(options_.rate * 30.0, double(1 << 22));
      plan_.ledger = std::make_unique<FanoutLedger>(static_cast<std::size_t>(capacity));
    }
    for (unsigned i = 0; i < options_.threads; ++i)
      workers_.push_back(make_worker(plan_, i, options_.threads));

    plan_.connect_start_ns = run_start_ns_ = last_sample_ns_ = now_ns();
    next_sample_ns_ = run_start_ns_ + kSecondNs;
    for (auto& worker : workers_) worker->start();

    connect_phase();
    if (options_.scenario == Scenario::connect)
      hold_phase();
    else if (open_now() > 0)
      message_phases();
    if (now_ns() - last_sample_ns_ > kPollNs) take_sample(phase_);
    progress_.finish();
    result_.open_at_end = open_now();
    finish_workers();
    collect();

    print_summary(result_, stdout);
    std::fflush(stdout);
    if (!write_file(options_.json_path, [&] { return to_json(result_); })) return kExitUsage;
    if (!write_file(options_.report_path, [&] { return to_html(result_); })) return kExitUsage;
    return result_.passed ? kExitOk : kExitTooManyErrors;
  }

 private:
  int build_profiles() {
    std::vector<std::string> sources = options_.source_addresses;
    if (sources.empty()) sources.emplace_back();
    for (const std::string& url : options_.urls) {
      for (const std::string& source : sources) {
        ClientOptions client_options;
        client_options.headers = options_.headers;
        client_options.source_address = source;
        client_options.compression.enabled = options_.compression;
        client_options.tls.ca_file = options_.ca_file;
        client_options.tls.verify = !options_.insecure;
        client_options.max_message_size = std::max<std::size_t>(16u << 20, options_.size * 2);
        // Room for a full window of messages per connection before sends count as dropped.
        client_options.max_backpressure =
            std::max<std::size_t>(1u << 20, options_.size * options_.in_flight * 2);
        try {
          plan_.profiles.push_back(
              make_client_profile(url, Worker::handlers(), std::move(client_options)));
        } catch (const std::invalid_argument& error) {
          std::fprintf(stderr, "pylon bench: %s: %s\n", url.c_str(), error.what());
          return kExitUsage;
        }
      }
    }
    return kExitOk;
  }

  std::uint64_t total(Counter WorkerCounters::*field) const {
    std::uint64_t sum = 0;
    for (const auto& worker : workers_) sum += (worker->counters.*field).get();
    return sum;
  }
  std::uint64_t open_now() const {
    return total(&WorkerCounters::opened) - total(&WorkerCounters::ended);
  }

  // Waits until `deadline_ns` or until `done` says so, sampling the timeline every second.
  void run_until(std::uint64_t deadline_ns, const char* phase, const std::function<bool()>& done) {
    phase_ = phase;
    while (true) {
      const std::uint64_t now = now_ns();
      if (now >= next_sample_ns_) {
        take_sample(phase);
        next_sample_ns_ += kSecondNs;
        continue;
      }
      result_.peak_open = std::max(result_.peak_open, open_now());
      if (now >= deadline_ns || (done && done())) return;
      sleep_until_ns(std::min({deadline_ns, next_sample_ns_, now + kPollNs}));
    }
  }

  void connect_phase() {
    const std::uint64_t target = result_.connections_target;
    std::uint64_t deadline = run_start_ns_ + kConnectSlackNs;
    if (options_.ramp_rate > 0)
      deadline +=
          static_cast<std::uint64_t>(static_cast<double>(target) / options_.ramp_rate * 1e9);
    run_until(deadline, "connect", [&] { return total(&WorkerCounters::resolved) >= target; });
    result_.connect_seconds = static_cast<double>(now_ns() - run_start_ns_) / 1e9;
  }

  void hold_phase() {
    const std::uint64_t start = now_ns();
    const auto cpu_before = sample_server();
    run_until(start + static_cast<std::uint64_t>(options_.duration * 1e9), "hold",
              [&] { return open_now() == 0; });
    result_.measured_seconds = static_cast<double>(now_ns() - start) / 1e9;
    server_window(cpu_before);
  }

  void message_phases() {
    RunTimes times;
    times.start_ns = now_ns() + kStartDelayNs;
    times.measure_start_ns = times.start_ns + static_cast<std::uint64_t>(options_.warmup * 1e9);
    times.measure_end_ns =
        times.measure_start_ns + static_cast<std::uint64_t>(options_.duration * 1e9);
    plan_.expected_subscribers.store(
        static_cast<std::uint32_t>(total(&WorkerCounters::subscribed)));
    for (auto& worker : workers_) worker->post_begin(times);

    const auto all_gone = [&] { return open_now() == 0; };
    run_until(times.measure_start_ns, "warmup", all_gone);
    const auto cpu_before = sample_server();
    run_until(times.measure_end_ns, "measure", all_gone);
    const std::uint64_t measure_end = std::min(now_ns(), times.measure_end_ns);
    result_.measured_seconds = measure_end > times.measure_start_ns
                                   ? static_cast<double>(measure_end - times.measure_start_ns) / 1e9
                                   : 0;
    server_window(cpu_before);
    run_until(times.measure_end_ns + kDrainNs, "drain", [&] { return all_gone() || drained(); });
  }

  bool drained() const {
    if (options_.scenario == Scenario::fanout)
      return total(&WorkerCounters::received) >=
             total(&WorkerCounters::published) * plan_.expected_subscribers.load();
    return total(&WorkerCounters::sent) <=
           total(&WorkerCounters::received) + total(&WorkerCounters::lost);
  }

  std::optional<ProcessSample> sample_server() {
    if (!result_.server) return std::nullopt;
    return sample_processes(result_.server->pids);
  }

  // The end of the measured window: CPU time used in it, and the server's RSS now.
  void server_window(const std::optional<ProcessSample>& before) {
    const auto after = sample_server();
    if (!after || !before) return;
    result_.server->cpu_seconds = after->cpu_seconds - before->cpu_seconds;
    result_.server->cpu_user_seconds = after->cpu_user_seconds - before->cpu_user_seconds;
    result_.server->rss_after = after->rss_bytes;
    result_.server->rss_max = std::max(result_.server->rss_max, after->rss_bytes);
  }

  void take_sample(const char* phase) {
    auto snapshot = std::make_shared<IntervalSnapshot>();
    snapshot->pending = workers_.size();
    for (auto& worker : workers_) worker->post_snapshot(snapshot);
    const std::uint64_t now = now_ns();
    const double seconds = std::max(1e-3, static_cast<double>(now - last_sample_ns_) / 1e9);
    last_sample_ns_ = now;

    Sample sample;
    sample.t = static_cast<double>(now - run_start_ns_) / 1e9;
    sample.phase = phase;
    sample.open = open_now();
    result_.peak_open = std::max(result_.peak_open, sample.open);
    const std::uint64_t sent = total(&WorkerCounters::sent_all);
    const std::uint64_t received = total(&WorkerCounters::received_all);
    const std::uint64_t errors = total(&WorkerCounters::errors);
    sample.sent_per_second = static_cast<double>(sent - previous_sent_) / seconds;
    sample.received_per_second = static_cast<double>(received - previous_received_) / seconds;
    sample.errors = errors - previous_errors_;
    sample.errors_total = errors;
    previous_sent_ = sent;
    previous_received_ = received;
    previous_errors_ = errors;
    if (result_.server) {
      if (const auto process = sample_processes(result_.server->pids)) {
        sample.rss_bytes = process->rss_bytes;
        result_.server->rss_max = std::max(result_.server->rss_max, process->rss_bytes);
      }
    }
    {
      std::unique_lock lock(snapshot->mutex);
      snapshot->done.wait_for(lock, std::chrono::seconds(1),
                              [&] { return snapshot->pending == 0; });
      // Connect: the handshakes of the interval are its latency.
      const LatencyHistogram& latency =
          options_.scenario == Scenario::connect ? snapshot->handshake : snapshot->latency;
      sample.p50_us = to_us(latency.percentile(0.50));
      sample.p90_us = to_us(latency.percentile(0.90));
      sample.p99_us = to_us(latency.percentile(0.99));
      sample.max_us = to_us(latency.max());
    }
    progress_.show(sample);
    result_.timeline.push_back(std::move(sample));
  }

  void finish_workers() {
    for (auto& worker : workers_) worker->post_finish();
    const std::uint64_t deadline = now_ns() + kFinishNs;
    while (now_ns() < deadline) {
      if (std::all_of(workers_.begin(), workers_.end(), [](const auto& w) { return w->stopped(); }))
        break;
      sleep_until_ns(now_ns() + kPollNs);
    }
    for (auto& worker : workers_) {
      worker->stop_loop();
      worker->join();
    }
  }

  void collect() {
    BenchResult& r = result_;
    for (const auto& worker : workers_) {
      r.latency.merge(worker->latency);
      r.last_delivery.merge(worker->last_delivery);
      r.handshake.merge(worker->handshake);
      r.errors.merge(worker->errors);
    }
    r.opened = total(&WorkerCounters::opened);
    r.failed = total(&WorkerCounters::failed);
    r.sent = total(&WorkerCounters::sent);
    r.received = total(&WorkerCounters::received);
    r.lost = total(&WorkerCounters::lost);
    r.bytes_sent = total(&WorkerCounters::bytes_sent);
    r.bytes_received = total(&WorkerCounters::bytes_received);
    r.subscribed = total(&WorkerCounters::subscribed);
    r.completed = total(&WorkerCounters::completed);
    r.with_offsets = total(&WorkerCounters::with_offsets);
    r.offset_lost = total(&WorkerCounters::offset_lost);
    r.duplicated = total(&WorkerCounters::duplicated);
    if (options_.scenario == Scenario::fanout)
      r.expected_deliveries = total(&WorkerCounters::published) * plan_.expected_subscribers.load();
    r.operations = r.opened + r.failed + r.sent;
    r.error_rate = r.operations == 0
                       ? 0
                       : static_cast<double>(r.errors.total()) / static_cast<double>(r.operations);
    r.passed = r.error_rate <= options_.max_error_rate;
  }

  bool write_file(const std::string& path, const std::function<std::string()>& render) {
    if (path.empty()) return true;
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << render();
    file.close();
    if (!file) {
      std::fprintf(stderr, "pylon bench: cannot write %s\n", path.c_str());
      return false;
    }
    return true;
  }

  Options& options_;
  SharedPlan plan_;
  BenchResult result_;
  ProgressLine progress_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::uint64_t run_start_ns_ = 0;
  std::uint64_t last_sample_ns_ = 0;
  std::uint64_t next_sample_ns_ = 0;
  std::uint64_t previous_sent_ = 0, previous_received_ = 0, previous_errors_ = 0;
  const char* phase_ = "connect";
};

}  // namespace

int run(Options options) {
  if (const std::string error = validate(options); !error.empty()) {
    std::fprintf(stderr, "pylon bench: %s\n", error.c_str());
    return kExitUsage;
  }
  Coordinator coordinator(options);
  return coordinator.run();
}

}  // namespace pylon::bench
