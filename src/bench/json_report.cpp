// --json FILE: the run as one JSON object. The field list is in docs/bench.md; the benchmark
// suite (bench/) reads these names, so renaming one is a breaking change.
#include "bench/json_writer.hpp"
#include "bench/report_writers.hpp"

namespace pylon::bench {
namespace {

double us(std::uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

void percentiles(JsonWriter& json, std::string_view name, const LatencyHistogram& histogram) {
  json.begin_object(name);
  json.integer("count", histogram.count());
  json.number("min", us(histogram.min()));
  json.number("mean", histogram.mean() / 1000.0);
  json.number("p50", us(histogram.percentile(0.50)));
  json.number("p90", us(histogram.percentile(0.90)));
  json.number("p99", us(histogram.percentile(0.99)));
  json.number("p999", us(histogram.percentile(0.999)));
  json.number("max", us(histogram.max()));
  json.end_object();
}

template <typename Map>
void count_map(JsonWriter& json, std::string_view name, const Map& map) {
  json.begin_object(name);
  for (const auto& [key, count] : map) {
    if constexpr (std::is_same_v<typename Map::key_type, int>)
      json.integer(std::to_string(key), count);
    else
      json.integer(key, count);
  }
  json.end_object();
}

void options_object(JsonWriter& json, const Options& o) {
  json.begin_object("options");
  json.integer("connections", o.connections);
  json.number("duration_s", o.duration);
  json.number("warmup_s", o.warmup);
  json.integer("size", o.size);
  json.boolean("binary", o.binary);
  json.boolean("compression", o.compression);
  json.string("ca_file", o.ca_file);
  json.boolean("insecure", o.insecure);
  json.string("payload", payload_kind_name(o.payload));
  json.number("rate", o.rate);
  json.integer("in_flight", o.in_flight);
  json.number("ramp_rate", o.ramp_rate);
  json.integer("threads", o.threads);
  json.integer("subscribers", o.subscribers);
  json.integer("publishers", o.publishers);
  json.string("topic", o.topic);
  json.begin_array("source_addresses");
  for (const auto& address : o.source_addresses) json.string({}, address);
  json.end_array();
  json.number("max_error_rate", o.max_error_rate);
  json.end_object();
}

}  // namespace

std::string to_json(const BenchResult& r) {
  const Options& o = *r.options;
  JsonWriter json;
  json.begin_object();
  json.string("tool", "pylon bench");
  json.string("scenario", scenario_name(o.scenario));
  json.begin_array("urls");
  for (const auto& url : o.urls) json.string({}, url);
  json.end_array();
  options_object(json, o);
  json.number("duration_s", r.measured_seconds);

  json.begin_object("connections");
  json.integer("target", r.connections_target);
  json.integer("opened", r.opened);
  json.integer("failed", r.failed);
  json.integer("peak_open", r.peak_open);
  json.integer("open_at_end", r.open_at_end);
  json.number("connect_seconds", r.connect_seconds);
  json.number("rate_per_second", r.connection_rate());
  json.end_object();

  json.integer("sent", r.sent);
  json.integer("received", r.received);
  json.integer("lost", r.lost);
  json.integer("bytes_sent", r.bytes_sent);
  json.integer("bytes_received", r.bytes_received);
  json.number("throughput", r.throughput());
  json.number("throughput_bytes", r.measured_seconds > 0
                                      ? static_cast<double>(r.bytes_received) / r.measured_seconds
                                      : 0);
  percentiles(json, "latency_us", r.latency);
  percentiles(json, "handshake_us", r.handshake);

  if (o.scenario == Scenario::fanout) {
    json.integer("subscribers_acked", r.subscribed);
    json.integer("published", r.sent);
    json.integer("deliveries", r.received);
    json.integer("expected_deliveries", r.expected_deliveries);
    json.number("delivered_per_second", r.throughput());
    json.integer("completed", r.completed);
    json.integer("incomplete", r.sent > r.completed ? r.sent - r.completed : 0);
    percentiles(json, "last_delivery_us", r.last_delivery);
    if (r.with_offsets > 0) {
      json.begin_object("offsets");
      json.integer("subscribers", r.with_offsets);
      json.integer("lost", r.offset_lost);
      json.integer("duplicated", r.duplicated);
      json.end_object();
    }
  }

  json.begin_object("errors");
  json.integer("total", r.errors.total());
  json.number("rate", r.error_rate);
  json.integer("refused", r.errors.refused);
  json.integer("timeout", r.errors.timeout);
  json.integer("protocol", r.errors.protocol);
  json.integer("dropped_sends", r.errors.dropped_sends);
  json.integer("mismatched", r.errors.mismatched);
  count_map(json, "handshake", r.errors.handshake);
  count_map(json, "tls", r.errors.tls);
  count_map(json, "closed", r.errors.closed);
  count_map(json, "server_errors", r.errors.server_errors);
  count_map(json, "other", r.errors.other);
  json.end_object();
  json.integer("operations", r.operations);
  json.number("max_error_rate", o.max_error_rate);
  json.boolean("passed", r.passed);

  if (r.server) {
    const ServerStats& s = *r.server;
    json.begin_object("server");
    json.integer("pid", static_cast<std::uint64_t>(s.pids.front()));
    json.begin_array("pids");
    for (const int pid : s.pids) json.integer({}, static_cast<std::uint64_t>(pid));
    json.end_array();
    json.integer("rss_before_bytes", s.rss_before);
    json.integer("rss_after_bytes", s.rss_after);
    json.integer("rss_max_bytes", s.rss_max);
    json.number("cpu_seconds", s.cpu_seconds);
    json.number("cpu_user_seconds", s.cpu_user_seconds);
    json.number("cpu_system_seconds", s.cpu_seconds - s.cpu_user_seconds);
    json.end_object();
    json.number("server_cpu_seconds", s.cpu_seconds);
    if (o.scenario != Scenario::connect)
      json.number("server_cpu_us_per_message",
                  r.received > 0 ? s.cpu_seconds * 1e6 / static_cast<double>(r.received) : 0);
    if (o.scenario == Scenario::connect)
      json.number("server_bytes_per_connection",
                  r.opened > 0
                      ? (static_cast<double>(s.rss_after) - static_cast<double>(s.rss_before)) /
                            static_cast<double>(r.opened)
                      : 0);
  }

  json.begin_array("timeline");
  for (const Sample& sample : r.timeline) {
    json.begin_object();
    json.number("t", sample.t);
    json.string("phase", sample.phase);
    json.integer("open", sample.open);
    json.number("sent_per_second", sample.sent_per_second);
    json.number("received_per_second", sample.received_per_second);
    json.integer("errors", sample.errors);
    json.number("p50_us", sample.p50_us);
    json.number("p90_us", sample.p90_us);
    json.number("p99_us", sample.p99_us);
    json.number("max_us", sample.max_us);
    if (r.server) json.integer("rss_bytes", sample.rss_bytes);
    json.end_object();
  }
  json.end_array();

  // The latency distribution: [highest value of the bucket in µs, count] for non-empty buckets.
  json.begin_array("distribution");
  const LatencyHistogram& distribution = o.scenario == Scenario::connect ? r.handshake : r.latency;
  distribution.for_each_bucket([&](std::uint64_t highest_ns, std::uint64_t count) {
    json.begin_array();
    json.number({}, us(highest_ns));
    json.integer({}, count);
    json.end_array();
  });
  json.end_array();
  json.end_object();
  return json.text() + "\n";
}

}  // namespace pylon::bench
