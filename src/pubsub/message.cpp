#include "pubsub/message.hpp"

namespace pylon::pubsub {

MessageRef make_message(std::string_view topic, ws::Opcode opcode, std::span<const std::string_view> payload_parts) {
  auto message = std::make_shared<Message>();
  message->topic = topic;
  message->opcode = opcode;
  std::size_t payload_size = 0;
  for (const std::string_view part : payload_parts) payload_size += part.size();
  message->payload_size = payload_size;
  std::uint8_t header[ws::kMaxFrameHeaderSize];
  const std::size_t header_size = ws::write_frame_header(header, opcode, payload_size);
  message->frame.reserve(header_size + payload_size);
  message->frame.append(reinterpret_cast<const char*>(header), header_size);
  for (const std::string_view part : payload_parts) message->frame.append(part);
  return message;
}

}  // namespace pylon::pubsub
