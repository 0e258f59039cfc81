// Per-message delivery bookkeeping of the fanout scenario, shared by every worker thread: for
// each published message, how many subscribers still have to receive it and the largest delivery
// latency so far. When the last expected subscriber has it, its thread gets the time until the
// last delivery (the `last_delivery` percentiles).
//
// A ring indexed by sequence number: a slot is reused once the sequence has wrapped around it, so
// the ring must hold more messages than are ever in flight (sized from the rate; a message whose
// slot was reused is just not counted as complete). Lock-free: a delivery is one acquire load,
// a CAS loop on the maximum and one fetch_sub.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

namespace pylon::bench {

class FanoutLedger {
 public:
  explicit FanoutLedger(std::size_t capacity_at_least) {
    std::size_t capacity = 1024;
    while (capacity < capacity_at_least) capacity *= 2;
    slots_ = std::make_unique<Slot[]>(capacity);
    mask_ = capacity - 1;
  }

  // Publisher thread, before the message is sent.
  void begin(std::uint64_t sequence, std::uint32_t expected) noexcept {
    Slot& slot = slots_[sequence & mask_];
    slot.tag.store(0, std::memory_order_relaxed);
    slot.remaining.store(expected, std::memory_order_relaxed);
    slot.max_latency.store(0, std::memory_order_relaxed);
    slot.tag.store(sequence + 1, std::memory_order_release);
  }

  // Subscriber threads: returns the latency of the last delivery when this one completes the
  // message.
  std::optional<std::uint64_t> deliver(std::uint64_t sequence, std::uint64_t latency) noexcept {
    Slot& slot = slots_[sequence & mask_];
    if (slot.tag.load(std::memory_order_acquire) != sequence + 1) return std::nullopt;
    std::uint64_t seen = slot.max_latency.load(std::memory_order_relaxed);
    while (seen < latency &&
           !slot.max_latency.compare_exchange_weak(seen, latency, std::memory_order_relaxed)) {
    }
    if (slot.remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return std::nullopt;
    return slot.max_latency.load(std::memory_order_relaxed);
  }

 private:
  struct Slot {
    std::atomic<std::uint64_t> tag{0};  // sequence + 1; 0: unused
    std::atomic<std::uint32_t> remaining{0};
    std::atomic<std::uint64_t> max_latency{0};
  };
  std::unique_ptr<Slot[]> slots_;
  std::uint64_t mask_ = 0;
};

}  // namespace pylon::bench
