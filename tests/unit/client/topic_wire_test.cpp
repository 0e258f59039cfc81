// The client's reading of the /ws protocol (src/client/topic_wire.cpp): deliveries in the
// server's fixed envelope, replies through simdjson, and the judgement of offsets.
#include "client/topic_wire.hpp"

#include <gtest/gtest.h>

namespace pylon::client {
namespace {

TEST(TopicWire, DeliveryWithAndWithoutOffset) {
  TopicMessage message;
  ASSERT_TRUE(parse_topic_message(
      R"({"type":"message","topic":"chat:1","offset":42,"data":{"a":[1,"}"]}})", message));
  EXPECT_EQ(message.topic, "chat:1");
  EXPECT_EQ(message.offset, 42u);
  EXPECT_EQ(message.data, R"({"a":[1,"}"]})");
  ASSERT_TRUE(parse_topic_message(R"({"type":"message","topic":"t","data":null})", message));
  EXPECT_EQ(message.topic, "t");
  EXPECT_EQ(message.offset, 0u);
  EXPECT_EQ(message.data, "null");
}

TEST(TopicWire, NotADelivery) {
  TopicMessage message;
  for (const char* text : {R"({"type":"ack","id":1})", R"({"type":"message","topic":"t"})",
                           R"({"type":"message","topic":"t","data":})",
                           R"({"type":"message","topic":"t","offset":x,"data":1})",
                           R"({"type":"message","topic":"t","offset":,"data":1})",
                           R"({"type":"message","topic":"t)", ""})
    EXPECT_FALSE(parse_topic_message(text, message)) << text;
}

TEST(TopicWire, JudgesOffsets) {
  EXPECT_EQ(judge_offset(0, 1), OffsetVerdict::next);
  EXPECT_EQ(judge_offset(41, 42), OffsetVerdict::next);
  EXPECT_EQ(judge_offset(41, 41), OffsetVerdict::duplicate);
  EXPECT_EQ(judge_offset(41, 3), OffsetVerdict::duplicate);
  EXPECT_EQ(judge_offset(41, 43), OffsetVerdict::gap);
}

TEST(TopicWire, SubscribeAckWithPositions) {
  ReplyReader reader;
  Reply reply;
  ASSERT_TRUE(reader.read(
      R"({"type":"ack","id":7,"positions":{"chat:1":{"offset":41,"epoch":"9c1e","recovered":false},"chat:2":{"offset":0,"epoch":"ab"}}})",
      reply));
  EXPECT_EQ(reply.kind, Reply::Kind::ack);
  EXPECT_EQ(reply.id, 7u);
  ASSERT_EQ(reply.positions.size(), 2u);
  EXPECT_EQ(reply.positions[0].topic, "chat:1");
  EXPECT_EQ(reply.positions[0].offset, 41u);
  EXPECT_EQ(reply.positions[0].epoch, "9c1e");
  EXPECT_TRUE(reply.positions[0].recovery);
  EXPECT_FALSE(reply.positions[0].recovered);
  EXPECT_EQ(reply.positions[1].topic, "chat:2");
  EXPECT_FALSE(reply.positions[1].recovery);
}

TEST(TopicWire, PublishAckErrorAndUnsubscribed) {
  ReplyReader reader;
  Reply reply;
  ASSERT_TRUE(reader.read(R"({"type":"ack","id":3,"offset":42})", reply));
  EXPECT_TRUE(reply.has_offset);
  EXPECT_EQ(reply.offset, 42u);
  EXPECT_TRUE(reply.positions.empty());
  ASSERT_TRUE(reader.read(R"({"type":"error","id":"req-7","code":"bad_topic","message":"a \"b\""})",
                          reply));
  EXPECT_EQ(reply.kind, Reply::Kind::error);
  EXPECT_EQ(reply.id, 0u);  // not one of ours
  EXPECT_EQ(reply.code, "bad_topic");
  EXPECT_EQ(reply.text, R"(a "b")");
  ASSERT_TRUE(reader.read(R"({"type":"unsubscribed","topic":"t","reason":"r"})", reply));
  EXPECT_EQ(reply.kind, Reply::Kind::unsubscribed);
  EXPECT_EQ(reply.topic, "t");
  EXPECT_EQ(reply.text, "r");
  ASSERT_TRUE(reader.read(R"({"type":"refresh","reason":"token_expired","grace":30})", reply));
  EXPECT_EQ(reply.kind, Reply::Kind::other);
}

TEST(TopicWire, BadReplies) {
  ReplyReader reader;
  Reply reply;
  EXPECT_FALSE(reader.read("[1]", reply));
  EXPECT_FALSE(reader.read("{", reply));
  EXPECT_FALSE(reader.read(R"({"type":"ack","offset":"x"})", reply));
  EXPECT_FALSE(reader.read(R"({"type":"ack","positions":{"t":{"offset":-1,"epoch":"e"}}})", reply));
}

}  // namespace
}  // namespace pylon::client
