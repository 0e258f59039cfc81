#include "server/dashboard.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <deque>
#include <string>
#include <vector>

#include "obs/log.hpp"

namespace pylon {
namespace {

using Families = std::vector<MetricFamilySnapshot>;
using Buckets = std::vector<std::pair<double, std::uint64_t>>;
using Clock = std::chrono::steady_clock;

// Latency quantiles are taken over the observations of this window, not since start: the chart
// must show today's latency, not the average of the process's life. It is longer than the
// default ping_interval (25 s) so that every connection's RTT has been measured in it.
constexpr auto kLatencyWindow = std::chrono::seconds(30);

const MetricFamilySnapshot* find_family(const Families& families, std::string_view name) {
  for (const auto& family : families)
    if (family.name == name) return &family;
  return nullptr;
}

// The sum over every series of a family; 0 when it is not registered.
double total(const Families& families, std::string_view name) {
  const MetricFamilySnapshot* family = find_family(families, name);
  double sum = 0;
  if (family != nullptr)
    for (const auto& sample : family->samples) sum += sample.value;
  return sum;
}

// The buckets of every series of a histogram family added up (the series share their bounds).
Buckets merged_buckets(const Families& families, std::string_view name) {
  Buckets merged;
  const MetricFamilySnapshot* family = find_family(families, name);
  if (family == nullptr) return merged;
  for (const auto& sample : family->samples) {
    if (merged.empty()) {
      merged = sample.buckets;
      continue;
    }
    if (sample.buckets.size() != merged.size()) continue;
    for (std::size_t i = 0; i < merged.size(); ++i) merged[i].second += sample.buckets[i].second;
  }
  return merged;
}

Buckets difference(const Buckets& newer, const Buckets& older) {
  if (older.size() != newer.size()) return newer;
  Buckets window = newer;
  for (std::size_t i = 0; i < window.size(); ++i)
    window[i].second = newer[i].second >= older[i].second ? newer[i].second - older[i].second : 0;
  return window;
}

// JSON has no NaN or infinity: an unknown value (no observations yet) is null.
void append_json_number(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  fmt::format_to(std::back_inserter(out), "{}", value);
}

// Turns successive metric snapshots into the stats message of the dashboard (docs/dashboard.md):
// current values, rates from counter deltas, latency quantiles over kLatencyWindow.
class StatsSampler {
 public:
  std::string sample(const Families& families, Clock::time_point now) {
    const double messages_in = total(families, "pylon_messages_received_total");
    const double messages_out = total(families, "pylon_messages_sent_total");
    const double bytes_in = total(families, "pylon_bytes_received_total");
    const double bytes_out = total(families, "pylon_bytes_sent_total");
    const double seconds =
        has_previous_ ? std::chrono::duration<double>(now - previous_time_).count() : 0;
    auto rate = [&](double current, double previous) {
      // Hundredths are plenty for a person reading the page, and keep the message short.
      return seconds > 0 && current >= previous
                 ? std::round((current - previous) / seconds * 100) / 100
                 : 0.0;
    };

    window_.push_back({now, merged_buckets(families, "pylon_ping_rtt_seconds"),
                       merged_buckets(families, "pylon_message_handling_seconds")});
    while (window_.size() > 2 && now - window_[1].time >= kLatencyWindow) window_.pop_front();
    const Point& oldest = window_.front();
    const Point& newest = window_.back();
    const Buckets rtt =
        window_.size() > 1 ? difference(newest.ping_rtt, oldest.ping_rtt) : newest.ping_rtt;
    const Buckets handling =
        window_.size() > 1 ? difference(newest.handling, oldest.handling) : newest.handling;

    const double started = total(families, "process_start_time_seconds");
    const double wall_now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();

    // The envelope of a topic delivery on /ws (docs/protocol.md "Messages"), so the page reads
    // the stats like any other subscriber reads its messages.
    std::string out = R"({"type":"message","topic":")";
    out += kStatsTopic;
    out += R"(","data":{"time":)";
    append_json_number(out, std::floor(wall_now * 1000));
    out += ",\"version\":";
    obs::append_json_string(out, PYLON_VERSION);
    out += ",\"uptime_seconds\":";
    append_json_number(out, started > 0 ? std::floor(std::max(0.0, wall_now - started)) : NAN);
    out += ",\"connections\":";
    append_json_number(out, total(families, "pylon_connections"));
    out += ",\"connections_by_endpoint\":{";
    if (const MetricFamilySnapshot* family = find_family(families, "pylon_connections")) {
      bool first = true;
      for (const auto& series : family->samples) {
        for (const auto& [label, value] : series.labels) {
          if (label != "endpoint") continue;
          if (!first) out += ',';
          first = false;
          obs::append_json_string(out, value);
          out += ':';
          append_json_number(out, series.value);
        }
      }
    }
    out += "},\"max_connections\":";
    append_json_number(out, total(families, "pylon_max_connections"));
    out += ",\"accepted_total\":";
    append_json_number(out, total(families, "pylon_connections_accepted_total"));
    out += ",\"messages_in_per_second\":";
    append_json_number(out, rate(messages_in, previous_messages_in_));
    out += ",\"messages_out_per_second\":";
    append_json_number(out, rate(messages_out, previous_messages_out_));
    out += ",\"bytes_in_per_second\":";
    append_json_number(out, rate(bytes_in, previous_bytes_in_));
    out += ",\"bytes_out_per_second\":";
    append_json_number(out, rate(bytes_out, previous_bytes_out_));
    out += ",\"messages_in_total\":";
    append_json_number(out, messages_in);
    out += ",\"messages_out_total\":";
    append_json_number(out, messages_out);
    out += ",\"ping_rtt_p50_seconds\":";
    append_json_number(out, histogram_quantile(0.5, rtt));
    out += ",\"ping_rtt_p99_seconds\":";
    append_json_number(out, histogram_quantile(0.99, rtt));
    out += ",\"handling_p99_seconds\":";
    append_json_number(out, histogram_quantile(0.99, handling));
    out += ",\"latency_window_seconds\":";
    append_json_number(out, static_cast<double>(kLatencyWindow.count()));
    out += ",\"topics\":";
    append_json_number(out, total(families, "pylon_topics"));
    out += ",\"subscriptions\":";
    append_json_number(out, total(families, "pylon_subscriptions"));
    // permessage-deflate since start: uncompressed / compressed bytes of compressed messages.
    const double compressed = total(families, "pylon_compressed_bytes_total");
    out += ",\"compression_ratio\":";
    append_json_number(
        out, compressed > 0 ? total(families, "pylon_uncompressed_bytes_total") / compressed : NAN);
    const double handshake_failures = total(families, "pylon_handshake_failures_total");
    const double protocol_errors = total(families, "pylon_protocol_errors_total");
    out += ",\"errors_total\":";
    append_json_number(out, handshake_failures + protocol_errors);
    out += ",\"handshake_failures_total\":";
    append_json_number(out, handshake_failures);
    out += ",\"protocol_errors_total\":";
    append_json_number(out, protocol_errors);
    out += ",\"backpressure_closes_total\":";
    append_json_number(out, total(families, "pylon_backpressure_closes_total"));
    out += ",\"resident_memory_bytes\":";
    append_json_number(out, total(families, "process_resident_memory_bytes"));
    out += ",\"open_fds\":";
    append_json_number(out, total(families, "process_open_fds"));
    out += "}}";

    has_previous_ = true;
    previous_time_ = now;
    previous_messages_in_ = messages_in;
    previous_messages_out_ = messages_out;
    previous_bytes_in_ = bytes_in;
    previous_bytes_out_ = bytes_out;
    return out;
  }

 private:
  struct Point {
    Clock::time_point time;
    Buckets ping_rtt, handling;
  };
  std::deque<Point> window_;
  bool has_previous_ = false;
  Clock::time_point previous_time_{};
  double previous_messages_in_ = 0, previous_messages_out_ = 0;
  double previous_bytes_in_ = 0, previous_bytes_out_ = 0;
};

}  // namespace

Dashboard::Dashboard(App& app, std::chrono::milliseconds interval)
    : app_(app), interval_(interval) {
  for (const detail::DashboardAsset& asset : detail::dashboard_assets()) {
    app.get(std::string(asset.path), [&asset](const HttpRequest&) {
      return HttpResponse{
          .content_type = std::string(asset.content_type),
          .body = std::string(asset.body),
          .headers = {{"Cache-Control",
                       "no-cache"},  // embedded in the binary: revalidate after an upgrade
                      {"X-Content-Type-Options", "nosniff"},
                      // Public static files: a page of another origin may import /pylon.js,
                      // and a module script is fetched with CORS.
                      {"Access-Control-Allow-Origin", "*"},
                      {"Content-Security-Policy",
                       "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
                       "frame-ancestors 'none'"}},
      };
    });
  }
  thread_ = std::thread([this] { publish_loop(); });
}

Dashboard::~Dashboard() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Dashboard::publish_loop() {
  StatsSampler sampler;
  auto next = Clock::now();
  std::unique_lock lock(mutex_);
  for (;;) {
    next += interval_;
    if (wake_.wait_until(lock, next, [this] { return stopping_; })) return;
    lock.unlock();
    const Families families = app_.metrics().snapshot();
    // App::run() registers the server's series (pylon_topics among them) once its topic table
    // exists, under the registry's lock: seeing them here means publish() is safe to call. A
    // draining server is about to destroy its loops: stop publishing before they go.
    if (find_family(families, "pylon_topics") != nullptr && !app_.draining()) {
      const std::string stats = sampler.sample(families, Clock::now());
      app_.publish(kStatsTopic, stats);
    }
    lock.lock();
    // After a long stall (a suspended process) start the rhythm again instead of catching up.
    if (Clock::now() - next > 10 * interval_) next = Clock::now();
  }
}

}  // namespace pylon
