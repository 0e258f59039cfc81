// Topic history in Redis (src/cluster/redis_history.cpp) through the engine, against a real
// redis-server: offsets and epochs, every instance delivering in offset order (the publisher's
// too), reads, an append kept across an outage and stored once, and the append script's
// sequence numbers (a resend stored once).
#include "cluster/redis_history.hpp"

#include <gtest/gtest.h>

#include "engine_instance.hpp"

namespace pylon::cluster {
namespace {

using testing::eventually;
using testing::Instance;
using testing::Received;
using testing::RedisServer;

constexpr pubsub::HistoryPolicy kPolicy{.size = 3, .ttl_ms = 60000};
constexpr auto kWait = std::chrono::seconds(10);

TEST(RedisHistory, AppendsGetOffsetsAndEveryInstanceDeliversThemInOrder) {
  RedisServer redis;
  Instance a(redis.url()), b(redis.url());
  a.subscribe("h");
  b.subscribe("h");
  ASSERT_TRUE(
      eventually([&] { return a.available() && b.available() && redis.numsub("test:h") == 2; }));
  const auto first = a.append("h", "{\"n\":", ",\"offset\":", "}", kPolicy).get();
  EXPECT_EQ(first.first, 1u);
  EXPECT_EQ(first.second.size(), 14u);  // a new epoch
  const auto second = b.append("h", "plain", "", "", kPolicy).get();
  EXPECT_EQ(second, std::make_pair(std::uint64_t{2}, first.second));
  for (Instance* instance : {&a, &b}) {
    ASSERT_TRUE(eventually([&] { return instance->received_count() == 2; }));
    EXPECT_EQ(instance->received()[0],
              (Received{"h", ws::Opcode::text, "{\"n\":,\"offset\":1}", 1}));
    EXPECT_EQ(instance->received()[1], (Received{"h", ws::Opcode::text, "plain", 2}));
  }
}

TEST(RedisHistory, ReadsThePositionAndTheKeptPublications) {
  RedisServer redis;
  Instance a(redis.url());
  ASSERT_TRUE(eventually([&] { return a.available(); }));
  // A topic without a stream gets one (and an epoch that holds) when read.
  const pubsub::HistoryRead fresh = a.read("r", kPolicy, std::nullopt);
  EXPECT_EQ(fresh.top, 0u);
  EXPECT_EQ(fresh.epoch.size(), 14u);
  EXPECT_EQ(a.read("r", kPolicy, std::nullopt).epoch, fresh.epoch);
  for (int n = 1; n <= 5; ++n)
    ASSERT_EQ(a.append("r", std::to_string(n), "", "", kPolicy).wait_for(kWait),
              std::future_status::ready);
  const pubsub::HistoryRead read = a.read("r", kPolicy, 3);
  EXPECT_EQ(read.top, 5u);
  EXPECT_EQ(read.epoch, fresh.epoch);
  ASSERT_EQ(read.entries.size(), 3u);  // 3, 4, 5: the size keeps three
  EXPECT_EQ(read.entries[0].offset, 3u);
  EXPECT_EQ(read.entries[2].payload, "5");
  EXPECT_EQ(a.read("r", kPolicy, 1).entries.front().offset, 3u);  // 1 and 2 are trimmed
  EXPECT_EQ(redis.integer({"XLEN", "test:history:r"}), 3);
  const pubsub::HistoryRead latest =
      a.read("r", {.size = 3, .ttl_ms = 60000, .latest_only = true}, 0);
  ASSERT_EQ(latest.entries.size(), 1u);
  EXPECT_EQ(latest.entries[0].offset, 5u);
}

// Calls of EVALSHA Redis has answered since its statistics were last reset (INFO commandstats).
long long evalsha_calls(const RedisServer& redis) {
  const std::string stats = redis.text({"INFO", "commandstats"});
  const auto at = stats.find("cmdstat_evalsha:calls=");
  return at == std::string::npos ? 0 : std::stoll(stats.substr(at + 22));
}

TEST(RedisHistory, ReadsWaitingForTheSubscribeTogetherGoOutAsOne) {
  RedisServer redis;
  Instance a(redis.url());
  ASSERT_TRUE(eventually([&] { return a.available(); }));
  constexpr pubsub::HistoryPolicy kTen{.size = 10, .ttl_ms = 60000};
  for (int n = 1; n <= 5; ++n)
    ASSERT_EQ(a.append("w", std::to_string(n), "", "", kTen).wait_for(kWait),
              std::future_status::ready);
  redis.text({"CONFIG", "RESETSTAT"});
  // Subscribers of one topic recovering at once: three reads of one policy, one latest-only.
  const std::vector<pubsub::HistoryRead> answers =
      a.read_together("w",
                      {{kTen, 2},
                       {kTen, 4},
                       {kTen, std::nullopt},
                       {{.size = 10, .ttl_ms = 60000, .latest_only = true}, 1}},
                      true);
  EXPECT_EQ(evalsha_calls(redis), 2);  // one per policy
  for (const pubsub::HistoryRead& read : answers) EXPECT_EQ(read.top, 5u);
  const auto offsets = [](const pubsub::HistoryRead& read) {
    std::vector<std::uint64_t> offsets;
    for (const pubsub::HistoryEntry& entry : read.entries) offsets.push_back(entry.offset);
    return offsets;
  };
  EXPECT_EQ(offsets(answers[0]), (std::vector<std::uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(offsets(answers[1]), (std::vector<std::uint64_t>{4, 5}));
  EXPECT_TRUE(answers[2].entries.empty());  // the position only
  EXPECT_EQ(offsets(answers[3]), (std::vector<std::uint64_t>{5}));
  EXPECT_EQ(answers[1].entries[1].payload, "5");
}

TEST(RedisHistory, AnAppendDuringAnOutageIsKeptAndStoredOnceRedisIsBack) {
  RedisServer redis;
  Instance a(redis.url());
  ASSERT_TRUE(eventually([&] { return a.available(); }));
  ASSERT_EQ(a.append("o", "before", "", "", kPolicy).get().first, 1u);
  redis.kill_now();
  ASSERT_TRUE(eventually([&] { return !a.available(); }));
  // Accepted just before the engine noticed (the server refuses new ones while unavailable).
  const auto kept = a.append("o", "kept", "", "", kPolicy);
  EXPECT_EQ(kept.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  redis.start();  // empty: a new stream
  ASSERT_EQ(kept.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(kept.get().first, 1u);
  EXPECT_EQ(redis.integer({"XLEN", "test:history:o"}), 1);
}

TEST(RedisHistory, TheAppendScriptStoresAResentPublicationOnce) {
  RedisServer redis;
  // What a resend after a lost answer does: the same script, instance and sequence number.
  const std::string script(RedisHistory::append_script());
  const auto append = [&](const std::string& instance, const std::string& sequence) {
    return redis.integer({"EVAL", script, "2", "k:stream", "k:meta", "k:channel", "header", "head",
                          "", "", "10", "60000", "epoch1", "1", instance, sequence});
  };
  EXPECT_EQ(append("a", "1"), -1);  // an array answer: {offset, epoch}
  append("a", "2");
  append("b", "1");  // another instance's sequence numbers are its own
  EXPECT_EQ(redis.integer({"XLEN", "k:stream"}), 3);
  append("a", "1");
  append("a", "2");
  EXPECT_EQ(redis.integer({"XLEN", "k:stream"}), 3);
  EXPECT_EQ(redis.integer({"HINCRBY", "k:meta", "top", "0"}), 3);
  append("a", "3");
  EXPECT_EQ(redis.integer({"HINCRBY", "k:meta", "top", "0"}), 4);
}

}  // namespace
}  // namespace pylon::cluster
