#include "ws/frame.hpp"

#include <cstring>

namespace pylon::ws {

std::size_t write_frame_header(std::uint8_t* out, Opcode opcode, std::uint64_t payload_length,
                               bool fin, bool rsv1, const MaskingKey* masking_key) noexcept {
  out[0] = static_cast<std::uint8_t>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) |
                                     (static_cast<std::uint8_t>(opcode) & 0x0F));
  const std::uint8_t mask_bit = masking_key != nullptr ? 0x80 : 0;
  std::size_t size = 2;
  // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
  if (payload_length < 126) {
    out[1] = static_cast<std::uint8_t>(mask_bit | payload_length);
  } else if (payload_length <= 0xFFFF) {
    out[1] = mask_bit | 126;
    out[2] = static_cast<std::uint8_t>(payload_length >> 8);
    out[3] = static_cast<std::uint8_t>(payload_length);
    size = 4;
  } else {
    out[1] = mask_bit | 127;
    for (int i = 0; i < 8; ++i) {
      out[2 + i] = static_cast<std::uint8_t>(payload_length >> (56 - 8 * i));
    }
    size = 10;
  }
  if (masking_key != nullptr) {
    std::memcpy(out + size, masking_key->data(), 4);
    size += 4;
  }
  return size;
}

std::size_t apply_mask(std::span<std::uint8_t> data, const MaskingKey& key,
                       std::size_t key_offset) noexcept {
  key_offset &= 3;
  std::uint8_t* p = data.data();
  std::size_t n = data.size();
  if (n >= 8) {
    // The key repeated twice, rotated so that byte 0 of every 8-byte word lines up with key
    // position key_offset. Words are loaded with memcpy, so any alignment of data is fine; since
    // 8 is a multiple of 4 the key position is key_offset again after each word. The rotation
    // is 4 bytes read from the key written twice (a byte loop here cost more than the unmasking
    // of a 16-byte message).
    std::uint8_t twice[8];
    std::memcpy(twice, key.data(), 4);
    std::memcpy(twice + 4, key.data(), 4);
    std::uint32_t rotated;
    std::memcpy(&rotated, twice + key_offset, 4);
    const std::uint64_t word_key = (std::uint64_t{rotated} << 32) | rotated;
    while (n >= 32) {
      std::uint64_t w[4];
      std::memcpy(w, p, 32);
      w[0] ^= word_key;
      w[1] ^= word_key;
      w[2] ^= word_key;
      w[3] ^= word_key;
      std::memcpy(p, w, 32);
      p += 32;
      n -= 32;
    }
    while (n >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      w ^= word_key;
      std::memcpy(p, &w, 8);
      p += 8;
      n -= 8;
    }
  }
  for (std::size_t i = 0; i < n; ++i) p[i] ^= key[(key_offset + i) & 3];
  return (key_offset + data.size()) & 3;
}

}  // namespace pylon::ws
