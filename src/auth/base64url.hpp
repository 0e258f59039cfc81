// base64url (RFC 4648 §5) as JWS uses it (RFC 7515 §2): the URL-safe alphabet, no '=' padding,
// no line breaks or whitespace. Decoding is strict: padding, characters outside the alphabet, a
// length of 4k+1, or non-zero unused bits in the last character are all refused, so every byte
// string has exactly one accepted text (a token cannot be re-encoded into a second valid form).
// Pure functions; callable from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pylon::auth {

// Bytes that text of this length decodes to (text of a length 4k+1 decodes to nothing).
constexpr std::size_t base64url_decoded_size(std::size_t text_size) noexcept {
  return text_size / 4 * 3 + (text_size % 4 == 0 ? 0 : text_size % 4 - 1);
}

// Decodes text into out, which must hold base64url_decoded_size(text.size()) bytes. Returns false
// (out's contents unspecified) when the text is not strict base64url.
bool base64url_decode(std::string_view text, std::uint8_t* out) noexcept;

// Appends the unpadded base64url text of bytes to out (tests, the fuzz harness).
void base64url_encode(std::span<const std::uint8_t> bytes, std::string& out);
std::string base64url_encode(std::string_view bytes);

}  // namespace pylon::auth
