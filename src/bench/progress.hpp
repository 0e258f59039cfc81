// The live progress line: one line per second on a terminal, rewritten in place
// ("  3s measure  open 100  sent 51234/s  recv 51230/s  p50 0.41ms  p99 1.20ms  errors 0").
// Silent when stdout is not a terminal (pipes and files get the summary only). Coordinator thread.
#pragma once

#include "bench/result.hpp"

namespace pylon::bench {

class ProgressLine {
 public:
  ProgressLine();  // enabled when stdout is a terminal
  void show(const Sample& sample);
  void finish();  // ends the line before the summary

 private:
  bool enabled_ = false;
  bool shown_ = false;
};

}  // namespace pylon::bench
