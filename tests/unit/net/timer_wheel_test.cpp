#include "net/timer_wheel.hpp"

#include <gtest/gtest.h>

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
