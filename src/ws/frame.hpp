// RFC 6455 §5.2 frame basics shared by the parser and the writers: roles, opcodes, the frame
// header writer and payload masking. Pure functions over caller-owned buffers; no state, no
// allocation, callable from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace pylon::ws {

// Which end of the connection we are: decides which direction must be masked (RFC 6455 §5.1).
enum class Role : std::uint8_t { server, client };

// RFC 6455 §5.2 / §11.8. Values 0x3-0x7 and 0xB-0xF are reserved and rejected by the parser.
enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA
};

// RFC 6455 §5.5: control opcodes are those with the high bit of the 4-bit opcode set.
constexpr bool is_control(Opcode op) noexcept {
  return (static_cast<std::uint8_t>(op) & 0x8) != 0;
}

// True for the six opcodes RFC 6455 defines (added: the parser and tests share this table).
constexpr bool is_known_opcode(std::uint8_t op) noexcept {
  return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

// 2 bytes of fixed header + 8 bytes of 64-bit length + 4 bytes of masking key.
inline constexpr std::size_t kMaxFrameHeaderSize = 14;
// RFC 6455 §5.5: all control frames MUST have a payload length of 125 bytes or less.
inline constexpr std::size_t kMaxControlPayload = 125;

using MaskingKey = std::array<std::uint8_t, 4>;

// Size of the header write_frame_header produces for these parameters (added).
constexpr std::size_t frame_header_size(std::uint64_t payload_length, bool masked) noexcept {
  const std::size_t length_size = payload_length < 126 ? 0 : payload_length <= 0xFFFF ? 2 : 8;
  return 2 + length_size + (masked ? 4 : 0);
}

// Writes a frame header into out (room for kMaxFrameHeaderSize bytes); returns its size.
// Minimal length encoding (7-bit, 16-bit, 64-bit). A client passes a masking key (sets MASK and
// writes the key); the caller then masks the payload with apply_mask.
// payload_length must be below 2^63 (RFC 6455 §5.2: the most significant bit MUST be 0).
inline std::size_t write_frame_header(std::uint8_t* out, Opcode opcode,
                                      std::uint64_t payload_length, bool fin = true,
                                      bool rsv1 = false,
                                      const MaskingKey* masking_key = nullptr) noexcept {
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

// XORs data in place with the key starting at key position `key_offset` (0..3), a machine word
// (8 bytes) at a time; returns the key position after the data ((key_offset + size) % 4).
// Masking and unmasking are the same operation (RFC 6455 §5.3).
inline std::size_t apply_mask(std::span<std::uint8_t> data, const MaskingKey& key,
                              std::size_t key_offset = 0) noexcept {
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

namespace detail {
// Unmasks the Word at p with `key` (the masking key repeated to Word's size), moves p and n past
// it and returns it unmasked.
template <typename Word>
Word unmask_word(std::uint8_t*& p, std::size_t& n, const Word& key) noexcept {
  Word word;
  std::memcpy(&word, p, sizeof word);
  word ^= key;
  std::memcpy(p, &word, sizeof word);
  p += sizeof word;
  n -= sizeof word;
  return word;
}
}  // namespace detail

// Unmasks a payload that starts at key position 0, in place, and tells whether every byte of it
// is ASCII: one pass for what apply_mask and a UTF-8 test would do in two, for the parser's whole
// short messages (issue 17). The bytes are tested as they are written, unmasked.
inline bool unmask_is_ascii(std::span<std::uint8_t> data, const MaskingKey& key) noexcept {
  std::uint8_t* p = data.data();
  std::size_t n = data.size();
  std::uint32_t key32;
  std::memcpy(&key32, key.data(), 4);
  const std::uint64_t key64 = (std::uint64_t{key32} << 32) | key32;
  // 16 bytes at a time (a GCC/Clang vector: SSE2 on x86-64), then steps of 8, 4 and 1 byte; the
  // key position is 0 again after every whole word.
  using Block = std::uint64_t __attribute__((vector_size(16)));
  Block seen128 = {0, 0};  // every unmasked byte ORed in
  while (n >= 16) seen128 |= detail::unmask_word(p, n, Block{key64, key64});
  std::uint64_t seen = seen128[0] | seen128[1];
  if (n >= 8) seen |= detail::unmask_word(p, n, key64);
  if (n >= 4) seen |= detail::unmask_word(p, n, key32);
  for (std::size_t i = 0; i < n; ++i) {
    p[i] ^= key[i];
    seen |= p[i];
  }
  return (seen & 0x8080808080808080ULL) == 0;
}

}  // namespace pylon::ws
