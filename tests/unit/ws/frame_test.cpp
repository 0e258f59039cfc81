// Tests for src/ws/frame.*: header encoding and masking.
#include "ws/frame.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace pylon::ws {
namespace {

TEST(FrameTest, IsControl) {
  EXPECT_FALSE(is_control(Opcode::continuation));
  EXPECT_FALSE(is_control(Opcode::text));
  EXPECT_FALSE(is_control(Opcode::binary));
  EXPECT_TRUE(is_control(Opcode::close));
  EXPECT_TRUE(is_control(Opcode::ping));
  EXPECT_TRUE(is_control(Opcode::pong));
}

TEST(FrameTest, KnownOpcodes) {
  for (int op = 0; op < 16; ++op) {
    const bool known = op == 0 || op == 1 || op == 2 || op == 8 || op == 9 || op == 10;
    EXPECT_EQ(is_known_opcode(static_cast<std::uint8_t>(op)), known) << op;
  }
}

TEST(FrameTest, HeaderSevenBitLength) {
  std::uint8_t out[kMaxFrameHeaderSize];
  ASSERT_EQ(write_frame_header(out, Opcode::text, 5), 2u);
  EXPECT_EQ(out[0], 0x81);
  EXPECT_EQ(out[1], 0x05);
  ASSERT_EQ(write_frame_header(out, Opcode::binary, 125, false), 2u);
  EXPECT_EQ(out[0], 0x02);
  EXPECT_EQ(out[1], 125);
  ASSERT_EQ(write_frame_header(out, Opcode::text, 0, true, true), 2u);
  EXPECT_EQ(out[0], 0xC1);
  EXPECT_EQ(out[1], 0x00);
}

TEST(FrameTest, HeaderSixteenBitLength) {
  std::uint8_t out[kMaxFrameHeaderSize];
  ASSERT_EQ(write_frame_header(out, Opcode::binary, 126), 4u);
  EXPECT_EQ(out[1], 126);
  EXPECT_EQ(out[2], 0x00);
  EXPECT_EQ(out[3], 126);
  ASSERT_EQ(write_frame_header(out, Opcode::binary, 65535), 4u);
  EXPECT_EQ(out[2], 0xFF);
  EXPECT_EQ(out[3], 0xFF);
}

TEST(FrameTest, HeaderSixtyFourBitLength) {
  std::uint8_t out[kMaxFrameHeaderSize];
  ASSERT_EQ(write_frame_header(out, Opcode::binary, 65536), 10u);
  EXPECT_EQ(out[1], 127);
  const std::uint8_t expected[8] = {0, 0, 0, 0, 0, 1, 0, 0};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[2 + i], expected[i]);
  ASSERT_EQ(write_frame_header(out, Opcode::binary, 0x0102030405060708ULL), 10u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[2 + i], i + 1);
}

TEST(FrameTest, HeaderWithMaskingKey) {
  std::uint8_t out[kMaxFrameHeaderSize];
  const MaskingKey key = {0x37, 0xfa, 0x21, 0x3d};
  // RFC 6455 §5.7: "A single-frame masked text message": 0x81 0x85 0x37 0xfa 0x21 0x3d ...
  ASSERT_EQ(write_frame_header(out, Opcode::text, 5, true, false, &key), 6u);
  EXPECT_EQ(out[0], 0x81);
  EXPECT_EQ(out[1], 0x85);
  EXPECT_EQ(out[2], 0x37);
  EXPECT_EQ(out[5], 0x3d);
  EXPECT_EQ(write_frame_header(out, Opcode::binary, 300, true, false, &key), 8u);
  EXPECT_EQ(out[1], 0x80 | 126);
  EXPECT_EQ(write_frame_header(out, Opcode::binary, 70000, true, false, &key), 14u);
  EXPECT_EQ(out[1], 0x80 | 127);
  EXPECT_EQ(out[10], 0x37);
}

TEST(FrameTest, HeaderSizeMatchesWriter) {
  std::uint8_t out[kMaxFrameHeaderSize];
  const MaskingKey key = {1, 2, 3, 4};
  for (std::uint64_t length : {0ULL, 125ULL, 126ULL, 65535ULL, 65536ULL, 1ULL << 40}) {
    EXPECT_EQ(frame_header_size(length, false), write_frame_header(out, Opcode::binary, length));
    EXPECT_EQ(frame_header_size(length, true),
              write_frame_header(out, Opcode::binary, length, true, false, &key));
  }
}

TEST(FrameTest, MaskRfcExample) {
  // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d is 7f 9f 4d 51 58.
  std::vector<std::uint8_t> data = {'H', 'e', 'l', 'l', 'o'};
  const MaskingKey key = {0x37, 0xfa, 0x21, 0x3d};
  EXPECT_EQ(apply_mask(data, key), 1u);
  EXPECT_EQ(data, (std::vector<std::uint8_t>{0x7f, 0x9f, 0x4d, 0x51, 0x58}));
}

// Every alignment of the buffer, every key offset and sizes around the word and unroll widths
// must agree with the byte-at-a-time definition of RFC 6455 §5.3.
TEST(FrameTest, MaskEveryOffsetAndAlignment) {
  const MaskingKey key = {0xA1, 0xB2, 0xC3, 0xD4};
  std::mt19937 rng(7);
  std::vector<std::uint8_t> storage(200 + 16);
  for (std::size_t alignment = 0; alignment < 16; ++alignment) {
    for (std::size_t offset = 0; offset < 4; ++offset) {
      for (std::size_t size = 0; size <= 200; ++size) {
        for (auto& b : storage) b = static_cast<std::uint8_t>(rng());
        const std::vector<std::uint8_t> original = storage;
        std::span<std::uint8_t> data(storage.data() + alignment, size);
        ASSERT_EQ(apply_mask(data, key, offset), (offset + size) % 4);
        for (std::size_t i = 0; i < storage.size(); ++i) {
          const bool inside = i >= alignment && i < alignment + size;
          const std::uint8_t expected =
              inside ? original[i] ^ key[(offset + i - alignment) % 4] : original[i];
          ASSERT_EQ(storage[i], expected) << alignment << " " << offset << " " << size << " " << i;
        }
      }
    }
  }
}

TEST(FrameTest, MaskInPiecesEqualsMaskAtOnce) {
  const MaskingKey key = {9, 8, 7, 6};
  std::vector<std::uint8_t> whole(1000);
  for (std::size_t i = 0; i < whole.size(); ++i) whole[i] = static_cast<std::uint8_t>(i * 31);
  std::vector<std::uint8_t> pieces = whole;
  apply_mask(whole, key);
  std::mt19937 rng(3);
  std::size_t pos = 0, offset = 0;
  while (pos < pieces.size()) {
    const std::size_t n = std::min<std::size_t>(rng() % 40, pieces.size() - pos);
    offset = apply_mask(std::span(pieces).subspan(pos, n), key, offset);
    pos += n;
  }
  EXPECT_EQ(whole, pieces);
}

// The parser's one-pass unmask: the same bytes as apply_mask from key position 0, for every size
// around its 16-, 8-, 4- and 1-byte steps and every alignment, and "all ASCII" exactly when no
// unmasked byte has its top bit set, wherever that byte is.
TEST(FrameTest, UnmaskIsAsciiAgreesWithApplyMaskAndFindsEveryHighByte) {
  const MaskingKey key = {0x5A, 0x80, 0x01, 0xFF};
  std::vector<std::uint8_t> storage(140 + 16);
  for (std::size_t alignment = 0; alignment < 16; ++alignment) {
    for (std::size_t size = 0; size <= 140; ++size) {
      // Plain ASCII text, then the same with one byte >= 0x80 at each position in turn.
      for (std::size_t high = 0; high <= size; ++high) {
        std::vector<std::uint8_t> text(size);
        for (std::size_t i = 0; i < size; ++i) text[i] = static_cast<std::uint8_t>('a' + i % 26);
        if (high < size) text[high] = 0xC3;
        std::span<std::uint8_t> data(storage.data() + alignment, size);
        std::copy(text.begin(), text.end(), data.begin());
        apply_mask(data, key);  // as it arrives on the wire
        ASSERT_EQ(unmask_is_ascii(data, key), high == size)
            << alignment << " " << size << " " << high;
        ASSERT_TRUE(std::equal(data.begin(), data.end(), text.begin()))
            << alignment << " " << size << " " << high;
      }
    }
  }
}

TEST(FrameTest, MaskTwiceRestores) {
  const MaskingKey key = {0xde, 0xad, 0xbe, 0xef};
  std::vector<std::uint8_t> data(777);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i);
  const auto original = data;
  apply_mask(data, key, 3);
  EXPECT_NE(data, original);
  apply_mask(data, key, 3);
  EXPECT_EQ(data, original);
}

}  // namespace
}  // namespace pylon::ws
