#include "pubsub/inbox.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace pylon::pubsub {
namespace {

MessageRef publication(std::string_view topic, std::string_view payload) {
  const std::string_view parts[] = {payload};
  return make_message(topic, ws::Opcode::text, parts);
}

// "topic:payload" of each message, in order.
std::vector<std::string> names(const std::vector<MessageRef>& batch) {
  std::vector<std::string> result;
  for (const MessageRef& message : batch)
    result.push_back(message->topic + ":" + std::string(message->payload()));
  return result;
}

TEST(Inbox, OneTopicComesOutInPublishOrder) {
  Inbox inbox;
  inbox.add_local(publication("a", "1"));
  inbox.add_local(publication("a", "2"));
  std::vector<MessageRef> batch;
  EXPECT_FALSE(inbox.take(batch));
  EXPECT_EQ(names(batch), (std::vector<std::string>{"a:1", "a:2"}));
  EXPECT_TRUE(inbox.empty());
}

TEST(Inbox, InterleavedTopicsComeOutAsOneRunEachInOrderOfFirstPublication) {
  Inbox inbox;
  for (const char* name : {"b:1", "a:1", "b:2", "c:1", "a:2", "b:3"})
    inbox.add_local(publication(std::string_view(name, 1), name + 2));
  std::vector<MessageRef> batch;
  EXPECT_TRUE(inbox.take(batch));
  EXPECT_EQ(names(batch), (std::vector<std::string>{"b:1", "b:2", "b:3", "a:1", "a:2", "c:1"}));
  EXPECT_TRUE(inbox.empty());
}

TEST(Inbox, AsksForOneWakeUpPerBatchUntilCollected) {
  Inbox inbox;
  std::vector<MessageRef> first = {publication("a", "1"), publication("a", "2")};
  std::vector<MessageRef> second = {publication("a", "3")};
  EXPECT_TRUE(inbox.add_remote(first));    // the loop must be woken
  EXPECT_FALSE(inbox.add_remote(second));  // a wake-up is on its way
  EXPECT_TRUE(inbox.empty());              // nothing is delivered before the loop collects
  inbox.collect();
  std::vector<MessageRef> third = {publication("a", "4")};
  EXPECT_TRUE(inbox.add_remote(third));
  std::vector<MessageRef> batch;
  inbox.take(batch);
  EXPECT_EQ(names(batch), (std::vector<std::string>{"a:1", "a:2", "a:3"}));
  inbox.collect();
  batch.clear();
  inbox.take(batch);
  EXPECT_EQ(names(batch), (std::vector<std::string>{"a:4"}));
}

TEST(Inbox, KeepsEachThreadsOrderUnderConcurrentBatches) {
  Inbox inbox;
  constexpr int kThreads = 4, kBatches = 500, kPerBatch = 3;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&inbox, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<MessageRef> messages;
        for (int i = 0; i < kPerBatch; ++i)
          messages.push_back(publication(std::to_string(t), std::to_string(b * kPerBatch + i)));
        inbox.add_remote(messages);
      }
    });
  for (auto& thread : threads) thread.join();
  inbox.collect();
  std::vector<MessageRef> batch;
  EXPECT_TRUE(inbox.take(batch));
  ASSERT_EQ(batch.size(), std::size_t{kThreads * kBatches * kPerBatch});
  std::vector<int> next(kThreads, 0);
  for (const MessageRef& message : batch) {
    const int thread = std::stoi(message->topic);
    EXPECT_EQ(std::stoi(std::string(message->payload())), next[thread]++);
  }
}

}  // namespace
}  // namespace pylon::pubsub
