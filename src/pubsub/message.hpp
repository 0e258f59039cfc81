// A published message, encoded once as a complete server WebSocket frame and shared by
// reference among every loop and subscriber that delivers it (DESIGN.md "The engine").
// Immutable after creation, so any thread may read it; the shared_ptr count is the only
// synchronisation.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ws/frame.hpp"

namespace pylon::pubsub {

struct Message {
  std::string topic;
  std::string frame;  // header + payload, ready for the socket
  std::size_t payload_size = 0;
  ws::Opcode opcode = ws::Opcode::text;
};

using MessageRef = std::shared_ptr<const Message>;

// One allocation for the shared block plus one for each string: once per publish, never per
// subscriber (the point of encoding once).
MessageRef make_message(std::string_view topic, ws::Opcode opcode, std::span<const std::string_view> payload_parts);

}  // namespace pylon::pubsub
