// One TCP connection of a worker, from accept through the HTTP request(s), the WebSocket
// upgrade, the frames, and the closing handshake (RFC 6455 §7).
//
// Owned by its Worker and touched only on that worker's thread. Closing never frees the
// object inside a callback: destroy() unlinks it and hands it to the worker, which frees it at
// the end of the loop iteration (STYLE.md rule 12).
//
// Memory: an open, idle WebSocket holds the parser state, three empty strings and a few
// timestamps. Bytes are kept only while a request, frame or message is incomplete (`message_`,
// `control_`) or while the kernel will not take what we send (`pending_`).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "http/request_parser.hpp"
#include "net/event_loop.hpp"
#include "net/timer_wheel.hpp"
#include "pubsub/local_topics.hpp"
#include "pubsub/message.hpp"
#include "pylon/app.hpp"
#include "server/server.hpp"
#include "server/server_metrics.hpp"
#include "ws/frame.hpp"
#include "ws/frame_parser.hpp"

namespace pylon::detail {

class Worker;

class Connection final : public net::IoHandler, public net::TimerNode {
 public:
  // internal: accepted on the metrics listener (only internal routes are served there).
  Connection(Worker& worker, int fd, std::string remote_address, bool internal);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void on_io(std::uint32_t epoll_events) override;

  // The public API (pylon::WebSocket forwards here).
  SendStatus send_message(std::string_view message, MessageKind kind);
  void close_by_application(std::uint16_t code, std::string_view reason);
  std::size_t buffered_amount() const noexcept { return pending_.size() - pending_offset_; }
  std::string_view remote_address() const noexcept { return remote_address_; }
  std::string_view subprotocol() const noexcept { return subprotocol_; }
  void* user_data() noexcept { return user_data_; }
  bool subscribe(std::string_view topic);
  bool unsubscribe(std::string_view topic);
  bool is_subscribed(std::string_view topic) const noexcept;
  std::size_t subscription_count() const noexcept { return subscriptions_.size(); }
  std::size_t publish(std::string_view topic, std::string_view message, MessageKind kind);

  // A run of published messages of one topic (Worker::deliver): written straight from the
  // shared frames with one writev when nothing is queued, copied only behind a backlog.
  void deliver_frames(std::span<const pubsub::MessageRef> run);

  // Worker hooks.
  void flush();                 // end of iteration / EPOLLOUT: hand pending_ to the kernel
  // SIGTERM: close an open WebSocket with 1001; true when it did.
  bool start_drain_close();
  bool is_websocket() const noexcept { return route_ != nullptr; }
  bool closed() const noexcept { return state_ == State::closed; }
  void destroy() noexcept;
  bool flush_scheduled = false;
  Connection* list_prev = nullptr;  // the worker's list of live connections
  Connection* list_next = nullptr;

  // FrameParser handler (ws/frame_parser.hpp).
  void on_message_data(ws::Opcode opcode, std::span<const std::uint8_t> chunk, bool first, bool last);
  void on_control_frame_data(ws::Opcode opcode, std::span<const std::uint8_t> chunk, bool first,
                             bool last);

 private:
  enum class State : std::uint8_t {
    http,     // reading requests (keep-alive GETs, then perhaps an upgrade)
    open,     // WebSocket open
    closing,  // close sent and/or received, or an HTTP error answered: waiting for the peer's EOF
    closed,   // destroyed; waiting to be freed at the end of the iteration
  };
  // What the access log needs at close; allocated at the upgrade only while info logging is on,
  // so a server logging at warn pays nothing for it.
  struct AccessLog {
    std::string client_ip;  // the real client (from a trusted proxy's headers) or the peer
    std::string_view path;  // the route's path
    std::uint64_t opened_ms = 0;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::uint64_t messages_in = 0, messages_out = 0;
  };
  struct HttpState {
    explicit HttpState(const http::Limits& limits) : parser(limits) {}
    http::RequestParser parser;
    http::Request request;
    std::string buffer;  // bytes of an incomplete request only
  };

  void read_ready();
  void process(std::span<std::uint8_t> data);
  void process_http(std::span<std::uint8_t> data);
  // Returns false when the connection left the HTTP state or is closing.
  bool handle_request(const http::Request& request);
  void upgrade(const Route& route, const http::Request& request);
  void respond(int status, std::string_view body, bool keep_alive,
               std::span<const http::Header> extra_headers = {},
               std::string_view content_type = "text/plain; charset=utf-8");
  void respond_error(HandshakeFailure failure, int status, std::string_view reason,
                     std::span<const http::Header> extra_headers = {});

  SendStatus send_frame(ws::Opcode opcode, std::span<const std::uint8_t> payload);
  void write_bytes(std::string_view bytes);
  void send_close(std::uint16_t code, std::string_view reason);
  void handle_control(ws::Opcode opcode, std::span<const std::uint8_t> payload);
  void deliver(ws::Opcode opcode, std::span<const std::uint8_t> message);
  void fail(ws::ProtocolError error);
  void begin_close(std::uint16_t code, std::string_view reason);
  void enter_closing() noexcept;
  void notify_close(std::uint16_t code, std::string_view reason);
  std::string real_client_ip(const http::Request& request) const;
  void count_out(std::size_t messages, std::size_t bytes) noexcept {
    if (access_) {
      access_->messages_out += messages;
      access_->bytes_out += bytes;
    }
  }
  void peer_gone();
  void update_interest();
  void report_backlog() noexcept;  // keeps pylon_send_backlog_bytes in step with pending_
  void unsubscribe_all() noexcept;

  static void on_timer(net::TimerNode& node);
  void timer_fired();
  void reschedule_timer();

  Worker& worker_;
  int fd_;
  bool internal_;
  State state_ = State::http;
  bool write_blocked_ = false;      // the kernel refused bytes: EPOLLOUT is armed
  bool shutdown_after_flush_ = false;
  bool close_sent_ = false;
  bool close_received_ = false;
  bool awaiting_pong_ = false;
  std::uint32_t interest_ = 0;
  std::unique_ptr<HttpState> http_;
  std::unique_ptr<AccessLog> access_;
  const Route* route_ = nullptr;
  void* user_data_ = nullptr;
  std::string_view subprotocol_;
  std::vector<pubsub::LocalTopics<Connection>::Topic*> subscriptions_;
  ws::FrameParser<Connection> parser_;
  std::string message_;  // a fragmented or partially received message
  std::string control_;  // a control frame split across reads
  std::string pending_;  // bytes the kernel has not taken yet
  std::size_t pending_offset_ = 0;
  std::size_t reported_backlog_ = 0;
  std::uint32_t requests_served_ = 0;
  std::string remote_address_;
  std::uint64_t deadline_ms_ = 0;  // handshake / close deadline
  std::uint64_t next_ping_ms_ = 0;
  std::uint64_t ping_sent_ms_ = 0;
  std::uint64_t last_activity_ms_ = 0;
};

}  // namespace pylon::detail
