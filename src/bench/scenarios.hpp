// The workers of each scenario (docs/bench.md "Scenarios"), one file each.
#pragma once

#include <memory>

#include "bench/worker.hpp"

namespace pylon::bench {

std::unique_ptr<Worker> make_echo_worker(SharedPlan& plan, unsigned index, unsigned count);
std::unique_ptr<Worker> make_rate_worker(SharedPlan& plan, unsigned index, unsigned count);
std::unique_ptr<Worker> make_fanout_worker(SharedPlan& plan, unsigned index, unsigned count);
std::unique_ptr<Worker> make_connect_worker(SharedPlan& plan, unsigned index, unsigned count);

// Paces an open-loop stream of sends over some of a worker's connections: send j is due at
// first_ns + j * interval_ns, so each connection has its own fixed schedule (one every
// interval * connections). A late send is sent late and keeps its intended time, which the
// latency is measured from: a stall of the server shows in the latency instead of slowing the
// schedule down (no coordinated omission).
class Pacer {
 public:
  void start(std::uint64_t first_ns, double interval_ns, std::uint64_t end_ns) noexcept {
    first_ns_ = first_ns;
    interval_ns_ = interval_ns;
    end_ns_ = end_ns;
    next_ = 0;
  }
  std::uint64_t due_ns() const noexcept {
    return first_ns_ + static_cast<std::uint64_t>(static_cast<double>(next_) * interval_ns_);
  }
  bool finished() const noexcept { return due_ns() >= end_ns_; }
  // The number of the next send, then advances.
  std::uint64_t take() noexcept { return next_++; }

 private:
  std::uint64_t first_ns_ = 0;
  double interval_ns_ = 0;
  std::uint64_t end_ns_ = 0;
  std::uint64_t next_ = 0;
};

}  // namespace pylon::bench
