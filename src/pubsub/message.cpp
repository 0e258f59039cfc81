#include "pubsub/message.hpp"

namespace pylon::pubsub {

MessageRef make_message(std::string_view topic, ws::Opcode opcode,
                        std::span<const std::string_view> payload_parts, std::uint64_t offset) {
  auto message = std::make_shared<Message>();
  message->topic = topic;
  message->opcode = opcode;
  message->offset = offset;
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

const std::string& Message::compressed_frame(std::uint8_t window_bits,
                                             ws::MessageDeflater& deflater, bool& created) const {
  std::lock_guard lock(compressed_mutex_);
  created = false;
  for (const auto& [bits, frame] : compressed_)
    if (bits == window_bits) return *frame;
  std::string compressed;
  deflater.compress(payload(), compressed);
  auto framed = std::make_unique<std::string>();
  std::uint8_t header[ws::kMaxFrameHeaderSize];
  const std::size_t header_size =
      ws::write_frame_header(header, opcode, compressed.size(), true, true);
  framed->reserve(header_size + compressed.size());
  framed->append(reinterpret_cast<const char*>(header), header_size);
  framed->append(compressed);
  compressed_.emplace_back(window_bits, std::move(framed));
  created = true;
  return *compressed_.back().second;
}

}  // namespace pylon::pubsub
