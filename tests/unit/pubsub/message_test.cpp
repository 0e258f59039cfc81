#include "pubsub/message.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pylon::pubsub {
namespace {

TEST(Message, EncodesOneUnmaskedFrameFromParts) {
  const std::string_view parts[] = {"he", "llo"};
  const MessageRef message = make_message("t", ws::Opcode::text, parts);
  EXPECT_EQ(message->topic, "t");
  EXPECT_EQ(message->frame, std::string("\x81\x05hello", 7));
}

TEST(Message, UsesTheExtendedLengthWhenNeeded) {
  const std::string payload(70000, 'x');
  const std::string_view parts[] = {payload};
  const MessageRef message = make_message("t", ws::Opcode::binary, parts);
  ASSERT_EQ(message->frame.size(), 10 + payload.size());
  EXPECT_EQ(static_cast<unsigned char>(message->frame[0]), 0x82);
  EXPECT_EQ(static_cast<unsigned char>(message->frame[1]), 127);
}

}  // namespace
}  // namespace pylon::pubsub
