// libFuzzer target for src/ws/session.hpp.
//
// Input layout: byte 0 picks the role (bit 0), permessage-deflate (bit 1), context takeover for
// the inflater (bit 2), our close before any input (bit 3) and a close() from the message hook
// (bit 4); byte 1 the maximum message size; byte 2 seeds the chunk-split pattern; the rest is the
// peer's bytes. The session runs twice, on the whole input and in chunks, with an owner that
// records every hook and, like the server's and the client's connections, releases the buffers
// when told they are idle. Checks: the hooks called and the bytes written do not depend on the
// split; every frame written is well formed and masked as the role requires (§5.1); a close frame
// written carries a code allowed on the wire (§7.4) and is the last frame; each ping is answered
// by a pong with its payload; nothing reaches the application after a failure or the peer's close,
// and nothing is delivered that breaks the size limit or, for text, UTF-8.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ws/permessage_deflate.hpp"
#include "ws/session.hpp"

namespace {

using namespace pylon::ws;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

std::span<const std::uint8_t> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

enum class Kind : std::uint8_t { message, ping, pong, close, failed };

struct Event {
  Kind kind;
  Opcode opcode = Opcode::continuation;
  std::string data;
  std::uint16_t code = 0;
  bool flag = false;  // close: answer_to_ours; failed: close_sent
  ProtocolError error = ProtocolError::none;
  bool operator==(const Event&) const = default;
};

MaskingKey masking_key(std::uint32_t n) {
  return {static_cast<std::uint8_t>(n), static_cast<std::uint8_t>(0x5a ^ n),
          static_cast<std::uint8_t>(n >> 8), 0xc3};
}

struct Options {
  Role role;
  bool compression, context_takeover, close_first, close_on_message;
  std::uint64_t max_size;
};

// The session's output as a string: Session writes each frame in place through extend().
struct FrameOutput : std::string {
  char* extend(std::size_t n) {
    resize(size() + n);
    return data() + size() - n;
  }
};

template <Role kRole>
struct Owner {
  using SessionType = Session<kRole, Owner>;

  const Options& options;
  SessionType* session = nullptr;
  FrameOutput output;
  std::uint32_t keys_given = 0;
  SessionBuffers buffers;
  std::optional<MessageInflater> inflater;
  std::string inflated;
  std::vector<Event> events;

  FrameOutput& session_output() { return output; }
  void session_output_done() {}
  MaskingKey session_masking_key() {
    check(kRole == Role::client);
    return masking_key(++keys_given);
  }
  SessionBuffers& session_buffers() { return buffers; }
  void session_buffers_idle() {
    std::string().swap(buffers.message);
    std::string().swap(inflated);
  }
  InflateStatus session_inflate(std::span<const std::uint8_t> piece, bool first, bool last,
                                std::uint64_t limit, std::span<const std::uint8_t>& message) {
    check(inflater.has_value() && limit == options.max_size);
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
    check(session->open() && (opcode == Opcode::text || opcode == Opcode::binary));
    check(message.size() <= options.max_size);
    if (opcode == Opcode::text) check(is_valid_utf8(message));
    events.push_back({Kind::message, opcode, {message.begin(), message.end()}});
    if (options.close_on_message) session->close(*this, 3000, "from the hook");
  }
  void on_session_ping(std::span<const std::uint8_t> payload) {
    check(session->open() && payload.size() <= kMaxControlPayload);
    events.push_back({Kind::ping, {}, {payload.begin(), payload.end()}});
  }
  void on_session_pong(std::span<const std::uint8_t> payload) {
    check(session->open() && payload.size() <= kMaxControlPayload);
    events.push_back({Kind::pong, {}, {payload.begin(), payload.end()}});
  }
  void on_session_close(std::uint16_t code, std::string_view reason, bool answer_to_ours) {
    check(session->close_received() && session->close_sent());
    check(code == close_code::kNoStatus || is_valid_close_code(code));
    check(is_valid_utf8(as_bytes(reason)) && reason.size() <= kMaxCloseReason);
    events.push_back({Kind::close, {}, std::string(reason), code, answer_to_ours});
  }
  void on_session_failed(ProtocolError error, bool close_sent) {
    check(error != ProtocolError::none && session->close_sent());
    events.push_back({Kind::failed, {}, {}, 0, close_sent, error});
  }
};

struct Frame {
  Opcode opcode;
  std::string payload;
};

// Decodes what the session wrote; every frame must be complete and masked as the role requires,
// the n-th with the owner's n-th key.
std::vector<Frame> decode(Role role, std::string_view wire) {
  std::vector<Frame> frames;
  std::size_t pos = 0;
  while (pos < wire.size()) {
    check(wire.size() - pos >= 2);
    const auto byte0 = static_cast<std::uint8_t>(wire[pos]);
    const auto byte1 = static_cast<std::uint8_t>(wire[pos + 1]);
    pos += 2;
    // The session writes single-frame pongs and closes only; RSV bits are never set on them.
    check((byte0 & 0xf0) == 0x80);
    const bool masked = (byte1 & 0x80) != 0;
    check(masked == (role == Role::client));
    const std::size_t length = byte1 & 0x7f;
    check(length <= kMaxControlPayload);
    check(wire.size() - pos >= (masked ? 4 : 0) + length);
    MaskingKey key{};
    if (masked) {
      std::memcpy(key.data(), wire.data() + pos, 4);
      pos += 4;
      check(key == masking_key(static_cast<std::uint32_t>(frames.size() + 1)));
    }
    Frame frame{static_cast<Opcode>(byte0 & 0x0f), std::string(wire.substr(pos, length))};
    pos += length;
    if (masked)
      apply_mask(std::span(reinterpret_cast<std::uint8_t*>(frame.payload.data()), length), key);
    frames.push_back(std::move(frame));
  }
  return frames;
}

struct Result {
  std::vector<Event> events;
  std::string output;
  bool operator==(const Result&) const = default;
};

// A ping as the peer of `role` sends it.
std::string peer_ping(Role role) {
  static constexpr MaskingKey kKey = {1, 2, 3, 4};
  std::uint8_t header[kMaxFrameHeaderSize];
  std::string out(reinterpret_cast<const char*>(header),
                  write_frame_header(header, Opcode::ping, 1, true, false,
                                     role == Role::server ? &kKey : nullptr));
  out += role == Role::server ? static_cast<char>('p' ^ kKey[0]) : 'p';
  return out;
}

void check_result(const Options& options, const Result& result) {
  // The application's view: nothing after a failure or the peer's close; one of each at most.
  // After a failure, the peer's close may still come, as the answer to the close we sent.
  bool ended = false, failed = false, closed = false, failure_close_sent = false;
  std::uint16_t failure_code = 0;
  std::vector<std::string> pings;
  for (const Event& event : result.events) {
    switch (event.kind) {
      case Kind::message:
      case Kind::pong:
        check(!ended);
        break;
      case Kind::ping:
        check(!ended);
        pings.push_back(event.data);
        break;
      case Kind::close:
        check(!closed && (!failed || event.flag));
        closed = ended = true;
        break;
      case Kind::failed:
        check(!failed);
        failed = ended = true;
        failure_close_sent = event.flag;
        failure_code = close_code_for(event.error);
        break;
    }
  }
  // The wire: pongs answering the pings in order, then at most one close frame, the last one.
  const std::vector<Frame> frames = decode(options.role, result.output);
  std::size_t pongs = 0;
  bool close_written = false;
  for (const Frame& frame : frames) {
    check(!close_written);
    if (frame.opcode == Opcode::pong) {
      check(pongs < pings.size() && frame.payload == pings[pongs]);
      ++pongs;
      continue;
    }
    check(frame.opcode == Opcode::close);
    close_written = true;
    ClosePayload close;
    check(parse_close_payload(as_bytes(frame.payload), close) == ProtocolError::none);
    // The failure's own close carries the code its rule calls for.
    if (failure_close_sent) check(close.code == failure_code);
  }
  check(pongs == pings.size());
  check(close_written == (options.close_first || closed || failed ||
                          (options.close_on_message &&
                           std::any_of(result.events.begin(), result.events.end(),
                                       [](const Event& e) { return e.kind == Kind::message; }))));
}

// Runs the session on a copy of `wire` (it unmasks in place); chunk sizes come from a small LCG,
// or the whole input at once when seed is 0.
template <Role kRole>
Result run(const Options& options, std::string wire, std::uint32_t seed) {
  Owner<kRole> owner{options};
  typename Owner<kRole>::SessionType session(options.max_size);
  owner.session = &session;
  if (options.compression) {
    session.enable_compression();
    owner.inflater.emplace(kMaxWindowBits, !options.context_takeover);
  }
  if (options.close_first) check(session.close(owner, 1001, "bye") == 1001);
  std::size_t pos = 0;
  std::uint32_t state = seed;
  while (pos < wire.size()) {
    std::size_t n = wire.size() - pos;
    if (seed != 0) {
      state = state * 1664525u + 1013904223u;
      n = std::min<std::size_t>(n, (state >> 24) % (seed % 7 == 0 ? 3 : 40) + 1);
    }
    session.feed(std::span(reinterpret_cast<std::uint8_t*>(wire.data()) + pos, n), owner);
    pos += n;
  }
  const bool ended = std::any_of(owner.events.begin(), owner.events.end(), [](const Event& e) {
    return e.kind == Kind::close || e.kind == Kind::failed;
  });
  if (ended) {
    // The session is done: a ping now is neither answered nor reported. (After a failure that left
    // the parser alive, the ping's bytes may complete a close frame: the one event still allowed.)
    const std::size_t events = owner.events.size(), output = owner.output.size();
    std::string ping = peer_ping(kRole);
    session.feed(std::span(reinterpret_cast<std::uint8_t*>(ping.data()), ping.size()), owner);
    check(owner.output.size() == output && !session.open());
    for (std::size_t i = events; i < owner.events.size(); ++i)
      check(owner.events[i].kind == Kind::close && owner.events[i].flag);
    owner.events.erase(owner.events.begin() + static_cast<std::ptrdiff_t>(events),
                       owner.events.end());
  }
  // A close frame went out (ours, an answer, or a failure's): close() sends no second one.
  if (session.close_sent()) check(session.close(owner, 1000, "again") == 0);
  return {std::move(owner.events), std::move(owner.output)};
}

template <Role kRole>
void fuzz(const Options& options, const std::string& wire, std::uint32_t seed) {
  const Result whole = run<kRole>(options, wire, 0);
  check_result(options, whole);
  const Result chunked = run<kRole>(options, wire, seed);
  check(chunked == whole);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  static constexpr std::uint64_t kSizes[] = {0, 1, 2, 5, 125, 126, 1000, 65535, 65536};
  Options options{
      .role = (data[0] & 1) != 0 ? Role::client : Role::server,
      .compression = (data[0] & 2) != 0,
      .context_takeover = (data[0] & 4) != 0,
      .close_first = (data[0] & 8) != 0,
      .close_on_message = (data[0] & 16) != 0,
      .max_size = data[1] < std::size(kSizes) ? kSizes[data[1]]
                  : data[1] < 128             ? data[1]
                                              : kUnlimitedMessageSize,
  };
  const std::uint32_t seed = data[2] | 1u;
  const std::string wire(reinterpret_cast<const char*>(data) + 3, size - 3);
  if (options.role == Role::server)
    fuzz<Role::server>(options, wire, seed);
  else
    fuzz<Role::client>(options, wire, seed);
  return 0;
}
