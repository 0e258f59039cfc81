// Tests of src/client/compression.cpp: MessageCompression against the ws codec playing the
// server (its MessageDeflater / MessageInflater), byte-by-byte splits, context takeover, the
// inflated-size limit (the UTF-8 of inflated text is the session's:
// tests/unit/ws/session_test.cpp).
#include "client/compression.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pylon::client {
namespace {

using Result = ws::InflateStatus;

std::span<const std::uint8_t> bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// Feeds `compressed` one byte at a time (the parser may deliver any split).
Result inflate_bytewise(MessageCompression& compression, std::string_view compressed,
                        std::uint64_t limit = 1 << 20) {
  Result result = Result::more;
  for (std::size_t i = 0; i < compressed.size() && result == Result::more; ++i)
    result = compression.inflate(bytes(compressed.substr(i, 1)), i == 0, i + 1 == compressed.size(),
                                 limit);
  return result;
}

TEST(ClientCompression, OfferFollowsTheOptions) {
  const ws::DeflateClientOptions offer =
      deflate_client_options({.enabled = true, .no_context_takeover = true, .max_window_bits = 3});
  EXPECT_TRUE(offer.request_no_context_takeover);
  EXPECT_EQ(offer.max_window_bits, 8);  // clamped to RFC 7692's range
  EXPECT_EQ(ws::deflate_offer(deflate_client_options({.enabled = true})),
            "permessage-deflate; client_max_window_bits");
}

TEST(ClientCompression, ServerMessagesWithContextTakeoverInAnySplit) {
  MessageCompression client({.enabled = true}, {}, "permessage-deflate");
  ws::MessageDeflater server(15, 8, false);
  const std::string message = "{\"text\":\"héllo\",\"room\":\"general\"}";
  std::string previous_size;
  for (int i = 0; i < 3; ++i) {
    std::string compressed;
    server.compress(message, compressed);
    if (i > 0) {
      EXPECT_LT(compressed.size(), previous_size.size());  // the window carried over
    }
    previous_size = compressed;
    ASSERT_EQ(inflate_bytewise(client, compressed), Result::done);
    EXPECT_EQ(client.message(), message);
    client.message_delivered();
  }
}

TEST(ClientCompression, ServerNoContextTakeoverResetsAfterEachMessage) {
  MessageCompression client({.enabled = true}, {.server_no_context_takeover = true}, "x");
  ws::MessageDeflater server(15, 8, true);
  for (int i = 0; i < 3; ++i) {
    std::string compressed;
    server.compress("the same message, every time", compressed);
    ASSERT_EQ(client.inflate(bytes(compressed), true, true, 1 << 20), Result::done);
    EXPECT_EQ(client.message(), "the same message, every time");
  }
}

TEST(ClientCompression, ClientMessagesInflateOnTheServer) {
  // The server limited our window to 9 bits and asked for no context takeover.
  MessageCompression client({.enabled = true},
                            {.client_no_context_takeover = true, .client_max_window_bits = 9}, "x");
  ws::MessageInflater server(9, true);
  std::string message;
  for (int i = 0; i < 2000; ++i) message += std::to_string(i % 97) + ",";
  for (int i = 0; i < 2; ++i) {
    const std::string compressed(client.compress(message));
    EXPECT_LT(compressed.size(), message.size() / 2);
    std::string inflated;
    ASSERT_EQ(server.inflate(compressed, true, 1 << 20, inflated), ws::MessageInflater::Status::ok);
    EXPECT_EQ(inflated, message);
  }
}

TEST(ClientCompression, Threshold) {
  MessageCompression client({.enabled = true, .threshold = 64}, {}, "x");
  EXPECT_FALSE(client.should_compress(63));
  EXPECT_TRUE(client.should_compress(64));
  MessageCompression every({.enabled = true, .threshold = 0}, {}, "x");
  EXPECT_TRUE(every.should_compress(0));
  EXPECT_EQ(every.compress(""), std::string_view("\x00", 1));  // RFC 7692 §7.2.3.6
}

TEST(ClientCompression, InflatedSizeIsLimitedWhileInflating) {
  MessageCompression client({.enabled = true}, {}, "x");
  ws::MessageDeflater server(15, 8, true);
  std::string bomb;
  server.compress(std::string(4 << 20, 'a'), bomb);
  ASSERT_LT(bomb.size(), 8192u);
  EXPECT_EQ(client.inflate(bytes(bomb), true, true, 100000), Result::too_large);
  EXPECT_LE(client.message().size(), 100000u);  // never more than the limit held
}

TEST(ClientCompression, Corrupt) {
  MessageCompression client({.enabled = true}, {}, "x");
  EXPECT_EQ(client.inflate(bytes("\xff\xff\xff\xff"), true, true, 1 << 20), Result::corrupt);
}

TEST(ClientCompression, MemoryOfOneConnection) {
  // What CompressionOptions documents: defaults vs small windows.
  MessageCompression large({.enabled = true}, {}, "x");
  MessageCompression small({.enabled = true, .max_window_bits = 9, .memory_level = 1},
                           {.server_max_window_bits = 9, .client_max_window_bits = 9}, "x");
  EXPECT_LE(large.allocated_bytes(),
            ws::MessageDeflater::memory_estimate(15, 8) + ws::MessageInflater::memory_estimate(15));
  EXPECT_LT(small.allocated_bytes(), large.allocated_bytes() / 4);
  std::printf(
      "[ memory   ] defaults: %zu bytes allocated, 9 bits/level 1: %zu; estimates "
      "%zu + %zu\n",
      large.allocated_bytes(), small.allocated_bytes(), ws::MessageDeflater::memory_estimate(15, 8),
      ws::MessageInflater::memory_estimate(15));
}

}  // namespace
}  // namespace pylon::client
