#include "cluster/channel_message.hpp"

#include <charconv>
#include <cstring>
#include <random>

namespace pylon::cluster {

InstanceId random_instance_id() {
  // std::random_device reads getrandom(2) on Linux: unpredictable, so two instances started in
  // the same instant (containers, tests) still differ.
  std::random_device device;
  InstanceId id{};
  for (std::size_t i = 0; i < id.size(); i += 4) {
    const std::uint32_t word = device();
    std::memcpy(id.data() + i, &word, 4);
  }
  return id;
}

void encode_channel_message(std::string& out, const InstanceId& sender, ws::Opcode opcode,
                            std::string_view payload) {
  out.resize(kChannelHeaderSize + payload.size());
  out[0] = static_cast<char>(kChannelMessageVersion);
  out[1] = static_cast<char>(opcode);
  std::memcpy(out.data() + 2, sender.data(), sender.size());
  if (!payload.empty())
    std::memcpy(out.data() + kChannelHeaderSize, payload.data(), payload.size());
}

std::optional<ChannelMessage> decode_channel_message(std::string_view bytes) noexcept {
  if (bytes.size() < kChannelHeaderSize) return std::nullopt;
  if (static_cast<std::uint8_t>(bytes[0]) != kChannelMessageVersion) return std::nullopt;
  const auto opcode = static_cast<ws::Opcode>(static_cast<std::uint8_t>(bytes[1]));
  if (opcode != ws::Opcode::text && opcode != ws::Opcode::binary) return std::nullopt;
  ChannelMessage message{
      .opcode = opcode, .sender = {}, .payload = bytes.substr(kChannelHeaderSize)};
  std::memcpy(message.sender.data(), bytes.data() + 2, kInstanceIdSize);
  return message;
}

std::string history_message_header(const InstanceId& sender, ws::Opcode opcode) {
  std::string header;
  encode_channel_message(header, sender, opcode, {});
  header[0] = static_cast<char>(kHistoryMessageVersion);
  return header;
}

std::optional<HistoryMessage> decode_history_message(std::string_view bytes) noexcept {
  if (bytes.size() < kChannelHeaderSize ||
      static_cast<std::uint8_t>(bytes[0]) != kHistoryMessageVersion)
    return std::nullopt;
  const auto opcode = static_cast<ws::Opcode>(static_cast<std::uint8_t>(bytes[1]));
  if (opcode != ws::Opcode::text && opcode != ws::Opcode::binary) return std::nullopt;
  std::string_view rest = bytes.substr(kChannelHeaderSize);
  HistoryMessage message{.opcode = opcode, .offset = 0, .epoch = {}, .payload = {}};
  const auto parsed = std::from_chars(rest.data(), rest.data() + rest.size(), message.offset);
  if (parsed.ec != std::errc() || message.offset == 0) return std::nullopt;
  rest.remove_prefix(static_cast<std::size_t>(parsed.ptr - rest.data()));
  const std::size_t epoch_end = rest.find(' ', 1);
  if (rest.empty() || rest.front() != ' ' || epoch_end == std::string_view::npos)
    return std::nullopt;
  message.epoch = rest.substr(1, epoch_end - 1);
  message.payload = rest.substr(epoch_end + 1);
  return message;
}

}  // namespace pylon::cluster
