// A coarse hashed timer wheel (DESIGN.md: handshake, idle, ping, pong and close timeouts).
//
// Each owner embeds (or derives from) one TimerNode per timer it needs; scheduling and cancelling
// are O(1) list operations, so a connection can move its deadline on every event at no real cost.
// Deadlines are in milliseconds of the owning loop's clock and fire up to one tick late, never
// early. Single-threaded: only the owning loop's thread touches a wheel and its nodes.
#pragma once

#include <array>
#include <cstdint>

namespace pylon::net {

// A configured number of seconds as a deadline's milliseconds (none: 0).
constexpr std::uint64_t to_ms(double seconds) noexcept {
  return seconds <= 0 ? 0 : static_cast<std::uint64_t>(seconds * 1000);
}

struct TimerNode {
  TimerNode* prev = nullptr;
  TimerNode* next = nullptr;
  std::uint64_t deadline_ms = 0;
  // Called by the wheel when the deadline has passed; the node is already unlinked.
  void (*fire)(TimerNode& node) = nullptr;
  bool scheduled() const noexcept { return prev != nullptr; }
};

class TimerWheel {
 public:
  static constexpr std::uint64_t kTickMs = 100;
  static constexpr std::size_t kSlots =
      1024;  // one revolution is ~102 s; later deadlines wait rounds

  explicit TimerWheel(std::uint64_t now_ms) noexcept;
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // (Re)schedules node at deadline_ms; a scheduled node is moved.
  void schedule(TimerNode& node, std::uint64_t deadline_ms) noexcept;
  static void cancel(TimerNode& node) noexcept;
  // Fires every node whose deadline is <= now_ms. A fired callback may schedule nodes again.
  void advance(std::uint64_t now_ms) noexcept;

 private:
  std::array<TimerNode, kSlots> slots_;  // sentinel heads of circular lists
  std::uint64_t current_tick_;
};

}  // namespace pylon::net
