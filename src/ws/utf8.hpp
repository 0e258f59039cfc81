// Incremental UTF-8 validation (RFC 3629 §4, as required for text messages by RFC 6455 §8.1).
// Chunks are fed in order and a code point may be split across them, so a text message split over
// frames and reads is validated without buffering. One validator per message; not thread-safe,
// three bytes of state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace pylon::ws {

// feed() returns false at the first byte that makes the input invalid (fail fast: e.g. 0xF4 0x90
// fails on the second byte, 0xC0 on the first), including surrogates and overlongs. Once it has
// returned false the validator stays failed until reset().
// Fast paths: ASCII a word at a time; large chunks use simdjson::validate_utf8 on the complete
// prefix plus this small carried state for the incomplete tail.
class Utf8Validator {
 public:
  bool feed(std::span<const std::uint8_t> chunk) noexcept {
    // Inline: a short chunk of ASCII with nothing pending, the common text message, costs a few
    // word tests rather than a call (issue 17: the call cost more than checking 16 bytes).
    if (needed_ == 0 && chunk.size() <= kInlineBytes &&
        ascii_prefix(chunk.data(), chunk.size()) == chunk.size())
      return true;
    return feed_bytes(chunk);
  }
  bool complete() const noexcept { return needed_ == 0; }  // no partial code point pending
  void reset() noexcept { *this = Utf8Validator{}; }

  // Leading bytes known to be ASCII, tested a word at a time, the last < 8 bytes one by one:
  // stops at the start of the first word holding a byte >= 0x80, so it is n exactly when all n
  // bytes are ASCII.
  static std::size_t ascii_prefix(const std::uint8_t* p, std::size_t n) noexcept {
    std::size_t i = 0;
    for (; n - i >= 8; i += 8) {
      std::uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ULL) != 0) return i;
    }
    while (i < n && p[i] < 0x80) ++i;
    return i;
  }

 private:
  static constexpr std::uint8_t kFailed = 0xFF;
  static constexpr std::size_t kInlineBytes = 32;

  bool feed_bytes(std::span<const std::uint8_t> chunk) noexcept;
  bool step(std::uint8_t byte) noexcept;

  std::uint8_t needed_ = 0;    // continuation bytes still expected, or kFailed
  std::uint8_t lower_ = 0x80;  // allowed range of the next continuation byte: narrower than
  std::uint8_t upper_ = 0xBF;  // 80..BF right after E0, ED, F0, F4 (RFC 3629 §4 table)
};

bool is_valid_utf8(std::span<const std::uint8_t> data) noexcept;  // whole buffer

}  // namespace pylon::ws
