#include "ws/handshake.hpp"

// SHA1_Init and friends are deprecated in OpenSSL 3.0: see compute_accept_key for why they are
// used.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace pylon::ws {

namespace {

// RFC 6455 §1.3: the GUID appended to the client's key.
constexpr std::string_view kHandshakeGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool is_base64_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Standard base64 with padding (RFC 4648 §4); out must hold 4 * ceil(size / 3) chars.
void base64_encode(const std::uint8_t* in, std::size_t size, char* out) noexcept {
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const std::uint32_t v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
    *out++ = kBase64Alphabet[(v >> 18) & 63];
    *out++ = kBase64Alphabet[(v >> 12) & 63];
    *out++ = kBase64Alphabet[(v >> 6) & 63];
    *out++ = kBase64Alphabet[v & 63];
  }
  if (size - i == 1) {
    const std::uint32_t v = in[i] << 16;
    *out++ = kBase64Alphabet[(v >> 18) & 63];
    *out++ = kBase64Alphabet[(v >> 12) & 63];
    *out++ = '=';
    *out++ = '=';
  } else if (size - i == 2) {
    const std::uint32_t v = (in[i] << 16) | (in[i + 1] << 8);
    *out++ = kBase64Alphabet[(v >> 18) & 63];
    *out++ = kBase64Alphabet[(v >> 12) & 63];
    *out++ = kBase64Alphabet[(v >> 6) & 63];
    *out++ = '=';
  }
}

constexpr bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

// RFC 9110 §5.6.1 list element with optional whitespace removed.
std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Calls f(element) for each trimmed, non-empty element of a comma-separated list until f returns
// true; returns that element, or an empty view.
template <typename F>
std::string_view find_list_element(std::string_view list, F&& f) noexcept {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty() && f(element)) return element;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return {};
}

}  // namespace

bool is_valid_client_key(std::string_view key) noexcept {
  // 16 bytes = 22 base64 characters carrying data + "==" (§4.1: "a randomly selected 16-byte
  // value that has been base64-encoded").
  if (key.size() != kClientKeySize || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i) {
    if (!is_base64_char(key[i])) return false;
  }
  return true;
}

void compute_accept_key(std::string_view key, char out[kAcceptKeySize]) noexcept {
  // The low-level digest on purpose: SHA1() and the EVP interface of OpenSSL 3 load the provider
  // machinery on first use (about 2 MiB of libcrypto pages and 140 KiB of heap per process, then
  // three short-lived allocations per handshake, interleaved with the connections); these
  // functions compute the digest on the stack. They are deprecated in 3.0, not removed.
  SHA_CTX context;
  SHA1_Init(&context);
  SHA1_Update(&context, key.data(), key.size());
  SHA1_Update(&context, kHandshakeGuid.data(), kHandshakeGuid.size());
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1_Final(digest, &context);
  base64_encode(digest, sizeof(digest), out);
}

std::string accept_key(std::string_view key) {
  char out[kAcceptKeySize];
  compute_accept_key(key, out);
  return std::string(out, kAcceptKeySize);
}

std::string_view select_subprotocol(std::string_view offered,
                                    std::span<const std::string> supported) noexcept {
  return find_list_element(offered, [supported](std::string_view element) {
    for (const std::string& protocol : supported) {
      if (element == protocol) return true;  // §4.1: subprotocol names are case-sensitive
    }
    return false;
  });
}

std::string generate_client_key() {
  std::uint8_t nonce[16];
  if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
    throw std::runtime_error("RAND_bytes failed while generating Sec-WebSocket-Key");
  }
  std::string key(kClientKeySize, '\0');
  base64_encode(nonce, sizeof(nonce), key.data());
  return key;
}

}  // namespace pylon::ws
