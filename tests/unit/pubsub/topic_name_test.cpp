#include "pubsub/topic_name.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pylon::pubsub {
namespace {

TEST(TopicName, CharsetAndLength) {
  EXPECT_TRUE(is_valid_topic("chat"));
  EXPECT_TRUE(is_valid_topic("room:42/user@example.com_x-y.z"));
  EXPECT_TRUE(is_valid_topic(std::string(kMaxTopicLength, 'a')));
  EXPECT_FALSE(is_valid_topic(std::string(kMaxTopicLength + 1, 'a')));
  EXPECT_FALSE(is_valid_topic(""));
  for (const char* bad : {"a b", "a\"b", "a\\b", "a*", "é", "a\n", "a#b", "a,b"})
    EXPECT_FALSE(is_valid_topic(bad)) << bad;
}

TEST(TopicName, HiddenTopicsAreNoClientsName) {
  EXPECT_TRUE(is_hidden_topic("#join_leave:chat:1"));
  EXPECT_FALSE(is_valid_topic("#join_leave:chat:1"));  // so no request can name one
  for (const char* not_hidden : {"#", "chat", "##a", "#a b", "a#b"})
    EXPECT_FALSE(is_hidden_topic(not_hidden)) << not_hidden;
}

}  // namespace
}  // namespace pylon::pubsub
