#include "ws/utf8.hpp"

#include <simdjson.h>

namespace pylon::ws {

namespace {

// Below this many bytes the per-call cost of simdjson's dispatch is not worth it.
constexpr std::size_t kSimdThreshold = 64;

// Length of the sequence a lead byte announces (1 for ASCII and for bytes that cannot lead; the
// byte-wise step rejects the latter).
constexpr std::size_t sequence_length(std::uint8_t lead) noexcept {
  return lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
}

}  // namespace

bool Utf8Validator::step(std::uint8_t byte) noexcept {
  if (needed_ == 0) {
    if (byte < 0x80) return true;
    // RFC 3629 §4: 80..BF cannot lead; C0, C1 only start overlong 2-byte forms.
    if (byte < 0xC2) return false;
    if (byte < 0xE0) {
      needed_ = 1;
      return true;
    }
    if (byte < 0xF0) {
      needed_ = 2;
      lower_ = byte == 0xE0 ? 0xA0 : 0x80;  // E0 80..9F would be overlong
      upper_ = byte == 0xED ? 0x9F : 0xBF;  // ED A0..BF would be a surrogate (U+D800..DFFF)
      return true;
    }
    if (byte < 0xF5) {
      needed_ = 3;
      lower_ = byte == 0xF0 ? 0x90 : 0x80;  // F0 80..8F would be overlong
      upper_ = byte == 0xF4 ? 0x8F : 0xBF;  // F4 90.. would be above U+10FFFF
      return true;
    }
    return false;  // F5..FF: beyond U+10FFFF
  }
  if (byte < lower_ || byte > upper_) return false;
  lower_ = 0x80;
  upper_ = 0xBF;
  --needed_;
  return true;
}

bool Utf8Validator::feed_bytes(std::span<const std::uint8_t> chunk) noexcept {
  if (needed_ == kFailed) return false;
  const std::uint8_t* p = chunk.data();
  const std::size_t n = chunk.size();
  std::size_t i = 0;
  // Finish a code point left open by the previous chunk.
  while (needed_ != 0 && i < n) {
    if (!step(p[i++])) {
      needed_ = kFailed;
      return false;
    }
  }
  if (n - i >= kSimdThreshold) {
    // Split off an incomplete sequence at the very end (its lead is at most 3 bytes back) so
    // simdjson sees only whole code points; the tail goes through the byte-wise state below.
    std::size_t tail = n;
    for (std::size_t back = 1; back <= 3; ++back) {
      const std::uint8_t byte = p[n - back];
      if ((byte & 0xC0) == 0x80) continue;  // continuation byte: keep looking for its lead
      if (sequence_length(byte) > back) tail = n - back;
      break;
    }
    if (!simdjson::validate_utf8(reinterpret_cast<const char*>(p + i), tail - i)) {
      needed_ = kFailed;
      return false;
    }
    i = tail;
  }
  while (i < n) {
    if (needed_ == 0) {
      i += ascii_prefix(p + i, n - i);
      if (i == n) break;
    }
    if (!step(p[i++])) {
      needed_ = kFailed;
      return false;
    }
  }
  return true;
}

bool is_valid_utf8(std::span<const std::uint8_t> data) noexcept {
  Utf8Validator validator;
  return validator.feed(data) && validator.complete();
}

}  // namespace pylon::ws
