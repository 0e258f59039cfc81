#include "pubsub/presence.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace pylon::pubsub {
namespace {

TEST(PresenceTable, JoinsAndLeavesPerTopicAndCountsMembers) {
  PresenceTable table;
  EXPECT_TRUE(table.join("room", {.client = "a", .user = "ada", .info = "{}"}));
  EXPECT_TRUE(table.join("room", {.client = "b", .user = "", .info = ""}));
  EXPECT_TRUE(table.join("other", {.client = "a", .user = "ada", .info = "{}"}));
  // The same client again replaces its entry (a refresh may change its info).
  EXPECT_FALSE(table.join("room", {.client = "a", .user = "ada", .info = R"({"v":2})"}));
  EXPECT_EQ(table.size(), 3u);
  PresenceMembers room = table.members("room");
  std::sort(room.begin(), room.end(),
            [](const auto& x, const auto& y) { return x.client < y.client; });
  ASSERT_EQ(room.size(), 2u);
  EXPECT_EQ(room[0].info, R"({"v":2})");
  EXPECT_TRUE(table.leave("room", "a"));
  EXPECT_FALSE(table.leave("room", "a"));
  EXPECT_FALSE(table.leave("nowhere", "a"));
  EXPECT_TRUE(table.leave("room", "b"));
  EXPECT_TRUE(table.members("room").empty());
  EXPECT_EQ(table.size(), 1u);
  std::size_t topics = 0;
  table.for_each([&](const std::string& topic, const auto& members) {
    ++topics;
    EXPECT_EQ(topic, "other");
    EXPECT_EQ(members.size(), 1u);
  });
  EXPECT_EQ(topics, 1u);  // an emptied topic is freed
}

TEST(PresenceTable, LoopsJoinAndLeaveConcurrently) {
  PresenceTable table;
  std::vector<std::thread> loops;
  for (int loop = 0; loop < 4; ++loop)
    loops.emplace_back([&table, loop] {
      for (int index = 0; index < 1000; ++index) {
        const std::string client = std::to_string(loop) + "-" + std::to_string(index);
        table.join("topic-" + std::to_string(index % 7), {.client = client});
        if (index % 2 == 0) table.leave("topic-" + std::to_string(index % 7), client);
      }
    });
  for (auto& thread : loops) thread.join();
  EXPECT_EQ(table.size(), 2000u);
  std::size_t listed = 0;
  for (int topic = 0; topic < 7; ++topic)
    listed += table.members("topic-" + std::to_string(topic)).size();
  EXPECT_EQ(listed, 2000u);
}

TEST(PresenceStats, CountsClientsAndDistinctNonEmptyUsers) {
  const PresenceMembers members{{.client = "1", .user = "ada"},
                                {.client = "2", .user = "ada"},
                                {.client = "3", .user = "bob"},
                                {.client = "4", .user = ""},
                                {.client = "5", .user = ""}};
  const PresenceStats stats = presence_stats(members);
  EXPECT_EQ(stats.clients, 5u);
  EXPECT_EQ(stats.users, 2u);
  EXPECT_EQ(presence_stats({}).clients, 0u);
}

}  // namespace
}  // namespace pylon::pubsub
