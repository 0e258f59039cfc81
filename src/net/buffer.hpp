// Connection buffers (receive remainders, backlogs, partial messages) are reused across messages;
// one that grew for a single big message is given back rather than kept for the connection's
// lifetime, so that memory per connection stays proportional to its steady traffic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
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

// Bytes on their way to the kernel: the loop's cork and a connection's backlog (outbox.hpp).
// An append is a capacity test and a copy: std::string's append also checks max_size and the
// short-string buffer and writes a terminating NUL on every call, which was a fifth of a small
// echo's instructions with two appends per frame (issue 17). Grows by doubling; keeps its
// memory until release().
class ByteBuffer {
 public:
  char* data() noexcept { return data_.get(); }
  const char* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  // Room for `count` more bytes at the end, counted in size() already: the caller writes them
  // all (a frame is written in place: ws/session.hpp).
  char* extend(std::size_t count) {
    if (capacity_ - size_ < count) grow(size_ + count);
    char* end = data_.get() + size_;
    size_ += count;
    return end;
  }
  void append(const char* bytes, std::size_t count) {
    char* end = extend(count);
    if (count != 0) std::memcpy(end, bytes, count);  // bytes may be null then
  }
  void append(std::string_view bytes) { append(bytes.data(), bytes.size()); }
  void reserve(std::size_t capacity) {
    if (capacity > capacity_) grow(capacity);
  }
  void clear() noexcept { size_ = 0; }
  void release() noexcept {  // empty, and its memory given back
    data_.reset();
    size_ = capacity_ = 0;
  }

 private:
  void grow(std::size_t needed);  // to at least `needed` bytes of capacity

  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// The same bytes seen as text, or text seen as bytes (no copy).
inline std::string_view as_text(std::span<const std::uint8_t> bytes) noexcept {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
inline std::span<const std::uint8_t> as_bytes(std::string_view text) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace pylon::net
