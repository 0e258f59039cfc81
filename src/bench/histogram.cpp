#include "bench/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace pylon::bench {

std::size_t LatencyHistogram::index_of(std::uint64_t value) noexcept {
  if (value < kLinear) return static_cast<std::size_t>(value);
  constexpr std::uint64_t kLargest = (std::uint64_t{1} << (kMaxExponent + 1)) - 1;
  value = std::min(value, kLargest);
  const unsigned exponent =
      63u - static_cast<unsigned>(std::countl_zero(value));  // >= kSubBucketBits
  const unsigned shift = exponent - (kSubBucketBits - 1);
  // value >> shift lies in [kPerPower, kLinear): the top kSubBucketBits bits of the value.
  return kLinear + (exponent - kSubBucketBits) * kPerPower +
         static_cast<std::size_t>((value >> shift) - kPerPower);
}

std::uint64_t LatencyHistogram::lowest_value(std::size_t index) noexcept {
  if (index < kLinear) return index;
  const std::size_t offset = index - kLinear;
  const unsigned exponent = static_cast<unsigned>(offset / kPerPower) + kSubBucketBits;
  const unsigned shift = exponent - (kSubBucketBits - 1);
  return (static_cast<std::uint64_t>(offset % kPerPower) + kPerPower) << shift;
}

std::uint64_t LatencyHistogram::highest_value(std::size_t index) noexcept {
  if (index < kLinear) return index;
  const unsigned exponent = static_cast<unsigned>((index - kLinear) / kPerPower) + kSubBucketBits;
  return lowest_value(index) + (std::uint64_t{1} << (exponent - (kSubBucketBits - 1))) - 1;
}

void LatencyHistogram::record(std::uint64_t nanoseconds) noexcept {
  ++counts_[index_of(nanoseconds)];
  ++count_;
  min_ = std::min(min_, nanoseconds);
  max_ = std::max(max_, nanoseconds);
  sum_ += static_cast<long double>(nanoseconds);
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
  for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void LatencyHistogram::reset() noexcept {
  counts_.fill(0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::mean() const noexcept {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
}

std::uint64_t LatencyHistogram::percentile(double q) const noexcept {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(highest_value(i), max_);
  }
  return max_;
}

}  // namespace pylon::bench
