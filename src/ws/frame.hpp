// RFC 6455 §5.2 frame basics shared by the parser and the writers: roles, opcodes, the frame
// header writer and payload masking. Pure functions over caller-owned buffers; no state, no
// allocation, callable from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
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
std::size_t write_frame_header(std::uint8_t* out, Opcode opcode, std::uint64_t payload_length,
                               bool fin = true, bool rsv1 = false,
                               const MaskingKey* masking_key = nullptr) noexcept;

// XORs data in place with the key starting at key position `key_offset` (0..3), a machine word
// (8 bytes) at a time; returns the key position after the data ((key_offset + size) % 4).
// Masking and unmasking are the same operation (RFC 6455 §5.3).
std::size_t apply_mask(std::span<std::uint8_t> data, const MaskingKey& key,
                       std::size_t key_offset = 0) noexcept;

}  // namespace pylon::ws
