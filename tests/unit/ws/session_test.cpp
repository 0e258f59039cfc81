// Tests for src/ws/session.hpp, in both roles, through a recording transport that implements
// every owner hook: the close-code rules (on the wire and from the application), fragmentation
// with interleaved control frames, the message size limit, UTF-8 across fragments, what happens
// after either side's close, masking, and permessage-deflate. Every input is fed whole, split in
// two at every byte boundary, and one byte at a time: the outcome (hooks called, frames written)
// must not depend on the split.
#include "ws/session.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ws/permessage_deflate.hpp"

namespace pylon::ws {
namespace {

using namespace std::string_literals;  // "\x00..."s: payloads that hold NUL bytes

std::span<const std::uint8_t> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}
std::string as_string(std::span<const std::uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Bytes as a C string literal would spell them, for failure messages.
std::string escaped(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f && c != '\\') {
      out += c;
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", byte);
      out += hex;
    }
  }
  return out;
}

// One call of the session to its owner (the output hooks aside).
struct Event {
  enum class Kind : std::uint8_t { message, ping, pong, close, failed };
  Kind kind;
  Opcode opcode = Opcode::continuation;  // message
  std::string data;                      // message or control payload, close reason
  std::uint16_t code = 0;                // close
  bool flag = false;                     // close: answer_to_ours; failed: close_sent
  ProtocolError error = ProtocolError::none;
  bool operator==(const Event&) const = default;
};

Event on_text(std::string_view data) {
  return {Event::Kind::message, Opcode::text, std::string(data)};
}
Event on_binary(std::string_view data) {
  return {Event::Kind::message, Opcode::binary, std::string(data)};
}
Event on_ping(std::string_view data) {
  return {Event::Kind::ping, {}, std::string(data)};
}
Event on_pong(std::string_view data) {
  return {Event::Kind::pong, {}, std::string(data)};
}
Event on_close(std::uint16_t code, std::string_view reason, bool answer_to_ours) {
  return {Event::Kind::close, {}, std::string(reason), code, answer_to_ours};
}
Event on_failed(ProtocolError error, bool close_sent) {
  return {Event::Kind::failed, {}, {}, 0, close_sent, error};
}

void PrintTo(const Event& event, std::ostream* os) {
  switch (event.kind) {
    case Event::Kind::message:
      *os << (event.opcode == Opcode::text ? "text \"" : "binary \"") << escaped(event.data) << '"';
      break;
    case Event::Kind::ping:
      *os << "ping \"" << escaped(event.data) << '"';
      break;
    case Event::Kind::pong:
      *os << "pong \"" << escaped(event.data) << '"';
      break;
    case Event::Kind::close:
      *os << "close " << event.code << " \"" << escaped(event.data) << '"'
          << (event.flag ? " (answer to ours)" : "");
      break;
    case Event::Kind::failed:
      *os << "failed " << name(event.error) << (event.flag ? " (close sent)" : " (no close sent)");
      break;
  }
}

// A frame the session wrote, decoded (and unmasked) by hand.
struct WrittenFrame {
  Opcode opcode;
  std::string payload;
  bool fin = true;
  bool rsv1 = false;
  bool operator==(const WrittenFrame&) const = default;
};

void PrintTo(const WrittenFrame& frame, std::ostream* os) {
  *os << "opcode " << static_cast<int>(frame.opcode) << (frame.fin ? "" : " !fin")
      << (frame.rsv1 ? " rsv1" : "") << " \"" << escaped(frame.payload) << '"';
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
  std::uint8_t payload[kMaxControlPayload];
  return as_string(std::span(payload, write_close_payload(payload, code, reason)));
}
WrittenFrame wire_close(std::uint16_t code, std::string_view reason = {}) {
  return {Opcode::close, close_payload(code, reason)};
}
WrittenFrame wire_pong(std::string_view payload) {
  return {Opcode::pong, std::string(payload)};
}

// The key of the n-th frame a client-role session masks (n from 1): never all zero, so a frame
// left unmasked cannot pass for a masked one.
MaskingKey masking_key(std::uint32_t n) {
  return {static_cast<std::uint8_t>(n), static_cast<std::uint8_t>(0x5a ^ n),
          static_cast<std::uint8_t>(n >> 8), 0xc3};
}

// Decodes what the session wrote. RFC 6455 §5.1: a client masks every frame (here with the
// transport's n-th key), a server none.
std::vector<WrittenFrame> decode(Role role, std::string_view wire) {
  std::vector<WrittenFrame> frames;
  std::size_t pos = 0;
  while (pos < wire.size()) {
    if (wire.size() - pos < 2) {
      ADD_FAILURE() << "a truncated frame header in the output";
      break;
    }
    const auto byte0 = static_cast<std::uint8_t>(wire[pos]);
    const auto byte1 = static_cast<std::uint8_t>(wire[pos + 1]);
    pos += 2;
    WrittenFrame frame{
        static_cast<Opcode>(byte0 & 0x0f), {}, (byte0 & 0x80) != 0, (byte0 & 0x40) != 0};
    EXPECT_EQ(byte0 & 0x30, 0) << "RSV2/RSV3 set in the output";
    const bool masked = (byte1 & 0x80) != 0;
    EXPECT_EQ(masked, role == Role::client) << "frame " << frames.size() << " of the output";
    std::uint64_t length = byte1 & 0x7f;
    const std::size_t length_size = length == 126 ? 2 : length == 127 ? 8 : 0;
    if (length_size != 0) {
      if (wire.size() - pos < length_size) {
        ADD_FAILURE() << "a truncated length in the output";
        break;
      }
      length = 0;
      for (std::size_t i = 0; i < length_size; ++i)
        length = (length << 8) | static_cast<std::uint8_t>(wire[pos++]);
    }
    MaskingKey key{};
    if (masked) {
      if (wire.size() - pos < 4) {
        ADD_FAILURE() << "a truncated masking key in the output";
        break;
      }
      for (auto& k : key) k = static_cast<std::uint8_t>(wire[pos++]);
      EXPECT_EQ(key, masking_key(static_cast<std::uint32_t>(frames.size() + 1)))
          << "frame " << frames.size() << " is not masked with a fresh key from the owner";
    }
    if (wire.size() - pos < length) {
      ADD_FAILURE() << "a truncated payload in the output";
      break;
    }
    frame.payload = std::string(wire.substr(pos, length));
    pos += length;
    if (masked)
      apply_mask(std::span(reinterpret_cast<std::uint8_t*>(frame.payload.data()), length), key);
    frames.push_back(std::move(frame));
  }
  return frames;
}

// The owner: records every hook. Like the server's and the client's connections, it drops what
// the reassembly buffers and the inflated message hold when the session says they are idle.
// The session's output as a string: Session writes each frame in place through extend().
struct FrameOutput : std::string {
  char* extend(std::size_t n) {
    resize(size() + n);
    return data() + size() - n;
  }
};

template <Role kRole>
struct RecordingTransport {
  using SessionType = Session<kRole, RecordingTransport>;

  SessionType* session = nullptr;
  FrameOutput output;
  int frames_written = 0;
  std::uint32_t keys_given = 0;
  SessionBuffers buffers;
  std::optional<MessageInflater> inflater;  // set when compression was agreed
  std::string inflated;
  std::vector<Event> events;
  std::uint16_t close_on_message = 0;  // non-zero: the message hook closes with this code

  FrameOutput& session_output() { return output; }
  void session_output_done() { ++frames_written; }
  MaskingKey session_masking_key() {
    EXPECT_EQ(kRole, Role::client) << "a server asked for a masking key";
    return masking_key(++keys_given);
  }
  SessionBuffers& session_buffers() { return buffers; }
  void session_buffers_idle() {
    std::string().swap(buffers.message);
    std::string().swap(inflated);
  }
  InflateStatus session_inflate(std::span<const std::uint8_t> piece, bool first, bool last,
                                std::uint64_t limit, std::span<const std::uint8_t>& message) {
    if (!inflater) {
      ADD_FAILURE() << "session_inflate without enable_compression()";
      return InflateStatus::corrupt;
    }
    if (first) inflated.clear();
    switch (inflater->inflate(piece, last, limit, inflated)) {
      case MessageInflater::Status::ok:
        break;
      case MessageInflater::Status::too_large:
        return InflateStatus::too_large;
      case MessageInflater::Status::corrupt:
        return InflateStatus::corrupt;
    }
    if (!last) return InflateStatus::more;
    message = as_bytes(inflated);
    return InflateStatus::done;
  }
  void on_session_message(Opcode opcode, std::span<const std::uint8_t> message) {
    events.push_back({Event::Kind::message, opcode, as_string(message)});
    if (close_on_message != 0) session->close(*this, close_on_message, "from the hook");
  }
  void on_session_ping(std::span<const std::uint8_t> payload) {
    events.push_back(on_ping(as_string(payload)));
  }
  void on_session_pong(std::span<const std::uint8_t> payload) {
    events.push_back(on_pong(as_string(payload)));
  }
  void on_session_close(std::uint16_t code, std::string_view reason, bool answer_to_ours) {
    events.push_back(on_close(code, reason, answer_to_ours));
  }
  void on_session_failed(ProtocolError error, bool close_sent) {
    events.push_back(on_failed(error, close_sent));
  }
};

struct Setup {
  std::uint64_t max_message_size = kUnlimitedMessageSize;
  bool compression = false;                  // enable_compression(), an inflater with window 15
  bool context_takeover = false;             // the inflater keeps its window between messages
  std::optional<std::uint16_t> close_first;  // we close with this code before any input
  std::uint16_t close_on_message = 0;
};

struct Outcome {
  std::vector<Event> events;
  std::vector<WrittenFrame> written;
  std::uint16_t close_first_sent = 0;  // what close(close_first) returned
  bool open = true, close_sent = false, close_received = false;
  bool operator==(const Outcome&) const = default;
};

void PrintTo(const Outcome& outcome, std::ostream* os) {
  *os << "events {";
  for (const Event& event : outcome.events) {
    *os << ' ';
    PrintTo(event, os);
    *os << ';';
  }
  *os << " } written {";
  for (const WrittenFrame& frame : outcome.written) {
    *os << ' ';
    PrintTo(frame, os);
    *os << ';';
  }
  *os << " }" << (outcome.open ? " open" : "") << (outcome.close_sent ? " close_sent" : "")
      << (outcome.close_received ? " close_received" : "");
}

// Feeds `input` in pieces that end at `cuts` (ascending) and at the end.
template <Role kRole>
Outcome run(const Setup& setup, std::string_view input, const std::vector<std::size_t>& cuts) {
  RecordingTransport<kRole> transport;
  typename RecordingTransport<kRole>::SessionType session(setup.max_message_size);
  transport.session = &session;
  transport.close_on_message = setup.close_on_message;
  if (setup.compression) {
    session.enable_compression();
    transport.inflater.emplace(kMaxWindowBits, !setup.context_takeover);
  }
  Outcome outcome;
  if (setup.close_first)
    outcome.close_first_sent = session.close(transport, *setup.close_first, "bye");
  std::string buffer(input);  // the session unmasks in place
  std::size_t pos = 0;
  auto feed_to = [&](std::size_t end) {
    session.feed(std::span(reinterpret_cast<std::uint8_t*>(buffer.data()) + pos, end - pos),
                 transport);
    pos = end;
  };
  for (const std::size_t cut : cuts) feed_to(cut);
  feed_to(buffer.size());
  outcome.events = std::move(transport.events);
  outcome.written = decode(kRole, transport.output);
  EXPECT_EQ(outcome.written.size(), static_cast<std::size_t>(transport.frames_written))
      << "session_output_done() once per frame";
  outcome.open = session.open();
  outcome.close_sent = session.close_sent();
  outcome.close_received = session.close_received();
  return outcome;
}

// Rules that hold for every input: nothing reaches the application after a failure or the peer's
// close, one failure and one close at most; one close frame written at most, and nothing after it
// (§5.5.1), with a code that may appear on the wire (§7.4).
void check_rules(const Outcome& outcome) {
  bool ended = false, failed = false, closed = false;
  for (const Event& event : outcome.events) {
    switch (event.kind) {
      case Event::Kind::message:
      case Event::Kind::ping:
      case Event::Kind::pong:
        EXPECT_FALSE(ended) << "delivered after a failure or the peer's close";
        break;
      case Event::Kind::close:
        EXPECT_FALSE(closed) << "a second close reported";
        // After a failure the peer's close can only be the answer to the close we sent.
        if (failed) {
          EXPECT_TRUE(event.flag);
        }
        closed = ended = true;
        break;
      case Event::Kind::failed:
        EXPECT_FALSE(failed) << "a second failure reported";
        failed = ended = true;
        break;
    }
  }
  bool close_written = false;
  for (const WrittenFrame& frame : outcome.written) {
    EXPECT_FALSE(close_written) << "a frame written after our close frame";
    if (frame.opcode != Opcode::close) continue;
    close_written = true;
    ClosePayload close;
    EXPECT_EQ(parse_close_payload(as_bytes(frame.payload), close), ProtocolError::none)
        << "close payload \"" << escaped(frame.payload) << "\" on the wire";
  }
}

// Feeds `input` whole, in two pieces split at every byte boundary, and one byte at a time; every
// way must give the outcome of the whole feed, which is returned.
template <Role kRole>
Outcome feed_every_way(std::string_view input, const Setup& setup = {}) {
  const Outcome whole = run<kRole>(setup, input, {});
  check_rules(whole);
  std::vector<std::size_t> differing_splits;
  std::optional<Outcome> first_difference;
  for (std::size_t cut = 1; cut < input.size(); ++cut) {
    Outcome split = run<kRole>(setup, input, {cut});
    if (split == whole) continue;
    differing_splits.push_back(cut);
    if (!first_difference) first_difference = std::move(split);
  }
  if (!differing_splits.empty()) {
    std::string cuts;
    for (const std::size_t cut : differing_splits) cuts += ' ' + std::to_string(cut);
    ADD_FAILURE() << "split in two at byte" << cuts << " of " << input.size()
                  << ", the outcome differs from the whole feed's:\n  whole: "
                  << ::testing::PrintToString(whole) << "\n  split at " << differing_splits[0]
                  << ": " << ::testing::PrintToString(*first_difference);
  }
  std::vector<std::size_t> every_byte;
  for (std::size_t cut = 1; cut < input.size(); ++cut) every_byte.push_back(cut);
  EXPECT_EQ(run<kRole>(setup, input, every_byte), whole) << "fed one byte at a time";
  return whole;
}

// The peer's frames: masked when they go to a server, unmasked to a client (RFC 6455 §5.1).
struct Peer {
  Role session_role;

  static std::string raw_frame(Opcode opcode, std::string_view payload, bool masked, bool fin,
                               bool rsv1) {
    static constexpr MaskingKey kKey = {0x37, 0xfa, 0x21, 0x3d};
    std::uint8_t header[kMaxFrameHeaderSize];
    std::string out(
        reinterpret_cast<const char*>(header),
        write_frame_header(header, opcode, payload.size(), fin, rsv1, masked ? &kKey : nullptr));
    const std::size_t start = out.size();
    out += payload;
    if (masked)
      apply_mask(std::span(reinterpret_cast<std::uint8_t*>(out.data()) + start, payload.size()),
                 kKey);
    return out;
  }
  std::string frame(Opcode opcode, std::string_view payload, bool fin = true,
                    bool rsv1 = false) const {
    return raw_frame(opcode, payload, session_role == Role::server, fin, rsv1);
  }
  std::string text(std::string_view payload, bool fin = true) const {
    return frame(Opcode::text, payload, fin);
  }
  std::string binary(std::string_view payload, bool fin = true) const {
    return frame(Opcode::binary, payload, fin);
  }
  std::string continuation(std::string_view payload, bool fin = true) const {
    return frame(Opcode::continuation, payload, fin);
  }
  std::string ping(std::string_view payload) const { return frame(Opcode::ping, payload); }
  std::string pong(std::string_view payload) const { return frame(Opcode::pong, payload); }
  // Any code, the forbidden ones included (write_close_payload would drop 1005).
  std::string close(std::uint16_t code, std::string_view reason = {}) const {
    std::string payload{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
    return frame(Opcode::close, payload + std::string(reason));
  }
  std::string empty_close() const { return frame(Opcode::close, {}); }
};

// A whole message compressed as RFC 7692 §7.2.1 says: raw deflate, the 00 00 ff ff tail removed.
std::string compressed(std::string_view message) {
  MessageDeflater deflater(kMaxWindowBits, 8, /*no_context_takeover=*/true);
  std::string out;
  deflater.compress(message, out);
  return out;
}

std::string repeated(char c, std::size_t size) {
  return std::string(size, c);
}

// The failure of `error`: reported with close_sent, and one close frame with `code` on the wire.
void expect_failure(const Outcome& outcome, ProtocolError error, std::uint16_t code,
                    std::vector<Event> before = {}, std::vector<WrittenFrame> written_before = {}) {
  before.push_back(on_failed(error, true));
  EXPECT_EQ(outcome.events, before);
  EXPECT_EQ(close_code_for(error), code) << name(error);
  written_before.push_back(wire_close(code, describe(error)));
  EXPECT_EQ(outcome.written, written_before);
  EXPECT_FALSE(outcome.open);
  EXPECT_TRUE(outcome.close_sent);
}

template <typename RoleConstant>
class SessionTest : public ::testing::Test {};

using Roles = ::testing::Types<std::integral_constant<Role, Role::server>,
                               std::integral_constant<Role, Role::client>>;
struct RoleNames {
  template <typename RoleConstant>
  static std::string GetName(int) {
    return RoleConstant::value == Role::server ? "server" : "client";
  }
};
TYPED_TEST_SUITE(SessionTest, Roles, RoleNames);

// ---------------------------------------------------------------------------------------------
// Close codes (RFC 6455 §5.5.1, §7.4)

TYPED_TEST(SessionTest, ValidCloseCodesAreEchoed) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  for (const std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
                                   1014, 3000, 3999, 4000, 4999}) {
    SCOPED_TRACE(code);
    const Outcome outcome = feed_every_way<kRole>(peer.close(code, "bye"));
    EXPECT_EQ(outcome.events, std::vector{on_close(code, "bye", false)});
    // §5.5.1: the answer echoes the status code.
    EXPECT_EQ(outcome.written, std::vector{wire_close(code)});
    EXPECT_TRUE(outcome.close_sent && outcome.close_received && !outcome.open);
  }
}

TYPED_TEST(SessionTest, CloseCodesForbiddenOnTheWireFail) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  for (const std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    SCOPED_TRACE(code);
    const Outcome outcome = feed_every_way<kRole>(peer.close(code, "bye"));
    expect_failure(outcome, ProtocolError::invalid_close_code, 1002);
    EXPECT_FALSE(outcome.close_received);
  }
}

TYPED_TEST(SessionTest, OneByteClosePayloadFails) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  expect_failure(feed_every_way<kRole>(peer.frame(Opcode::close, "\x03")),
                 ProtocolError::invalid_close_payload, 1002);
}

TYPED_TEST(SessionTest, CloseReasonThatIsNotUtf8Fails) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  for (const std::string_view reason : {"bad \xff", "\xc0\xaf", "cut \xe2\x82"}) {
    SCOPED_TRACE(escaped(reason));
    expect_failure(feed_every_way<kRole>(peer.close(1000, reason)),
                   ProtocolError::invalid_close_reason, 1007);
  }
}

TYPED_TEST(SessionTest, EmptyCloseIsAnsweredWithAnEmptyClose) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const Outcome outcome = feed_every_way<kRole>(peer.empty_close());
  // §7.1.5: no status code is reported as 1005, which never goes on the wire (§7.4.1).
  EXPECT_EQ(outcome.events, std::vector{on_close(close_code::kNoStatus, "", false)});
  EXPECT_EQ(outcome.written, std::vector{(WrittenFrame{Opcode::close, ""})});
  EXPECT_TRUE(outcome.close_sent && outcome.close_received);
}

TYPED_TEST(SessionTest, ApplicationCloseCodesThatMayNotBeSentBecome1000) {
  constexpr Role kRole = TypeParam::value;
  for (const std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    SCOPED_TRACE(code);
    const Outcome outcome = run<kRole>({.close_first = code}, {}, {});
    EXPECT_EQ(outcome.close_first_sent, close_code::kNormal);
    EXPECT_EQ(outcome.written, std::vector{wire_close(close_code::kNormal, "bye")});
    EXPECT_TRUE(outcome.events.empty());
    EXPECT_TRUE(outcome.close_sent && !outcome.close_received && !outcome.open);
  }
}

TYPED_TEST(SessionTest, ApplicationCloseCodesThatMayBeSentPassThrough) {
  constexpr Role kRole = TypeParam::value;
  for (const std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999}) {
    SCOPED_TRACE(code);
    const Outcome outcome = run<kRole>({.close_first = code}, {}, {});
    EXPECT_EQ(outcome.close_first_sent, code);
    EXPECT_EQ(outcome.written, std::vector{wire_close(code, "bye")});
  }
}

TYPED_TEST(SessionTest, SecondCloseSendsNothing) {
  constexpr Role kRole = TypeParam::value;
  RecordingTransport<kRole> transport;
  typename RecordingTransport<kRole>::SessionType session(kUnlimitedMessageSize);
  EXPECT_EQ(session.close(transport, 1001, "going"), 1001);
  EXPECT_EQ(session.close(transport, 1000, "again"), 0);
  EXPECT_EQ(session.close(transport, 1006, "again"), 0);
  EXPECT_EQ(decode(kRole, transport.output), std::vector{wire_close(1001, "going")});
  EXPECT_EQ(transport.frames_written, 1);
}

TYPED_TEST(SessionTest, CloseAfterThePeersCloseSendsNothing) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  RecordingTransport<kRole> transport;
  typename RecordingTransport<kRole>::SessionType session(kUnlimitedMessageSize);
  std::string input = peer.close(1001);
  session.feed(std::span(reinterpret_cast<std::uint8_t*>(input.data()), input.size()), transport);
  EXPECT_EQ(session.close(transport, 1000, "late"), 0);
  EXPECT_EQ(decode(kRole, transport.output), std::vector{wire_close(1001)});
}

TYPED_TEST(SessionTest, FailByTheOwnerSendsTheRulesCodeOnce) {
  constexpr Role kRole = TypeParam::value;
  RecordingTransport<kRole> transport;
  typename RecordingTransport<kRole>::SessionType session(kUnlimitedMessageSize);
  session.fail(transport, ProtocolError::message_too_large);
  session.fail(transport, ProtocolError::invalid_utf8);
  EXPECT_EQ(transport.events, std::vector{on_failed(ProtocolError::message_too_large, true)});
  EXPECT_EQ(decode(kRole, transport.output),
            std::vector{wire_close(1009, describe(ProtocolError::message_too_large))});
  EXPECT_EQ(session.close(transport, 1000, "late"), 0);
}

// ---------------------------------------------------------------------------------------------
// Fragmentation (§5.4) and control frames (§5.5)

TYPED_TEST(SessionTest, FragmentedTextWithPingsAndPongsInterleaved) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const Outcome outcome = feed_every_way<kRole>(
      peer.text("Hel", false) + peer.ping("are you there?") + peer.continuation("lo, ", false) +
      peer.pong("unsolicited") + peer.continuation("", false) + peer.ping("") +
      peer.continuation("world", true) + peer.binary("\x00\x01"s));
  EXPECT_EQ(outcome.events,
            (std::vector{on_ping("are you there?"), on_pong("unsolicited"), on_ping(""),
                         on_text("Hello, world"), on_binary("\x00\x01"s)}));
  // §5.5.2: each ping answered at once, mid-message, with its own payload.
  EXPECT_EQ(outcome.written, (std::vector{wire_pong("are you there?"), wire_pong("")}));
  EXPECT_TRUE(outcome.open);
}

// RFC 6455 §5.4 lets a control frame sit between two fragments; TCP may cut it anywhere. The
// session says "idle" after a control frame that arrived in two reads, although the message is
// still open: an owner that then releases the buffers (as both connections do, with
// net::release_if_large) loses the fragments received so far.
TYPED_TEST(SessionTest, ControlFrameSplitAcrossReadsKeepsTheOpenMessage) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const std::string first = peer.text("Hel", false);
  const std::string ping = peer.ping("ping");
  const std::string input = first + ping + peer.continuation("lo", true);
  const Outcome outcome = run<kRole>({}, input, {first.size() + ping.size() - 2});
  EXPECT_EQ(outcome.events, (std::vector{on_ping("ping"), on_text("Hello")}));
  EXPECT_EQ(outcome.written, std::vector{wire_pong("ping")});
}

TYPED_TEST(SessionTest, ContinuationWithoutAStartFails) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  expect_failure(feed_every_way<kRole>(peer.continuation("x", true)),
                 ProtocolError::unexpected_continuation, 1002);
  // Also right after a complete message.
  expect_failure(feed_every_way<kRole>(peer.text("a") + peer.continuation("b", false)),
                 ProtocolError::unexpected_continuation, 1002, {on_text("a")});
}

TYPED_TEST(SessionTest, NewMessageWhileAFragmentedOneIsOpenFails) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  expect_failure(feed_every_way<kRole>(peer.text("a", false) + peer.text("b")),
                 ProtocolError::expected_continuation, 1002);
  expect_failure(feed_every_way<kRole>(peer.binary("a", false) + peer.ping("p") + peer.text("b")),
                 ProtocolError::expected_continuation, 1002, {on_ping("p")}, {wire_pong("p")});
}

TYPED_TEST(SessionTest, FragmentedControlFrameFails) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  for (const Opcode opcode : {Opcode::ping, Opcode::pong, Opcode::close}) {
    SCOPED_TRACE(static_cast<int>(opcode));
    expect_failure(feed_every_way<kRole>(peer.frame(opcode, "\x03\xe8", false)),
                   ProtocolError::fragmented_control_frame, 1002);
  }
}

TYPED_TEST(SessionTest, ControlFrameOver125BytesFails) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  for (const Opcode opcode : {Opcode::ping, Opcode::pong, Opcode::close}) {
    SCOPED_TRACE(static_cast<int>(opcode));
    expect_failure(feed_every_way<kRole>(peer.frame(opcode, "\x03\xe8" + repeated('x', 124))),
                   ProtocolError::control_frame_too_large, 1002);
  }
  // 125 bytes is the largest allowed.
  const std::string largest = repeated('p', kMaxControlPayload);
  const Outcome outcome = feed_every_way<kRole>(peer.ping(largest));
  EXPECT_EQ(outcome.events, std::vector{on_ping(largest)});
  EXPECT_EQ(outcome.written, std::vector{wire_pong(largest)});
}

// A hook may call close(): nothing after it is delivered, the peer's close completes it.
TYPED_TEST(SessionTest, CloseFromTheMessageHook) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const Outcome outcome =
      feed_every_way<kRole>(peer.text("a") + peer.text("b") + peer.ping("p") + peer.close(1000),
                            {.close_on_message = 3001});
  EXPECT_EQ(outcome.events, (std::vector{on_text("a"), on_close(1000, "", true)}));
  EXPECT_EQ(outcome.written, std::vector{wire_close(3001, "from the hook")});
}

// ---------------------------------------------------------------------------------------------
// Maximum message size

TYPED_TEST(SessionTest, MessageExactlyAtTheLimitIsDelivered) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const Setup setup{.max_message_size = 10};
  EXPECT_EQ(feed_every_way<kRole>(peer.binary(repeated('b', 10)), setup).events,
            std::vector{on_binary(repeated('b', 10))});
  EXPECT_EQ(
      feed_every_way<kRole>(
          peer.text("0123", false) + peer.ping("p") + peer.continuation("456789", true), setup)
          .events,
      (std::vector{on_ping("p"), on_text("0123456789")}));
  // Control frames do not count against it.
  EXPECT_EQ(feed_every_way<kRole>(peer.ping(repeated('p', 100)), setup).events,
            std::vector{on_ping(repeated('p', 100))});
}

TYPED_TEST(SessionTest, MessageOneByteOverTheLimitFails) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const Setup setup{.max_message_size = 10};
  expect_failure(feed_every_way<kRole>(peer.binary(repeated('b', 11)), setup),
                 ProtocolError::message_too_large, 1009);
  expect_failure(
      feed_every_way<kRole>(peer.text("01234", false) + peer.continuation("56789x", true), setup),
      ProtocolError::message_too_large, 1009);
  expect_failure(
      feed_every_way<kRole>(peer.text("01234", false) + peer.continuation("", false) +
                                peer.continuation("56789", false) + peer.continuation("x", true),
                            setup),
      ProtocolError::message_too_large, 1009);
}

// ---------------------------------------------------------------------------------------------
// UTF-8 of text messages (§8.1)

TYPED_TEST(SessionTest, CodePointSplitBetweenFragmentsIsDelivered) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  EXPECT_EQ(
      feed_every_way<kRole>(peer.text("price \xe2\x82", false) + peer.continuation("\xac")).events,
      std::vector{on_text("price \xe2\x82\xac")});
  EXPECT_EQ(feed_every_way<kRole>(peer.text("\xf0", false) + peer.continuation("\x9f", false) +
                                  peer.ping("p") + peer.continuation("\x98\x80", true))
                .events,
            (std::vector{on_ping("p"), on_text("\xf0\x9f\x98\x80")}));
}

TYPED_TEST(SessionTest, InvalidUtf8FailsAtOnce) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  // The message is not complete: the bad byte alone fails it.
  expect_failure(feed_every_way<kRole>(peer.text("ok \xff", false)), ProtocolError::invalid_utf8,
                 1007);
  expect_failure(feed_every_way<kRole>(peer.text("ok", false) + peer.continuation("\xed\xa0\x80")),
                 ProtocolError::invalid_utf8, 1007);
  // Mid-frame: the frame announces 10 bytes, only 2 have come.
  const std::string frame = peer.text("a\xc0" + repeated('x', 8));
  expect_failure(feed_every_way<kRole>(frame.substr(0, frame.size() - 8)),
                 ProtocolError::invalid_utf8, 1007);
}

TYPED_TEST(SessionTest, Utf8TruncatedAtTheEndOfTheMessageFails) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  expect_failure(feed_every_way<kRole>(peer.text("\xe2\x82", false) + peer.continuation("")),
                 ProtocolError::invalid_utf8, 1007);
  expect_failure(feed_every_way<kRole>(peer.text("abc\xf0\x9f\x98")), ProtocolError::invalid_utf8,
                 1007);
}

// ---------------------------------------------------------------------------------------------
// After a close (§5.5.1, §7.1)

TYPED_TEST(SessionTest, NothingAfterThePeersCloseIsProcessed) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const Outcome outcome =
      feed_every_way<kRole>(peer.close(1001, "away") + peer.text("late") + peer.ping("late") +
                            peer.close(1000) + "\xff\xff garbage");
  EXPECT_EQ(outcome.events, std::vector{on_close(1001, "away", false)});
  EXPECT_EQ(outcome.written, std::vector{wire_close(1001)});
  // In the middle of a fragmented message too.
  const Outcome mid = feed_every_way<kRole>(peer.text("a", false) + peer.close(1000) +
                                            peer.continuation("b") + peer.frame(Opcode::text, "c"));
  EXPECT_EQ(mid.events, std::vector{on_close(1000, "", false)});
  EXPECT_EQ(mid.written, std::vector{wire_close(1000)});
}

TYPED_TEST(SessionTest, OurCloseThenThePeersClose) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const Outcome outcome =
      feed_every_way<kRole>(peer.close(1000, "ok") + peer.text("late"), {.close_first = 1001});
  EXPECT_EQ(outcome.close_first_sent, 1001);
  EXPECT_EQ(outcome.events, std::vector{on_close(1000, "ok", true)});
  EXPECT_EQ(outcome.written, std::vector{wire_close(1001, "bye")});
  EXPECT_TRUE(outcome.close_sent && outcome.close_received);
}

TYPED_TEST(SessionTest, DataAfterOurCloseIsNotDelivered) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const Outcome outcome =
      feed_every_way<kRole>(peer.text("a") + peer.binary("b", false) + peer.ping("p") +
                                peer.continuation("c") + peer.pong("q") + peer.empty_close(),
                            {.close_first = 1000});
  // Not even pings are answered: nothing goes out after our close frame (§5.5.1).
  EXPECT_EQ(outcome.events, std::vector{on_close(close_code::kNoStatus, "", true)});
  EXPECT_EQ(outcome.written, std::vector{wire_close(1000, "bye")});
}

TYPED_TEST(SessionTest, ProtocolErrorAfterOurCloseWritesNothingMore) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const std::pair<std::string, ProtocolError> cases[] = {
      {peer.text("a") + peer.frame(Opcode{0x3}, "x"), ProtocolError::reserved_opcode},
      {peer.close(1006), ProtocolError::invalid_close_code},
      {peer.text("\xff") + peer.close(1000), ProtocolError::invalid_utf8},
  };
  for (const auto& [input, error] : cases) {
    SCOPED_TRACE(name(error));
    const Outcome outcome = feed_every_way<kRole>(input, {.close_first = 1000});
    // The owner just drops the connection: our close frame is already out.
    EXPECT_EQ(outcome.events, std::vector{on_failed(error, false)});
    EXPECT_EQ(outcome.written, std::vector{wire_close(1000, "bye")});
  }
}

// ---------------------------------------------------------------------------------------------
// Masking (§5.1, §5.3)

TYPED_TEST(SessionTest, InputMaskedTheWrongWayFails) {
  constexpr Role kRole = TypeParam::value;
  // A server gets masked frames only, a client unmasked ones only.
  const bool masked = kRole == Role::client;
  const ProtocolError error =
      kRole == Role::server ? ProtocolError::unmasked_frame : ProtocolError::masked_frame;
  for (const Opcode opcode : {Opcode::text, Opcode::binary, Opcode::ping, Opcode::close}) {
    SCOPED_TRACE(static_cast<int>(opcode));
    expect_failure(feed_every_way<kRole>(Peer::raw_frame(opcode, "", masked, true, false)), error,
                   1002);
  }
  const Peer peer{kRole};
  expect_failure(
      feed_every_way<kRole>(peer.text("a", false) +
                            Peer::raw_frame(Opcode::continuation, "b", masked, true, false)),
      error, 1002);
}

TYPED_TEST(SessionTest, OutputIsMaskedInClientRoleOnly) {
  constexpr Role kRole = TypeParam::value;
  RecordingTransport<kRole> transport;
  typename RecordingTransport<kRole>::SessionType session(kUnlimitedMessageSize);
  const std::string payload = repeated('m', 300);  // a 16-bit length
  session.send(transport, Opcode::text, as_bytes(payload));
  session.send(transport, Opcode::binary, as_bytes("part"), false);
  session.send(transport, Opcode::continuation, as_bytes(""), true);
  session.close(transport, 1000, "done");
  // decode() checks the MASK bit and the key of every frame.
  EXPECT_EQ(
      decode(kRole, transport.output),
      (std::vector{WrittenFrame{Opcode::text, payload}, WrittenFrame{Opcode::binary, "part", false},
                   WrittenFrame{Opcode::continuation, ""}, wire_close(1000, "done")}));
  const bool payload_in_clear = transport.output.find(payload) != std::string::npos;
  EXPECT_EQ(payload_in_clear, kRole == Role::server);
  EXPECT_EQ(transport.keys_given, kRole == Role::client ? 4u : 0u);
}

// Every payload size around the inline copy's 4- and 8-byte words (and past them, memcpy) goes
// out whole and unchanged.
TYPED_TEST(SessionTest, EveryShortPayloadSizeIsSentWhole) {
  constexpr Role kRole = TypeParam::value;
  RecordingTransport<kRole> transport;
  typename RecordingTransport<kRole>::SessionType session(kUnlimitedMessageSize);
  std::vector<WrittenFrame> expected;
  for (std::size_t size = 0; size <= 40; ++size) {
    std::string payload;
    for (std::size_t i = 0; i < size; ++i) payload += static_cast<char>('A' + (size + i) % 26);
    session.send(transport, Opcode::binary, as_bytes(payload));
    expected.push_back(WrittenFrame{Opcode::binary, payload});
  }
  EXPECT_EQ(decode(kRole, transport.output), expected);
}

// ---------------------------------------------------------------------------------------------
// permessage-deflate (RFC 7692)

TYPED_TEST(SessionTest, CompressedMessageIsDeliveredInflated) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const Setup setup{.compression = true};
  const std::string message = "Hello, hello, hello, compressed world!";
  const std::string payload = compressed(message);
  const Outcome outcome =
      feed_every_way<kRole>(peer.frame(Opcode::text, payload, true, true) + peer.text("plain") +
                                peer.frame(Opcode::binary, compressed(""), true, true),
                            setup);
  EXPECT_EQ(outcome.events, (std::vector{on_text(message), on_text("plain"), on_binary("")}));
  EXPECT_TRUE(outcome.written.empty());
}

TYPED_TEST(SessionTest, CompressedMessageInFragmentsWithAPing) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const std::string message = "fragmented, fragmented, and fragmented again";
  const std::string payload = compressed(message);
  ASSERT_GT(payload.size(), 4u);
  // RFC 7692 §6.1: RSV1 on the first frame only.
  const Outcome outcome = feed_every_way<kRole>(
      peer.frame(Opcode::text, payload.substr(0, 2), false, true) + peer.ping("ping!") +
          peer.continuation(payload.substr(2, 2), false) +
          peer.continuation(payload.substr(4), true),
      {.compression = true});
  EXPECT_EQ(outcome.events, (std::vector{on_ping("ping!"), on_text(message)}));
  EXPECT_EQ(outcome.written, std::vector{wire_pong("ping!")});
}

TYPED_TEST(SessionTest, CompressedMessagesWithContextTakeover) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  MessageDeflater deflater(kMaxWindowBits, 8, /*no_context_takeover=*/false);
  std::string first, second;
  deflater.compress("context that the second message refers to", first);
  deflater.compress("context that the second message refers to, again", second);
  const Outcome outcome = feed_every_way<kRole>(
      peer.frame(Opcode::text, first, true, true) + peer.frame(Opcode::text, second, true, true),
      {.compression = true, .context_takeover = true});
  EXPECT_EQ(outcome.events,
            (std::vector{on_text("context that the second message refers to"),
                         on_text("context that the second message refers to, again")}));
}

TYPED_TEST(SessionTest, Rsv1WithoutCompressionFails) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  expect_failure(feed_every_way<kRole>(peer.frame(Opcode::text, compressed("x"), true, true)),
                 ProtocolError::reserved_bits_set, 1002);
}

// Regression: the client used to report a literal of its own instead of the enumerator.
TYPED_TEST(SessionTest, CorruptCompressedDataFails) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  // 0xff: a final block of type 3, which does not exist (RFC 1951 §3.2.3).
  const Outcome outcome =
      feed_every_way<kRole>(peer.frame(Opcode::binary, "\xff\xff\xff\xff", true, true) +
                                peer.text("after") + peer.ping("after"),
                            {.compression = true});
  expect_failure(outcome, ProtocolError::invalid_compressed_data, 1007);
}

TYPED_TEST(SessionTest, InflatedTextThatIsNotUtf8Fails) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  expect_failure(
      feed_every_way<kRole>(peer.frame(Opcode::text, compressed("ok \xff\xfe"), true, true),
                            {.compression = true}),
      ProtocolError::invalid_utf8, 1007);
  // The same bytes in a binary message are fine.
  EXPECT_EQ(feed_every_way<kRole>(peer.frame(Opcode::binary, compressed("ok \xff\xfe"), true, true),
                                  {.compression = true})
                .events,
            std::vector{on_binary("ok \xff\xfe")});
}

TYPED_TEST(SessionTest, InflatedSizeLimit) {
  constexpr Role kRole = TypeParam::value;
  const Peer peer{kRole};
  const Setup setup{.max_message_size = 100, .compression = true};
  EXPECT_EQ(feed_every_way<kRole>(
                peer.frame(Opcode::text, compressed(repeated('a', 100)), true, true), setup)
                .events,
            std::vector{on_text(repeated('a', 100))});
  // A few bytes on the wire, one byte too many once inflated (RFC 7692 §8.1).
  const std::string bomb = compressed(repeated('a', 101));
  ASSERT_LT(bomb.size(), 100u);
  expect_failure(feed_every_way<kRole>(peer.frame(Opcode::text, bomb, true, true), setup),
                 ProtocolError::message_too_large, 1009);
  expect_failure(feed_every_way<kRole>(peer.frame(Opcode::text, bomb.substr(0, 1), false, true) +
                                           peer.continuation(bomb.substr(1), true),
                                       setup),
                 ProtocolError::message_too_large, 1009);
}

}  // namespace
}  // namespace pylon::ws
