// Tests for src/ws/error.*: close codes, the error table, close payloads.
#include "ws/error.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pylon::ws {
namespace {

// Literals may hold NUL bytes: take the whole array, not up to the first NUL.
template <std::size_t N>
std::vector<std::uint8_t> bytes(const char (&s)[N]) {
  return {s, s + N - 1};
}

TEST(ErrorTest, ValidCloseCodes) {
  for (int code = 0; code <= 0xFFFF; ++code) {
    const bool expected = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                          (code >= 3000 && code <= 4999);
    ASSERT_EQ(is_valid_close_code(static_cast<std::uint16_t>(code)), expected) << code;
  }
  EXPECT_FALSE(is_valid_close_code(close_code::kNoStatus));
  EXPECT_FALSE(is_valid_close_code(close_code::kAbnormal));
  EXPECT_FALSE(is_valid_close_code(1004));
  EXPECT_FALSE(is_valid_close_code(1015));
  EXPECT_TRUE(is_valid_close_code(close_code::kInternalError));
}

TEST(ErrorTest, CloseCodeForEveryError) {
  using E = ProtocolError;
  EXPECT_EQ(close_code_for(E::none), close_code::kNormal);
  for (E e : {E::reserved_bits_set, E::reserved_opcode, E::fragmented_control_frame,
              E::control_frame_too_large, E::non_minimal_length, E::length_too_large,
              E::unmasked_frame, E::masked_frame, E::unexpected_continuation,
              E::expected_continuation, E::invalid_close_payload, E::invalid_close_code}) {
    EXPECT_EQ(close_code_for(e), close_code::kProtocolError) << describe(e);
  }
  EXPECT_EQ(close_code_for(E::invalid_utf8), close_code::kInvalidPayload);
  EXPECT_EQ(close_code_for(E::invalid_close_reason), close_code::kInvalidPayload);
  EXPECT_EQ(close_code_for(E::message_too_large), close_code::kMessageTooBig);
}

TEST(ErrorTest, DescribeIsShortAndDistinct) {
  std::vector<std::string_view> seen;
  for (std::size_t i = 0; i < kProtocolErrorCount; ++i) {
    const auto text = describe(static_cast<ProtocolError>(i));
    EXPECT_FALSE(text.empty());
    EXPECT_LE(text.size(), kMaxCloseReason);
    for (auto other : seen) EXPECT_NE(text, other);
    seen.push_back(text);
  }
  EXPECT_EQ(describe(ProtocolError::reserved_bits_set), "reserved bits set");
}

TEST(ErrorTest, ParseEmptyCloseIsNoStatus) {
  ClosePayload out{1000, "x"};
  EXPECT_EQ(parse_close_payload({}, out), ProtocolError::none);
  EXPECT_EQ(out.code, close_code::kNoStatus);
  EXPECT_TRUE(out.reason.empty());
}

TEST(ErrorTest, ParseCodeAndReason) {
  auto payload = bytes(
      "\x03\xe8"
      "bye \xc3\xa9");
  ClosePayload out;
  ASSERT_EQ(parse_close_payload(payload, out), ProtocolError::none);
  EXPECT_EQ(out.code, 1000);
  EXPECT_EQ(out.reason, "bye \xc3\xa9");
  payload = bytes("\x0f\xa0");  // 4000, application range
  ASSERT_EQ(parse_close_payload(payload, out), ProtocolError::none);
  EXPECT_EQ(out.code, 4000);
  EXPECT_TRUE(out.reason.empty());
}

TEST(ErrorTest, ParseRejectsOneByte) {
  const std::uint8_t payload[] = {0x03};
  ClosePayload out;
  EXPECT_EQ(parse_close_payload(payload, out), ProtocolError::invalid_close_payload);
}

TEST(ErrorTest, ParseRejectsBadCodes) {
  ClosePayload out;
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    const std::uint8_t payload[] = {static_cast<std::uint8_t>(code >> 8),
                                    static_cast<std::uint8_t>(code)};
    EXPECT_EQ(parse_close_payload(payload, out), ProtocolError::invalid_close_code) << code;
  }
}

TEST(ErrorTest, ParseRejectsBadReason) {
  ClosePayload out;
  auto payload = bytes(
      "\x03\xe8"
      "ok\xff");
  EXPECT_EQ(parse_close_payload(payload, out), ProtocolError::invalid_close_reason);
  payload = bytes(
      "\x03\xe8"
      "\xe2\x82");  // truncated euro sign
  EXPECT_EQ(parse_close_payload(payload, out), ProtocolError::invalid_close_reason);
}

TEST(ErrorTest, WriteRoundTrip) {
  std::uint8_t out[kMaxCloseReason + 2];
  const std::size_t size = write_close_payload(out, close_code::kGoingAway, "server restart");
  ASSERT_EQ(size, 2u + 14u);
  EXPECT_EQ(out[0], 0x03);
  EXPECT_EQ(out[1], 0xe9);
  ClosePayload parsed;
  ASSERT_EQ(parse_close_payload(std::span<const std::uint8_t>(out, size), parsed),
            ProtocolError::none);
  EXPECT_EQ(parsed.code, close_code::kGoingAway);
  EXPECT_EQ(parsed.reason, "server restart");
}

TEST(ErrorTest, WriteNoStatusIsEmpty) {
  std::uint8_t out[kMaxCloseReason + 2];
  EXPECT_EQ(write_close_payload(out, close_code::kNoStatus, "ignored"), 0u);
}

TEST(ErrorTest, WriteTruncatesAtUtf8Boundary) {
  std::uint8_t out[kMaxCloseReason + 2];
  // 122 ASCII bytes then a 3-byte character straddling the 123-byte limit: cut before it.
  std::string reason(122, 'a');
  reason += "\xe2\x82\xac";
  EXPECT_EQ(write_close_payload(out, 1000, reason), 2u + 122u);
  // 121 + 2-byte character ends exactly at 123: kept whole.
  reason = std::string(121, 'b') + "\xc3\xa9" + "tail";
  EXPECT_EQ(write_close_payload(out, 1000, reason), 2u + 123u);
  // All 4-byte characters: 30 of them fill 120 bytes, the 31st would straddle.
  reason.clear();
  for (int i = 0; i < 40; ++i) reason += "\xf0\x9f\x98\x80";
  const std::size_t size = write_close_payload(out, 1000, reason);
  EXPECT_EQ(size, 2u + 120u);
  ClosePayload parsed;
  EXPECT_EQ(parse_close_payload(std::span<const std::uint8_t>(out, size), parsed),
            ProtocolError::none);
  // Exactly 123 ASCII bytes fit; 124 are cut to 123.
  EXPECT_EQ(write_close_payload(out, 1000, std::string(123, 'c')), 125u);
  EXPECT_EQ(write_close_payload(out, 1000, std::string(124, 'c')), 125u);
}

}  // namespace
}  // namespace pylon::ws
