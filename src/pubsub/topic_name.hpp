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

// Topics under "pylon/" belong to the server itself (the dashboard's pylon/stats): published by
// the server alone, never by clients, and local to each instance (no cluster engine), since
// what they carry describes this instance.
constexpr bool is_server_topic(std::string_view name) noexcept {
  return name.starts_with("pylon/");
}

// Hidden topics: '#' and a valid name, e.g. "#join_leave:chat:1". '#' is outside the charset, so
// no client request can name one (the protocol checks names with is_valid_topic); the server
// subscribes connections to them itself, e.g. to deliver join/leave messages only to the
// subscribers that asked for them without a filter in the delivery path.
constexpr bool is_hidden_topic(std::string_view name) noexcept {
  return name.size() > 1 && name.front() == '#' && is_valid_topic(name.substr(1));
}

}  // namespace pylon::pubsub
