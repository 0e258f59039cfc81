#include "net/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace pylon::net {
namespace {

struct RecordingTimer : TimerNode {
  explicit RecordingTimer(std::vector<int>& log, int id) : log(log), id(id) {
    fire = [](TimerNode& node) {
      auto& self = static_cast<RecordingTimer&>(node);
      self.log.push_back(self.id);
    };
  }
  std::vector<int>& log;
  int id;
};

// A 32-bit time reads back as the time it was given, rounded up to 32 ms, whatever the clock's
// reading, across the wrap of its 32 bits (every 4.4 years of the clock), within two years.
TEST(CompactTime, ReadsBackNeverEarlierAndAtMost31MsLater) {
  constexpr std::uint64_t kYearMs = 365ull * 24 * 3600 * 1000;
  constexpr std::uint64_t kWrapMs = std::uint64_t{1} << 37;  // 2^32 units of 32 ms
  for (const std::uint64_t start : {std::uint64_t{0}, std::uint64_t{123456789}, kWrapMs - 40,
                                    kWrapMs - kYearMs, 5 * kWrapMs + 7, kWrapMs * 1000 + 31}) {
    for (const std::uint64_t ahead :
         {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{31}, std::uint64_t{32},
          std::uint64_t{100000}, kYearMs, 2 * kYearMs + 5000}) {
      const std::uint64_t time = start + ahead;
      const CompactTime compact = CompactTime::at(time);
      // Read when it was set (a deadline ahead), and once it is up to two years past.
      for (const std::uint64_t now : {start, time, time + 1, time + 2 * kYearMs}) {
        const std::uint64_t read = compact.ms(now);
        EXPECT_GE(read, time) << "start " << start << " ahead " << ahead << " now " << now;
        EXPECT_LE(read, time + 31) << "start " << start << " ahead " << ahead << " now " << now;
      }
    }
  }
}

TEST(TimerWheel, FiresAtOrAfterDeadlineNeverBefore) {
  std::vector<int> fired;
  TimerWheel wheel(1000);
  RecordingTimer timer(fired, 1);
  wheel.schedule(timer, 1250);
  wheel.advance(1200);
  EXPECT_TRUE(fired.empty());
  wheel.advance(1249);
  EXPECT_TRUE(fired.empty());
  wheel.advance(1300);
  EXPECT_EQ(fired, std::vector<int>{1});
  EXPECT_FALSE(timer.scheduled());
}

TEST(TimerWheel, CancelAndRescheduleMoveTheNode) {
  std::vector<int> fired;
  TimerWheel wheel(0);
  RecordingTimer a(fired, 1), b(fired, 2);
  wheel.schedule(a, 100);
  wheel.schedule(b, 100);
  TimerWheel::cancel(a);
  wheel.schedule(b, 500);  // moved, not duplicated
  wheel.advance(400);
  EXPECT_TRUE(fired.empty());
  wheel.advance(600);
  EXPECT_EQ(fired, std::vector<int>{2});
}

TEST(TimerWheel, DeadlinesBeyondOneRevolutionWaitTheirRound) {
  std::vector<int> fired;
  TimerWheel wheel(0);
  RecordingTimer timer(fired, 7);
  const std::uint64_t revolution = TimerWheel::kTickMs * TimerWheel::kSlots;
  wheel.schedule(timer, revolution + 300);
  for (std::uint64_t now = 0; now < revolution + 300; now += TimerWheel::kTickMs)
    wheel.advance(now);
  EXPECT_TRUE(fired.empty());
  wheel.advance(revolution + 300);
  EXPECT_EQ(fired, std::vector<int>{7});
}

TEST(TimerWheel, PastDeadlinesFireOnNextAdvanceAndLongStallsFireEverything) {
  std::vector<int> fired;
  TimerWheel wheel(10'000);
  RecordingTimer past(fired, 1), later(fired, 2);
  wheel.schedule(past, 5'000);
  wheel.schedule(later, 50'000);
  wheel.advance(10'000);
  EXPECT_EQ(fired, std::vector<int>{1});
  wheel.advance(10'000'000);  // a stall far longer than one revolution
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
}

TEST(TimerWheel, CallbackMayRescheduleItself) {
  int count = 0;
  struct Repeating : TimerNode {
    TimerWheel* wheel;
    int* count;
  } node;
  TimerWheel wheel(0);
  node.wheel = &wheel;
  node.count = &count;
  node.fire = [](TimerNode& base) {
    auto& self = static_cast<Repeating&>(base);
    if (++*self.count < 3) self.wheel->schedule(self, self.deadline_ms + 100);
  };
  wheel.schedule(node, 100);
  for (std::uint64_t now = 0; now <= 1000; now += 50) wheel.advance(now);
  EXPECT_EQ(count, 3);
}

}  // namespace
}  // namespace pylon::net
