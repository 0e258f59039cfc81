// Streaming, resumable RFC 6455 frame parser for one connection (sans-I/O, STYLE rule 1).
//
// The owner feeds whatever bytes arrived; the parser consumes all of them (any split, a byte at a
// time included), unmasks payload in place and reports it to a compile-time Handler as spans into
// the caller's buffer: payload is never copied and the parser keeps no payload bytes. It enforces
// every rule of RFC 6455 §5 that ProtocolError names, the UTF-8 of text messages (§8.1) and of
// close reasons (§5.5.1), and a maximum message size. Its state is a small struct (< 64 bytes).
// One parser per connection, used by the connection's thread only.
//
// Handler requirements (uWS-style: plain member calls, no virtuals; called synchronously from
// feed, in order):
//   void on_message_data(Opcode message_opcode, std::span<const std::uint8_t> chunk, bool first,
//                        bool last);
//     Text/binary payload piece; message_opcode is the opcode of the message's first frame;
//     first: first piece of the message; last: the message is complete after this piece.
//     Called at least once per message (an empty message gives one call with an empty chunk,
//     first = last = true); empty non-final fragments produce no call.
//     Text is UTF-8-validated incrementally BEFORE delivery; an invalid byte stops with
//     invalid_utf8 as soon as the bad byte is seen (fail fast), even mid-frame, and the piece
//     holding it is not delivered.
//   void on_control_frame_data(Opcode opcode, std::span<const std::uint8_t> chunk, bool first,
//                              bool last);
//     The same for a control frame (ping, pong, close), which may arrive in pieces; called at
//     least once per frame. Close frames are validated by the parser (length != 1, the code, the
//     reason's UTF-8) incrementally, before each piece is delivered.
// Spans are valid only during the call. A handler may call set_max_message_size() from a callback.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "ws/error.hpp"
#include "ws/frame.hpp"
#include "ws/utf8.hpp"

namespace pylon::ws {

// Pass as max_message_size for no limit (added).
inline constexpr std::uint64_t kUnlimitedMessageSize = ~std::uint64_t{0};

template <typename Handler>
class FrameParser {
 public:
  // allow_rsv1 (added): permessage-deflate (RFC 7692) was negotiated, so RSV1 is allowed on the
  // first frame of a data message; such a message is reported by message_compressed() and its
  // payload is NOT UTF-8-checked here (it is compressed: the inflater's owner checks it).
  FrameParser(Role role, std::uint64_t max_message_size, bool allow_rsv1 = false) noexcept
      : max_message_size_(max_message_size), role_(role), allow_rsv1_(allow_rsv1) {}

  // Consumes all of `data` unless an error occurs; returns the first error (none when fine).
  // After an error the parser is dead: further feeds return the same error and call nothing.
  // max_message_size applies to the sum of a message's frames and is checked as soon as a frame
  // header announces a length that would pass it (before the payload arrives): message_too_large.
  ProtocolError feed(std::span<std::uint8_t> data, Handler& handler) noexcept;

  // A data message (possibly fragmented) has started and not yet completed.
  bool in_message() const noexcept { return in_message_; }
  void set_max_message_size(std::uint64_t size) noexcept { max_message_size_ = size; }
  // permessage-deflate agreed after construction (before the first frame): as allow_rsv1.
  void allow_rsv1() noexcept { allow_rsv1_ = true; }

  // Added accessors.
  std::uint64_t max_message_size() const noexcept { return max_message_size_; }
  ProtocolError error() const noexcept { return error_; }
  // RSV1 of the current (or last) data message's first frame; only ever true with allow_rsv1.
  bool message_compressed() const noexcept { return message_compressed_; }
  // Between frames: no header or payload bytes of a frame are pending.
  bool at_frame_boundary() const noexcept { return phase_ == Phase::header_first; }

 private:
  enum class Phase : std::uint8_t {
    header_first,   // byte 0: FIN, RSV1-3, opcode
    header_second,  // byte 1: MASK, 7-bit length
    length16,       // 2 bytes of extended length
    length64,       // 8 bytes of extended length
    masking_key,    // 4 bytes
    payload,
    dead,
  };

  std::size_t short_message_size(const std::uint8_t* frame, std::size_t available) const noexcept;
  ProtocolError on_short_message(std::uint8_t* frame, std::size_t size, Handler& handler) noexcept;
  ProtocolError on_first_byte(std::uint8_t byte) noexcept;
  ProtocolError on_second_byte(std::uint8_t byte) noexcept;
  ProtocolError on_length_known() noexcept;
  ProtocolError on_header_done(Handler& handler) noexcept;
  ProtocolError on_payload(std::span<std::uint8_t> piece, Handler& handler) noexcept;
  ProtocolError check_close_piece(std::span<const std::uint8_t> piece, bool frame_done) noexcept;

  std::uint64_t remaining_ = 0;     // payload bytes of the current frame still to come
  std::uint64_t message_size_ = 0;  // sum of announced lengths of the current message's frames
  std::uint64_t max_message_size_;
  MaskingKey mask_{};
  Utf8Validator message_utf8_;  // persists across a text message's fragments (§5.4)
  Utf8Validator close_utf8_;    // close reason; separate since a close may interleave (§5.4)
  std::uint16_t close_code_ = 0;
  Role role_;
  Phase phase_ = Phase::header_first;
  ProtocolError error_ = ProtocolError::none;
  Opcode opcode_ = Opcode::continuation;          // current frame
  Opcode message_opcode_ = Opcode::continuation;  // first frame of the current message
  std::uint8_t header_count_ = 0;                 // bytes read of extended length / masking key
  std::uint8_t mask_offset_ = 0;                  // key position of the next payload byte
  std::uint8_t close_code_bytes_ = 0;             // 0..2 bytes of the close code seen
  bool allow_rsv1_;
  bool fin_ = false;
  bool masked_ = false;
  bool in_message_ = false;
  bool message_started_ = false;  // a piece of the current message has been delivered
  bool frame_started_ = false;    // a piece of the current control frame has been delivered
  bool message_compressed_ = false;
};

template <typename Handler>
ProtocolError FrameParser<Handler>::feed(std::span<std::uint8_t> data, Handler& handler) noexcept {
  if (phase_ == Phase::dead) return error_;
  std::uint8_t* p = data.data();
  const std::size_t size = data.size();
  std::size_t pos = 0;
  ProtocolError error = ProtocolError::none;
  while (pos < size && error == ProtocolError::none) {
    switch (phase_) {
      case Phase::header_first:
        // The common case, whole short messages in one frame each, one after the other: each is
        // parsed and delivered in one step, without the state machine (issue 17).
        while (const std::size_t whole = short_message_size(p + pos, size - pos)) {
          error = on_short_message(p + pos, whole, handler);
          pos += whole;
          if (error != ProtocolError::none) break;
        }
        if (error != ProtocolError::none || pos == size) break;
        error = on_first_byte(p[pos++]);
        // Both bytes at hand (the common case): no second trip through the loop.
        if (error != ProtocolError::none || pos == size) break;
        [[fallthrough]];
      case Phase::header_second:
        error = on_second_byte(p[pos++]);
        if (error == ProtocolError::none && phase_ == Phase::payload)
          error = on_header_done(handler);
        // A short masked frame (the common case) goes on to its key and payload at once.
        if (error != ProtocolError::none || pos == size || phase_ != Phase::masking_key) break;
        [[fallthrough]];
      case Phase::masking_key:
        // The whole key at once when it is all there, else byte by byte across feeds.
        if (header_count_ == 0 && size - pos >= mask_.size()) {
          std::memcpy(mask_.data(), p + pos, mask_.size());
          pos += mask_.size();
          header_count_ = mask_.size();
        } else {
          mask_[header_count_++] = p[pos++];
        }
        if (header_count_ == 4) {
          phase_ = Phase::payload;
          error = on_header_done(handler);
        }
        if (error != ProtocolError::none || pos == size || phase_ != Phase::payload) break;
        [[fallthrough]];
      case Phase::payload: {
        const std::size_t available = size - pos;
        const std::size_t take =
            remaining_ < available ? static_cast<std::size_t>(remaining_) : available;
        error = on_payload(std::span<std::uint8_t>(p + pos, take), handler);
        pos += take;
        break;
      }
      case Phase::length16:
      case Phase::length64:
        remaining_ = (remaining_ << 8) | p[pos++];
        ++header_count_;
        if (phase_ == Phase::length64 && header_count_ == 1 && (remaining_ & 0x80) != 0) {
          // §5.2: "the most significant bit MUST be 0" — known from the first length byte.
          error = ProtocolError::length_too_large;
        } else if (header_count_ == (phase_ == Phase::length16 ? 2 : 8)) {
          error = on_length_known();
          if (error == ProtocolError::none && phase_ == Phase::payload) {
            error = on_header_done(handler);
          }
        }
        break;
      case Phase::dead:
        return error_;
    }
  }
  if (error != ProtocolError::none) {
    error_ = error;
    phase_ = Phase::dead;
  }
  return error;
}

// The size of the frame at `frame` when it is a whole text or binary message that lies in the
// buffer and breaks no rule: FIN, no RSV bit, a 7-bit length within max_message_size, masked as
// the role requires (§5.1), not inside a fragmented message (§5.4). 0 otherwise: the state
// machine takes it, and finds what is wrong with it if anything is.
template <typename Handler>
std::size_t FrameParser<Handler>::short_message_size(const std::uint8_t* frame,
                                                     std::size_t available) const noexcept {
  constexpr std::uint8_t kFinText = 0x80 | static_cast<std::uint8_t>(Opcode::text);
  constexpr std::uint8_t kFinBinary = 0x80 | static_cast<std::uint8_t>(Opcode::binary);
  if (available < 2 || in_message_ || (frame[0] != kFinText && frame[0] != kFinBinary)) return 0;
  const bool masked = role_ == Role::server;
  if (((frame[1] & 0x80) != 0) != masked) return 0;
  const std::size_t length = frame[1] & 0x7F;
  if (length >= 126 || length > max_message_size_) return 0;
  const std::size_t size = 2 + (masked ? sizeof(MaskingKey) : 0) + length;
  return size <= available ? size : 0;
}

// Inlined into feed's loop, its one caller (issue 17).
template <typename Handler>
[[gnu::always_inline]] inline ProtocolError FrameParser<Handler>::on_short_message(
    std::uint8_t* frame, std::size_t size, Handler& handler) noexcept {
  const Opcode opcode = static_cast<Opcode>(frame[0] & 0x0F);
  bool ascii;
  std::span<std::uint8_t> payload;
  if (role_ == Role::server) {
    MaskingKey key;
    std::memcpy(key.data(), frame + 2, sizeof key);
    payload = std::span(frame + 2 + sizeof key, size - 2 - sizeof key);
    ascii = unmask_is_ascii(payload, key);
  } else {
    payload = std::span(frame + 2, size - 2);
    ascii = opcode != Opcode::text ||
            Utf8Validator::ascii_prefix(payload.data(), payload.size()) == payload.size();
  }
  message_compressed_ = false;
  // §8.1: the application sees only valid UTF-8 (ASCII is known from the pass above).
  if (opcode == Opcode::text && !ascii && !is_valid_utf8(payload))
    return ProtocolError::invalid_utf8;
  handler.on_message_data(opcode, payload, true, true);
  return ProtocolError::none;
}

template <typename Handler>
ProtocolError FrameParser<Handler>::on_first_byte(std::uint8_t byte) noexcept {
  const bool fin = (byte & 0x80) != 0;
  const bool rsv1 = (byte & 0x40) != 0;
  const std::uint8_t op = byte & 0x0F;
  // §5.2: RSV2/RSV3 have no extension defined for them; RSV1 only with permessage-deflate.
  if ((byte & 0x30) != 0 || (rsv1 && !allow_rsv1_)) return ProtocolError::reserved_bits_set;
  if (!is_known_opcode(op)) return ProtocolError::reserved_opcode;
  const auto opcode = static_cast<Opcode>(op);
  if (is_control(opcode)) {
    // §5.5: "Control frames themselves MUST NOT be fragmented."
    if (!fin) return ProtocolError::fragmented_control_frame;
    // RFC 7692 §6.1: the compressed bit MUST NOT be set on control frames.
    if (rsv1) return ProtocolError::reserved_bits_set;
    frame_started_ = false;
    close_code_bytes_ = 0;
    close_code_ = 0;
    close_utf8_.reset();
  } else if (opcode == Opcode::continuation) {
    // §5.4: a continuation only continues a message in progress.
    if (!in_message_) return ProtocolError::unexpected_continuation;
    // RFC 7692 §6.1: the compressed bit is set on the first frame of a message only.
    if (rsv1) return ProtocolError::reserved_bits_set;
  } else {
    // §5.4: fragments of one message are not interleaved with another message.
    if (in_message_) return ProtocolError::expected_continuation;
    in_message_ = true;
    message_started_ = false;
    message_opcode_ = opcode;
    message_size_ = 0;
    message_compressed_ = rsv1;
    message_utf8_.reset();
  }
  opcode_ = opcode;
  fin_ = fin;
  phase_ = Phase::header_second;
  return ProtocolError::none;
}

template <typename Handler>
ProtocolError FrameParser<Handler>::on_second_byte(std::uint8_t byte) noexcept {
  masked_ = (byte & 0x80) != 0;
  // §5.1: a client masks every frame it sends; a server masks none.
  if (role_ == Role::server && !masked_) return ProtocolError::unmasked_frame;
  if (role_ == Role::client && masked_) return ProtocolError::masked_frame;
  const std::uint8_t length = byte & 0x7F;
  if (is_control(opcode_)) {
    // §5.5: control payloads are at most 125 bytes, so 126/127 (extended lengths) fail too.
    if (length > kMaxControlPayload) return ProtocolError::control_frame_too_large;
    // §5.5.1: a close body is empty or starts with a 2-byte code.
    if (opcode_ == Opcode::close && length == 1) return ProtocolError::invalid_close_payload;
  }
  header_count_ = 0;
  if (length == 126) {
    remaining_ = 0;
    phase_ = Phase::length16;
    return ProtocolError::none;
  }
  if (length == 127) {
    remaining_ = 0;
    phase_ = Phase::length64;
    return ProtocolError::none;
  }
  remaining_ = length;
  return on_length_known();
}

template <typename Handler>
ProtocolError FrameParser<Handler>::on_length_known() noexcept {
  // §5.2: "the minimal number of bytes MUST be used to encode the length".
  if (phase_ == Phase::length16 && remaining_ < 126) return ProtocolError::non_minimal_length;
  if (phase_ == Phase::length64 && remaining_ <= 0xFFFF) return ProtocolError::non_minimal_length;
  if (!is_control(opcode_)) {
    // Checked on the announced length so an oversized message is refused before its payload.
    if (message_size_ > max_message_size_ || remaining_ > max_message_size_ - message_size_) {
      return ProtocolError::message_too_large;
    }
    message_size_ += remaining_;
  }
  header_count_ = 0;
  mask_offset_ = 0;
  phase_ = masked_ ? Phase::masking_key : Phase::payload;
  return ProtocolError::none;
}

// Called when the header is complete (phase_ == payload): an empty frame is finished right away.
template <typename Handler>
ProtocolError FrameParser<Handler>::on_header_done(Handler& handler) noexcept {
  if (remaining_ != 0) return ProtocolError::none;
  return on_payload(std::span<std::uint8_t>(), handler);
}

template <typename Handler>
ProtocolError FrameParser<Handler>::on_payload(std::span<std::uint8_t> piece,
                                               Handler& handler) noexcept {
  if (masked_) mask_offset_ = static_cast<std::uint8_t>(apply_mask(piece, mask_, mask_offset_));
  remaining_ -= piece.size();
  const bool frame_done = remaining_ == 0;
  if (frame_done) phase_ = Phase::header_first;
  if (is_control(opcode_)) {
    if (opcode_ == Opcode::close) {
      const ProtocolError error = check_close_piece(piece, frame_done);
      if (error != ProtocolError::none) return error;
    }
    const bool first = !frame_started_;
    frame_started_ = true;
    handler.on_control_frame_data(opcode_, piece, first, frame_done);
    return ProtocolError::none;
  }
  const bool last = frame_done && fin_;
  if (message_opcode_ == Opcode::text && !message_compressed_) {
    // §8.1: fail the connection at the first invalid byte, before the application sees it.
    if (!message_utf8_.feed(piece) || (last && !message_utf8_.complete())) {
      return ProtocolError::invalid_utf8;
    }
  }
  if (piece.empty() && !last) return ProtocolError::none;  // empty non-final fragment
  const bool first = !message_started_;
  message_started_ = true;
  if (last) in_message_ = false;
  handler.on_message_data(message_opcode_, piece, first, last);
  return ProtocolError::none;
}

template <typename Handler>
ProtocolError FrameParser<Handler>::check_close_piece(std::span<const std::uint8_t> piece,
                                                      bool frame_done) noexcept {
  std::size_t i = 0;
  while (close_code_bytes_ < 2 && i < piece.size()) {
    close_code_ = static_cast<std::uint16_t>((close_code_ << 8) | piece[i++]);
    if (++close_code_bytes_ == 2 && !is_valid_close_code(close_code_)) {
      return ProtocolError::invalid_close_code;  // §7.4
    }
  }
  // §5.5.1: the reason after the code is UTF-8.
  if (!close_utf8_.feed(piece.subspan(i)) || (frame_done && !close_utf8_.complete())) {
    return ProtocolError::invalid_close_reason;
  }
  return ProtocolError::none;
}

}  // namespace pylon::ws
