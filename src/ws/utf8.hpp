// Incremental UTF-8 validation (RFC 3629 §4, as required for text messages by RFC 6455 §8.1).
// Chunks are fed in order and a code point may be split across them, so a text message split over
// frames and reads is validated without buffering. One validator per message; not thread-safe,
// three bytes of state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace pylon::ws {

// feed() returns false at the first byte that makes the input invalid (fail fast: e.g. 0xF4 0x90
// fails on the second byte, 0xC0 on the first), including surrogates and overlongs. Once it has
// returned false the validator stays failed until reset().
// Fast paths: ASCII a word at a time; large chunks use simdjson::validate_utf8 on the complete
// prefix plus this small carried state for the incomplete tail.
class Utf8Validator {
 public:
  bool feed(std::span<const std::uint8_t> chunk) noexcept;
  bool complete() const noexcept { return needed_ == 0; }  // no partial code point pending
  void reset() noexcept { *this = Utf8Validator{}; }

 private:
  static constexpr std::uint8_t kFailed = 0xFF;

  bool step(std::uint8_t byte) noexcept;

  std::uint8_t needed_ = 0;    // continuation bytes still expected, or kFailed
  std::uint8_t lower_ = 0x80;  // allowed range of the next continuation byte: narrower than
  std::uint8_t upper_ = 0xBF;  // 80..BF right after E0, ED, F0, F4 (RFC 3629 §4 table)
};

bool is_valid_utf8(std::span<const std::uint8_t> data) noexcept;  // whole buffer

}  // namespace pylon::ws
