// The final summary on stdout, always printed (docs/bench.md "Summary").
#include <string>

#include "bench/report_writers.hpp"

namespace pylon::bench {
namespace {

std::string duration_text(std::uint64_t ns) {
  char text[32];
  if (ns < 1'000'000)
    std::snprintf(text, sizeof text, "%.1fus", static_cast<double>(ns) / 1e3);
  else if (ns < 1'000'000'000)
    std::snprintf(text, sizeof text, "%.2fms", static_cast<double>(ns) / 1e6);
  else
    std::snprintf(text, sizeof text, "%.2fs", static_cast<double>(ns) / 1e9);
  return text;
}

std::string bytes_text(double bytes) {
  char text[32];
  if (bytes < 10 * 1024)
    std::snprintf(text, sizeof text, "%.0f B", bytes);
  else if (bytes < 10 * 1024 * 1024)
    std::snprintf(text, sizeof text, "%.1f KiB", bytes / 1024);
  else
    std::snprintf(text, sizeof text, "%.1f MiB", bytes / (1024 * 1024));
  return text;
}

void print_percentiles(std::FILE* out, const char* label, const LatencyHistogram& h) {
  if (h.count() == 0) {
    std::fprintf(out, "%-14s (none)\n", label);
    return;
  }
  std::fprintf(out, "%-14s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, n=%llu)\n", label,
               duration_text(h.percentile(0.5)).c_str(), duration_text(h.percentile(0.9)).c_str(),
               duration_text(h.percentile(0.99)).c_str(),
               duration_text(h.percentile(0.999)).c_str(), duration_text(h.max()).c_str(),
               duration_text(static_cast<std::uint64_t>(h.mean())).c_str(),
               static_cast<unsigned long long>(h.count()));
}

using ull = unsigned long long;

std::string number_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

}  // namespace

void print_summary(const BenchResult& r, std::FILE* out) {
  const Options& o = *r.options;
  std::fprintf(out, "pylon bench %s: %s", std::string(scenario_name(o.scenario)).c_str(),
               o.urls.front().c_str());
  if (o.urls.size() > 1) std::fprintf(out, " (+%zu more URLs)", o.urls.size() - 1);
  std::fprintf(out, ", %u threads\n", o.threads);
  if (o.scenario == Scenario::fanout)
    std::fprintf(out, "%-14s %zu subscribers, %zu publishers, topic %s, %.0f msg/s, %zu B\n",
                 "setup", o.subscribers, o.publishers, o.topic.c_str(), o.rate, o.size);
  else if (o.scenario != Scenario::connect)
    std::fprintf(out, "%-14s %zu connections, %zu B %s%s\n", "setup", o.connections, o.size,
                 o.binary ? "binary" : "text",
                 o.scenario == Scenario::rate
                     ? (", " + number_text(o.rate) + " msg/s").c_str()
                     : (", " + std::to_string(o.in_flight) + " in flight").c_str());
  std::fprintf(out,
               "%-14s %llu/%llu opened, %llu failed, peak %llu open, %.2fs to connect (%.0f/s)\n",
               "connections", static_cast<ull>(r.opened), static_cast<ull>(r.connections_target),
               static_cast<ull>(r.failed), static_cast<ull>(r.peak_open), r.connect_seconds,
               r.connection_rate());
  print_percentiles(out, "handshake", r.handshake);
  if (o.scenario != Scenario::connect) {
    std::fprintf(out, "%-14s %.2fs measured (after %.2fs warmup)\n", "window", r.measured_seconds,
                 o.warmup);
    if (o.scenario == Scenario::fanout)
      std::fprintf(out, "%-14s published %llu, delivered %llu of %llu, %llu complete\n", "messages",
                   static_cast<ull>(r.sent), static_cast<ull>(r.received),
                   static_cast<ull>(r.expected_deliveries), static_cast<ull>(r.completed));
    if (r.with_offsets > 0)
      std::fprintf(out, "%-14s lost %llu, duplicated %llu (%llu subscribers with history)\n",
                   "offsets", static_cast<ull>(r.offset_lost), static_cast<ull>(r.duplicated),
                   static_cast<ull>(r.with_offsets));
    else
      std::fprintf(out, "%-14s sent %llu, received %llu, lost %llu\n", "messages",
                   static_cast<ull>(r.sent), static_cast<ull>(r.received),
                   static_cast<ull>(r.lost));
    std::fprintf(
        out, "%-14s %.1f msg/s, %s/s\n",
        o.scenario == Scenario::fanout ? "delivered" : "throughput", r.throughput(),
        bytes_text(r.measured_seconds > 0 ? r.bytes_received / r.measured_seconds : 0).c_str());
    print_percentiles(out, o.scenario == Scenario::fanout ? "delivery" : "latency", r.latency);
    if (o.scenario == Scenario::fanout) print_percentiles(out, "last delivery", r.last_delivery);
  } else {
    std::fprintf(out, "%-14s %.2fs with %llu open at the end\n", "held", r.measured_seconds,
                 static_cast<ull>(r.open_at_end));
  }
  if (r.server) {
    const ServerStats& s = *r.server;
    std::fprintf(out, "%-14s pid %d%s: cpu %.2fs", "server", s.pids.front(),
                 s.pids.size() > 1 ? " (+ more, summed)" : "", s.cpu_seconds);
    if (o.scenario != Scenario::connect && r.received > 0)
      std::fprintf(out, " (%.2f us/msg)", s.cpu_seconds * 1e6 / static_cast<double>(r.received));
    std::fprintf(out, ", rss %s -> %s (max %s)", bytes_text(double(s.rss_before)).c_str(),
                 bytes_text(double(s.rss_after)).c_str(), bytes_text(double(s.rss_max)).c_str());
    if (o.scenario == Scenario::connect && r.opened > 0)
      std::fprintf(out, ", %.0f B/connection",
                   (double(s.rss_after) - double(s.rss_before)) / double(r.opened));
    std::fprintf(out, "\n");
  }
  const ErrorCounts& e = r.errors;
  std::fprintf(out, "%-14s %llu (rate %.4f of %llu operations)", "errors",
               static_cast<ull>(e.total()), r.error_rate, static_cast<ull>(r.operations));
  auto item = [&](const char* name, std::uint64_t count) {
    if (count != 0) std::fprintf(out, ", %s %llu", name, static_cast<ull>(count));
  };
  item("refused", e.refused);
  item("timeout", e.timeout);
  item("protocol", e.protocol);
  item("dropped sends", e.dropped_sends);
  item("mismatched", e.mismatched);
  for (const auto& [status, count] : e.handshake)
    item(("handshake " + std::to_string(status)).c_str(), count);
  for (const auto& [reason, count] : e.tls) item(("tls " + reason).c_str(), count);
  for (const auto& [code, count] : e.closed)
    item(("closed " + std::to_string(code)).c_str(), count);
  for (const auto& [code, count] : e.server_errors) item(("server " + code).c_str(), count);
  for (const auto& [message, count] : e.other) item(message.c_str(), count);
  std::fprintf(out, "\n");
  if (r.passed)
    std::fprintf(out, "%-14s ok\n", "result");
  else
    std::fprintf(out, "%-14s FAILED: error rate %g is above --max-error-rate %g\n", "result",
                 r.error_rate, o.max_error_rate);
}

}  // namespace pylon::bench
