// One RFC 6455 session, for either role: the frame parser, message reassembly, the UTF-8 and
// size limits, ping -> pong, the closing handshake (§7) and _Fail the WebSocket Connection_
// (§7.1.7). Sans-I/O like the rest of src/ws (STYLE rule 1): bytes come in through feed(), frames
// go out into a buffer the owner hands over, and everything else is a call to the owner.
//
// kRole: server frames go out unmasked, client frames masked (§5.1). The server's and the
// client's connections are both owners. Owner requirements (static calls,
// no virtuals, as for the frame parser):
//   Output& session_output();             where the next frame goes: Output's
//                                         char* extend(std::size_t n) gives the n bytes at its
//                                         end the frame is written into
//   void session_output_done();           after a frame was appended (the owner may write now)
//   MaskingKey session_masking_key();     client role only: a fresh key per frame (§5.3)
//   SessionBuffers& session_buffers();    reassembly storage, created on demand by the owner
//   void session_buffers_idle();          a message, or a control frame outside a message, was
//                                         handled: the owner may release what the buffers (or
//                                         its inflater) still hold
//   InflateStatus session_inflate(std::span<const std::uint8_t> piece, bool first, bool last,
//                                 std::uint64_t limit, std::span<const std::uint8_t>& message);
//       A piece of an RSV1 (permessage-deflate) message; on done, `message` is all of it,
//       inflated, valid until session_buffers_idle(). Only called after enable_compression().
//   void on_session_message(Opcode opcode, std::span<const std::uint8_t> message);
//       A complete text or binary message (text already UTF-8-checked), while the session is open.
//   void on_session_ping(std::span<const std::uint8_t> payload);  after the pong was written
//   void on_session_pong(std::span<const std::uint8_t> payload);
//   void on_session_close(std::uint16_t code, std::string_view reason, bool answer_to_ours);
//       The peer's close frame: answer_to_ours when we had sent ours (the handshake is complete),
//       otherwise the session has just answered it. Nothing more is read after it (§5.5.1).
//   void on_session_failed(ProtocolError error, bool close_sent);
//       The peer broke a rule. close_sent: the session sent the close frame the rule calls for;
//       false when our close had already gone out (the owner should just drop the connection).
// Spans are valid only during the call. A hook may call close() or send() on the session.
// One session per connection, on the connection's thread only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "ws/error.hpp"
#include "ws/frame.hpp"
#include "ws/frame_parser.hpp"
#include "ws/utf8.hpp"

namespace pylon::ws {

// Bytes of a message or control frame that arrived in several pieces. Kept by the owner, where
// its memory budget wants it (the server's per-connection spill, allocated on demand).
struct SessionBuffers {
  std::string message;
  std::string control;
  bool empty() const noexcept { return message.empty() && control.empty(); }
};

enum class InflateStatus : std::uint8_t {
  more,       // the message is not complete yet
  done,       // the message is inflated
  too_large,  // inflated past the limit: RFC 7692 §8.1's bomb -> message_too_large
  corrupt,    // not a valid deflate stream -> invalid_compressed_data
};

template <Role kRole, typename Owner>
class Session {
 public:
  explicit Session(std::uint64_t max_message_size) noexcept : parser_(kRole, max_message_size) {}

  // permessage-deflate was agreed (RFC 7692 §6): RSV1 now marks a compressed message. Only
  // before the first frame is parsed.
  void enable_compression() noexcept { parser_.allow_rsv1(); }

  // Bytes received. Every byte is consumed; what it meant arrives through the owner's hooks.
  void feed(std::span<std::uint8_t> data, Owner& owner) {
    if (close_received_) return;  // RFC 6455 §5.5.1: nothing after the peer's close is processed
    Bound bound{*this, owner};
    const ProtocolError error = parser_.feed(data, bound);
    // Bytes after the peer's close are not looked at, garbled or not.
    if (error != ProtocolError::none && !close_received_) report(owner, error);
  }

  // One frame out: header, payload (masked in the output in client role), nothing else. Written
  // in place in the output: one reservation, the caller's bytes copied once.
  void send(Owner& owner, Opcode opcode, std::span<const std::uint8_t> payload, bool fin = true,
            bool rsv1 = false) {
    write_frame(owner, owner.session_output(), opcode, payload, fin, rsv1);
    owner.session_output_done();
  }

  // The same frame written into `out`, for an owner that knows where its output goes (the
  // server's answer inside its read goes straight into the cork: issue 17); no
  // session_output_done() follows.
  template <typename Output>
  void write_frame(Owner& owner, Output& out, Opcode opcode, std::span<const std::uint8_t> payload,
                   bool fin = true, bool rsv1 = false) {
    const std::size_t header_size = frame_header_size(payload.size(), kRole == Role::client);
    auto* frame = reinterpret_cast<std::uint8_t*>(out.extend(header_size + payload.size()));
    std::uint8_t* body = frame + header_size;
    copy_payload(body, payload.data(), payload.size());
    if constexpr (kRole == Role::server) {
      write_frame_header(frame, opcode, payload.size(), fin, rsv1);
    } else {
      // RFC 6455 §5.3: a fresh, unpredictable masking key for every frame, the payload masked
      // where it lies.
      const MaskingKey key = owner.session_masking_key();
      write_frame_header(frame, opcode, payload.size(), fin, rsv1, &key);
      apply_mask(std::span(body, payload.size()), key);
    }
  }

  // Starts the closing handshake (§7.1.2) unless a close frame went out already; returns the
  // code this call sent, 0 when it sent none. RFC 6455 §7.4: a code that may not appear on the
  // wire (1005, 1006, 1015, unassigned ranges) becomes 1000, whoever asked for it.
  std::uint16_t close(Owner& owner, std::uint16_t code, std::string_view reason) {
    if (close_sent_) return 0;
    if (!is_valid_close_code(code)) code = close_code::kNormal;
    send_close(owner, code, reason);
    return code;
  }

  // _Fail the WebSocket Connection_ (§7.1.7) for a rule the owner found broken.
  void fail(Owner& owner, ProtocolError error) { report(owner, error); }

  // Neither side has sent a close: data may flow both ways.
  bool open() const noexcept { return !close_sent_ && !close_received_; }
  bool close_sent() const noexcept { return close_sent_; }
  bool close_received() const noexcept { return close_received_; }
  std::uint64_t max_message_size() const noexcept { return parser_.max_message_size(); }

 private:
  // The frame parser's handler for one feed: the session and its owner, on the stack, so the
  // session need not keep a pointer to its owner.
  struct Bound {
    Session& session;
    Owner& owner;
    void on_message_data(Opcode opcode, std::span<const std::uint8_t> chunk, bool first,
                         bool last) {
      session.on_message_data(owner, opcode, chunk, first, last);
    }
    void on_control_frame_data(Opcode opcode, std::span<const std::uint8_t> chunk, bool first,
                               bool last) {
      session.on_control_frame_data(owner, opcode, chunk, first, last);
    }
  };

  void on_message_data(Owner& owner, Opcode opcode, std::span<const std::uint8_t> chunk, bool first,
                       bool last) {
    if (close_sent_) return;  // after our close, data is read but not delivered
    if (parser_.message_compressed()) return receive_compressed(owner, opcode, chunk, first, last);
    if (first && last) return owner.on_session_message(opcode, chunk);  // the common case: no copy
    gather(owner, opcode, chunk, last);
  }

  // A piece of a message in several frames or reads. noinline, as receive_compressed: the
  // common case above then needs no stack frame (issue 17).
  [[gnu::noinline]] void gather(Owner& owner, Opcode opcode, std::span<const std::uint8_t> chunk,
                                bool last) {
    std::string& message = owner.session_buffers().message;
    message.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    if (!last) return;
    owner.on_session_message(opcode, as_bytes(message));
    // The hook may have ended the connection: the owner keeps the buffers until it is freed.
    message.clear();
    owner.session_buffers_idle();
  }

  void on_control_frame_data(Owner& owner, Opcode opcode, std::span<const std::uint8_t> chunk,
                             bool first, bool last) {
    if (first && last) return control(owner, opcode, chunk);
    std::string& control_bytes = owner.session_buffers().control;
    control_bytes.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    if (!last) return;
    control(owner, opcode, as_bytes(control_bytes));
    control_bytes.clear();
    // Between two frames of a fragmented message its bytes are still being gathered.
    if (!parser_.in_message()) owner.session_buffers_idle();
  }

  // memcpy, with 4 to 16 bytes copied inline as two overlapping words: for a short message the
  // call to memcpy cost more than the frame around it (issue 17).
  static void copy_payload(std::uint8_t* to, const std::uint8_t* from, std::size_t n) noexcept {
    if (n >= 8 && n <= 16) {
      std::uint64_t head, tail;
      std::memcpy(&head, from, 8);
      std::memcpy(&tail, from + n - 8, 8);
      std::memcpy(to, &head, 8);
      std::memcpy(to + n - 8, &tail, 8);
    } else if (n >= 4 && n < 8) {
      std::uint32_t head, tail;
      std::memcpy(&head, from, 4);
      std::memcpy(&tail, from + n - 4, 4);
      std::memcpy(to, &head, 4);
      std::memcpy(to + n - 4, &tail, 4);
    } else if (n != 0) {
      std::memcpy(to, from, n);
    }
  }

  static std::span<const std::uint8_t> as_bytes(const std::string& text) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
  }

  [[gnu::noinline]] void receive_compressed(Owner& owner, Opcode opcode,
                                            std::span<const std::uint8_t> chunk, bool first,
                                            bool last) {
    std::span<const std::uint8_t> message;
    switch (owner.session_inflate(chunk, first, last, parser_.max_message_size(), message)) {
      case InflateStatus::more:
        return;
      case InflateStatus::too_large:
        report(owner, ProtocolError::message_too_large);
        return owner.session_buffers_idle();
      case InflateStatus::corrupt:
        report(owner, ProtocolError::invalid_compressed_data);
        return owner.session_buffers_idle();
      case InflateStatus::done:
        break;
    }
    // RFC 7692 §8: the text is UTF-8 once inflated (the parser could not check it).
    if (opcode == Opcode::text && !is_valid_utf8(message))
      report(owner, ProtocolError::invalid_utf8);
    else
      owner.on_session_message(opcode, message);
    owner.session_buffers_idle();
  }

  void control(Owner& owner, Opcode opcode, std::span<const std::uint8_t> payload) {
    switch (opcode) {
      case Opcode::ping:
        if (!open()) return;
        // RFC 6455 §5.5.2: answer with a pong carrying the same application data.
        send(owner, Opcode::pong, payload);
        return owner.on_session_ping(payload);
      case Opcode::pong:
        // §5.5.3: an unsolicited pong is allowed and needs no answer.
        if (open()) owner.on_session_pong(payload);
        return;
      case Opcode::close: {
        if (close_received_) return;  // §5.5.1: nothing after the first close counts
        ClosePayload close;
        parse_close_payload(payload, close);  // the parser has validated it
        close_received_ = true;
        if (close_sent_) return owner.on_session_close(close.code, close.reason, true);
        // §5.5.1: answer with a close echoing the status code (none when the peer sent none).
        if (close.code == close_code::kNoStatus) {
          close_sent_ = true;
          send(owner, Opcode::close, {});
        } else {
          send_close(owner, close.code, {});
        }
        return owner.on_session_close(close.code, close.reason, false);
      }
      default:
        return;
    }
  }

  void send_close(Owner& owner, std::uint16_t code, std::string_view reason) {
    close_sent_ = true;
    std::uint8_t payload[kMaxControlPayload];
    // At most kMaxControlPayload bytes; the min() tells the compiler, whose bounds check
    // (-Warray-bounds) otherwise follows the frame writer's long-frame branch into this array.
    const std::size_t size = write_close_payload(payload, code, reason);
    send(owner, Opcode::close, std::span(payload, std::min(size, sizeof payload)));
  }

  void report(Owner& owner, ProtocolError error) {
    if (failed_) return;  // the first violation is the one reported
    failed_ = true;
    if (close_sent_) return owner.on_session_failed(error, false);
    send_close(owner, close_code_for(error), describe(error));
    owner.on_session_failed(error, true);
  }

  // no_unique_address: the flags below go into the parser's tail padding (an idle server
  // connection has a byte budget, tests/unit/server/connection_test.cpp).
  [[no_unique_address]] FrameParser<Bound> parser_;
  bool close_sent_ = false;
  bool close_received_ = false;
  bool failed_ = false;
};

}  // namespace pylon::ws
