// One TCP connection of a worker, from accept through the HTTP request(s), the WebSocket
// upgrade, the frames, and the closing handshake (RFC 6455 §7).
//
// Owned by its Worker and touched only on that worker's thread. Closing never frees the
// object inside a callback: destroy() unlinks it and hands it to the worker, which frees it at
// the end of the loop iteration (STYLE.md rule 12).
//
// The RFC 6455 session (ws/session.hpp) and the write path (net/outbox.hpp) are shared with the
// client; this type owns the state machine, the timers and closing (connection.cpp), and has its
// other concerns in files of their own: the HTTP phase and the upgrade (http_phase.cpp),
// permessage-deflate (compression.cpp), topics (topic_delivery.cpp), and the public API's
// forwarders (websocket_api.cpp).
//
// Memory: an open, idle WebSocket holds the session state, a compact peer address, a few
// pointers, two 32-bit times and the access log's record, in a 184-byte slot of its worker's
// SlabPool (sizeof is checked in tests/unit/server/connection_test.cpp), at every log level. The
// slot has no pointer to its worker (the pool's block header has it: worker()) and no links to
// other connections (the worker walks its pool's live slots). Everything else lives in a Spill
// allocated on first use and freed when empty again (bytes of an incomplete message or control
// frame, subscriptions, a dedicated compressor, and for a connection's life over native TLS its
// TLS state), or in the outbox's backlog while the kernel has not taken bytes.
#pragma once

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "http/request_parser.hpp"
#include "net/event_loop.hpp"
#include "net/outbox.hpp"
#include "net/socket.hpp"
#include "net/timer_wheel.hpp"
#include "net/tls.hpp"
#include "pubsub/delivery_floor.hpp"
#include "pubsub/local_topics.hpp"
#include "pubsub/message.hpp"
#include "pylon/app.hpp"
#include "server/server.hpp"
#include "server/server_metrics.hpp"
#include "server/slab_pool.hpp"
#include "server/tls_certificates.hpp"
#include "ws/frame.hpp"
#include "ws/permessage_deflate.hpp"
#include "ws/session.hpp"

namespace pylon::detail {

class Worker;

// pylon_messages_sent_total and pylon_bytes_sent_total of a run of publications delivered to
// subscribers (topic_delivery.cpp): the run's totals are taken once, and added once per route for
// all of the route's subscribers that got the whole run, instead of per message and subscriber
// (issue 17). Added when the tally goes. Loop thread.
class DeliveryTally {
 public:
  explicit DeliveryTally(std::span<const pubsub::MessageRef> run) noexcept;
  DeliveryTally(const DeliveryTally&) = delete;
  DeliveryTally& operator=(const DeliveryTally&) = delete;
  ~DeliveryTally() { add(); }
  // One more subscriber on the route of `metrics` got the whole run.
  void count(const RouteMetrics& metrics) noexcept {
    if (&metrics != metrics_) {
      add();
      metrics_ = &metrics;
    }
    ++subscribers_;
  }
  std::uint64_t messages() const noexcept { return messages_[0] + messages_[1]; }
  std::uint64_t bytes() const noexcept { return bytes_[0] + bytes_[1]; }

 private:
  void add() noexcept;
  std::array<std::uint64_t, 2> messages_{}, bytes_{};  // [MessageKind]
  const RouteMetrics* metrics_ = nullptr;
  std::uint64_t subscribers_ = 0;  // counted on metrics_, not yet added
};

class Connection final : public net::IoHandler, public net::TimerNode {
 public:
  // Constructed only in a slot of a worker's connection pool, whose owner is the worker.
  // internal: accepted on the metrics listener (only internal routes are served there).
  // tls: the certificates of a connection on a TLS listener (its handshake starts at once); null
  // on a plain one. Throws std::bad_alloc when OpenSSL cannot allocate the connection.
  Connection(int fd, const net::PeerAddress& peer, bool internal,
             std::shared_ptr<const TlsCertificates> tls);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  // A connection lives in a slot of its worker's SlabPool (Worker::accept_ready, free_retired):
  // `new Connection` and `delete connection` do not compile.
  static void operator delete(void*) = delete;

  void on_io(std::uint32_t epoll_events) override;
  void on_received(std::span<std::uint8_t> bytes) override;  // io_uring: the loop's receive
  void on_sent(int error, std::span<const std::uint8_t> unsent) override;  // io_uring: its send

  // The public API (pylon::WebSocket forwards here).
  SendStatus send_message(std::string_view message, MessageKind kind);
  void close_by_application(std::uint16_t code, std::string_view reason);
  std::size_t buffered_amount() const noexcept { return outbox_.buffered(); }
  std::string remote_address() const { return peer_.to_string(); }
  std::string_view subprotocol() const noexcept {
    return subprotocol_ > 0 ? std::string_view(route_->behavior.subprotocols[subprotocol_ - 1])
                            : std::string_view();
  }
  void* user_data() noexcept { return user_data_; }
  bool subscribe(std::string_view topic);
  bool unsubscribe(std::string_view topic);
  bool is_subscribed(std::string_view topic) const noexcept;
  std::size_t subscription_count() const noexcept {
    return spill_ ? spill_->subscriptions.size() : 0;
  }
  std::vector<std::string> subscriptions() const;
  PublishResult publish(std::string_view topic, const OffsetEnvelope& message, MessageKind kind,
                        std::uint64_t tag);
  std::optional<HistorySubscription> subscribe_with_history(std::string_view topic,
                                                            const StreamPosition* since,
                                                            std::uint64_t tag);
  // Answers from other threads, run on this connection's loop once Worker::watched found it.
  void settle_publish(std::uint64_t tag, const PublishResult& result);
  void finish_recovery(std::string_view topic, pubsub::HistoryRead& read);
  void answer_deferred(const HttpResponse& response);

  using Topic = pubsub::LocalTopics<Connection>::Topic;
  // A run of published messages of topic (Worker::deliver): written straight from the shared
  // frames with one writev when nothing is queued, copied only behind a backlog. several_topics:
  // the batch holds other topics' runs too; a subscriber of several topics then copies its runs
  // into its outbox, written once at the end of the iteration.
  void deliver_frames(const Topic& topic, std::span<const pubsub::MessageRef> run,
                      DeliveryTally& tally, bool several_topics = false);

  // Worker hooks.
  void flush();  // end of iteration / EPOLLOUT: hand the outbox to the kernel
  // SIGTERM: close an open WebSocket with 1001; true when it did. Not while a publish of its waits
  // for Redis: the ack goes first (the drain tries again at its next tick).
  bool start_drain_close();
  // A plain HTTP connection that a drain waits for: its first request has not come yet, part of
  // one is in, its answer is deferred, or the kernel has not taken the whole answer. A keep-alive
  // connection idle between requests owes nothing.
  bool owes_http_answer() const noexcept;
  bool is_websocket() const noexcept { return route_ != nullptr; }
  bool closed() const noexcept { return state_ == State::closed; }
  bool is_open() const noexcept { return state_ == State::open; }
  // The owner of the slot: a connection has no byte to spare for a pointer to its worker.
  // (Worker is incomplete here: a static_cast from void* needs no more.)
  Worker& worker() const noexcept { return *static_cast<Worker*>(SlabPool::owner_of(this)); }
  void destroy() noexcept;

 private:
  friend class ws::Session<ws::Role::server, Connection>;
  enum class State : std::uint8_t {
    http,     // reading requests (keep-alive GETs, then perhaps an upgrade)
    open,     // WebSocket open
    closing,  // close sent and/or received, or an HTTP error answered: waiting for the peer's EOF
    closed,   // destroyed; waiting to be freed at the end of the iteration
  };
  // One direction of a WebSocket's traffic, for the access log: 32 bits each, saturating (past
  // 4 GiB a connection logs 4294967295 bytes), so that it fits in the slot.
  struct Traffic {
    std::uint32_t messages, bytes;
    void add(std::size_t count, std::size_t size) noexcept {
      constexpr std::uint64_t kMost = UINT32_MAX;
      messages = static_cast<std::uint32_t>(std::min<std::uint64_t>(messages + count, kMost));
      bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(bytes + size, kMost));
    }
  };
  // In a slot of the worker's HttpState pool while the connection is in the HTTP phase: a burst
  // of handshakes then leaves no free chunks behind in malloc's heap (slab_pool.hpp).
  struct HttpState {
    explicit HttpState(const http::Limits& limits) : parser(limits) {}
    http::RequestParser parser;  // resumable: offsets only; the views go to the worker's Request
    std::string buffer;          // bytes of an incomplete request only (or behind a deferred one)
    std::uint32_t requests_served = 0;
    bool awaiting = false;  // a handler deferred its answer (HttpRequest::defer)
    bool awaiting_keep_alive = false, awaiting_head = false;
    // The first request has not come yet, or part of one is in: not a keep-alive connection
    // idle between requests.
    bool request_pending() const noexcept { return requests_served == 0 || !buffer.empty(); }
  };

 public:
  static SlabPool make_http_state_pool() { return SlabPool(sizeof(HttpState), alignof(HttpState)); }

 private:
  struct DedicatedDeflate {  // compression = "dedicated": this connection's own sliding windows
    // Each made for the first compressed message its way (own_deflater, own_inflater): zlib
    // allocates a compressor's whole state at once (~256 KiB at 15 bits / memLevel 8), an
    // inflater ~7 KiB, and a connection that never has such a message never pays for them.
    std::optional<ws::MessageDeflater> deflater;
    std::optional<ws::MessageInflater> inflater;
    std::uint8_t client_window_bits;  // what the upgrade agreed for the inflater
    bool client_no_context_takeover;
  };
  ws::MessageDeflater& own_deflater(DedicatedDeflate& own);
  static ws::MessageInflater& own_inflater(DedicatedDeflate& own);
  // A subscribe whose history is being read from the cluster engine: the topic's live deliveries
  // wait here, to follow what the read finds (topic_recovery.cpp).
  struct Recovering {
    const Topic* topic;
    std::uint64_t tag;
    std::optional<StreamPosition> since;
    std::vector<pubsub::MessageRef> held;
  };
  // Native TLS (connection_tls.cpp). An idle TLS connection holds this and its Spill beside the
  // slot (a plain one has no byte to spare for a pointer to it), and the SSL OpenSSL allocates
  // (its record buffers only while a record is in flight: SSL_MODE_RELEASE_BUFFERS).
  struct Tls {
    std::unique_ptr<net::TlsSession> session;
    // The set its handshake started with, held until the handshake ends (a reload may replace
    // it meanwhile: the SNI callback reads it); null afterwards.
    std::shared_ptr<const TlsCertificates> handshake_certificates;
    std::uint64_t accepted_ns = 0;
    bool wants_write = false;   // OpenSSL must write before it can go on reading
    bool kernel_sends = false;  // kTLS: the kernel encrypts, so writes skip OpenSSL
  };
  struct Spill {
    ws::SessionBuffers buffers;        // a fragmented message, a control frame split in reads
    std::size_t reported_backlog = 0;  // what pylon_send_backlog_bytes has been told
    std::vector<Topic*> subscriptions;
    // Topics with history subscribed since their last publication (pubsub/delivery_floor.hpp).
    pubsub::DeliveryFloors<Topic> floors;
    std::vector<Recovering> recovering;
    // Dedicated mode: kept for the connection's life (its windows dwarf the spill).
    std::unique_ptr<DedicatedDeflate> dedicated;
    // Shared mode, a compressed message spread over several reads: inflated piece by piece (the
    // bomb limit applies mid-message) by a decompressor lent by the worker while it lasts.
    std::unique_ptr<ws::MessageInflater> inflater;
    std::size_t compressed_size = 0;  // of the message being inflated, for the metrics
    std::unique_ptr<Tls> tls;         // over native TLS: for the connection's life (tls_)
    // Publishes whose outcome Redis has not given yet (PublishResult::pending): a drain's 1001
    // waits for their acks.
    std::uint32_t publishes_pending = 0;
    bool empty() const noexcept {
      return buffers.empty() && reported_backlog == 0 && subscriptions.empty() && floors.empty() &&
             recovering.empty() && !dedicated && !inflater && !tls && publishes_pending == 0;
    }
  };
  Spill& spill() {
    if (!spill_) spill_ = std::make_unique<Spill>();
    return *spill_;
  }
  void release_spill_if_empty() noexcept {
    if (spill_ && spill_->empty()) spill_.reset();
  }
  DedicatedDeflate* dedicated() const noexcept {
    return spill_ ? spill_->dedicated.get() : nullptr;
  }

  Tls* tls() const noexcept { return tls_ ? spill_->tls.get() : nullptr; }
  bool tls_handshaking() const noexcept { return tls_ && tls()->handshake_certificates; }
  void continue_tls_handshake();
  void tls_established();
  void read_ready_tls();
  void end_tls() noexcept;  // destroy(): the handshake slot or the connection gauge
  // Where the outbox's bytes go: OpenSSL over TLS, else (plain, or kTLS) the socket itself,
  // through the loop under io_uring (net/outbox.hpp "In flight"). socket_flags: for the socket's
  // own sends (net::SocketTransport::flags).
  // (WorkerType: Worker is incomplete here; naming it through a template parameter defers the
  // lookup of loop() to the .cpp files that call this, where it is complete.)
  template <typename Action, typename WorkerType = Worker>
  decltype(auto) with_transport(Action&& action, int socket_flags = 0) {
    if (tls_ && !tls()->kernel_sends) return action(net::TlsTransport{*tls()->session});
    WorkerType& worker = this->worker();
    return action(net::SocketTransport{fd_, &worker.loop(), socket_flags});
  }

  // Reading and the session's hooks (connection.cpp).
  void read_ready();
  void process_read(std::span<std::uint8_t> data);  // corked, then flushed
  void process(std::span<std::uint8_t> data);
  net::ByteBuffer& session_output();
  // Out of line and cold, so that session_output stays small enough to be inlined per frame.
  [[gnu::cold, gnu::noinline]] void schedule_flush();
  void session_output_done();
  ws::SessionBuffers& session_buffers() { return spill().buffers; }
  void session_buffers_idle() noexcept;
  void on_session_message(ws::Opcode opcode, std::span<const std::uint8_t> message);
  void count_read() noexcept;  // adds the read's tally (Worker::ReadTally) to the metrics
  void on_session_ping(std::span<const std::uint8_t>) noexcept {}  // the session answered it
  void on_session_pong(std::span<const std::uint8_t> payload);
  void on_session_close(std::uint16_t code, std::string_view reason, bool answer_to_ours);
  void on_session_failed(ws::ProtocolError error, bool close_sent);

  // The HTTP phase and the opening handshake (http_phase.cpp).
  void process_http(std::span<std::uint8_t> data);
  void release_http_state() noexcept;
  // Returns false when the connection left the HTTP state or is closing.
  bool handle_request(const http::Request& request);
  void upgrade(const Route& route, const http::Request& request);
  void respond(int status, std::string_view body, bool keep_alive,
               std::span<const http::Header> extra_headers = {},
               std::string_view content_type = "text/plain; charset=utf-8", bool head_only = false);
  void respond(const HttpResponse& response, bool keep_alive, bool head_only);
  // A refused request: counted by the caller, logged (rate-limited) here; the connection closes.
  void respond_error(int status, std::string_view reason,
                     std::span<const http::Header> extra_headers = {});
  void write_bytes(std::string_view bytes);  // an HTTP response, into the outbox

  // permessage-deflate, RFC 7692 (compression.cpp): what is agreed at the upgrade, inflating
  // what arrives with RSV1, compressing what goes out past the threshold, and choosing a
  // subscriber's broadcast frame.
  void agree_compression(const ws::DeflateParams& params);
  ws::InflateStatus session_inflate(std::span<const std::uint8_t> piece, bool first, bool last,
                                    std::uint64_t limit, std::span<const std::uint8_t>& message);
  SendStatus send_compressed(ws::Opcode opcode, std::span<const std::uint8_t> payload);
  // The frame of a broadcast for this subscriber: inline, since a fan-out asks it per frame and
  // subscriber and most subscribers take the frame as it is.
  const std::string& frame_for(const pubsub::Message& message) {
    return deflate_ ? compressed_frame_for(message) : message.frame;
  }
  const std::string& compressed_frame_for(const pubsub::Message& message);
  std::size_t write_own_frames(std::span<const pubsub::MessageRef> run);

  // Topics (topic_delivery.cpp). write_shared_frames returns how many of the run went out (the
  // rest exceeded max_backpressure); gather: into the outbox, for the end of the iteration.
  std::size_t write_shared_frames(std::span<const pubsub::MessageRef> run, bool gather);
  void unsubscribe_all() noexcept;
  void count_delivered(DeliveryTally& tally) noexcept;
  // The frame of a shared delivery to this connection, counted when compressed.
  const std::string& shared_frame(const pubsub::Message& message);
  // History (topic_recovery.cpp): publications a recovering subscriber missed, queued in order
  // like replies (never dropped: the history's size bounds them).
  void send_history(std::span<const pubsub::MessageRef> missed);
  // Live deliveries of topic start after position (the floor), after what was missed is sent.
  void start_at(const Topic& topic, const StreamPosition* since, HistorySubscription& result,
                std::span<const pubsub::MessageRef> missed);
  // Engine history: the read goes to the engine; the answer comes to finish_recovery.
  void read_from_engine(const Topic& topic, const StreamPosition* since, std::uint64_t tag,
                        const pubsub::HistoryPolicy& policy);
  // A topic being recovered takes its live deliveries into its Recovering (true) instead.
  bool hold(const Topic& topic, std::span<const pubsub::MessageRef> run);

  // Frames out, the write path and closing (connection.cpp).
  SendStatus send_frame(ws::Opcode opcode, std::span<const std::uint8_t> payload,
                        bool rsv1 = false);
  // send_message's general case, out of line so that its common case needs no stack frame.
  [[gnu::noinline]] SendStatus send_other(std::string_view message, MessageKind kind);
  static std::span<const std::uint8_t> as_bytes(std::string_view message) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(message.data()), message.size()};
  }
  SendStatus send_status() const noexcept {
    return outbox_.blocked() ? SendStatus::queued : SendStatus::sent;
  }
  void begin_close(std::uint16_t code, std::string_view reason);
  void enter_closing() noexcept;
  void notify_close(std::uint16_t code, std::string_view reason);
  void count_out(std::size_t messages, std::size_t bytes) noexcept {
    if (access_log_) sent_.add(messages, bytes);
  }
  void peer_gone();
  void update_interest();
  void report_backlog() noexcept;  // keeps pylon_send_backlog_bytes in step with the outbox

  void release_user_data(const ErasedBehavior& behavior) noexcept;

  static void on_timer(net::TimerNode& node);
  void timer_fired();
  void reschedule_timer();

  // An idle connection's slot has no byte to spare for both, and they never live at once:
  // http_, from worker_.http_state_pool(), until release_http_state() (null then), and after it
  // received_, what the access log counts coming in (while counting_received_).
  union {
    HttpState* http_;
    Traffic received_;
  };
  static_assert(sizeof(Traffic) <= sizeof(HttpState*), "received_ must not widen the slot");
  std::unique_ptr<Spill> spill_;
  net::Outbox outbox_;
  const Route* route_ = nullptr;
  void* user_data_ = nullptr;
  // no_unique_address: interest_ goes into the session's tail padding (the slot's byte budget).
  [[no_unique_address]] ws::Session<ws::Role::server, Connection> session_;
  std::uint16_t interest_ = 0;  // epoll flags; the ones used fit in 16 bits (update_interest)
  // State http/closing: the handshake or close deadline. Open: the next ping, or while
  // awaiting_pong_ the pong deadline (the next ping then follows one interval after the last).
  // 32-bit times (net/timer_wheel.hpp): an idle connection's slot has no room for 64-bit ones.
  net::CompactTime deadline_;
  net::CompactTime last_activity_;  // open: the last read
  net::PeerAddress peer_;
  int fd_;
  // The rest of the access log's record, kept from the upgrade while access_log_ (info logging
  // was on then): the path is the route's, the client its peer unless Worker::keep_client_ip
  // was told otherwise. The open time is the loop clock's low 32 bits: durations up to 49.7 days.
  std::uint32_t opened_ms_ = 0;
  Traffic sent_{};
  State state_ = State::http;
  // 1 + the index of the agreed subprotocol in route_->behavior.subprotocols (kMaxSubprotocols);
  // 0: none. A byte instead of a pointer keeps an idle connection within its budget.
  std::uint8_t subprotocol_ = 0;
  // One bit each: an idle connection's slot has a byte budget.
  bool internal_ : 1;
  bool tls_ : 1 = false;  // native TLS: tls() is in the spill
  bool shutdown_after_flush_ : 1 = false;
  bool awaiting_pong_ : 1 = false;
  bool access_log_ : 1 = false;              // its close is logged (opened_ms_, sent_ are kept)
  bool counting_received_ : 1 = false;       // received_ is the union's member (see http_)
  bool deflate_ : 1 = false;                 // permessage-deflate agreed, with (compression.cpp):
  std::uint8_t server_window_bits_ : 4 = 0;  // our compressor's window, 8 to 15
  static_assert(ws::kMaxWindowBits < 16, "server_window_bits_ holds a window in 4 bits");
  bool server_context_takeover_ : 1 = false;  // and whether it carries over between messages

 public:
  bool flush_scheduled : 1 = false;  // on the worker's flush list (a bit beside the flags)
};

}  // namespace pylon::detail
