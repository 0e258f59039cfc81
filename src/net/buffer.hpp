// Connection buffers (receive remainders, backlogs, partial messages) are reused across messages;
// one that grew for a single big message is given back rather than kept for the connection's
// lifetime, so that memory per connection stays proportional to its steady traffic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pylon::net {

// Capacity a connection buffer keeps when emptied; beyond it, the memory is released.
inline constexpr std::size_t kKeepCapacity = 64 * 1024;

// Empties buffer, releasing its memory when it grew past kKeepCapacity.
inline void release_if_large(std::string& buffer) {
  if (buffer.capacity() > kKeepCapacity)
    std::string().swap(buffer);
  else
    buffer.clear();
}

// The same bytes seen as text, or text seen as bytes (no copy).
inline std::string_view as_text(std::span<const std::uint8_t> bytes) noexcept {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
inline std::span<const std::uint8_t> as_bytes(std::string_view text) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace pylon::net
