// A published message, encoded once as a complete server WebSocket frame and shared by
// reference among every loop and subscriber that delivers it (DESIGN.md "The engine").
// Immutable after creation, so any thread may read it; the shared_ptr count is the only
// synchronisation.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ws/frame.hpp"
#include "ws/permessage_deflate.hpp"

namespace pylon::pubsub {

struct Message {
  std::string topic;
  std::string frame;  // header + payload, ready for the socket
  std::size_t payload_size = 0;
  ws::Opcode opcode = ws::Opcode::text;
  // Its place in the topic's history (pubsub/history.hpp), from 1; 0 on a topic without history.
  std::uint64_t offset = 0;

  std::string_view payload() const noexcept {
    return std::string_view(frame).substr(frame.size() - payload_size);
  }
  // The permessage-deflate frame (RSV1 set) for subscribers whose compressor window is
  // window_bits, compressed once by the first caller with `deflater` (a no-context-takeover
  // compressor of that window) and shared by all later ones. created: this call compressed it.
  // Any thread.
  const std::string& compressed_frame(std::uint8_t window_bits, ws::MessageDeflater& deflater,
                                      bool& created) const;

 private:
  mutable std::mutex compressed_mutex_;
  mutable std::vector<std::pair<std::uint8_t, std::unique_ptr<std::string>>> compressed_;
};

using MessageRef = std::shared_ptr<const Message>;

// One allocation for the shared block plus one for each string: once per publish, never per
// subscriber (the point of encoding once).
MessageRef make_message(std::string_view topic, ws::Opcode opcode,
                        std::span<const std::string_view> payload_parts, std::uint64_t offset = 0);

}  // namespace pylon::pubsub
