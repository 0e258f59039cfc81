// The workers of each scenario (docs/bench.md "Scenarios"), one file each.
#pragma once

#include <memory>

#include "bench/worker.hpp"

namespace pylon::bench {

std::unique_ptr<Worker> make_echo_worker(SharedPlan& plan, unsigned index, unsigned count);
std::unique_ptr<Worker> make_rate_worker(SharedPlan& plan, unsigned index, unsigned count);
std::unique_ptr<Worker> make_fanout_worker(SharedPlan& plan, unsigned index, unsigned count);
std::unique_ptr<Worker> make_connect_worker(SharedPlan& plan, unsigned index, unsigned count);

}  // namespace pylon::bench
