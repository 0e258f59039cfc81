// Topic names (docs/protocol.md): 1 to 128 bytes of A-Z a-z 0-9 _ - . : / @.
// The charset needs no escaping in JSON or in Redis channel names, which keeps the
// encode-once path a plain concatenation.
#pragma once

#include <cstddef>
#include <string_view>

namespace pylon::pubsub {

inline constexpr std::size_t kMaxTopicLength = 128;

constexpr bool is_topic_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == ':' || c == '/' || c == '@';
}

constexpr bool is_valid_topic(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxTopicLength) return false;
  for (const char c : name)
    if (!is_topic_char(c)) return false;
  return true;
}

}  // namespace pylon::pubsub
