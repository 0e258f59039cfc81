// libFuzzer target for src/ws/frame_parser.hpp.
//
// Input layout: byte 0 picks the role and whether RSV1 (permessage-deflate) is allowed, byte 1 the
// maximum message size, byte 2 seeds the chunk-split pattern; the rest is the wire bytes. Checks:
// the Handler contract (first/last ordering, sizes, UTF-8 and close payloads as delivered), that
// the verdict and the completed messages do not depend on how the input is split, and that
// re-encoding what was delivered and parsing it again gives the same messages.
#include <simdjson.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "ws/frame_parser.hpp"

namespace {

using namespace pylon::ws;

struct Event {
  Opcode opcode;
  bool compressed;
  std::vector<std::uint8_t> data;
  bool operator==(const Event&) const = default;
};

void check(bool condition) {
  if (!condition) __builtin_trap();
}

struct Handler {
  const FrameParser<Handler>* parser = nullptr;
  std::uint64_t max_size = 0;
  std::vector<Event> events;  // completed messages and control frames, in order
  std::vector<std::uint8_t> message, control;
  bool message_open = false, control_open = false;
  Opcode message_opcode{}, control_opcode{};

  void on_message_data(Opcode opcode, std::span<const std::uint8_t> chunk, bool first, bool last) {
    check(first == !message_open && (opcode == Opcode::text || opcode == Opcode::binary));
    if (first) {
      message.clear();
      message_opcode = opcode;
    }
    check(opcode == message_opcode && parser->in_message() == !last);
    message.insert(message.end(), chunk.begin(), chunk.end());
    check(message.size() <= max_size);
    message_open = !last;
    if (!last) return;
    const bool compressed = parser->message_compressed();
    if (opcode == Opcode::text && !compressed) {
      check(simdjson::validate_utf8(reinterpret_cast<const char*>(message.data()), message.size()));
    }
    events.push_back({opcode, compressed, message});
  }
  void on_control_frame_data(Opcode opcode, std::span<const std::uint8_t> chunk, bool first,
                             bool last) {
    check(first == !control_open && is_control(opcode));
    if (first) {
      control.clear();
      control_opcode = opcode;
    }
    check(opcode == control_opcode);
    control.insert(control.end(), chunk.begin(), chunk.end());
    check(control.size() <= kMaxControlPayload);
    control_open = !last;
    if (!last) return;
    ClosePayload close;
    if (opcode == Opcode::close) check(parse_close_payload(control, close) == ProtocolError::none);
    events.push_back({opcode, false, control});
  }
};

struct Result {
  ProtocolError error;
  std::vector<Event> events;
};

// Parses a copy of wire (the parser unmasks in place); chunk sizes come from a small LCG, or the
// whole input at once when seed is 0.
Result parse(Role role, bool allow_rsv1, std::uint64_t max_size, std::vector<std::uint8_t> wire,
             std::uint32_t seed) {
  Handler handler;
  FrameParser<Handler> parser(role, max_size, allow_rsv1);
  handler.parser = &parser;
  handler.max_size = max_size;
  std::size_t pos = 0;
  ProtocolError error = ProtocolError::none;
  std::uint32_t state = seed;
  while (pos < wire.size() && error == ProtocolError::none) {
    std::size_t n = wire.size() - pos;
    if (seed != 0) {
      state = state * 1664525u + 1013904223u;
      n = std::min<std::size_t>(n, (state >> 24) % (seed % 7 == 0 ? 3 : 40) + 1);
    }
    error = parser.feed(std::span(wire).subspan(pos, n), handler);
    pos += n;
  }
  // A dead parser answers with the same error and calls nothing.
  const std::size_t before = handler.events.size();
  std::uint8_t extra[2] = {0x82, 0x00};
  if (error != ProtocolError::none) check(parser.feed(extra, handler) == error);
  check(handler.events.size() == before && parser.error() == error);
  return {error, std::move(handler.events)};
}

// Encodes events as frames a peer of `role` would send, data messages split in up to 3 fragments.
std::vector<std::uint8_t> encode(const std::vector<Event>& events, Role role, std::uint8_t salt) {
  std::vector<std::uint8_t> out;
  const MaskingKey key = {salt, 0x5a, static_cast<std::uint8_t>(salt * 7), 0xc3};
  const MaskingKey* mask = role == Role::server ? &key : nullptr;
  auto frame = [&](Opcode op, std::span<const std::uint8_t> payload, bool fin, bool rsv1) {
    std::uint8_t header[kMaxFrameHeaderSize];
    const std::size_t n = write_frame_header(header, op, payload.size(), fin, rsv1, mask);
    out.insert(out.end(), header, header + n);
    const std::size_t start = out.size();
    out.insert(out.end(), payload.begin(), payload.end());
    if (mask != nullptr) apply_mask(std::span(out).subspan(start), key);
  };
  for (const Event& e : events) {
    if (is_control(e.opcode)) {
      frame(e.opcode, e.data, true, false);
      continue;
    }
    const std::span<const std::uint8_t> data(e.data);
    const std::size_t cut1 = salt % (data.size() + 1);
    const std::size_t cut2 = cut1 + (salt / 3) % (data.size() - cut1 + 1);
    frame(e.opcode, data.first(cut1), false, e.compressed);
    frame(Opcode::continuation, data.subspan(cut1, cut2 - cut1), false, false);
    frame(Opcode::continuation, data.subspan(cut2), true, false);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const Role role = (data[0] & 1) != 0 ? Role::client : Role::server;
  const bool allow_rsv1 = (data[0] & 2) != 0;
  static constexpr std::uint64_t kSizes[] = {0, 1, 2, 5, 125, 126, 1000, 65535, 65536};
  const std::uint64_t max_size = data[1] < std::size(kSizes) ? kSizes[data[1]]
                                 : data[1] < 128             ? data[1]
                                                             : kUnlimitedMessageSize;
  const std::uint32_t seed = data[2] | 1u;
  const std::vector<std::uint8_t> wire(data + 3, data + size);

  const Result chunked = parse(role, allow_rsv1, max_size, wire, seed);
  const Result whole = parse(role, allow_rsv1, max_size, wire, 0);
  check(chunked.error == whole.error && chunked.events == whole.events);

  const Result again =
      parse(role, allow_rsv1, kUnlimitedMessageSize, encode(whole.events, role, data[2]), seed + 2);
  check(again.error == ProtocolError::none && again.events == whole.events);
  return 0;
}
