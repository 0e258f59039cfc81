// Tests of src/obs/metrics.cpp: the structured snapshot and histogram_quantile. (The exposition
// format is checked against promtool and a real Prometheus in tests/deploy.)
#include "pylon/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

namespace pylon {
namespace {

const MetricFamilySnapshot* find(const std::vector<MetricFamilySnapshot>& families,
                                 std::string_view name) {
  for (const auto& family : families)
    if (family.name == name) return &family;
  return nullptr;
}

TEST(MetricsSnapshot, CountersAndGaugesWithLabels) {
  MetricsRegistry registry;
  const Counter text = registry.counter("m_total", "Messages.", {{"kind", "text"}});
  const Counter binary = registry.counter("m_total", "Messages.", {{"kind", "binary"}});
  const Gauge open = registry.gauge("open", "Open things.");
  text.add(3);
  binary.add();
  open.add(5);
  open.add(-7);

  const auto families = registry.snapshot();
  ASSERT_EQ(families.size(), 2u);
  const MetricFamilySnapshot* messages = find(families, "m_total");
  ASSERT_NE(messages, nullptr);
  EXPECT_EQ(messages->type, "counter");
  EXPECT_EQ(messages->help, "Messages.");
  ASSERT_EQ(messages->samples.size(), 2u);
  EXPECT_EQ(messages->samples[0].labels, (Labels{{"kind", "text"}}));
  EXPECT_EQ(messages->samples[0].value, 3);
  EXPECT_EQ(messages->samples[1].labels, (Labels{{"kind", "binary"}}));
  EXPECT_EQ(messages->samples[1].value, 1);
  const MetricFamilySnapshot* gauge = find(families, "open");
  ASSERT_NE(gauge, nullptr);
  EXPECT_EQ(gauge->type, "gauge");
  ASSERT_EQ(gauge->samples.size(), 1u);
  EXPECT_TRUE(gauge->samples[0].labels.empty());
  EXPECT_EQ(gauge->samples[0].value, -2);  // a gauge's sum is signed
}

TEST(MetricsSnapshot, SumsEveryThreadSlot) {
  MetricsRegistry registry;
  const Counter counter = registry.counter("c_total", "C.");
  counter.add(2);  // shared slot
  std::thread loop([&] {
    metrics_detail::bind_thread_slot(3);
    counter.add(5);
  });
  loop.join();
  EXPECT_EQ(registry.snapshot()[0].samples[0].value, 7);
}

TEST(MetricsSnapshot, HistogramBucketsAreCumulativeWithInf) {
  MetricsRegistry registry;
  const Histogram histogram =
      registry.histogram("h_seconds", "H.", {0.1, 0.01, 1}, {{"endpoint", "/ws"}});
  histogram.observe(0.005);
  histogram.observe(0.01);  // le: on the bound counts in that bucket
  histogram.observe(0.5);
  histogram.observe(7);

  const auto families = registry.snapshot();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].type, "histogram");
  const MetricSample& sample = families[0].samples.at(0);
  EXPECT_EQ(sample.labels, (Labels{{"endpoint", "/ws"}}));
  ASSERT_EQ(sample.buckets.size(), 4u);
  EXPECT_EQ(sample.buckets[0], (std::pair<double, std::uint64_t>{0.01, 2}));  // bounds sorted
  EXPECT_EQ(sample.buckets[1], (std::pair<double, std::uint64_t>{0.1, 2}));
  EXPECT_EQ(sample.buckets[2], (std::pair<double, std::uint64_t>{1, 3}));
  EXPECT_TRUE(std::isinf(sample.buckets[3].first));
  EXPECT_EQ(sample.buckets[3].second, 4u);
  EXPECT_EQ(sample.value, 4);
  EXPECT_NEAR(sample.sum, 7.515, 1e-6);
}

// The one histogram of `registry`: its cumulative bucket counts and its sum in seconds.
void expect_histogram(const MetricsRegistry& registry, const std::vector<std::uint64_t>& counts,
                      double sum) {
  const auto families = registry.snapshot();
  const MetricSample& sample = families.at(0).samples.at(0);
  ASSERT_EQ(sample.buckets.size(), counts.size());
  for (std::size_t i = 0; i < counts.size(); ++i) EXPECT_EQ(sample.buckets[i].second, counts[i]);
  EXPECT_EQ(sample.value, static_cast<double>(counts.back()));
  EXPECT_NEAR(sample.sum, sum, 1e-12);
}

TEST(MetricsSnapshot, HistogramInNanosecondsCountsAsInSeconds) {
  MetricsRegistry registry;
  const Histogram histogram = registry.histogram("h_seconds", "H.", {0.00001, 0.001});
  histogram.observe_ns(0);
  histogram.observe_ns(10'000);  // on the bound: that bucket, as observe(0.00001)
  histogram.observe_ns(10'001);
  histogram.observe_ns(2'000'000);
  histogram.observe(-1);  // a clock that went back counts as 0
  expect_histogram(registry, {3, 4, 5}, 0.002020001);
}

TEST(MetricsSnapshot, HistogramBatchCountsEachObservation) {
  MetricsRegistry registry;
  const Histogram histogram = registry.histogram("h_seconds", "H.", {0.00001, 0.001});
  histogram.observe_ns(10'000, 8);  // 8 observations of 10 us each: the first bucket
  histogram.observe_ns(15'000, 2);  // 2 of 15 us: the second
  histogram.observe_ns(5'000'000, 1);
  expect_histogram(registry, {8, 10, 11}, 0.00511);  // 8 x 10 us + 2 x 15 us + 5 ms
}

TEST(MetricsSnapshot, ComputedFamiliesAreCollected) {
  MetricsRegistry registry;
  int calls = 0;
  registry.computed("build_info", "Build.", "gauge",
                    [&calls]() -> std::vector<std::pair<Labels, double>> {
                      ++calls;
                      return {{{{"version", "1.2.3"}}, 1.0}};
                    });
  const auto families = registry.snapshot();
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(families.at(0).samples.size(), 1u);
  EXPECT_EQ(families[0].samples[0].labels, (Labels{{"version", "1.2.3"}}));
  EXPECT_EQ(families[0].samples[0].value, 1.0);
}

TEST(MetricsSnapshot, AgreesWithExposition) {
  MetricsRegistry registry;
  registry.counter("a_total", "A.").add(42);
  const std::string text = registry.expose();
  EXPECT_NE(text.find("a_total 42\n"), std::string::npos);
  EXPECT_EQ(registry.snapshot()[0].samples[0].value, 42);
}

using Buckets = std::vector<std::pair<double, std::uint64_t>>;

TEST(HistogramQuantile, EmptyIsNan) {
  EXPECT_TRUE(std::isnan(histogram_quantile(0.5, {})));
  EXPECT_TRUE(std::isnan(histogram_quantile(0.5, Buckets{{1, 0}, {HUGE_VAL, 0}})));
}

TEST(HistogramQuantile, InterpolatesInsideTheBucket) {
  // 10 observations in (0, 1], 10 in (1, 2].
  const Buckets buckets = {{1, 10}, {2, 20}, {HUGE_VAL, 20}};
  EXPECT_DOUBLE_EQ(histogram_quantile(0.5, buckets), 1.0);
  EXPECT_DOUBLE_EQ(histogram_quantile(0.25, buckets), 0.5);
  EXPECT_DOUBLE_EQ(histogram_quantile(0.75, buckets), 1.5);
  EXPECT_DOUBLE_EQ(histogram_quantile(1.0, buckets), 2.0);
}

TEST(HistogramQuantile, SkipsEmptyBuckets) {
  const Buckets buckets = {{0.001, 0}, {0.01, 0}, {0.1, 4}, {HUGE_VAL, 4}};
  EXPECT_DOUBLE_EQ(histogram_quantile(0.5, buckets), 0.055);
  EXPECT_DOUBLE_EQ(histogram_quantile(0.0, buckets), 0.01);
}

TEST(HistogramQuantile, InfBucketGivesTheHighestFiniteBound) {
  const Buckets buckets = {{1, 1}, {5, 1}, {HUGE_VAL, 10}};
  EXPECT_DOUBLE_EQ(histogram_quantile(0.99, buckets), 5.0);
}

TEST(HistogramQuantile, WindowFromTwoSnapshots) {
  MetricsRegistry registry;
  const Histogram histogram = registry.histogram("h", "H.", {0.01, 0.1, 1});
  for (int i = 0; i < 100; ++i) histogram.observe(0.5);  // an old, slow period
  const Buckets before = registry.snapshot()[0].samples[0].buckets;
  for (int i = 0; i < 100; ++i) histogram.observe(0.005);
  Buckets window = registry.snapshot()[0].samples[0].buckets;
  for (std::size_t i = 0; i < window.size(); ++i) window[i].second -= before[i].second;
  EXPECT_LE(histogram_quantile(0.99, window), 0.01);
  EXPECT_GT(histogram_quantile(0.99, registry.snapshot()[0].samples[0].buckets), 0.1);
}

}  // namespace
}  // namespace pylon
