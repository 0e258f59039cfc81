// echo: a closed loop per connection. Each connection keeps --in-flight messages outstanding:
// it sends them when the phase begins, and sends the next one as each echo comes back, until the
// measured window ends. Latency is the round trip of each message.
#include "bench/scenarios.hpp"

namespace pylon::bench {
namespace {

class EchoWorker final : public Worker {
 public:
  using Worker::Worker;

 private:
  void on_begin() override {
    for (Slot& slot : slots_)
      if (slot.state == SlotState::open) fill(slot);
  }

  void on_open(Slot& slot) override {
    if (measuring()) fill(slot);
  }

  void on_message(Slot& slot, std::string_view message, MessageKind kind,
                  std::uint64_t now_ns) override {
    std::uint64_t sent_ns = 0;
    if (!match_echo(slot, message, kind, sent_ns)) return;
    record_latency(now_ns - sent_ns, is_measured(sent_ns));
    if (now_ns < times_.measure_end_ns && slot.state == SlotState::open)
      send_sequenced(slot, now_ns);
  }

  void fill(Slot& slot) {
    const std::uint64_t now = ClientTimer::monotonic_ns();
    if (now >= times_.measure_end_ns) return;
    while (slot.in_flight_size < options_.in_flight && slot.state == SlotState::open)
      if (!send_sequenced(slot, now)) break;
  }
};

}  // namespace

std::unique_ptr<Worker> make_echo_worker(SharedPlan& plan, unsigned index, unsigned count) {
  return std::make_unique<EchoWorker>(plan, index, count);
}

}  // namespace pylon::bench
