// One client connection through its attempts: TCP connect, the TLS handshake (wss://), the
// opening handshake (RFC 6455 §4.1), frames, the closing handshake (§7), and waiting to reconnect.
//
// Owned by its LoopState and touched only on that loop's thread. Finishing never frees the object
// inside a callback: retire() hands it to the loop, which frees it at the end of the iteration.
//
// The RFC 6455 session (ws/session.hpp) and the write path (net/outbox.hpp) are the server's too.
//
// Memory of an open, idle connection: this object (session state, a few empty strings, flags and
// a timer node, about 300 bytes) plus a shared profile. Bytes are kept only while a message or
// control frame is incomplete (buffers_) or the kernel will not take what we send (outbox_).
// With permessage-deflate agreed, compression_ adds zlib's windows (include/pylon/client.hpp,
// CompressionOptions) from the open until the connection ends. Over wss://, tls_ adds OpenSSL's
// connection state and buffers (include/pylon/client.hpp, TlsOptions) while the socket is open.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "client/compression.hpp"
#include "client/mask_generator.hpp"
#include "client/profile.hpp"
#include "client/tls.hpp"
#include "http/response_parser.hpp"
#include "net/event_loop.hpp"
#include "net/outbox.hpp"
#include "net/timer_wheel.hpp"
#include "net/tls.hpp"
#include "pylon/client.hpp"
#include "ws/frame.hpp"
#include "ws/session.hpp"

namespace pylon::client {

class LoopState;

class Connection final : public WebSocketClient, public net::IoHandler, public net::TimerNode {
 public:
  Connection(LoopState& loop, std::shared_ptr<const ClientProfile> profile);
  ~Connection();

  void start();  // the first attempt
  void on_io(std::uint32_t epoll_events) override;

  // The public API (WebSocketClient forwards here).
  SendStatus send_message(std::string_view message, MessageKind kind, std::size_t fragments);
  SendStatus send_ping(std::string_view payload);
  void close_by_application(std::uint16_t code, std::string_view reason);
  bool is_open() const noexcept { return state_ == State::open; }
  bool reconnecting() const noexcept;
  std::size_t buffered_amount() const noexcept { return outbox_.buffered(); }
  std::string_view subprotocol() const noexcept { return subprotocol_; }
  std::string_view extensions() const noexcept {
    return compression_ ? compression_->extensions() : std::string_view();
  }
  const MessageCompression* compression() const noexcept { return compression_.get(); }
  const ClientProfile& profile() const noexcept { return *profile_; }
  LoopState& loop_state() noexcept { return loop_; }

  // Loop hooks.
  void flush();             // end of iteration / EPOLLOUT: hand the outbox to the kernel
  void abandon() noexcept;  // the loop is being destroyed: close the socket, no events
  bool flush_scheduled = false;
  Connection* list_prev = nullptr;
  Connection* list_next = nullptr;

 private:
  friend class ws::Session<ws::Role::client, Connection>;
  using Session = ws::Session<ws::Role::client, Connection>;
  enum class State : std::uint8_t {
    waiting,      // before an attempt: the timer starts the next one
    connecting,   // non-blocking connect in progress (EPOLLOUT armed)
    securing,     // wss://: TLS handshake in progress (epoll interest is what OpenSSL waits for)
    handshaking,  // request sent, reading the response head
    open,
    closing,  // close sent (and maybe received): waiting for the server's close or EOF
    done,     // retired; freed at the end of the iteration
  };
  struct Handshake {
    std::string key;
    http::ResponseParser parser;
    http::Response response;
    std::string buffer;  // bytes of an incomplete response head only
  };

  void attempt();
  void connected();
  void continue_tls_handshake();
  void send_request();
  void read_ready();
  void read_ready_tls();
  void process(std::span<std::uint8_t> data);
  void process_handshake(std::span<std::uint8_t> data);

  // The session's hooks (ws/session.hpp).
  net::ByteBuffer& session_output();
  void session_output_done();
  ws::MaskingKey session_masking_key() noexcept { return masks_.next_key(); }
  ws::SessionBuffers& session_buffers() noexcept { return buffers_; }
  void session_buffers_idle() noexcept;
  ws::InflateStatus session_inflate(std::span<const std::uint8_t> piece, bool first, bool last,
                                    std::uint64_t limit, std::span<const std::uint8_t>& message);
  void on_session_message(ws::Opcode opcode, std::span<const std::uint8_t> message);
  void on_session_ping(std::span<const std::uint8_t> payload);
  void on_session_pong(std::span<const std::uint8_t> payload);
  void on_session_close(std::uint16_t code, std::string_view reason, bool answer_to_ours);
  void on_session_failed(ws::ProtocolError error, bool close_sent);

  SendStatus send_status() const noexcept {
    return outbox_.blocked() ? SendStatus::queued : SendStatus::sent;
  }
  void update_interest();
  void set_interest(std::uint32_t interest);

  void enter_closing();  // our close is out: wait close_timeout for the server's end
  void peer_gone(int error);
  void fail_attempt(std::string reason);  // before open: on_error, then reconnect or done
  void teardown();                        // after open: on_close, then reconnect or done
  void after_attempt();
  void close_socket() noexcept;
  void finish() noexcept;

  static void on_timer(net::TimerNode& node);
  void timer_fired();
  void set_deadline(double seconds);
  void heartbeat();
  void heartbeat_failed();

  LoopState& loop_;
  std::shared_ptr<const ClientProfile> profile_;
  int fd_ = -1;
  State state_ = State::waiting;
  bool failed_ = false;                // we failed the connection: close_code_ is ours
  bool user_closed_ = false;           // close() was called: no reconnect
  bool tls_read_wants_write_ = false;  // SSL_read must write first (a TLS 1.3 key update)
  std::uint16_t close_code_ = ws::close_code::kAbnormal;
  std::uint32_t interest_ = 0;
  std::uint32_t attempts_ = 0;        // failed attempts since the last open (backoff exponent)
  std::uint64_t retry_after_ms_ = 0;  // the server's Retry-After on the refused handshake
  // Heartbeat (ClientOptions::ping_interval), in the loop's milliseconds. Reads only store the
  // time; the timer looks at it when it fires, so traffic never moves the timer.
  std::uint64_t last_heard_ms_ = 0;  // the last sign of life from the server
  std::uint64_t ping_sent_ms_ = 0;   // our heartbeat ping awaiting a sign of life; 0: none
  MaskGenerator masks_;
  std::unique_ptr<Handshake> handshake_;
  std::unique_ptr<net::TlsSession> tls_;  // wss://, from the TCP connect until the socket closes
  std::unique_ptr<MessageCompression> compression_;  // only when permessage-deflate was agreed
  Session session_;
  std::string subprotocol_;
  std::string close_reason_;
  std::string pending_error_;   // a failure found synchronously in attempt(), reported by the timer
  ws::SessionBuffers buffers_;  // a fragmented message, a control frame split across reads
  net::Outbox outbox_;
};

}  // namespace pylon::client
