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

// A time of a loop's clock in 32 bits, for objects that are many (a server's connections keep two).
// In units of 32 ms, rounded up, so that a deadline taken from it never fires early (the wheel
// fires up to a tick late anyway), and read back against the clock's current reading, which it
// must lie within 2^31 units (795 days) of: a deadline at most two years ahead (the configured
// timeouts are at most a year each), a past time read back within two years. Nothing is relative
// to the loop's start: a loop and its connections may run for years.
class CompactTime {
 public:
  static constexpr unsigned kShift = 5;  // 32 ms
  static CompactTime at(std::uint64_t ms) noexcept {
    return CompactTime(static_cast<std::uint32_t>((ms + (1u << kShift) - 1) >> kShift));
  }
  CompactTime() noexcept = default;
  // The time in the clock's milliseconds (a multiple of 32, at most 31 after the one given to at).
  std::uint64_t ms(std::uint64_t now_ms) const noexcept {
    const std::uint64_t now = now_ms >> kShift;
    const auto offset = static_cast<std::int32_t>(units_ - static_cast<std::uint32_t>(now));
    return (now + static_cast<std::uint64_t>(std::int64_t{offset})) << kShift;
  }

 private:
  explicit CompactTime(std::uint32_t units) noexcept : units_(units) {}
  std::uint32_t units_ = 0;
};

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
