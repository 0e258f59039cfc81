// connect: connections only. The ramp (Worker) opens them at --ramp-rate and records each
// handshake's latency; the coordinator holds them for --duration and samples the server.
#include "bench/scenarios.hpp"

namespace pylon::bench {
namespace {

class ConnectWorker final : public Worker {
 public:
  using Worker::Worker;
};

}  // namespace

std::unique_ptr<Worker> make_connect_worker(SharedPlan& plan, unsigned index, unsigned count) {
  return std::make_unique<ConnectWorker>(plan, index, count);
}

}  // namespace pylon::bench
