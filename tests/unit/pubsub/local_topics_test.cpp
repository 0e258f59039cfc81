#include "pubsub/local_topics.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace pylon::pubsub {
namespace {

struct Subscriber {
  int id;
};

TEST(LocalTopics, AddFindRemoveAndEraseOnLastSubscriber) {
  LocalTopics<Subscriber> topics;
  Subscriber a{1}, b{2};
  auto& chat = topics.add("chat", &a);
  topics.add("chat", &b);
  EXPECT_EQ(topics.find("chat"), &chat);
  EXPECT_EQ(chat.subscribers.size(), 2u);
  topics.remove(chat, &a);
  EXPECT_EQ(topics.find("chat")->subscribers, std::vector<Subscriber*>{&b});
  topics.remove(*topics.find("chat"), &b);
  EXPECT_EQ(topics.find("chat"), nullptr);
  EXPECT_EQ(topics.size(), 0u);
}

TEST(LocalTopics, RemovalDuringAWalkLeavesAHoleThenCompacts) {
  LocalTopics<Subscriber> topics;
  Subscriber a{1}, b{2}, c{3};
  auto& topic = topics.add("t", &a);
  topics.add("t", &b);
  topics.add("t", &c);
  std::vector<int> visited;
  topics.for_each_subscriber(topic, [&](Subscriber& subscriber) {
    visited.push_back(subscriber.id);
    if (subscriber.id == 1) topics.remove(topic, &b);  // not yet visited: must be skipped
  });
  EXPECT_EQ(visited, (std::vector<int>{1, 3}));
  EXPECT_EQ(topics.find("t")->subscribers, (std::vector<Subscriber*>{&a, &c}));
}

TEST(LocalTopics, EveryoneLeavingDuringAWalkErasesTheTopicAfterIt) {
  LocalTopics<Subscriber> topics;
  Subscriber a{1}, b{2};
  auto& topic = topics.add("t", &a);
  topics.add("t", &b);
  topics.for_each_subscriber(topic,
                             [&](Subscriber& subscriber) { topics.remove(topic, &subscriber); });
  EXPECT_EQ(topics.find("t"), nullptr);
}

}  // namespace
}  // namespace pylon::pubsub
