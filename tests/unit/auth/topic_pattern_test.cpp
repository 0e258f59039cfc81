// Tests for src/auth/topic_pattern.*: exact names and one trailing '*'.
#include "auth/topic_pattern.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pylon::auth {
namespace {

TEST(TopicPatternTest, Validity) {
  for (const char* valid : {"news", "chat:room-1", "chat:*", "*", "a/b@c.d_e", "chat*"})
    EXPECT_TRUE(is_valid_topic_pattern(valid)) << valid;
  for (const char* invalid : {"", "*chat", "chat:**", "ch*at", "a b", "chat:?", "{a,b}", "**"})
    EXPECT_FALSE(is_valid_topic_pattern(invalid)) << invalid;
  EXPECT_TRUE(is_valid_topic_pattern(std::string(128, 'a')));
  EXPECT_FALSE(is_valid_topic_pattern(std::string(129, 'a')));
  EXPECT_TRUE(is_valid_topic_pattern(std::string(127, 'a') + "*"));
}

TEST(TopicPatternTest, ExactNames) {
  EXPECT_TRUE(topic_matches("news", "news"));
  EXPECT_FALSE(topic_matches("news", "news2"));
  EXPECT_FALSE(topic_matches("news", "new"));
  EXPECT_FALSE(topic_matches("news", "NEWS"));
}

TEST(TopicPatternTest, TrailingStarIsAPrefix) {
  EXPECT_TRUE(topic_matches("chat:*", "chat:room-1"));
  EXPECT_TRUE(topic_matches("chat:*", "chat:"));
  EXPECT_TRUE(topic_matches("chat:*", "chat:a/b:c"));
  EXPECT_FALSE(topic_matches("chat:*", "chat"));
  EXPECT_FALSE(topic_matches("chat:*", "chatter"));
  EXPECT_TRUE(topic_matches("chat*", "chatter"));
  EXPECT_TRUE(topic_matches("*", "anything"));
  EXPECT_TRUE(topic_matches("*", "pylon/stats"));  // the server decides about its own topics
}

TEST(TopicPatternTest, AnyOfAList) {
  const std::vector<std::string> patterns = {"chat:*", "news"};
  EXPECT_TRUE(any_topic_matches(patterns, "chat:x"));
  EXPECT_TRUE(any_topic_matches(patterns, "news"));
  EXPECT_FALSE(any_topic_matches(patterns, "news:eu"));
  EXPECT_FALSE(any_topic_matches({}, "news"));
}

}  // namespace
}  // namespace pylon::auth
