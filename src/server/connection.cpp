#include "server/connection.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "net/buffer.hpp"
#include "obs/log.hpp"
#include "server/worker.hpp"
#include "ws/error.hpp"

namespace pylon::detail {
namespace {

// How long we wait for the peer's close frame / EOF once the closing handshake started.
constexpr std::uint64_t kCloseTimeoutMs = 3000;

using net::to_ms;

}  // namespace

Connection::Connection(int fd, const net::PeerAddress& peer, bool internal,
                       std::shared_ptr<const TlsCertificates> tls)
    : http_(new (worker().http_state_pool().allocate()) HttpState(http::Limits{})),
      session_(worker().server().config.max_message_size),
      peer_(peer),
      fd_(fd),
      internal_(internal) {
  fire = &Connection::on_timer;
  if (tls) {
    auto state = std::make_unique<Tls>();
    state->session = net::TlsSession::accept(tls->context(), fd_);
    state->handshake_certificates = std::move(tls);
    state->accepted_ns = net::EventLoop::monotonic_ns();
    spill().tls = std::move(state);
    tls_ = true;
    worker().tls_handshake_started();
  }
  interest_ = EPOLLIN | EPOLLRDHUP;
  // OpenSSL reads a TLS socket itself; a plain one's bytes may come from the loop (io_uring).
  worker().loop().add(fd_, interest_, this,
                      tls_ ? net::Receive::by_handler : net::Receive::by_loop);
  deadline_ =
      net::CompactTime::at(worker().now_ms() + to_ms(worker().server().config.handshake_timeout));
  reschedule_timer();
}

Connection::~Connection() {
  release_http_state();
  if (access_log_) worker().take_client_ip(*this);  // closed without notify_close: a shutdown
  if (route_ != nullptr) release_user_data(route_->behavior);
}

void Connection::release_user_data(const ErasedBehavior& behavior) noexcept {
  if (user_data_ == nullptr) return;
  behavior.destroy(user_data_);
  ::operator delete(user_data_, std::align_val_t(behavior.user_data_align));
  user_data_ = nullptr;
}

// ---------------------------------------------------------------------------------------------
// Reading

void Connection::on_io(std::uint32_t events) {
  if (state_ == State::closed) return;
  // OpenSSL sees an error or EOF itself (and it is counted as a failed handshake).
  if (tls_handshaking()) return continue_tls_handshake();
  if ((events & EPOLLERR) != 0) {
    peer_gone();
    return;
  }
  if ((events & EPOLLOUT) != 0) {
    flush();
    if (state_ == State::closed) return;
  }
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) != 0) read_ready();
}

void Connection::read_ready() {
  if (tls_) return read_ready_tls();
  auto buffer = worker().loop().receive_buffer();
  const ssize_t received = net::read_some(fd_, buffer);
  if (received == 0) {
    peer_gone();
    return;
  }
  if (received < 0) {
    if (errno != EAGAIN && errno != EINTR) peer_gone();
    return;
  }
  process_read(buffer.first(static_cast<std::size_t>(received)));
}

void Connection::on_received(std::span<std::uint8_t> bytes) {
  if (bytes.empty()) return peer_gone();
  process_read(bytes);
}

void Connection::on_sent(int error, std::span<const std::uint8_t> unsent) {
  if (error != 0) return peer_gone();
  outbox_.sent(unsent);
  // Most sends (an echo's, a delivery's): all of it taken, nothing queued behind it, no close
  // waiting for it, reads not paused for it. Nothing to flush, report or watch then (issue 17:
  // a message in flight per connection paid a second flush for it).
  if (outbox_.idle() && !shutdown_after_flush_ &&
      interest_ == outbox_.interest(tls_ && tls()->wants_write))
    return;
  if (!outbox_.blocked()) return flush();  // what waited behind, and a close after the last byte
  // The kernel refused some: they wait for EPOLLOUT (a retry now would spin on a full socket).
  update_interest();
  report_backlog();
}

void Connection::process_read(std::span<std::uint8_t> data) {
  net::Cork& cork = worker().cork();
  cork.begin(this);
  process(data);
  cork.end();
  flush();
}

void Connection::process(std::span<std::uint8_t> data) {
  switch (state_) {
    case State::http:
      process_http(data);
      break;
    case State::open:
    case State::closing:
      if (!is_websocket()) break;  // an answered HTTP error: the rest of the request is ignored
      if (state_ == State::open) last_activity_ = net::CompactTime::at(worker().now_ms());
      if (worker().handling_sample().timed(route_->metrics.get()))
        worker().read_tally().begin(this, true, net::EventLoop::monotonic_ns());
      else
        worker().read_tally().begin(this, false, 0);
      session_.feed(data, *this);
      count_read();
      break;
    case State::closed:
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// The session's hooks (ws/session.hpp)

net::ByteBuffer& Connection::session_output() {
  bool flush_later = false;
  net::ByteBuffer& out = outbox_.output(worker().cork(), this, &flush_later);
  if (flush_later) [[unlikely]]
    schedule_flush();
  return out;
}

void Connection::schedule_flush() {
  worker().connections().schedule_flush(*this);
}

void Connection::session_output_done() {
  // A write error here is found again by the flush that follows the processing.
  with_transport([this](const auto& transport) {
    return outbox_.after_output(worker().cork(), this, transport);
  });
}

void Connection::write_bytes(std::string_view bytes) {
  session_output().append(bytes);
  session_output_done();
}

void Connection::session_buffers_idle() noexcept {
  // A compressed message that came in one read was inflated into the loop's buffer: kept for the
  // next one, unless it is a mapped block (a bomb stopped at the limit) that should go back.
  if (std::string& inflated = worker().inflate_buffer(); inflated.capacity() >= kMappedBlock)
    std::string().swap(inflated);
  if (!spill_) return;
  // The spill outlives a delivery (destroy() keeps it): a handler may still read the message.
  net::release_if_large(spill_->buffers.message);
  release_spill_if_empty();
}

void Connection::on_session_message(ws::Opcode opcode, std::span<const std::uint8_t> message) {
  if (state_ != State::open) return;
  const MessageKind kind = opcode == ws::Opcode::text ? MessageKind::text : MessageKind::binary;
  Worker::ReadTally& tally = worker().read_tally();  // this read's (process)
  tally.received(kind, message.size());
  const auto& handler = route_->behavior.message;
  if (!handler) return;
  ++tally.handled;
  handler(*this, {reinterpret_cast<const char*>(message.data()), message.size()}, kind);
}

void Connection::count_read() noexcept {
  Worker& worker = this->worker();
  Worker::ReadTally& tally = worker.read_tally();
  const RouteMetrics& metrics = *route_->metrics;
  // Handling time of a sample of reads: the parsing of its frames and the handlers of its
  // messages, each message counted at their mean, and so are those of the untimed reads after it
  // (Worker::HandlingSample, docs/metrics.md).
  std::uint64_t each_ns = 0;
  if (tally.handled != 0) {
    Worker::HandlingSample& sample = worker.handling_sample();
    if (tally.timed) {
      sample = {.route = &metrics,
                .each_ns = (net::EventLoop::monotonic_ns() - tally.started_ns) / tally.handled,
                .untimed_left = Worker::HandlingSample::kUntimedReads};
    } else {
      --sample.untimed_left;  // timed() said no: the sample is this route's and had reads left
    }
    each_ns = sample.each_ns;
  }
  worker.count_read(metrics, tally, each_ns);
  if (counting_received_)
    received_.add(tally.messages_in[0] + tally.messages_in[1],
                  tally.bytes_in[0] + tally.bytes_in[1]);
  count_out(tally.messages_out[0] + tally.messages_out[1], tally.bytes_out[0] + tally.bytes_out[1]);
  tally.clear();
}

void Connection::on_session_pong(std::span<const std::uint8_t> payload) {
  // Any pong proves the peer alive; ours carries its send time (timer_fired), giving the RTT.
  if (!awaiting_pong_) return;
  if (payload.size() == sizeof(std::uint64_t)) {
    std::uint64_t sent_ns = 0;
    std::memcpy(&sent_ns, payload.data(), sizeof sent_ns);
    const std::uint64_t now_ns = net::EventLoop::monotonic_ns();
    if (sent_ns <= now_ns && now_ns - sent_ns < 60'000'000'000ull)  // ours, not a forgery
      worker().server().counters->ping_rtt.observe_ns(now_ns - sent_ns);
  }
  // deadline_ was the pong deadline: the next ping is one interval after the last.
  const Config& config = worker().server().config;
  deadline_ = net::CompactTime::at(deadline_.ms(worker().now_ms()) - to_ms(config.pong_timeout) +
                                   to_ms(config.ping_interval));
  awaiting_pong_ = false;
  reschedule_timer();  // the wheel still holds the pong deadline
}

void Connection::on_session_close(std::uint16_t code, std::string_view reason,
                                  bool answer_to_ours) {
  if (answer_to_ours) return destroy();  // the closing handshake is complete
  // The session answered; the peer closes TCP after reading it, or we do after the timeout.
  enter_closing();
  shutdown_after_flush_ = true;
  notify_close(code, reason);
}

void Connection::on_session_failed(ws::ProtocolError error, bool close_sent) {
  if (!close_sent || state_ != State::open) return destroy();  // a garbled reply to our close
  // RFC 6455 §7.1.7: the session sent the close code the violated rule calls for.
  static obs::LogRateLimit limit(10);
  const std::uint16_t code = ws::close_code_for(error);
  limit.log(obs::LogLevel::warn, "protocol error",
            {{"remote", std::string_view(remote_address())},
             {"error", ws::name(error)},
             {"code", std::uint64_t{code}}});
  worker().server().counters->protocol_error(error);
  enter_closing();
  shutdown_after_flush_ = true;
  notify_close(code, ws::describe(error));
}

// ---------------------------------------------------------------------------------------------
// Frames out and the write path

SendStatus Connection::send_message(std::string_view message, MessageKind kind) {
  Worker& worker = this->worker();
  Worker::ReadTally& tally = worker.read_tally();
  // The common answer (an echo's, a request's): sent while this connection's read is processed,
  // with nothing waiting before it, and not to be compressed. It is counted with the read and
  // written straight into the cork the read holds, where session_output() would put it, with
  // the fewest checks and registers (issue 17); every other send is send_other's.
  if (tally.reader == this && outbox_.idle() && state_ == State::open && session_.open() &&
      !(deflate_ && message.size() >= route_->compression.threshold)) {
    tally.sent(kind, message.size());
    net::ByteBuffer& cork = worker.cork().buffer();
    session_.write_frame(*this, cork, opcode_of(kind), as_bytes(message));
    if (cork.size() < net::Outbox::kCorkLimit) return SendStatus::sent;
    session_output_done();
    return send_status();
  }
  return send_other(message, kind);
}

SendStatus Connection::send_other(std::string_view message, MessageKind kind) {
  if (state_ != State::open || !session_.open()) return SendStatus::dropped;
  const RouteMetrics& metrics = *route_->metrics;
  if (outbox_.blocked() &&
      buffered_amount() + message.size() > worker().server().config.max_backpressure) {
    metrics.backpressure_drops.add();
    return SendStatus::dropped;
  }
  if (Worker::ReadTally& tally = worker().read_tally(); tally.reader == this) {
    tally.sent(kind, message.size());  // an answer while this connection's read is processed
  } else {
    metrics.messages_sent[static_cast<std::size_t>(kind)].add();
    metrics.bytes_sent[static_cast<std::size_t>(kind)].add(message.size());
    count_out(1, message.size());
  }
  if (deflate_ && message.size() >= route_->compression.threshold)
    return send_compressed(opcode_of(kind), as_bytes(message));
  return send_frame(opcode_of(kind), as_bytes(message));
}

SendStatus Connection::send_frame(ws::Opcode opcode, std::span<const std::uint8_t> payload,
                                  bool rsv1) {
  session_.send(*this, opcode, payload, true, rsv1);
  return send_status();
}

void Connection::flush() {
  net::Cork& cork = worker().cork();
  if (state_ == State::closed) return outbox_.discard(cork);
  // Our last bytes (a close frame, an error response) and the FIN behind them in one segment:
  // one packet less for both ends per connection. Plain sockets only: over TLS, close_notify
  // still follows them.
  const int socket_flags = shutdown_after_flush_ && !tls_ ? MSG_MORE : 0;
  const net::Outbox::Flushed flushed = with_transport(
      [this, &cork](const auto& transport) { return outbox_.flush(cork, transport); },
      socket_flags);
  if (flushed.error != 0) return peer_gone();
  // The common end of a read: its bytes are with the kernel or in flight, nothing waits here,
  // and no close, spill or drain callback is pending. Only the read interest may change (the
  // bytes in flight may pause reads); the rest below would find nothing to do (issue 17).
  if (!outbox_.has_backlog() && !shutdown_after_flush_ && !spill_ && !flushed.drained)
    return update_interest();
  if (outbox_.buffered() == 0 && shutdown_after_flush_) {
    if (tls_) tls()->session->shutdown();  // close_notify before the FIN
    // RFC 6455 §7.1.1: a close frame went each way (the peer's first, ours answered it, all of
    // it with the kernel now), so the TCP connection is closed, by the server first: no wait
    // for the peer's FIN, which costs a wake-up, a read and a timer per connection.
    if (session_.close_sent() && session_.close_received()) return destroy();
    ::shutdown(fd_, SHUT_WR);  // FIN right behind our last bytes (close frame or error response)
    shutdown_after_flush_ = false;
  }
  update_interest();
  report_backlog();
  release_spill_if_empty();
  if (flushed.drained && state_ == State::open && route_->behavior.drain)
    route_->behavior.drain(*this);
}

void Connection::report_backlog() noexcept {
  // What waits in the outbox; not an io_uring send in flight, whose completion comes within an
  // iteration: counting it would add to the gauge and take away again on every read (and open
  // and free the spill for it).
  const std::size_t backlog = outbox_.waiting();
  const std::size_t reported = spill_ ? spill_->reported_backlog : 0;
  if (backlog == reported) return;
  worker().server().counters->send_backlog.add(static_cast<std::int64_t>(backlog) -
                                               static_cast<std::int64_t>(reported));
  spill().reported_backlog = backlog;
}

void Connection::update_interest() {
  const std::uint32_t interest = outbox_.interest(tls_ && tls()->wants_write);
  static_assert((EPOLLIN | EPOLLOUT | EPOLLRDHUP) <= 0xffff, "interest_ holds these in 16 bits");
  if (interest == interest_) return;
  interest_ = static_cast<std::uint16_t>(interest);
  worker().loop().modify(fd_, interest_, this);
}

// ---------------------------------------------------------------------------------------------
// Closing (RFC 6455 §7)

void Connection::begin_close(std::uint16_t code, std::string_view reason) {
  if (state_ != State::open) return;
  code = session_.close(*this, code, reason);
  enter_closing();
  shutdown_after_flush_ = true;
  notify_close(code, reason);
}

void Connection::close_by_application(std::uint16_t code, std::string_view reason) {
  begin_close(code, reason);
}

bool Connection::start_drain_close() {
  if (state_ != State::open || (spill_ && spill_->publishes_pending > 0)) return false;
  begin_close(ws::close_code::kGoingAway, "server shutting down");
  return true;
}

bool Connection::owes_http_answer() const noexcept {
  if (is_websocket() || state_ == State::closed) return false;
  if (!outbox_.idle()) return true;
  return state_ == State::http && (http_->awaiting || http_->request_pending());
}

void Connection::enter_closing() noexcept {
  state_ = State::closing;
  unsubscribe_all();  // a closing connection takes no more deliveries; its topic counts drop now
  // A close queued behind a backlog (a slow consumer) reaches the peer only once it reads
  // again: give it as long as the heartbeat gives a silent peer before calling it dead. Its
  // memory stays bounded by max_backpressure meanwhile.
  const Config& config = worker().server().config;
  std::uint64_t timeout = kCloseTimeoutMs;
  if (outbox_.blocked())
    timeout = std::max(timeout, to_ms(config.ping_interval + config.pong_timeout));
  deadline_ = net::CompactTime::at(worker().now_ms() + timeout);
  reschedule_timer();
}

void Connection::notify_close(std::uint16_t code, std::string_view reason) {
  if (route_ == nullptr) return;
  // Whoever sent the first close frame closed; a dropped connection (1006) is the client's doing.
  const bool ours = session_.close_sent() && !session_.close_received();
  const CloseSide side = ours ? CloseSide::server : CloseSide::client;
  worker().server().counters->closed(code, side);
  // A close in the middle of a read: the access log gets the read's messages before it goes.
  if (worker().read_tally().reader == this) count_read();
  if (access_log_) {
    access_log_ = false;
    const std::string remote = remote_address();
    std::string client_ip = worker().take_client_ip(*this);
    if (client_ip.empty()) client_ip = peer_.host();
    // Nothing came in before the HTTP state was released (an open handler that closed at once).
    const Traffic received = counting_received_ ? received_ : Traffic{};
    const std::uint32_t duration_ms = static_cast<std::uint32_t>(worker().now_ms()) - opened_ms_;
    obs::log(obs::LogLevel::info, "websocket close",
             {{"remote", std::string_view(remote)},
              {"client_ip", std::string_view(client_ip)},
              {"path", std::string_view(route_->path)},
              {"duration_s", static_cast<double>(duration_ms) / 1000.0},
              {"messages_in", std::uint64_t{received.messages}},
              {"messages_out", std::uint64_t{sent_.messages}},
              {"bytes_in", std::uint64_t{received.bytes}},
              {"bytes_out", std::uint64_t{sent_.bytes}},
              {"code", std::uint64_t{code}},
              {"side", std::string_view(ours ? "server" : "client")}});
  }
  if (route_->behavior.close) route_->behavior.close(*this, code, reason);
}

void Connection::peer_gone() {
  // EOF or a socket error. Without a close frame first this is RFC 6455 §7.1.5's 1006.
  const bool was_open = state_ == State::open;
  destroy();
  if (was_open) notify_close(ws::close_code::kAbnormal, {});
}

void Connection::destroy() noexcept {
  if (state_ == State::closed) return;
  unsubscribe_all();
  worker().unwatch(*this);
  if (is_websocket()) {
    worker().server().open_websockets.fetch_sub(1, std::memory_order_relaxed);
    worker().websocket_closed();
    worker().release_client(*this);
    route_->metrics->connections.add(-1);
  }
  // The spill itself stays until the object is freed: a handler may still be reading a message
  // that lives in it.
  if (spill_) {
    worker().server().counters->send_backlog.add(
        -static_cast<std::int64_t>(spill_->reported_backlog));
    spill_->reported_backlog = 0;
  }
  if (tls_) end_tls();
  state_ = State::closed;
  net::TimerWheel::cancel(*this);
  worker().loop().close(fd_);
  fd_ = -1;
  worker().connections().retire(*this);
}

// ---------------------------------------------------------------------------------------------
// Timers: handshake, heartbeat, idle, close

void Connection::on_timer(net::TimerNode& node) {
  static_cast<Connection&>(node).timer_fired();
}

void Connection::timer_fired() {
  const std::uint64_t now = worker().now_ms();
  const std::uint64_t deadline = deadline_.ms(now);
  const Config& config = worker().server().config;
  switch (state_) {
    case State::http:
    case State::closing:
      if (now < deadline) break;
      // A keep-alive connection idle between requests is not a failed handshake.
      if (tls_handshaking())
        worker().server().counters->tls_handshake(TlsHandshake::timeout);
      else if (state_ == State::http && http_->request_pending())
        worker().server().counters->handshake_failed(HttpFailure::timeout);
      return destroy();  // slow handshake, or a peer that never closes
    case State::open:
      if (awaiting_pong_ && now >= deadline)
        return begin_close(ws::close_code::kGoingAway, "pong timeout");
      if (config.idle_timeout > 0 && now >= last_activity_.ms(now) + to_ms(config.idle_timeout))
        return begin_close(ws::close_code::kGoingAway, "idle timeout");
      if (!awaiting_pong_ && now >= deadline) {
        // The payload is the send time, so the pong alone gives the round trip.
        const std::uint64_t sent_ns = net::EventLoop::monotonic_ns();
        std::uint8_t payload[sizeof sent_ns];
        std::memcpy(payload, &sent_ns, sizeof payload);
        send_frame(ws::Opcode::ping, payload);
        awaiting_pong_ = true;
        deadline_ = net::CompactTime::at(now + to_ms(config.pong_timeout));
      }
      break;
    case State::closed:
      return;
  }
  reschedule_timer();
}

void Connection::reschedule_timer() {
  const std::uint64_t now = worker().now_ms();
  std::uint64_t deadline = deadline_.ms(now);
  if (state_ == State::open) {
    const Config& config = worker().server().config;
    if (config.idle_timeout > 0)
      deadline = std::min(deadline, last_activity_.ms(now) + to_ms(config.idle_timeout));
  }
  worker().loop().timers().schedule(*this, deadline);
}

}  // namespace pylon::detail
