// Metrics in Prometheus text format 0.0.4 (docs/metrics.md), and a structured read of the same
// values (snapshot) for readers inside the process such as the live dashboard.
//
// Counting is per thread and lock-free: every loop thread owns a slot of plain values that only
// it writes (a relaxed load and store, no locked instruction); other threads share one slot
// with atomic adds. A scrape sums the slots, so it costs time per series, never per
// connection. Families and series are registered before App::run(); after that, handles are
// used from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pylon {

using Labels = std::vector<std::pair<std::string, std::string>>;

class MetricsRegistry;

// One series of a snapshot. Counters and gauges (and computed families) have `value`; a histogram
// has cumulative `buckets` as in the exposition (count of observations <= bound, the last bound
// +Inf), `value` = its count, and `sum` in seconds.
struct MetricSample {
  Labels labels;
  double value = 0;
  std::vector<std::pair<double, std::uint64_t>> buckets;
  double sum = 0;
};

struct MetricFamilySnapshot {
  std::string name, help, type;  // type: "counter", "gauge" or "histogram"
  std::vector<MetricSample> samples;
};

// The q-quantile (0 <= q <= 1) of cumulative histogram buckets, interpolated linearly inside the
// bucket it falls in, as PromQL's histogram_quantile does (the first bucket starts at 0; a
// quantile in the +Inf bucket is the highest finite bound). NaN when there are no observations.
// Differences of two snapshots' buckets are buckets too: that gives the quantile of a window.
double histogram_quantile(double q,
                          const std::vector<std::pair<double, std::uint64_t>>& buckets) noexcept;

namespace metrics_detail {
inline constexpr std::size_t kSlots = 65;            // 64 loop threads + one shared by the rest
inline constexpr std::size_t kValuesPerSlot = 4096;  // series values, histogram buckets included
// The calling thread's slot. Here rather than in metrics.cpp so that an increment inlines: it
// runs several times per message (issue 17).
inline thread_local unsigned current_slot = 0;
// Called by each loop thread once at start: its slot (1..64). Other threads use slot 0.
void bind_thread_slot(unsigned slot) noexcept;
inline unsigned thread_slot() noexcept {
  return current_slot;
}
}  // namespace metrics_detail

// A monotonically increasing count.
class Counter {
 public:
  void add(std::uint64_t amount = 1) const noexcept;
  std::uint64_t value() const noexcept;

 private:
  friend class MetricsRegistry;
  Counter(MetricsRegistry* registry, std::size_t index) : registry_(registry), index_(index) {}
  MetricsRegistry* registry_;
  std::size_t index_;
};

// A value that goes up and down; threads add deltas, a scrape sums them.
class Gauge {
 public:
  void add(std::int64_t delta) const noexcept;
  std::int64_t value() const noexcept;

 private:
  friend class MetricsRegistry;
  Gauge(MetricsRegistry* registry, std::size_t index) : registry_(registry), index_(index) {}
  MetricsRegistry* registry_;
  std::size_t index_;
};

// Observations are counted at nanosecond resolution: a value goes to the first bucket whose
// bound, in whole nanoseconds, it does not pass.
class Histogram {
 public:
  void observe(double seconds) const noexcept;
  // The same for a duration already in nanoseconds (a difference of EventLoop::monotonic_ns):
  // no floating point, and the search starts at the smallest bucket, where durations measured
  // per message fall. `count` observations of that duration each: for a caller that times a
  // batch rather than each of its items (its mean), or that times a sample of batches.
  void observe_ns(std::uint64_t nanoseconds, std::uint64_t count = 1) const noexcept;
  std::uint64_t count() const noexcept;
  // A bound or an observation in seconds as this histogram counts it.
  static std::uint64_t to_ns(double seconds) noexcept {
    return seconds > 0 ? static_cast<std::uint64_t>(seconds * 1e9) : 0;
  }

 private:
  friend class MetricsRegistry;
  Histogram(MetricsRegistry* registry, std::size_t index,
            const std::vector<std::uint64_t>* bounds_ns)
      : registry_(registry), index_(index), bounds_ns_(bounds_ns) {}
  MetricsRegistry* registry_;
  std::size_t index_;  // bucket i at index_ + i, then +Inf, then the sum in nanoseconds
  const std::vector<std::uint64_t>* bounds_ns_;  // the bounds, to_ns
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Same name + labels twice returns the same series. Names follow Prometheus conventions.
  Counter counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram histogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                      const Labels& labels = {});
  // A family whose values are computed at scrape time (process metrics, sizes of tables).
  void computed(std::string_view name, std::string_view help, std::string_view type,
                std::function<std::vector<std::pair<Labels, double>>()> collect);

  std::string expose() const;
  // Any thread: every family and series in registration order, with the values a scrape would
  // see (computed families are collected). Costs what a scrape costs: per series, never per
  // connection.
  std::vector<MetricFamilySnapshot> snapshot() const;

 private:
  friend class Counter;
  friend class Gauge;
  friend class Histogram;
  struct Series;
  struct Family;
  Family& family(std::string_view name, std::string_view help, std::string_view type);
  std::size_t allocate(std::size_t values);
  void add(std::size_t index, std::uint64_t amount) noexcept {
    const unsigned slot = metrics_detail::thread_slot();
    auto& value = slots_[slot][index];
    // A loop thread is the only writer of its slot: a plain load and store is enough (and
    // cheaper than a locked add). Slot 0 is shared by every other thread.
    if (slot != 0)
      value.store(value.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
    else
      value.fetch_add(amount, std::memory_order_relaxed);
  }
  std::uint64_t sum(std::size_t index) const noexcept;

  std::unique_ptr<std::array<std::atomic<std::uint64_t>, metrics_detail::kValuesPerSlot>[]> slots_;
  std::size_t used_ = 0;
  mutable std::mutex mutex_;  // registration and scrapes; never taken by an increment
  std::vector<std::unique_ptr<Family>> families_;
};

inline void Counter::add(std::uint64_t amount) const noexcept {
  registry_->add(index_, amount);
}

inline void Gauge::add(std::int64_t delta) const noexcept {
  // Two's complement: per-slot values wrap, their sum is the signed total.
  registry_->add(index_, static_cast<std::uint64_t>(delta));
}

inline void Histogram::observe_ns(std::uint64_t nanoseconds, std::uint64_t count) const noexcept {
  const std::vector<std::uint64_t>& bounds = *bounds_ns_;
  std::size_t bucket = 0;  // le: value <= bound; past the last bound is +Inf
  while (bucket < bounds.size() && nanoseconds > bounds[bucket]) ++bucket;
  registry_->add(index_ + bucket, count);
  registry_->add(index_ + bounds.size() + 1, nanoseconds * count);
}

inline void Histogram::observe(double seconds) const noexcept {
  observe_ns(to_ns(seconds));
}

}  // namespace pylon
