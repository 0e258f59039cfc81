#include "net/timer_wheel.hpp"

namespace pylon::net {

TimerWheel::TimerWheel(std::uint64_t now_ms) noexcept : current_tick_(now_ms / kTickMs) {
  for (auto& head : slots_) head.prev = head.next = &head;
}

void TimerWheel::schedule(TimerNode& node, std::uint64_t deadline_ms) noexcept {
  cancel(node);
  node.deadline_ms = deadline_ms;
  // A deadline in the past lands in the current slot and fires on the next advance.
  std::uint64_t tick = (deadline_ms + kTickMs - 1) / kTickMs;
  if (tick < current_tick_) tick = current_tick_;
  TimerNode& head = slots_[tick % kSlots];
  node.prev = head.prev;
  node.next = &head;
  head.prev->next = &node;
  head.prev = &node;
}

void TimerWheel::cancel(TimerNode& node) noexcept {
  if (!node.scheduled()) return;
  node.prev->next = node.next;
  node.next->prev = node.prev;
  node.prev = node.next = nullptr;
}

void TimerWheel::advance(std::uint64_t now_ms) noexcept {
  const std::uint64_t target = now_ms / kTickMs;
  // After a long stall, visiting each slot once is enough: every node is in exactly one slot.
  std::uint64_t first = current_tick_;
  if (target - first >= kSlots) first = target - kSlots + 1;
  for (std::uint64_t tick = first; tick <= target; ++tick) {
    TimerNode& head = slots_[tick % kSlots];
    // Detach the due nodes first so callbacks that reschedule into this slot are not revisited.
    TimerNode due;
    due.prev = due.next = &due;
    for (TimerNode* node = head.next; node != &head;) {
      TimerNode* next = node->next;
      if (node->deadline_ms <= now_ms) {
        cancel(*node);
        node->prev = due.prev;
        node->next = &due;
        due.prev->next = node;
        due.prev = node;
      }
      node = next;
    }
    while (due.next != &due) {
      TimerNode* node = due.next;
      cancel(*node);
      node->fire(*node);
    }
  }
  current_tick_ = target;
}

}  // namespace pylon::net
