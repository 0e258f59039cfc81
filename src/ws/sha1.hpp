// SHA-1 (FIPS 180-4 §6.1), for the opening handshake's Sec-WebSocket-Accept only (RFC 6455 §4.2.2):
// not for anything that needs a secure hash. pylon's own rather than libcrypto's: the first
// handshake of a process would fault in about 124 KiB of libcrypto's pages for these few hundred
// instructions (docs/benchmarks.md "Idle memory per connection"), and it allocates nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pylon::ws {

class Sha1 {
 public:
  static constexpr std::size_t kDigestSize = 20;
  void update(std::string_view bytes) noexcept;
  std::array<std::uint8_t, kDigestSize> digest() noexcept;  // once, after the last update

 private:
  void compress() noexcept;  // block_ is full

  std::array<std::uint32_t, 5> state_{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  std::array<std::uint8_t, 64> block_{};
  std::size_t filled_ = 0;    // bytes in block_
  std::uint64_t length_ = 0;  // bytes hashed
};

}  // namespace pylon::ws
