#include "pubsub/topic_registry.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace pylon::pubsub {
namespace {

TEST(TopicRegistry, TracksWorkersAndCounts) {
  TopicRegistry registry(4);
  EXPECT_EQ(registry.lookup("a").subscribers, 0u);
  registry.add_subscriber("a", 0);
  registry.add_subscriber("a", 0);
  registry.add_subscriber("a", 3);
  auto lookup = registry.lookup("a");
  EXPECT_EQ(lookup.subscribers, 3u);
  EXPECT_EQ(lookup.workers, 0b1001u);
  registry.remove_subscriber("a", 0);
  EXPECT_EQ(registry.lookup("a").workers, 0b1001u);  // worker 0 still has one
  registry.remove_subscriber("a", 0);
  EXPECT_EQ(registry.lookup("a").workers, 0b1000u);
  registry.remove_subscriber("a", 3);
  EXPECT_EQ(registry.lookup("a").subscribers, 0u);
  EXPECT_EQ(registry.topic_count(), 0u);  // no entry left behind
}

TEST(TopicRegistry, InterestHookFiresOnFirstAndLastSubscriberOfTheInstance) {
  TopicRegistry registry(2);
  std::vector<std::pair<std::string, bool>> calls;
  registry.set_interest_hook(
      [&calls](std::string_view topic, bool interested) { calls.emplace_back(topic, interested); });
  registry.add_subscriber("a", 0);
  registry.add_subscriber("a", 1);  // not the first of the instance
  registry.remove_subscriber("a", 0);
  registry.remove_subscriber("a", 1);
  registry.add_subscriber("b", 1);
  EXPECT_EQ(calls,
            (std::vector<std::pair<std::string, bool>>{{"a", true}, {"a", false}, {"b", true}}));
  EXPECT_EQ(registry.topics(), std::vector<std::string>{"b"});
}

TEST(TopicRegistry, RemovingWhatWasNeverAddedIsHarmless) {
  TopicRegistry registry(2);
  registry.remove_subscriber("ghost", 1);
  registry.add_subscriber("a", 1);
  registry.remove_subscriber("a", 0);
  EXPECT_EQ(registry.lookup("a").subscribers, 1u);
}

TEST(TopicRegistry, ConcurrentWorkersKeepExactCounts) {
  TopicRegistry registry(4);
  std::vector<std::thread> threads;
  for (unsigned worker = 0; worker < 4; ++worker)
    threads.emplace_back([&registry, worker] {
      for (int i = 0; i < 10000; ++i) registry.add_subscriber("t", worker);
      for (int i = 0; i < 9999; ++i) registry.remove_subscriber("t", worker);
    });
  for (auto& thread : threads) thread.join();
  const auto lookup = registry.lookup("t");
  EXPECT_EQ(lookup.subscribers, 4u);
  EXPECT_EQ(lookup.workers, 0b1111u);
}

}  // namespace
}  // namespace pylon::pubsub
