// rate: an open loop at --rate messages per second in total, spread evenly over all connections
// (each worker takes the share of its connections, with its schedule offset so that the workers
// interleave). The server echoes; latency is measured from each message's intended send time,
// so lateness of the sender counts (see Pacer).
#include "bench/scenarios.hpp"

namespace pylon::bench {
namespace {

class RateWorker final : public Worker {
 public:
  RateWorker(SharedPlan& plan, unsigned index, unsigned count)
      : Worker(plan, index, count), timer_(loop_, [this] { send_due(); }) {}

 private:
  void on_begin() override {
    if (slots_.empty()) return;
    start_pacer(pacer_, slots_.size(), options_.connections);
    send_due();
  }

  void on_message(Slot& slot, std::string_view message, MessageKind kind,
                  std::uint64_t now_ns) override {
    std::uint64_t intended_ns = 0;
    if (!match_echo(slot, message, kind, intended_ns)) return;
    record_latency(now_ns - intended_ns, is_measured(intended_ns));
  }

  void send_due() {
    const std::uint64_t now = ClientTimer::monotonic_ns();
    while (!pacer_.finished() && pacer_.due_ns() <= now) {
      const std::uint64_t intended = pacer_.due_ns();
      Slot& slot = slots_[pacer_.take() % slots_.size()];
      // A connection that is gone misses its turns; its failure is counted already.
      if (slot.state == SlotState::open) send_sequenced(slot, intended);
    }
    if (!pacer_.finished()) timer_.arm_at(pacer_.due_ns());
  }

  Pacer pacer_;
  ClientTimer timer_;
};

}  // namespace

std::unique_ptr<Worker> make_rate_worker(SharedPlan& plan, unsigned index, unsigned count) {
  return std::make_unique<RateWorker>(plan, index, count);
}

}  // namespace pylon::bench
