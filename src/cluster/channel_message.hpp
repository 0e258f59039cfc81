// The bytes a pylon instance publishes on a Redis channel (docs/cluster.md "Message format"):
//
//   [version: 1 byte = 1][opcode: 1 byte, 0x1 text or 0x2 binary][instance id: 16 bytes][payload]
//
// The instance id is random per process start; a subscriber drops messages carrying its own id
// because the publishing instance has already delivered them to its local subscribers.
//
// A publication of a topic with history is version 2, written by the append script
// (redis_history.cpp) and delivered by every instance, its publisher's too:
//
//   [version: 1 byte = 2][opcode][instance id: 16 bytes][offset in decimal] [epoch] [payload]
//
// Sans-I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ws/frame.hpp"

namespace pylon::cluster {

inline constexpr std::uint8_t kChannelMessageVersion = 1;
inline constexpr std::uint8_t kHistoryMessageVersion = 2;
inline constexpr std::size_t kInstanceIdSize = 16;
inline constexpr std::size_t kChannelHeaderSize = 2 + kInstanceIdSize;

using InstanceId = std::array<std::uint8_t, kInstanceIdSize>;

// 16 bytes from the operating system's random source.
InstanceId random_instance_id();

// Replaces out with header + payload (out's capacity is reused: no allocation once it is large
// enough).
void encode_channel_message(std::string& out, const InstanceId& sender, ws::Opcode opcode,
                            std::string_view payload);

struct ChannelMessage {
  ws::Opcode opcode;
  InstanceId sender;
  std::string_view payload;  // into the decoded bytes
};

// The version 2 header up to the offset, which the append script completes.
std::string history_message_header(const InstanceId& sender, ws::Opcode opcode);

struct HistoryMessage {
  ws::Opcode opcode;
  std::uint64_t offset;
  std::string_view epoch, payload;  // into the decoded bytes
};

// Empty when the bytes are not a version 2 message.
std::optional<HistoryMessage> decode_history_message(std::string_view bytes) noexcept;

// Empty when the bytes are not a message of this version: too short, another version, or an
// opcode other than text or binary.
std::optional<ChannelMessage> decode_channel_message(std::string_view bytes) noexcept;

}  // namespace pylon::cluster
