#include "pylon/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace pylon {
namespace metrics_detail {
void bind_thread_slot(unsigned slot) noexcept {
  current_slot = slot < kSlots ? slot : 0;
}
}  // namespace metrics_detail

struct MetricsRegistry::Series {
  std::string labels;  // rendered: {a="b",c="d"} or empty
  Labels label_pairs;  // the same, for snapshot()
  std::size_t index = 0;
  const std::vector<double>* bounds = nullptr;            // histograms
  const std::vector<std::uint64_t>* bounds_ns = nullptr;  // the same, Histogram::to_ns
};

struct MetricsRegistry::Family {
  std::string name, help, type;
  std::vector<Series> series;
  // Stable addresses for Histogram and the exposition.
  std::vector<std::unique_ptr<std::vector<double>>> bounds;
  std::vector<std::unique_ptr<std::vector<std::uint64_t>>> bounds_ns;
  std::function<std::vector<std::pair<Labels, double>>()> collect;
};

namespace {

void append_escaped(std::string& out, std::string_view value) {
  for (const char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
}

std::string render_labels(const Labels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (const auto& [name, value] : labels) {
    if (out.size() > 1) out += ',';
    out += name;
    out += "=\"";
    append_escaped(out, value);
    out += '"';
  }
  out += '}';
  return out;
}

void append_number(std::string& out, double value) {
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buffer[32];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, end);
}

void append_number(std::string& out, std::uint64_t value) {
  char buffer[24];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, end);
}

}  // namespace

MetricsRegistry::MetricsRegistry()
    : slots_(std::make_unique<
             std::array<std::atomic<std::uint64_t>, metrics_detail::kValuesPerSlot>[]>(
          metrics_detail::kSlots)) {}

MetricsRegistry::~MetricsRegistry() = default;

std::size_t MetricsRegistry::allocate(std::size_t values) {
  if (used_ + values > metrics_detail::kValuesPerSlot)
    throw std::length_error("too many metric series");
  const std::size_t index = used_;
  used_ += values;
  return index;
}

std::uint64_t MetricsRegistry::sum(std::size_t index) const noexcept {
  std::uint64_t total = 0;
  for (std::size_t slot = 0; slot < metrics_detail::kSlots; ++slot)
    total += slots_[slot][index].load(std::memory_order_relaxed);
  return total;
}

MetricsRegistry::Family& MetricsRegistry::family(std::string_view name, std::string_view help,
                                                 std::string_view type) {
  for (auto& family : families_)
    if (family->name == name) {
      if (family->type != type)
        throw std::invalid_argument("metric " + std::string(name) +
                                    " registered twice with different types");
      return *family;
    }
  auto family = std::make_unique<Family>();
  family->name = name;
  family->help = help;
  family->type = type;
  families_.push_back(std::move(family));
  return *families_.back();
}

Counter MetricsRegistry::counter(std::string_view name, std::string_view help,
                                 const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, "counter");
  const std::string rendered = render_labels(labels);
  for (const Series& series : f.series)
    if (series.labels == rendered) return Counter(this, series.index);
  f.series.push_back({rendered, labels, allocate(1), nullptr});
  return Counter(this, f.series.back().index);
}

Gauge MetricsRegistry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, "gauge");
  const std::string rendered = render_labels(labels);
  for (const Series& series : f.series)
    if (series.labels == rendered) return Gauge(this, series.index);
  f.series.push_back({rendered, labels, allocate(1), nullptr});
  return Gauge(this, f.series.back().index);
}

Histogram MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                     std::vector<double> bounds, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, "histogram");
  const std::string rendered = render_labels(labels);
  for (const Series& series : f.series)
    if (series.labels == rendered) return Histogram(this, series.index, series.bounds_ns);
  std::sort(bounds.begin(), bounds.end());
  auto bounds_ns = std::make_unique<std::vector<std::uint64_t>>();
  for (const double bound : bounds) bounds_ns->push_back(Histogram::to_ns(bound));
  f.bounds.push_back(std::make_unique<std::vector<double>>(std::move(bounds)));
  f.bounds_ns.push_back(std::move(bounds_ns));
  const std::vector<double>* stored = f.bounds.back().get();
  const std::vector<std::uint64_t>* stored_ns = f.bounds_ns.back().get();
  f.series.push_back({rendered, labels, allocate(stored->size() + 2), stored, stored_ns});
  return Histogram(this, f.series.back().index, stored_ns);
}

void MetricsRegistry::computed(std::string_view name, std::string_view help, std::string_view type,
                               std::function<std::vector<std::pair<Labels, double>>()> collect) {
  std::lock_guard lock(mutex_);
  family(name, help, type).collect = std::move(collect);
}

std::uint64_t Counter::value() const noexcept {
  return registry_->sum(index_);
}

std::int64_t Gauge::value() const noexcept {
  return static_cast<std::int64_t>(registry_->sum(index_));
}

std::uint64_t Histogram::count() const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_ns_->size(); ++i) total += registry_->sum(index_ + i);
  return total;
}

std::string MetricsRegistry::expose() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out.reserve(16384);
  for (const auto& family : families_) {
    out += "# HELP ";
    out += family->name;
    out += ' ';
    out += family->help;
    out += "\n# TYPE ";
    out += family->name;
    out += ' ';
    out += family->type;
    out += '\n';
    if (family->collect) {
      for (const auto& [labels, value] : family->collect()) {
        out += family->name;
        out += render_labels(labels);
        out += ' ';
        append_number(out, value);
        out += '\n';
      }
      continue;
    }
    for (const Series& series : family->series) {
      if (series.bounds == nullptr) {
        out += family->name;
        out += series.labels;
        out += ' ';
        if (family->type == "gauge") {
          const auto value = static_cast<std::int64_t>(sum(series.index));
          out += std::to_string(value);
        } else {
          append_number(out, sum(series.index));
        }
        out += '\n';
        continue;
      }
      // Histogram: cumulative buckets, +Inf, sum (seconds) and count.
      const auto& bounds = *series.bounds;
      std::string inner =
          series.labels.empty() ? std::string() : series.labels.substr(1, series.labels.size() - 2);
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += sum(series.index + i);
        std::string le;
        append_number(le, i < bounds.size() ? bounds[i] : HUGE_VAL);
        out += family->name;
        out += "_bucket{";
        if (!inner.empty()) {
          out += inner;
          out += ',';
        }
        out += "le=\"";
        out += le;
        out += "\"} ";
        append_number(out, cumulative);
        out += '\n';
      }
      out += family->name;
      out += "_sum";
      out += series.labels;
      out += ' ';
      append_number(out, static_cast<double>(sum(series.index + bounds.size() + 1)) / 1e9);
      out += '\n';
      out += family->name;
      out += "_count";
      out += series.labels;
      out += ' ';
      append_number(out, cumulative);
      out += '\n';
    }
  }
  return out;
}

std::vector<MetricFamilySnapshot> MetricsRegistry::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<MetricFamilySnapshot> out;
  out.reserve(families_.size());
  for (const auto& family : families_) {
    MetricFamilySnapshot& copy = out.emplace_back();
    copy.name = family->name;
    copy.help = family->help;
    copy.type = family->type;
    if (family->collect) {
      for (auto& [labels, value] : family->collect())
        copy.samples.push_back({std::move(labels), value, {}, 0});
      continue;
    }
    for (const Series& series : family->series) {
      MetricSample& sample = copy.samples.emplace_back();
      sample.labels = series.label_pairs;
      if (series.bounds == nullptr) {
        sample.value = family->type == "gauge"
                           ? static_cast<double>(static_cast<std::int64_t>(sum(series.index)))
                           : static_cast<double>(sum(series.index));
        continue;
      }
      const auto& bounds = *series.bounds;
      std::uint64_t cumulative = 0;
      sample.buckets.reserve(bounds.size() + 1);
      for (std::size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += sum(series.index + i);
        sample.buckets.emplace_back(i < bounds.size() ? bounds[i] : HUGE_VAL, cumulative);
      }
      sample.value = static_cast<double>(cumulative);
      sample.sum = static_cast<double>(sum(series.index + bounds.size() + 1)) / 1e9;
    }
  }
  return out;
}

double histogram_quantile(double q,
                          const std::vector<std::pair<double, std::uint64_t>>& buckets) noexcept {
  if (buckets.empty() || buckets.back().second == 0 || std::isnan(q)) return NAN;
  const double total = static_cast<double>(buckets.back().second);
  const double rank = std::clamp(q, 0.0, 1.0) * total;
  double lower_bound = 0;
  std::uint64_t below = 0;  // observations in the buckets before this one
  for (const auto& [bound, cumulative] : buckets) {
    if (static_cast<double>(cumulative) >= rank && cumulative > below) {
      // In the +Inf bucket nothing is known beyond the last finite bound: report that bound.
      if (std::isinf(bound)) return lower_bound;
      const double in_bucket = static_cast<double>(cumulative - below);
      return lower_bound + (bound - lower_bound) * (rank - static_cast<double>(below)) / in_bucket;
    }
    if (!std::isinf(bound)) lower_bound = bound;
    below = cumulative;
  }
  return lower_bound;
}

}  // namespace pylon
