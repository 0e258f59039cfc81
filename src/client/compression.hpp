// permessage-deflate (RFC 7692) on one open client connection: the agreed parameters, the
// compressor for what we send and the decompressor for what we receive. Created only when the
// handshake agreed the extension, so connections without it pay one null pointer; the cost of one
// (zlib's windows) is written next to CompressionOptions in include/pylon/client.hpp.
//
// Owned by its Connection, used on the connection's loop thread only. No I/O: bytes in, bytes out.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "pylon/client.hpp"
#include "ws/permessage_deflate.hpp"
#include "ws/session.hpp"

namespace pylon::client {

// The offer our options make (deflate_offer's input).
ws::DeflateClientOptions deflate_client_options(const CompressionOptions& options) noexcept;

class MessageCompression {
 public:
  // Throws std::bad_alloc when zlib cannot allocate its state.
  MessageCompression(const CompressionOptions& options, const ws::DeflateParams& agreed,
                     std::string_view extensions);

  // One piece of a received compressed message (any split, as the frame parser delivers it);
  // done: message() holds all of it. The inflated size counts against `limit` while inflating
  // (RFC 7692 §8.1's bomb). The session (ws/session.hpp) checks the UTF-8 of inflated text.
  ws::InflateStatus inflate(std::span<const std::uint8_t> piece, bool first, bool last,
                            std::uint64_t limit);
  std::string_view message() const noexcept { return inflated_; }
  void message_delivered() noexcept;  // after done: drops the message (keeps a small buffer)

  // Whether a message of this size is compressed (the threshold).
  bool should_compress(std::size_t size) const noexcept { return size >= threshold_; }
  // The compressed payload of `message` (§7.2.1); valid until the next call.
  std::string_view compress(std::string_view message);

  const ws::DeflateParams& params() const noexcept { return params_; }
  std::string_view extensions() const noexcept { return extensions_; }
  // What zlib has allocated for both streams (bytes).
  std::size_t allocated_bytes() const noexcept;

 private:
  ws::DeflateParams params_;
  std::string extensions_;
  std::size_t threshold_;
  ws::MessageDeflater deflater_;
  ws::MessageInflater inflater_;
  std::string inflated_;    // the message being inflated
  std::string compressed_;  // the last message compressed
};

}  // namespace pylon::client
