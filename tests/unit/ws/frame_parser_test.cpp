// Tests for src/ws/frame_parser.hpp: round trips at every length boundary and input split, every
// ProtocolError from a minimal byte sequence, fragmentation, UTF-8 across fragments, close frames,
// message size limits.
#include "ws/frame_parser.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace pylon::ws {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytes(std::string_view s) {
  return {s.begin(), s.end()};
}
// Literals may hold NUL bytes: take the whole array, not up to the first NUL.
template <std::size_t N>
Bytes bytes(const char (&s)[N]) {
  return {s, s + N - 1};
}

struct Event {
  bool control;
  Opcode opcode;
  Bytes data;
};

// Reassembles messages and control frames from pieces and checks the first/last contract.
struct RecordingHandler {
  std::vector<Event> events;  // one per complete message / control frame
  Bytes message, control;
  bool message_open = false, control_open = false;
  Opcode message_opcode{}, control_opcode{};
  int message_calls = 0;
  int control_calls = 0;

  void on_message_data(Opcode opcode, std::span<const std::uint8_t> chunk, bool first, bool last) {
    ++message_calls;
    ASSERT_EQ(first, !message_open);
    if (first) {
      message_opcode = opcode;
      message.clear();
    }
    ASSERT_EQ(opcode, message_opcode);
    ASSERT_TRUE(opcode == Opcode::text || opcode == Opcode::binary);
    message.insert(message.end(), chunk.begin(), chunk.end());
    message_open = !last;
    if (last) events.push_back({false, opcode, message});
  }
  void on_control_frame_data(Opcode opcode, std::span<const std::uint8_t> chunk, bool first,
                             bool last) {
    ++control_calls;
    ASSERT_EQ(first, !control_open);
    ASSERT_TRUE(is_control(opcode));
    if (first) {
      control_opcode = opcode;
      control.clear();
    }
    ASSERT_EQ(opcode, control_opcode);
    control.insert(control.end(), chunk.begin(), chunk.end());
    control_open = !last;
    if (last) events.push_back({true, opcode, control});
  }
};

using Parser = FrameParser<RecordingHandler>;

static_assert(sizeof(Parser) < 64, "the parser's state must stay small");

constexpr MaskingKey kKey = {0x12, 0x34, 0x56, 0x78};

// Encodes one frame: masked (client -> server) when `masked`.
Bytes frame(Opcode opcode, const Bytes& payload, bool masked, bool fin = true, bool rsv1 = false) {
  Bytes out(kMaxFrameHeaderSize + payload.size());
  const std::size_t header =
      write_frame_header(out.data(), opcode, payload.size(), fin, rsv1, masked ? &kKey : nullptr);
  std::copy(payload.begin(), payload.end(), out.begin() + header);
  out.resize(header + payload.size());
  if (masked) apply_mask(std::span(out).subspan(header), kKey);
  return out;
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

enum class Split { whole, bytes, random };

ProtocolError feed_split(Parser& parser, Bytes input, RecordingHandler& handler, Split split,
                         unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::size_t pos = 0;
  ProtocolError error = ProtocolError::none;
  while (pos < input.size() && error == ProtocolError::none) {
    std::size_t n = input.size() - pos;
    if (split == Split::bytes) n = 1;
    if (split == Split::random) n = std::min<std::size_t>(n, 1 + rng() % 300);
    error = parser.feed(std::span(input).subspan(pos, n), handler);
    pos += n;
  }
  return error;
}

// Parses `input` in the given role and returns the error.
ProtocolError parse(Role role, const Bytes& input, RecordingHandler& handler,
                    std::uint64_t max = kUnlimitedMessageSize, Split split = Split::whole) {
  Parser parser(role, max);
  return feed_split(parser, input, handler, split);
}

ProtocolError parse_error(Role role, const Bytes& input,
                          std::uint64_t max = kUnlimitedMessageSize) {
  // The verdict must not depend on the split.
  RecordingHandler a, b;
  const ProtocolError whole = parse(role, input, a, max, Split::whole);
  const ProtocolError split = parse(role, input, b, max, Split::bytes);
  EXPECT_EQ(whole, split);
  return whole;
}

Bytes pattern(std::size_t size) {
  Bytes out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::uint8_t>(i * 7 + (i >> 8));
  return out;
}

class RoundTripTest : public ::testing::TestWithParam<std::size_t> {};

TEST_P(RoundTripTest, ClientToServerAndBack) {
  const std::size_t size = GetParam();
  const Bytes payload = pattern(size);
  for (Role receiver : {Role::server, Role::client}) {
    const bool masked = receiver == Role::server;
    for (Split split : {Split::whole, Split::bytes, Split::random}) {
      if (split == Split::bytes && size > 70000) continue;  // covered by random splits
      RecordingHandler handler;
      const Bytes input =
          concat({frame(Opcode::binary, payload, masked), frame(Opcode::ping, bytes("p"), masked)});
      Parser parser(receiver, kUnlimitedMessageSize);
      ASSERT_EQ(feed_split(parser, input, handler, split, static_cast<unsigned>(size)),
                ProtocolError::none);
      ASSERT_EQ(handler.events.size(), 2u);
      EXPECT_EQ(handler.events[0].opcode, Opcode::binary);
      EXPECT_TRUE(handler.events[0].data == payload) << size;
      EXPECT_EQ(handler.events[1].opcode, Opcode::ping);
      EXPECT_FALSE(parser.in_message());
      EXPECT_TRUE(parser.at_frame_boundary());
      if (split == Split::whole) {
        EXPECT_EQ(handler.message_calls, 1);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(LengthBoundaries, RoundTripTest,
                         ::testing::Values(0, 1, 125, 126, 127, 65535, 65536, 3 * 1024 * 1024));

TEST(FrameParserTest, RfcExamples) {
  // RFC 6455 §5.7.
  RecordingHandler handler;
  ASSERT_EQ(parse(Role::client, bytes("\x81\x05Hello"), handler), ProtocolError::none);
  ASSERT_EQ(parse(Role::server, bytes("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"), handler),
            ProtocolError::none);
  ASSERT_EQ(parse(Role::client, bytes("\x01\x03Hel\x80\x02lo"), handler), ProtocolError::none);
  ASSERT_EQ(parse(Role::client, bytes("\x89\x05Hello\x8a\x05Hello"), handler), ProtocolError::none);
  ASSERT_EQ(handler.events.size(), 5u);
  for (int i : {0, 1, 2}) {
    EXPECT_EQ(handler.events[i].opcode, Opcode::text);
    EXPECT_EQ(handler.events[i].data, bytes("Hello"));
  }
  EXPECT_EQ(handler.events[3].opcode, Opcode::ping);
  EXPECT_EQ(handler.events[4].opcode, Opcode::pong);
}

TEST(FrameParserTest, PayloadIsUnmaskedInPlaceWithoutCopy) {
  Bytes input = frame(Opcode::binary, pattern(300), true);
  struct PointerHandler {
    const std::uint8_t* seen = nullptr;
    void on_message_data(Opcode, std::span<const std::uint8_t> chunk, bool, bool) {
      seen = chunk.data();
    }
    void on_control_frame_data(Opcode, std::span<const std::uint8_t>, bool, bool) {}
  } handler;
  FrameParser<PointerHandler> parser(Role::server, kUnlimitedMessageSize);
  ASSERT_EQ(parser.feed(input, handler), ProtocolError::none);
  EXPECT_EQ(handler.seen, input.data() + 8);
  EXPECT_TRUE(Bytes(input.begin() + 8, input.end()) == pattern(300));
}

TEST(FrameParserTest, EmptyMessageGivesOneCall) {
  RecordingHandler handler;
  ASSERT_EQ(parse(Role::server, frame(Opcode::text, {}, true), handler), ProtocolError::none);
  EXPECT_EQ(handler.message_calls, 1);
  ASSERT_EQ(handler.events.size(), 1u);
  EXPECT_TRUE(handler.events[0].data.empty());
}

TEST(FrameParserTest, FragmentsWithInterleavedPingsAndEmptyFragments) {
  const Bytes input = concat({
      frame(Opcode::text, {}, true, false),  // empty first fragment
      frame(Opcode::ping, bytes("1"), true),
      frame(Opcode::continuation, bytes("Hel"), true, false),
      frame(Opcode::pong, {}, true),
      frame(Opcode::continuation, {}, true, false),  // empty middle fragment
      frame(Opcode::ping, bytes("2"), true),
      frame(Opcode::continuation, bytes("lo"), true, false),
      frame(Opcode::continuation, {}, true, true),  // empty final fragment
      frame(Opcode::binary, bytes("x"), true),
  });
  for (Split split : {Split::whole, Split::bytes, Split::random}) {
    RecordingHandler handler;
    ASSERT_EQ(parse(Role::server, input, handler, kUnlimitedMessageSize, split),
              ProtocolError::none);
    ASSERT_EQ(handler.events.size(), 5u);
    EXPECT_EQ(handler.events[0].opcode, Opcode::ping);
    EXPECT_EQ(handler.events[1].opcode, Opcode::pong);
    EXPECT_EQ(handler.events[2].opcode, Opcode::ping);
    EXPECT_EQ(handler.events[3].opcode, Opcode::text);
    EXPECT_EQ(handler.events[3].data, bytes("Hello"));
    EXPECT_EQ(handler.events[4].opcode, Opcode::binary);
    if (split == Split::whole) {
      // "Hel", "lo", the empty final fragment (ends the message) and "x": empty non-final
      // fragments give no call.
      EXPECT_EQ(handler.message_calls, 4);
    }
  }
}

TEST(FrameParserTest, InMessageDuringFragments) {
  RecordingHandler handler;
  Parser parser(Role::server, kUnlimitedMessageSize);
  Bytes first = frame(Opcode::binary, bytes("ab"), true, false);
  ASSERT_EQ(parser.feed(first, handler), ProtocolError::none);
  EXPECT_TRUE(parser.in_message());
  Bytes ping = frame(Opcode::ping, {}, true);
  ASSERT_EQ(parser.feed(ping, handler), ProtocolError::none);
  EXPECT_TRUE(parser.in_message());
  Bytes last = frame(Opcode::continuation, bytes("c"), true, true);
  ASSERT_EQ(parser.feed(last, handler), ProtocolError::none);
  EXPECT_FALSE(parser.in_message());
  ASSERT_EQ(handler.events.size(), 2u);
  EXPECT_EQ(handler.events[1].data, bytes("abc"));
}

TEST(FrameParserTest, ControlFrameInPieces) {
  Parser parser(Role::server, kUnlimitedMessageSize);
  RecordingHandler handler;
  Bytes input = frame(Opcode::ping, bytes("0123456789"), true);
  ASSERT_EQ(feed_split(parser, input, handler, Split::bytes), ProtocolError::none);
  EXPECT_EQ(handler.control_calls, 10);
  ASSERT_EQ(handler.events.size(), 1u);
  EXPECT_EQ(handler.events[0].data, bytes("0123456789"));
}

// ---- every ProtocolError from a minimal byte sequence ----

TEST(FrameParserErrorTest, ReservedBits) {
  EXPECT_EQ(parse_error(Role::client, bytes("\xc1\x00")), ProtocolError::reserved_bits_set);
  EXPECT_EQ(parse_error(Role::client, bytes("\xa1\x00")), ProtocolError::reserved_bits_set);
  EXPECT_EQ(parse_error(Role::client, bytes("\x91\x00")), ProtocolError::reserved_bits_set);
}

TEST(FrameParserErrorTest, ReservedOpcodes) {
  for (std::uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    const Bytes input = {static_cast<std::uint8_t>(0x80 | op), 0x00};
    EXPECT_EQ(parse_error(Role::client, input), ProtocolError::reserved_opcode) << int(op);
  }
}

TEST(FrameParserErrorTest, FragmentedControlFrame) {
  EXPECT_EQ(parse_error(Role::client, bytes("\x09")), ProtocolError::fragmented_control_frame);
  EXPECT_EQ(parse_error(Role::client, bytes("\x08")), ProtocolError::fragmented_control_frame);
}

TEST(FrameParserErrorTest, ControlFrameTooLarge) {
  EXPECT_EQ(parse_error(Role::client, bytes("\x89\x7e")), ProtocolError::control_frame_too_large);
  EXPECT_EQ(parse_error(Role::client, bytes("\x8a\x7f")), ProtocolError::control_frame_too_large);
  // 125 is fine.
  RecordingHandler handler;
  EXPECT_EQ(parse(Role::client, frame(Opcode::ping, pattern(125), false), handler),
            ProtocolError::none);
}

TEST(FrameParserErrorTest, NonMinimalLength) {
  EXPECT_EQ(parse_error(Role::client, bytes("\x82\x7e\x00\x7d")),
            ProtocolError::non_minimal_length);
  EXPECT_EQ(parse_error(Role::client, bytes("\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff")),
            ProtocolError::non_minimal_length);
}

TEST(FrameParserErrorTest, LengthTooLargeOnFirstLengthByte) {
  EXPECT_EQ(parse_error(Role::client, bytes("\x82\x7f\x80")), ProtocolError::length_too_large);
}

TEST(FrameParserErrorTest, MaskingByRole) {
  EXPECT_EQ(parse_error(Role::server, bytes("\x81\x00")), ProtocolError::unmasked_frame);
  EXPECT_EQ(parse_error(Role::client, bytes("\x81\x80")), ProtocolError::masked_frame);
}

TEST(FrameParserErrorTest, UnexpectedContinuation) {
  EXPECT_EQ(parse_error(Role::client, bytes("\x80")), ProtocolError::unexpected_continuation);
  EXPECT_EQ(parse_error(Role::client, bytes("\x81\x01"
                                            "a"
                                            "\x80")),
            ProtocolError::unexpected_continuation);
}

TEST(FrameParserErrorTest, ExpectedContinuation) {
  EXPECT_EQ(parse_error(Role::client, bytes("\x01\x00\x81")), ProtocolError::expected_continuation);
  EXPECT_EQ(parse_error(Role::client, bytes("\x02\x00\x89\x00\x02")),
            ProtocolError::expected_continuation);
}

TEST(FrameParserErrorTest, InvalidUtf8) {
  EXPECT_EQ(parse_error(Role::client, bytes("\x81\x01\xff")), ProtocolError::invalid_utf8);
  // Truncated at the end of the message.
  EXPECT_EQ(parse_error(Role::client, bytes("\x81\x02\xe2\x82")), ProtocolError::invalid_utf8);
  EXPECT_EQ(parse_error(Role::client, bytes("\x01\x01\xe2\x80\x01\x82")),
            ProtocolError::invalid_utf8);
  // Binary is not checked.
  EXPECT_EQ(parse_error(Role::client, bytes("\x82\x01\xff")), ProtocolError::none);
}

TEST(FrameParserErrorTest, InvalidClosePayload) {
  EXPECT_EQ(parse_error(Role::client, bytes("\x88\x01")), ProtocolError::invalid_close_payload);
}

TEST(FrameParserErrorTest, InvalidCloseCode) {
  EXPECT_EQ(parse_error(Role::client, bytes("\x88\x02\x03\xed")),
            ProtocolError::invalid_close_code);
  EXPECT_EQ(parse_error(Role::client, bytes("\x88\x02\x00\x00")),
            ProtocolError::invalid_close_code);
}

TEST(FrameParserErrorTest, InvalidCloseReason) {
  EXPECT_EQ(parse_error(Role::client, bytes("\x88\x03\x03\xe8\xff")),
            ProtocolError::invalid_close_reason);
  EXPECT_EQ(parse_error(Role::client, bytes("\x88\x04\x03\xe8\xe2\x82")),
            ProtocolError::invalid_close_reason);
}

TEST(FrameParserErrorTest, MessageTooLarge) {
  EXPECT_EQ(parse_error(Role::client, bytes("\x82\x05"), 4), ProtocolError::message_too_large);
}

TEST(FrameParserErrorTest, EachErrorMapsToItsCloseCode) {
  struct Case {
    Bytes input;
    ProtocolError error;
    std::uint16_t code;
  };
  const std::vector<Case> cases = {
      {bytes("\xc1\x00"), ProtocolError::reserved_bits_set, 1002},
      {bytes("\x83\x00"), ProtocolError::reserved_opcode, 1002},
      {bytes("\x09\x00"), ProtocolError::fragmented_control_frame, 1002},
      {bytes("\x89\x7e"), ProtocolError::control_frame_too_large, 1002},
      {bytes("\x82\x7e\x00\x01"), ProtocolError::non_minimal_length, 1002},
      {bytes("\x82\x7f\xff"), ProtocolError::length_too_large, 1002},
      {bytes("\x82\x80"), ProtocolError::masked_frame, 1002},
      {bytes("\x80\x00"), ProtocolError::unexpected_continuation, 1002},
      {bytes("\x02\x00\x02\x00"), ProtocolError::expected_continuation, 1002},
      {bytes("\x81\x01\x80"), ProtocolError::invalid_utf8, 1007},
      {bytes("\x88\x01"), ProtocolError::invalid_close_payload, 1002},
      {bytes("\x88\x02\x03\xee"), ProtocolError::invalid_close_code, 1002},
      {bytes("\x88\x03\x03\xe8\xc0"), ProtocolError::invalid_close_reason, 1007},
      {bytes("\x82\x7e\x01\x00"), ProtocolError::message_too_large, 1009},
  };
  for (const auto& c : cases) {
    const ProtocolError error = parse_error(Role::client, c.input, 200);
    EXPECT_EQ(error, c.error) << describe(c.error);
    EXPECT_EQ(close_code_for(error), c.code) << describe(c.error);
  }
  EXPECT_EQ(parse_error(Role::server, bytes("\x82\x00")), ProtocolError::unmasked_frame);
  EXPECT_EQ(close_code_for(ProtocolError::unmasked_frame), 1002);
}

// The first bad byte decides: later bytes that would break other rules are never looked at.
TEST(FrameParserErrorTest, FirstBadByteDecides) {
  // RSV bit and reserved opcode in the same byte: byte-0 checks run RSV first.
  EXPECT_EQ(parse_error(Role::server, bytes("\xf3\x00")), ProtocolError::reserved_bits_set);
  // Unmasked (byte 1) beats the oversized control length in the same byte? Mask is checked first.
  EXPECT_EQ(parse_error(Role::server, bytes("\x89\x7e")), ProtocolError::unmasked_frame);
  // Control frame too large is known at byte 1, before any length bytes.
  EXPECT_EQ(parse_error(Role::client, bytes("\x89\x7f\x80")),
            ProtocolError::control_frame_too_large);
}

TEST(FrameParserErrorTest, DeadParserRepeatsErrorAndCallsNothing) {
  Parser parser(Role::client, kUnlimitedMessageSize);
  RecordingHandler handler;
  Bytes bad = bytes(
      "\x81\x02"
      "a\xff");
  EXPECT_EQ(parser.feed(bad, handler), ProtocolError::invalid_utf8);
  EXPECT_EQ(handler.message_calls, 0);
  Bytes good = bytes("\x82\x01z");
  EXPECT_EQ(parser.feed(good, handler), ProtocolError::invalid_utf8);
  EXPECT_EQ(parser.error(), ProtocolError::invalid_utf8);
  EXPECT_EQ(handler.message_calls, 0);
  EXPECT_EQ(handler.control_calls, 0);
}

// ---- UTF-8 across fragments ----

TEST(FrameParserUtf8Test, SplitAtEveryBytePositionAcrossFragments) {
  const std::string text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbfz";
  for (std::size_t cut1 = 0; cut1 <= text.size(); ++cut1) {
    for (std::size_t cut2 = cut1; cut2 <= text.size(); ++cut2) {
      const Bytes input = concat({
          frame(Opcode::text, bytes(text.substr(0, cut1)), true, false),
          frame(Opcode::ping, {}, true),
          frame(Opcode::continuation, bytes(text.substr(cut1, cut2 - cut1)), true, false),
          frame(Opcode::continuation, bytes(text.substr(cut2)), true, true),
      });
      RecordingHandler handler;
      ASSERT_EQ(parse(Role::server, input, handler), ProtocolError::none) << cut1 << " " << cut2;
      ASSERT_EQ(handler.events.size(), 2u);
      EXPECT_EQ(handler.events[1].data, bytes(text));
    }
  }
}

// Fed one byte at a time, the error comes with the bad byte itself, mid-frame, and no piece
// holding it is delivered.
TEST(FrameParserUtf8Test, FailFastMidFrame) {
  const std::string prefix = "hello \xe2\x82\xac ";
  const Bytes input = frame(Opcode::text, bytes(prefix + "\xf4\x90 and more text after it"), true);
  Parser parser(Role::server, kUnlimitedMessageSize);
  RecordingHandler handler;
  const std::size_t header = 6;
  const std::size_t bad_index = header + prefix.size() + 1;  // the 0x90 after 0xF4
  Bytes copy = input;
  for (std::size_t i = 0; i < copy.size(); ++i) {
    const ProtocolError error = parser.feed(std::span(copy).subspan(i, 1), handler);
    if (i < bad_index) {
      ASSERT_EQ(error, ProtocolError::none) << i;
    } else {
      ASSERT_EQ(error, ProtocolError::invalid_utf8) << i;
      break;
    }
  }
  EXPECT_EQ(handler.message.size(), prefix.size() + 1);  // everything before the bad byte
  EXPECT_TRUE(handler.events.empty());
}

TEST(FrameParserUtf8Test, TruncatedAtEndOfFragmentedMessage) {
  const Bytes input = concat({frame(Opcode::text, bytes("ok \xf0\x9f"), true, false),
                              frame(Opcode::continuation, bytes("\x98"), true, true)});
  RecordingHandler handler;
  EXPECT_EQ(parse(Role::server, input, handler, kUnlimitedMessageSize, Split::bytes),
            ProtocolError::invalid_utf8);
  EXPECT_TRUE(handler.events.empty());
}

TEST(FrameParserUtf8Test, CloseInsideTextMessageKeepsSeparateUtf8State) {
  // A text fragment ends mid code point; a close with a valid reason interleaves; the text
  // resumes. Each must be judged on its own.
  Bytes close_payload(kMaxControlPayload);
  close_payload.resize(write_close_payload(close_payload.data(), 1000, "bye \xc3\xa9"));
  const Bytes input = concat({frame(Opcode::text, bytes("\xe2\x82"), true, false),
                              frame(Opcode::close, close_payload, true),
                              frame(Opcode::continuation, bytes("\xac"), true, true)});
  RecordingHandler handler;
  ASSERT_EQ(parse(Role::server, input, handler, kUnlimitedMessageSize, Split::bytes),
            ProtocolError::none);
  ASSERT_EQ(handler.events.size(), 2u);
  EXPECT_EQ(handler.events[0].opcode, Opcode::close);
  EXPECT_EQ(handler.events[1].data, bytes("\xe2\x82\xac"));
}

// ---- close frames ----

TEST(FrameParserCloseTest, ValidCloseFramesInAnySplit) {
  for (std::uint16_t code : {1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999}) {
    Bytes payload(kMaxControlPayload);
    payload.resize(write_close_payload(payload.data(), code, "reason \xe2\x82\xac"));
    for (Split split : {Split::whole, Split::bytes}) {
      RecordingHandler handler;
      ASSERT_EQ(parse(Role::server, frame(Opcode::close, payload, true), handler,
                      kUnlimitedMessageSize, split),
                ProtocolError::none)
          << code;
      ASSERT_EQ(handler.events.size(), 1u);
      ClosePayload parsed;
      ASSERT_EQ(parse_close_payload(handler.events[0].data, parsed), ProtocolError::none);
      EXPECT_EQ(parsed.code, code);
    }
  }
  RecordingHandler handler;
  EXPECT_EQ(parse(Role::server, frame(Opcode::close, {}, true), handler), ProtocolError::none);
  ASSERT_EQ(handler.events.size(), 1u);
  EXPECT_TRUE(handler.events[0].data.empty());
}

TEST(FrameParserCloseTest, InvalidCodesRejected) {
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    const Bytes payload = {static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code),
                           'x'};
    EXPECT_EQ(parse_error(Role::server, frame(Opcode::close, payload, true)),
              ProtocolError::invalid_close_code)
        << code;
  }
}

TEST(FrameParserCloseTest, BadReasonRejectedBeforeDelivery) {
  RecordingHandler handler;
  EXPECT_EQ(parse(Role::server, frame(Opcode::close, bytes("\x03\xe8 \xed\xa0\x80"), true), handler,
                  kUnlimitedMessageSize, Split::bytes),
            ProtocolError::invalid_close_reason);
  EXPECT_TRUE(handler.events.empty());
}

// ---- maximum message size ----

TEST(FrameParserLimitTest, SingleFrameExactlyAtLimitPasses) {
  RecordingHandler handler;
  EXPECT_EQ(parse(Role::server, frame(Opcode::binary, pattern(1000), true), handler, 1000),
            ProtocolError::none);
  EXPECT_EQ(parse(Role::server, frame(Opcode::binary, pattern(1001), true), handler, 1000),
            ProtocolError::message_too_large);
  EXPECT_EQ(parse(Role::server, frame(Opcode::binary, {}, true), handler, 0), ProtocolError::none);
}

TEST(FrameParserLimitTest, RejectedAtHeaderBeforePayload) {
  Parser parser(Role::server, 100);
  RecordingHandler handler;
  Bytes header(kMaxFrameHeaderSize);
  header.resize(write_frame_header(header.data(), Opcode::binary, 1ULL << 40, true, false, &kKey));
  // Only the first 10 bytes (through the length) are needed to decide.
  EXPECT_EQ(parser.feed(std::span(header).first(10), handler), ProtocolError::message_too_large);
}

TEST(FrameParserLimitTest, SumOfFragments) {
  const Bytes at_limit = concat({frame(Opcode::text, bytes("aaaa"), true, false),
                                 frame(Opcode::ping, pattern(100), true),  // not counted
                                 frame(Opcode::continuation, bytes("bbbb"), true, false),
                                 frame(Opcode::continuation, bytes("cc"), true, true),
                                 frame(Opcode::text, bytes("0123456789"), true)});
  RecordingHandler handler;
  EXPECT_EQ(parse(Role::server, at_limit, handler, 10), ProtocolError::none);
  EXPECT_EQ(handler.events.size(), 3u);
  const Bytes over = concat({frame(Opcode::text, bytes("aaaa"), true, false),
                             frame(Opcode::continuation, bytes("bbbb"), true, false),
                             frame(Opcode::continuation, bytes("ccc"), true, true)});
  RecordingHandler handler2;
  EXPECT_EQ(parse(Role::server, over, handler2, 10), ProtocolError::message_too_large);
  EXPECT_TRUE(handler2.events.empty());
}

TEST(FrameParserLimitTest, LimitCanChange) {
  Parser parser(Role::client, 5);
  EXPECT_EQ(parser.max_message_size(), 5u);
  parser.set_max_message_size(6);
  RecordingHandler handler;
  Bytes input = bytes(
      "\x82\x06"
      "abcdef");
  EXPECT_EQ(parser.feed(input, handler), ProtocolError::none);
}

// ---- permessage-deflate hook ----

TEST(FrameParserRsv1Test, AllowedOnFirstDataFrameOnly) {
  RecordingHandler handler;
  Parser parser(Role::client, kUnlimitedMessageSize, true);
  Bytes input = concat({frame(Opcode::text, bytes("\xff\x00"), false, false, true),
                        frame(Opcode::continuation, bytes("\x01"), false, true)});
  // Compressed text is not UTF-8 checked by the parser.
  ASSERT_EQ(parser.feed(input, handler), ProtocolError::none);
  EXPECT_TRUE(parser.message_compressed());
  ASSERT_EQ(handler.events.size(), 1u);

  auto fails = [](const Bytes& bytes_in) {
    Parser p(Role::client, kUnlimitedMessageSize, true);
    RecordingHandler h;
    Bytes copy = bytes_in;
    return p.feed(copy, h);
  };
  EXPECT_EQ(fails(concat({frame(Opcode::text, bytes("a"), false, false, true),
                          frame(Opcode::continuation, bytes("b"), false, true, true)})),
            ProtocolError::reserved_bits_set);
  EXPECT_EQ(fails(frame(Opcode::ping, {}, false, true, true)), ProtocolError::reserved_bits_set);
  EXPECT_EQ(fails(bytes("\xa1\x00")), ProtocolError::reserved_bits_set);  // RSV2
  EXPECT_EQ(fails(bytes("\x81\x01\xff")), ProtocolError::invalid_utf8);   // uncompressed text
}

// ---- random messages through random splits ----

TEST(FrameParserTest, RandomStreamsInRandomSplits) {
  std::mt19937 rng(99);
  for (int round = 0; round < 200; ++round) {
    Bytes input;
    std::vector<Bytes> expected;
    const int messages = 1 + static_cast<int>(rng() % 6);
    for (int m = 0; m < messages; ++m) {
      Bytes payload = pattern(rng() % (rng() % 4 == 0 ? 70000 : 300));
      const int fragments = 1 + static_cast<int>(rng() % 4);
      std::size_t pos = 0;
      for (int f = 0; f < fragments; ++f) {
        const bool last = f == fragments - 1;
        const std::size_t n = last ? payload.size() - pos : rng() % (payload.size() - pos + 1);
        Bytes piece(payload.begin() + pos, payload.begin() + pos + n);
        pos += n;
        const Opcode op = f == 0 ? Opcode::binary : Opcode::continuation;
        input = concat({input, frame(op, piece, true, last)});
        if (rng() % 3 == 0)
          input = concat({input, frame(Opcode::pong, pattern(rng() % 126), true)});
      }
      expected.push_back(payload);
    }
    RecordingHandler handler;
    ASSERT_EQ(parse(Role::server, input, handler, kUnlimitedMessageSize, Split::random),
              ProtocolError::none);
    std::vector<Bytes> got;
    for (const auto& e : handler.events) {
      if (!e.control) got.push_back(e.data);
    }
    ASSERT_TRUE(got == expected) << round;
  }
}

}  // namespace
}  // namespace pylon::ws
