#include "auth/base64url.hpp"

#include <array>

namespace pylon::auth {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::uint8_t kInvalid = 0xFF;

constexpr std::array<std::uint8_t, 256> make_decode_table() {
  std::array<std::uint8_t, 256> table{};
  table.fill(kInvalid);
  for (std::uint8_t i = 0; i < 64; ++i) table[static_cast<unsigned char>(kAlphabet[i])] = i;
  return table;
}
constexpr auto kDecode = make_decode_table();

}  // namespace

bool base64url_decode(std::string_view text, std::uint8_t* out) noexcept {
  if (text.size() % 4 == 1) return false;  // 6 bits cannot make a byte
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t whole = text.size() / 4 * 4;
  std::size_t i = 0;
  for (; i < whole; i += 4) {
    const std::uint32_t a = kDecode[in[i]], b = kDecode[in[i + 1]], c = kDecode[in[i + 2]],
                        d = kDecode[in[i + 3]];
    // Valid values are below 64; kInvalid has the top bits set.
    if (((a | b | c | d) & 0xC0) != 0) return false;
    const std::uint32_t group = a << 18 | b << 12 | c << 6 | d;
    *out++ = static_cast<std::uint8_t>(group >> 16);
    *out++ = static_cast<std::uint8_t>(group >> 8);
    *out++ = static_cast<std::uint8_t>(group);
  }
  const std::size_t rest = text.size() - whole;
  if (rest == 0) return true;
  const std::uint32_t a = kDecode[in[i]], b = kDecode[in[i + 1]];
  const std::uint32_t c = rest == 3 ? kDecode[in[i + 2]] : 0;
  if (((a | b | c) & 0xC0) != 0) return false;
  // The bits past the last whole byte must be zero: otherwise several texts decode to the same
  // bytes (RFC 4648 §3.5 lets a decoder refuse them, and we do).
  if (rest == 2) {
    if ((b & 0x0F) != 0) return false;
    *out = static_cast<std::uint8_t>(a << 2 | b >> 4);
    return true;
  }
  if ((c & 0x03) != 0) return false;
  out[0] = static_cast<std::uint8_t>(a << 2 | b >> 4);
  out[1] = static_cast<std::uint8_t>(b << 4 | c >> 2);
  return true;
}

void base64url_encode(std::span<const std::uint8_t> bytes, std::string& out) {
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = bytes[i] << 16 | bytes[i + 1] << 8 | bytes[i + 2];
    out += kAlphabet[group >> 18];
    out += kAlphabet[(group >> 12) & 63];
    out += kAlphabet[(group >> 6) & 63];
    out += kAlphabet[group & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    out += kAlphabet[bytes[i] >> 2];
    out += kAlphabet[(bytes[i] & 3) << 4];
  } else if (rest == 2) {
    const std::uint32_t group = bytes[i] << 8 | bytes[i + 1];
    out += kAlphabet[group >> 10];
    out += kAlphabet[(group >> 4) & 63];
    out += kAlphabet[(group & 15) << 2];
  }
}

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  base64url_encode({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, out);
  return out;
}

}  // namespace pylon::auth
