// WaitBatching (uring_poller.hpp): when a loop's io_uring waits hold completions for others. Pure
// arithmetic on counts and times; event_loop_test.cpp runs a batching loop on real sockets.
#include "net/uring_poller.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace pylon::net {
namespace {

constexpr std::uint64_t kWindow = WaitBatching::kWindowMs;
// With a 50 µs batch wait, batching needs 4 receives per 50 µs: 8,000 per 100 ms window.
constexpr std::uint64_t kBusy = 8'000;
constexpr std::uint64_t kCpu = 50'000'000;  // CPU time per window without batching, ns

// A loop's traffic, fed to its WaitBatching one window at a time (two iterations each).
struct Loop {
  explicit Loop(unsigned wait_us) : batching(wait_us) { end(0, 0); }
  void end(std::uint64_t receives, std::uint64_t bytes) {
    if (batching.count(receives, bytes, now)) batching.end_window(now, cpu);
  }
  // One window of receives and bytes, in which the loop thread used cpu_ns of CPU time.
  void window(std::uint64_t receives, std::uint64_t bytes, std::uint64_t cpu_ns = kCpu) {
    EXPECT_FALSE(batching.count(receives / 2, bytes / 2, now + kWindow / 2));
    now += kWindow;
    cpu += cpu_ns;
    end(receives - receives / 2, bytes - bytes / 2);
  }
  // Busy windows until the loop has measured itself without batching and begun its trial.
  void until_trial(std::uint64_t bytes) {
    for (unsigned i = 0; i <= WaitBatching::kCompared; ++i) {  // one to start, then the reference
      EXPECT_FALSE(batching.on()) << "window " << i;
      window(kBusy, bytes);
    }
    EXPECT_TRUE(batching.on());
  }
  WaitBatching batching;
  std::uint64_t now = 1'000'000;
  std::uint64_t cpu = 0;
};

TEST(WaitBatching, AQuietLoopNeverBatches) {
  Loop loop(50);
  for (int i = 0; i < 50; ++i) {
    loop.window(kBusy - 100, 1'000'000);
    EXPECT_FALSE(loop.batching.on()) << "window " << i;
  }
}

// The trial: 9 % fewer bytes than without batching (more bytes per receive, fewer receives), for
// 3 % less CPU time per byte. Kept.
TEST(WaitBatching, BatchingThatPaysIsKeptWhileTheTrafficHolds) {
  Loop loop(50);
  loop.until_trial(1'000'000);
  const std::uint64_t kept = loop.now + WaitBatching::kCompared * kWindow;
  while (loop.now + kWindow < kept + WaitBatching::kRecheckMs) {
    loop.window(kBusy + 1, 910'000, kCpu * 91 * 97 / 10'000);
    ASSERT_TRUE(loop.batching.on()) << loop.now - kept << " ms after the trial";
  }
  EXPECT_EQ(loop.batching.trials(WaitBatching::Verdict::kept), 1u);
  EXPECT_EQ(loop.batching.trials(WaitBatching::Verdict::slowed) +
                loop.batching.trials(WaitBatching::Verdict::no_gain),
            0u);
  // kRecheckMs later it measures again, without batching first, then batches again.
  loop.window(kBusy, 1'000'000);
  EXPECT_FALSE(loop.batching.on());
  for (unsigned i = 0; i < WaitBatching::kCompared; ++i) loop.window(kBusy, 1'000'000);
  EXPECT_TRUE(loop.batching.on());
  EXPECT_EQ(loop.batching.trials(WaitBatching::Verdict::kept), 1u);  // on trial: no verdict yet
  // The traffic falls below the rate that fills a batch: every wait returns at once again.
  loop.window(kBusy / 2, 500'000);
  EXPECT_FALSE(loop.batching.on());
}

// Batching that costs the peers' traffic (they wait for answers that the loop holds) ends with
// its trial, even though the loop spends less CPU. It is tried again kRecheckMs later, and after
// each trial that fails again twice as long as after the one before, up to kLongestRecheckMs.
TEST(WaitBatching, BatchingThatSlowsTheTrafficEndsWithItsTrial) {
  Loop loop(50);
  loop.until_trial(3'000'000);
  std::vector<std::uint64_t> waits;  // 10, 20, 40, 80, 160, 320 and 320 s
  for (std::uint64_t wait = WaitBatching::kRecheckMs; waits.size() < 7;
       wait = std::min(2 * wait, WaitBatching::kLongestRecheckMs))
    waits.push_back(wait);
  for (const std::uint64_t wait : waits) {
    for (unsigned i = 0; i < WaitBatching::kCompared; ++i) {
      EXPECT_TRUE(loop.batching.on());
      loop.window(3 * kBusy, 1'000'000, kCpu / 4);  // a third of the bytes, and still busy
    }
    EXPECT_FALSE(loop.batching.on());
    const std::uint64_t ended = loop.now;
    while (loop.now + kWindow < ended + wait) {
      loop.window(3 * kBusy, 3'000'000);
      ASSERT_FALSE(loop.batching.on()) << loop.now - ended << " ms after a trial";
    }
    loop.window(3 * kBusy, 3'000'000);
    for (unsigned i = 0; i < WaitBatching::kCompared; ++i) {
      EXPECT_FALSE(loop.batching.on());
      loop.window(3 * kBusy, 3'000'000);
    }
    EXPECT_TRUE(loop.batching.on()) << "the trial " << wait << " ms after the last";
  }
  EXPECT_EQ(loop.batching.trials(WaitBatching::Verdict::slowed), 7u);
  EXPECT_EQ(loop.batching.trials(WaitBatching::Verdict::kept), 0u);
}

// A loop whose traffic crosses the rate that makes it busy, again and again, batches as its last
// trial found, and is tried again only when that trial is due: not at every crossing.
TEST(WaitBatching, AVerdictStandsThroughQuietWindows) {
  for (const bool pays : {false, true}) {
    Loop loop(50);
    loop.until_trial(1'000'000);
    for (unsigned i = 0; i < WaitBatching::kCompared; ++i)
      loop.window(kBusy, pays ? 1'000'000 : 500'000, pays ? kCpu * 9 / 10 : kCpu);
    ASSERT_EQ(loop.batching.on(), pays);
    const std::uint64_t ended = loop.now;
    while (loop.now + 2 * kWindow < ended + WaitBatching::kRecheckMs) {
      loop.window(kBusy / 2, 500'000);  // quiet: no batching
      EXPECT_FALSE(loop.batching.on());
      loop.window(kBusy, 1'000'000);  // busy again: the verdict, no new measuring
      ASSERT_EQ(loop.batching.on(), pays) << loop.now - ended << " ms after the trial";
    }
  }
}

// Batching that does not save CPU time (a loop that never ran out of work only sleeps more) ends
// with its trial too.
TEST(WaitBatching, BatchingThatSavesNoCpuEndsWithItsTrial) {
  Loop loop(50);
  loop.until_trial(1'000'000);
  for (unsigned i = 0; i < WaitBatching::kCompared; ++i) {
    EXPECT_TRUE(loop.batching.on());
    loop.window(kBusy, 1'000'000, kCpu * 99 / 100);  // 1 % less: not worth holding messages
  }
  EXPECT_FALSE(loop.batching.on());
  EXPECT_EQ(loop.batching.trials(WaitBatching::Verdict::no_gain), 1u);
}

TEST(WaitBatching, NoBatchWaitNeverBatches) {
  Loop loop(0);
  for (int i = 0; i < 20; ++i) {
    loop.window(100 * kBusy, 100'000'000);
    EXPECT_FALSE(loop.batching.on());
  }
}

// A window is over only after kWindowMs: shorter stretches add up.
TEST(WaitBatching, AWindowIsOverAfterKWindowMs) {
  Loop loop(50);
  for (unsigned window = 0; window <= WaitBatching::kCompared; ++window) {
    for (std::uint64_t step = 1; step < kWindow; ++step)
      EXPECT_FALSE(loop.batching.count(kBusy, 1'000'000, loop.now + step)) << step << " ms in";
    loop.now += kWindow;
    loop.cpu += kCpu;
    loop.end(0, 0);
  }
  EXPECT_TRUE(loop.batching.on());
}

}  // namespace
}  // namespace pylon::net
