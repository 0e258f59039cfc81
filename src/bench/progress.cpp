#include "bench/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace pylon::bench {

ProgressLine::ProgressLine() : enabled_(isatty(STDOUT_FILENO) == 1) {}

void ProgressLine::show(const Sample& sample) {
  if (!enabled_) return;
  // \r and "erase to end of line": the line is rewritten in place every second.
  std::printf(
      "\r%5.0fs %-7s open %llu  sent %.0f/s  recv %.0f/s  p50 %.2fms  p99 %.2fms  errors "
      "%llu\033[K",
      sample.t, sample.phase.c_str(), static_cast<unsigned long long>(sample.open),
      sample.sent_per_second, sample.received_per_second, sample.p50_us / 1000,
      sample.p99_us / 1000, static_cast<unsigned long long>(sample.errors_total));
  std::fflush(stdout);
  shown_ = true;
}

void ProgressLine::finish() {
  if (shown_) std::printf("\n");
  shown_ = false;
}

}  // namespace pylon::bench
