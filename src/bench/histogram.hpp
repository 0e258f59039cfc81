// The one latency histogram of pylon bench: HDR-style log-linear buckets over nanoseconds.
//
// Values below 2^kSubBucketBits nanoseconds have a bucket each; above, every power of two is
// split into 2^(kSubBucketBits-1) equal buckets, so a bucket is at most 1/128 (0.8 %) of its
// value wide from 256 ns up to ~9.7 hours. Recording is an index computation and an increment:
// no allocation, no branch on the value's size beyond one compare. Each thread records into its
// own histograms; merge() adds them up afterwards. Not thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace pylon::bench {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBucketBits = 8;
  static constexpr unsigned kMaxExponent = 45;  // values are clamped to 2^46 - 1 ns
  static constexpr std::size_t kLinear = std::size_t{1} << kSubBucketBits;
  static constexpr std::size_t kPerPower = kLinear / 2;
  static constexpr std::size_t kBuckets = kLinear + (kMaxExponent - kSubBucketBits + 1) * kPerPower;

  void record(std::uint64_t nanoseconds) noexcept;
  void merge(const LatencyHistogram& other) noexcept;
  void reset() noexcept;

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t min() const noexcept { return count_ == 0 ? 0 : min_; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept;
  // The value at or below which a fraction q (0..1) of the recorded values lie: the highest
  // value of that bucket, capped by max(). 0 when empty.
  std::uint64_t percentile(double q) const noexcept;

  // Every non-empty bucket in order, as (highest value of the bucket, count).
  template <typename Visit>
  void for_each_bucket(Visit&& visit) const {
    for (std::size_t i = 0; i < kBuckets; ++i)
      if (counts_[i] != 0) visit(highest_value(i), counts_[i]);
  }

  static std::size_t index_of(std::uint64_t value) noexcept;
  static std::uint64_t lowest_value(std::size_t index) noexcept;
  static std::uint64_t highest_value(std::size_t index) noexcept;

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace pylon::bench
