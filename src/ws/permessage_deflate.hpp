// permessage-deflate (RFC 7692): the negotiation of the extension's parameters in server and client
// role (§7.1), and the message codec (§7.2) on zlib raw deflate. Sans-I/O (STYLE rule 1): header
// values in, header values and parameters out; message bytes in, message bytes out.
//
// Negotiation functions are pure and callable from any thread. A MessageDeflater / MessageInflater
// owns one zlib stream (heap-allocated once at construction: zlib keeps a pointer back to it, so
// the object can move but the stream does not); it is used by one thread at a time. With
// no_context_takeover one deflater may serve many connections of the same loop (compress-once
// broadcast), since nothing of one message is carried into the next.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pylon::ws {

inline constexpr std::string_view kPermessageDeflate = "permessage-deflate";
inline constexpr std::uint8_t kMinWindowBits = 8;   // RFC 7692 §7.1.2
inline constexpr std::uint8_t kMaxWindowBits = 15;  // 32 KiB, also the default when not negotiated

constexpr std::uint8_t clamp_window_bits(std::uint8_t bits) noexcept {
  return bits < kMinWindowBits ? kMinWindowBits : bits > kMaxWindowBits ? kMaxWindowBits : bits;
}

// The agreement of one connection (RFC 7692 §7.1), seen from the role that holds it.
struct DeflateParams {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  std::uint8_t server_max_window_bits = 15;  // 8..15; the server's compressor window
  std::uint8_t client_max_window_bits = 15;  // 8..15; the client's compressor window
};

// What the server is willing to do (from config).
struct DeflateServerPolicy {
  // false: "shared" mode: server_no_context_takeover and client_no_context_takeover are always
  // agreed, so one deflater can compress a broadcast once for every subscriber.
  bool context_takeover = false;
  // The largest window the server uses for its own compressor (8..15, clamped). zlib cannot
  // compress raw deflate with 8 bits: the deflater uses 9 then (see MessageDeflater).
  std::uint8_t max_window_bits = 15;
  // Added: the largest window the server asks the client's compressor to use, i.e. the server's
  // inflate window (memory per connection). Only sent when the client offered
  // client_max_window_bits (§7.1.2.2); otherwise the client may use 15 and the server inflates
  // with 15.
  std::uint8_t client_max_window_bits = 15;
};

// Server role: `offers` is the full Sec-WebSocket-Extensions value (several headers joined with
// ", "), possibly with several comma-separated offers and other extensions. Picks the FIRST
// permessage-deflate offer that is acceptable; an offer is declined (the next one is tried) when
// it has a syntax error, an unknown parameter, a duplicate parameter or an invalid value (§7.1).
// Writes the response value into `response` (e.g. "permessage-deflate; server_no_context_takeover;
// client_no_context_takeover; client_max_window_bits=15") and returns the agreed params;
// std::nullopt (response empty) when no offer is acceptable. Quoted-string values ("10") are
// allowed (RFC 6455 §9.1); the extension and parameter names match case-insensitively.
std::optional<DeflateParams> negotiate_deflate(std::string_view offers,
                                               const DeflateServerPolicy& policy,
                                               std::string& response);

// Client role.
struct DeflateClientOptions {
  // Offer server_no_context_takeover and client_no_context_takeover: no context takeover in
  // either direction (small memory on both sides). The server MUST accept the former (§7.1.1.1).
  bool request_no_context_takeover = false;
  // The largest window the client inflates with: offered as server_max_window_bits when < 15.
  std::uint8_t max_window_bits = 15;
};

// The Sec-WebSocket-Extensions request value; always offers client_max_window_bits (no value), so
// the server may limit the client's compressor window.
std::string deflate_offer(const DeflateClientOptions& options);

// Validates the server's Sec-WebSocket-Extensions response value against the offer made from
// `options` (§7.1). Three outcomes:
//   - params: the extension is in use with these parameters;
//   - nullopt with `error` empty: the server did not accept the extension (empty response);
//   - nullopt with `error` set: the client MUST fail the connection (unknown parameter, duplicate,
//     invalid value, server_max_window_bits larger than offered or missing when offered,
//     server_no_context_takeover missing when requested, an extension that was not offered...).
std::optional<DeflateParams> accept_deflate_response(std::string_view response,
                                                     const DeflateClientOptions& options,
                                                     std::string& error);

// Compresses whole messages (RFC 7692 §7.2.1): raw deflate, Z_SYNC_FLUSH, the trailing
// 00 00 ff ff removed. With no_context_takeover the stream is reset after each message, which is
// what lets one compressor serve many connections ("shared" mode, compress-once broadcast).
class MessageDeflater {
 public:
  // window_bits 8..15 (8 is compressed with 9: zlib refuses 8 for raw deflate, as in other
  // implementations), memory_level 1..9 (clamped), compression_level 0..9 (added; zlib's default
  // is 6). Throws std::bad_alloc when zlib cannot allocate its state.
  MessageDeflater(std::uint8_t window_bits, int memory_level, bool no_context_takeover,
                  int compression_level = 6);
  ~MessageDeflater();
  MessageDeflater(MessageDeflater&&) noexcept;
  MessageDeflater& operator=(MessageDeflater&&) noexcept;
  MessageDeflater(const MessageDeflater&) = delete;
  MessageDeflater& operator=(const MessageDeflater&) = delete;

  // Appends the compressed payload of `message` to out (an empty message gives one byte, 0x00).
  void compress(std::span<const std::uint8_t> message, std::string& out);
  void compress(std::string_view message, std::string& out) {
    compress({reinterpret_cast<const std::uint8_t*>(message.data()), message.size()}, out);
  }

  // zlib's documented formula (zconf.h): (1 << (windowBits + 2)) + (1 << (memLevel + 9)), plus
  // the deflate state itself (a few KiB).
  static std::size_t memory_estimate(std::uint8_t window_bits, int memory_level);
  // Added: what zlib has actually allocated for this stream (bytes).
  std::size_t allocated_bytes() const noexcept;

 private:
  struct Stream;
  std::unique_ptr<Stream> stream_;
  bool no_context_takeover_;
};

// Decompresses messages fed in pieces (any split of the compressed payload, across frames/reads).
class MessageInflater {
 public:
  enum class Status : std::uint8_t { ok, too_large, corrupt };

  // window_bits 8..15 (8 inflates with 9, which accepts everything 8 does and also peers that,
  // like us, compress an agreed 8 with 9). Throws std::bad_alloc when zlib cannot allocate.
  MessageInflater(std::uint8_t window_bits, bool no_context_takeover);
  ~MessageInflater();
  MessageInflater(MessageInflater&&) noexcept;
  MessageInflater& operator=(MessageInflater&&) noexcept;
  MessageInflater(const MessageInflater&) = delete;
  MessageInflater& operator=(const MessageInflater&) = delete;

  // Inflates `compressed` (a piece of one message), appending the output to `out`, never letting
  // the message's total inflated size pass `limit`: too_large as soon as it would (out then holds
  // at most `limit` bytes of this message; a 1 KiB bomb never allocates more than ~limit), corrupt
  // on a zlib error. `last` marks the final piece of the message: the 00 00 ff ff tail is appended
  // internally (§7.2.2) and, with no_context_takeover, the stream is reset afterwards. After
  // too_large or corrupt the stream is reset (message and window discarded): fail the connection.
  Status inflate(std::span<const std::uint8_t> compressed, bool last, std::uint64_t limit,
                 std::string& out);
  Status inflate(std::string_view compressed, bool last, std::uint64_t limit, std::string& out) {
    return inflate({reinterpret_cast<const std::uint8_t*>(compressed.data()), compressed.size()},
                   last, limit, out);
  }
  void reset() noexcept;  // discard a half-inflated message (e.g. after an error) and the window

  // Inflated bytes of the current (unfinished) message so far (added).
  std::uint64_t message_size() const noexcept { return message_size_; }
  // zlib's documented formula (zconf.h): (1 << windowBits) plus the inflate state (~7 KiB).
  static std::size_t memory_estimate(std::uint8_t window_bits);
  std::size_t allocated_bytes() const noexcept;  // added: what zlib has actually allocated

 private:
  struct Stream;
  Status run(const std::uint8_t* data, std::size_t size, std::uint64_t limit, std::string& out);
  Status fail(Status status) noexcept;

  std::unique_ptr<Stream> stream_;
  std::uint64_t message_size_ = 0;
  bool no_context_takeover_;
  // The stream sits at a byte-aligned deflate block boundary (fresh, after a BFINAL block, or
  // after a complete flush marker): the 00 00 ff ff tail must not be appended there.
  bool at_block_boundary_ = true;
};

}  // namespace pylon::ws
