// RFC 6455 §4 opening-handshake helpers: the Sec-WebSocket-Key check, the Sec-WebSocket-Accept
// computation, comma-separated header token lists and subprotocol selection, and the client's key.
// Pure functions over strings, no HTTP types (the HTTP layer extracts the header values); callable
// from any thread.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace pylon::ws {

inline constexpr std::size_t kAcceptKeySize = 28;  // base64 of a 20-byte SHA-1 digest
inline constexpr std::size_t kClientKeySize = 24;  // base64 of 16 bytes (added)

// True when key is base64 (with padding) of exactly 16 bytes (24 chars ending in "=="), §4.1.
// Like common decoders, the 4 unused bits of the last data character are not required to be zero.
bool is_valid_client_key(std::string_view key) noexcept;

// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) into out[28] (§4.2.2 step 5.4).
// out is not NUL-terminated.
void compute_accept_key(std::string_view key, char out[kAcceptKeySize]) noexcept;
std::string accept_key(std::string_view key);

// First protocol of the client's offer (Sec-WebSocket-Protocol, comma list, client preference
// order) that the server supports (exact, case-sensitive per RFC); empty view when none. The
// result points into `offered`.
std::string_view select_subprotocol(std::string_view offered,
                                    std::span<const std::string> supported) noexcept;

// Client role: a fresh Sec-WebSocket-Key (16 random bytes from OpenSSL RAND_bytes, base64), §4.1.
// Throws std::runtime_error if the random generator fails (handshake set-up, not a hot path).
std::string generate_client_key();

}  // namespace pylon::ws
