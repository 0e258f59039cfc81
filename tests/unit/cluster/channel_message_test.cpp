#include "cluster/channel_message.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pylon::cluster {
namespace {

TEST(ChannelMessage, RoundTripAndLayout) {
  const InstanceId id = random_instance_id();
  std::string bytes;
  encode_channel_message(bytes, id, ws::Opcode::binary, std::string_view("\x00\x01z", 3));
  ASSERT_EQ(bytes.size(), kChannelHeaderSize + 3);
  EXPECT_EQ(bytes[0], 1);
  EXPECT_EQ(bytes[1], 2);
  const auto message = decode_channel_message(bytes);
  ASSERT_TRUE(message);
  EXPECT_EQ(message->opcode, ws::Opcode::binary);
  EXPECT_EQ(message->sender, id);
  EXPECT_EQ(message->payload, std::string_view("\x00\x01z", 3));

  // The buffer is reused: a shorter message replaces a longer one entirely.
  encode_channel_message(bytes, id, ws::Opcode::text, "");
  EXPECT_EQ(bytes.size(), kChannelHeaderSize);
  EXPECT_EQ(decode_channel_message(bytes)->payload, "");
  EXPECT_EQ(decode_channel_message(bytes)->opcode, ws::Opcode::text);
}

TEST(ChannelMessage, InstanceIdsDiffer) {
  EXPECT_NE(random_instance_id(), random_instance_id());
}

TEST(ChannelMessage, RejectsWhatIsNotOurs) {
  std::string bytes;
  encode_channel_message(bytes, random_instance_id(), ws::Opcode::text, "x");
  EXPECT_FALSE(decode_channel_message(std::string_view(bytes).substr(0, kChannelHeaderSize - 1)));
  std::string other_version = bytes;
  other_version[0] = 2;
  EXPECT_FALSE(decode_channel_message(other_version));
  for (const char opcode : {'\x00', '\x08', '\x09', '\x0a', '\x03'}) {
    std::string bad = bytes;
    bad[1] = opcode;
    EXPECT_FALSE(decode_channel_message(bad)) << int(opcode);
  }
  EXPECT_FALSE(decode_channel_message("hello from redis-cli"));
}

TEST(ChannelMessage, HistoryMessagesCarryOffsetAndEpoch) {
  // What the append script PUBLISHes: the header, then "OFFSET EPOCH PAYLOAD".
  const std::string header = history_message_header(random_instance_id(), ws::Opcode::binary);
  ASSERT_EQ(header.size(), kChannelHeaderSize);
  const auto message =
      decode_history_message(std::string(header).append("42 0a1b2c payload with spaces"));
  ASSERT_TRUE(message);
  EXPECT_EQ(message->opcode, ws::Opcode::binary);
  EXPECT_EQ(message->offset, 42u);
  EXPECT_EQ(message->epoch, "0a1b2c");
  EXPECT_EQ(message->payload, "payload with spaces");
  EXPECT_FALSE(
      decode_channel_message(std::string(header).append("42 e p")));  // not a version 1 message
  for (const char* bad : {"", "42", "42 e", "0 e p", "x e p", "42e p"})
    EXPECT_FALSE(decode_history_message(std::string(header).append(bad))) << bad;
  std::string version_one;
  encode_channel_message(version_one, random_instance_id(), ws::Opcode::text, "42 e p");
  EXPECT_FALSE(decode_history_message(version_one));
}

}  // namespace
}  // namespace pylon::cluster
