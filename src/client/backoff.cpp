#include "client/backoff.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace pylon::client {

std::uint64_t reconnect_delay_ms(const ReconnectOptions& options, unsigned attempt,
                                 double unit_random) noexcept {
  const double initial = std::max(0.0, options.initial_delay);
  const double maximum = std::max(initial, options.max_delay);
  const double multiplier = std::max(1.0, options.multiplier);
  // Compare before multiplying further so that a long outage cannot overflow to infinity.
  double delay = initial;
  for (unsigned i = 0; i < attempt && delay < maximum; ++i) delay *= multiplier;
  delay = std::min(delay, maximum);
  const double jitter = std::clamp(options.jitter, 0.0, 1.0);
  delay *= 1.0 - jitter * std::clamp(unit_random, 0.0, 1.0);
  return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(delay * 1000.0));
}

std::optional<std::uint32_t> parse_retry_after(std::string_view value) noexcept {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  std::uint64_t seconds = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (value.empty() || end != value.data() + value.size()) return std::nullopt;
  // Digits beyond 64 bits are still a number of seconds, a very large one.
  if (error == std::errc::result_out_of_range) return kMaxRetryAfterSeconds;
  if (error != std::errc{}) return std::nullopt;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(seconds, kMaxRetryAfterSeconds));
}

}  // namespace pylon::client
