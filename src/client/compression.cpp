#include "client/compression.hpp"

#include <algorithm>

#include "net/buffer.hpp"

namespace pylon::client {
namespace {

std::uint8_t window_bits(std::uint8_t bits) noexcept {
  return std::clamp(bits, ws::kMinWindowBits, ws::kMaxWindowBits);
}

}  // namespace

ws::DeflateClientOptions deflate_client_options(const CompressionOptions& options) noexcept {
  return {.request_no_context_takeover = options.no_context_takeover,
          .max_window_bits = window_bits(options.max_window_bits)};
}

MessageCompression::MessageCompression(const CompressionOptions& options,
                                       const ws::DeflateParams& agreed, std::string_view extensions)
    : params_(agreed),
      extensions_(extensions),
      threshold_(options.threshold),
      // A compressor may always use a smaller window than agreed (RFC 7692 §7.1.2.2): ours is
      // also bounded by our own option. Offering client_no_context_takeover is a promise
      // (§7.1.1.2), kept even when the server does not repeat it.
      deflater_(std::min(window_bits(agreed.client_max_window_bits),
                         window_bits(options.max_window_bits)),
                std::clamp(options.memory_level, 1, 9),
                agreed.client_no_context_takeover || options.no_context_takeover),
      inflater_(window_bits(agreed.server_max_window_bits), agreed.server_no_context_takeover) {}

ws::InflateStatus MessageCompression::inflate(std::span<const std::uint8_t> piece, bool first,
                                              bool last, std::uint64_t limit) {
  if (first) inflated_.clear();
  switch (inflater_.inflate(piece, last, limit, inflated_)) {
    case ws::MessageInflater::Status::ok:
      return last ? ws::InflateStatus::done : ws::InflateStatus::more;
    case ws::MessageInflater::Status::too_large:
      return ws::InflateStatus::too_large;
    case ws::MessageInflater::Status::corrupt:
      break;
  }
  return ws::InflateStatus::corrupt;
}

void MessageCompression::message_delivered() noexcept {
  net::release_if_large(inflated_);
}

std::string_view MessageCompression::compress(std::string_view message) {
  net::release_if_large(compressed_);
  deflater_.compress(message, compressed_);
  return compressed_;
}

std::size_t MessageCompression::allocated_bytes() const noexcept {
  return deflater_.allocated_bytes() + inflater_.allocated_bytes();
}

}  // namespace pylon::client
