// WaitBatching (uring_poller.hpp): when a loop's io_uring waits hold completions for others. Pure
// arithmetic on counts and times; event_loop_test.cpp runs a batching loop on real sockets.
#include "net/uring_poller.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace pylon::net {
namespace {

constexpr std::uint64_t kWindow = WaitBatching::kWindowMs;

// Feeds one whole window of receives and their bytes, in two iterations, ending at now_ms.
void window(WaitBatching& batching, std::uint64_t& now_ms, std::uint64_t receives,
            std::uint64_t bytes) {
  batching.count(receives / 2, bytes / 2, now_ms + kWindow / 2);
  now_ms += kWindow;
  batching.count(receives - receives / 2, bytes - bytes / 2, now_ms);
}

// With a 50 µs batch wait, batching needs 4 receives per 50 µs: 8,000 per 100 ms window.
constexpr std::uint64_t kBusy = 8'000;

// Busy windows until the loop has measured itself without batching and started its trial.
void until_trial(WaitBatching& batching, std::uint64_t& now_ms, std::uint64_t bytes) {
  for (unsigned i = 0; i <= WaitBatching::kCompared; ++i) {  // one to start, then the reference
    EXPECT_FALSE(batching.on()) << "window " << i;
    window(batching, now_ms, kBusy, bytes);
  }
  EXPECT_TRUE(batching.on());
}

TEST(WaitBatching, AQuietLoopNeverBatches) {
  WaitBatching batching(50);
  std::uint64_t now = 1'000'000;
  batching.count(0, 0, now);
  for (int i = 0; i < 50; ++i) {
    window(batching, now, kBusy - 100, 1'000'000);
    EXPECT_FALSE(batching.on()) << "window " << i;
  }
}

TEST(WaitBatching, ABusyLoopBatchesWhileItsTrafficHolds) {
  WaitBatching batching(50);
  std::uint64_t now = 1'000'000;
  batching.count(0, 0, now);
  until_trial(batching, now, 1'000'000);
  // The trial: more bytes per receive, and 9 % fewer bytes than without batching. Kept.
  const std::uint64_t kept = now + WaitBatching::kCompared * kWindow;
  while (now + kWindow < kept + WaitBatching::kRecheckMs) {
    window(batching, now, kBusy + 1, 910'000);
    ASSERT_TRUE(batching.on()) << now - kept << " ms after the trial";
  }
  // kRecheckMs later it measures again, without batching first, then batches again.
  window(batching, now, kBusy, 1'000'000);
  EXPECT_FALSE(batching.on());
  for (unsigned i = 0; i < WaitBatching::kCompared; ++i) window(batching, now, kBusy, 1'000'000);
  EXPECT_TRUE(batching.on());
  // The traffic falls below the rate that fills a batch: every wait returns at once again.
  window(batching, now, kBusy / 2, 500'000);
  EXPECT_FALSE(batching.on());
}

// Batching that costs the peers' traffic (they wait for answers that the loop holds) ends with
// its trial, and is tried again only kRecheckMs later.
TEST(WaitBatching, BatchingThatSlowsTheTrafficEndsWithItsTrial) {
  WaitBatching batching(50);
  std::uint64_t now = 1'000'000;
  batching.count(0, 0, now);
  until_trial(batching, now, 3'000'000);
  for (unsigned i = 0; i < WaitBatching::kCompared; ++i) {
    EXPECT_TRUE(batching.on());
    window(batching, now, kBusy, 1'000'000);  // a third of the bytes, and still busy
  }
  EXPECT_FALSE(batching.on());
  const std::uint64_t ended = now;
  while (now + kWindow < ended + WaitBatching::kRecheckMs) {
    window(batching, now, 3 * kBusy, 3'000'000);
    ASSERT_FALSE(batching.on()) << now - ended << " ms after the trial";
  }
  window(batching, now, 3 * kBusy, 3'000'000);
  for (unsigned i = 0; i < WaitBatching::kCompared; ++i) {
    EXPECT_FALSE(batching.on());
    window(batching, now, 3 * kBusy, 3'000'000);
  }
  EXPECT_TRUE(batching.on());
}

TEST(WaitBatching, NoBatchWaitNeverBatches) {
  WaitBatching batching(0);
  std::uint64_t now = 1'000'000;
  batching.count(0, 0, now);
  for (int i = 0; i < 20; ++i) {
    window(batching, now, 100 * kBusy, 100'000'000);
    EXPECT_FALSE(batching.on());
  }
}

// A window is over only after kWindowMs: shorter stretches add up.
TEST(WaitBatching, AWindowIsOverAfterKWindowMs) {
  WaitBatching batching(50);
  std::uint64_t now = 1'000'000;
  batching.count(0, 0, now);
  for (unsigned window = 0; window <= WaitBatching::kCompared; ++window) {
    for (std::uint64_t step = 1; step < kWindow; ++step) {
      batching.count(kBusy, 1'000'000, now + step);
      EXPECT_FALSE(batching.on()) << step << " ms into window " << window;
    }
    now += kWindow;
    batching.count(0, 0, now);
  }
  EXPECT_TRUE(batching.on());
}

}  // namespace
}  // namespace pylon::net
