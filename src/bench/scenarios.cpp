#include "bench/scenarios.hpp"

namespace pylon::bench {

std::unique_ptr<Worker> make_worker(SharedPlan& plan, unsigned index, unsigned worker_count) {
  switch (plan.options.scenario) {
    case Scenario::echo:
      return make_echo_worker(plan, index, worker_count);
    case Scenario::rate:
      return make_rate_worker(plan, index, worker_count);
    case Scenario::fanout:
      return make_fanout_worker(plan, index, worker_count);
    case Scenario::connect:
      break;
  }
  return make_connect_worker(plan, index, worker_count);
}

}  // namespace pylon::bench
