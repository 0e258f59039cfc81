#include "pubsub/history.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pylon::pubsub {
namespace {

constexpr HistoryPolicy kStream{.size = 3, .ttl_ms = 1000};
constexpr HistoryPolicy kCache{.size = 3, .ttl_ms = 1000, .latest_only = true};

// Publishes one message on topic at now_ms, as the server does: the next offset under the lock.
std::uint64_t publish(History& history, std::string_view topic, std::uint64_t now_ms,
                      const HistoryPolicy& policy = kStream) {
  History::Locked stream = history.lock(topic, policy, now_ms);
  const std::uint64_t offset = stream.top() + 1;
  const std::string payload = "m" + std::to_string(offset);
  const std::string_view parts[] = {payload};
  stream.append(make_message(topic, ws::Opcode::text, parts, offset));
  return offset;
}

std::vector<std::uint64_t> offsets(const std::vector<MessageRef>& messages) {
  std::vector<std::uint64_t> result;
  for (const auto& message : messages) result.push_back(message->offset);
  return result;
}

std::string epoch_of(History& history, std::string_view topic, std::uint64_t now_ms,
                     const HistoryPolicy& policy = kStream) {
  return history.lock(topic, policy, now_ms).epoch();
}

TEST(History, OffsetsStartAtOneWithoutGapsPerTopic) {
  History history;
  EXPECT_EQ(history.lock("a:1", kStream, 0).top(), 0u);
  EXPECT_EQ(publish(history, "a:1", 0), 1u);
  EXPECT_EQ(publish(history, "a:1", 0), 2u);
  EXPECT_EQ(publish(history, "a:2", 0), 1u);
  for (int i = 0; i < 10; ++i) publish(history, "a:1", 0);  // past the size: offsets go on
  EXPECT_EQ(history.lock("a:1", kStream, 0).top(), 12u);
  EXPECT_EQ(history.streams(), 2u);
}

TEST(History, EachStreamHasItsOwnEpochKeptWhileItLives) {
  History history;
  const std::string first = epoch_of(history, "a:1", 0);
  EXPECT_EQ(first.size(), 14u);
  EXPECT_EQ(epoch_of(history, "a:1", 10), first);
  EXPECT_NE(epoch_of(history, "a:2", 0), first);
  History restarted;  // a new process: the same topic under a new epoch
  EXPECT_NE(epoch_of(restarted, "a:1", 0), first);
}

TEST(History, KeepsTheLatestSizePublicationsAndCountsThem) {
  History history;
  for (int i = 0; i < 5; ++i) publish(history, "a:1", 0);
  EXPECT_EQ(history.publications(), 3u);
  EXPECT_EQ(history.bytes(), 3u * 4);  // "\x81\x02m3": a 2-byte header and 2 bytes each
  std::vector<MessageRef> missed;
  History::Locked stream = history.lock("a:1", kStream, 0);
  EXPECT_TRUE(stream.read_after(2, stream.epoch(), missed));
  EXPECT_EQ(offsets(missed), (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(missed.back()->payload(), "m5");
}

TEST(History, ReadsFromAnOffsetStillCovered) {
  History history;
  for (int i = 0; i < 4; ++i) publish(history, "a:1", 0);
  History::Locked stream = history.lock("a:1", kStream, 0);
  std::vector<MessageRef> missed;
  EXPECT_TRUE(stream.read_after(3, stream.epoch(), missed));
  EXPECT_EQ(offsets(missed), (std::vector<std::uint64_t>{4}));
  missed.clear();
  EXPECT_TRUE(stream.read_after(4, stream.epoch(), missed));  // up to date: nothing missed
  EXPECT_TRUE(missed.empty());
}

TEST(History, RefusesAnOffsetNoLongerCoveredAheadOrOfAnotherEpoch) {
  History history;
  for (int i = 0; i < 5; ++i) publish(history, "a:1", 0);  // keeps 3, 4, 5
  History::Locked stream = history.lock("a:1", kStream, 0);
  std::vector<MessageRef> missed;
  EXPECT_FALSE(stream.read_after(1, stream.epoch(), missed));  // 2 is gone
  EXPECT_FALSE(stream.read_after(6, stream.epoch(), missed));  // never given
  EXPECT_FALSE(stream.read_after(4, "another", missed));
  EXPECT_TRUE(missed.empty());
}

TEST(History, ExpiresPublicationsAfterTheirTtl) {
  History history;
  publish(history, "a:1", 0);
  publish(history, "a:1", 600);
  {
    History::Locked stream = history.lock("a:1", kStream, 1000);  // the first has expired
    std::vector<MessageRef> missed;
    EXPECT_FALSE(stream.read_after(0, stream.epoch(), missed));
    EXPECT_TRUE(stream.read_after(1, stream.epoch(), missed));
    EXPECT_EQ(offsets(missed), (std::vector<std::uint64_t>{2}));
  }
  EXPECT_EQ(history.publications(), 1u);
  History::Locked stream = history.lock("a:1", kStream, 1600);  // all expired: offsets stay
  std::vector<MessageRef> missed;
  EXPECT_FALSE(stream.read_after(1, stream.epoch(), missed));
  EXPECT_TRUE(stream.read_after(2, stream.epoch(), missed));
  EXPECT_EQ(stream.top(), 2u);
}

TEST(History, SweepFreesStreamsEmptyAndIdlePastTheirTtl) {
  History history;
  publish(history, "a:1", 0);
  const std::string epoch = epoch_of(history, "a:1", 0);
  publish(history, "a:2", 5000);
  for (std::size_t i = 0; i < History::kShards / History::kShardsPerSweep; ++i) history.sweep(5500);
  EXPECT_EQ(history.streams(), 1u);
  EXPECT_EQ(history.publications(), 1u);
  // a:1 comes back as a new stream: a new epoch, offsets from 1 again.
  EXPECT_NE(epoch_of(history, "a:1", 5500), epoch);
  EXPECT_EQ(publish(history, "a:1", 5500), 1u);
}

TEST(History, CacheModeSendsTheLatestOnly) {
  History history;
  for (int i = 0; i < 3; ++i) publish(history, "p:1", 0, kCache);
  History::Locked stream = history.lock("p:1", kCache, 0);
  std::vector<MessageRef> missed;
  EXPECT_TRUE(stream.read_after(1, stream.epoch(), missed));
  EXPECT_EQ(offsets(missed), (std::vector<std::uint64_t>{3}));
  missed.clear();
  EXPECT_TRUE(stream.read_after(3, stream.epoch(), missed));  // up to date
  EXPECT_TRUE(missed.empty());
  EXPECT_TRUE(stream.read_after(7, "another", missed));  // the latest value is the whole state
  EXPECT_EQ(offsets(missed), (std::vector<std::uint64_t>{3}));
}

TEST(History, CacheModeCannotRecoverOnceTheLatestExpired) {
  History history;
  publish(history, "p:1", 0, kCache);
  History::Locked stream = history.lock("p:1", kCache, 1000);
  std::vector<MessageRef> missed;
  EXPECT_FALSE(stream.read_after(0, stream.epoch(), missed));
  EXPECT_TRUE(stream.read_after(1, stream.epoch(), missed));
}

TEST(History, OnePlanOfRecoveryForEveryEngine) {
  using enum Recovery;
  // top 10 of epoch "e", kept from 6 on.
  EXPECT_EQ(plan_recovery(10, "e", 6, 10, "e", false), nothing_missed);
  EXPECT_EQ(plan_recovery(10, "e", 6, 5, "e", false), after_since);
  EXPECT_EQ(plan_recovery(10, "e", 6, 4, "e", false), impossible);   // 5 is gone
  EXPECT_EQ(plan_recovery(10, "e", 6, 11, "e", false), impossible);  // never given
  EXPECT_EQ(plan_recovery(10, "e", 6, 5, "other", false), impossible);
  EXPECT_EQ(plan_recovery(10, "e", 6, 0, "other", true), latest);
  EXPECT_EQ(plan_recovery(10, "e", 11, 0, "other", true), impossible);  // nothing kept
  EXPECT_EQ(plan_recovery(0, "e", 1, 0, "e", false), nothing_missed);
}

}  // namespace
}  // namespace pylon::pubsub
