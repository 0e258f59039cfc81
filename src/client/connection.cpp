#include "client/connection.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "client/backoff.hpp"
#include "client/loop_state.hpp"
#include "net/buffer.hpp"
#include "ws/error.hpp"

namespace pylon::client {

using net::as_bytes;
using net::as_text;
using net::to_ms;

Connection::Connection(LoopState& loop, std::shared_ptr<const ClientProfile> profile)
    : loop_(loop), profile_(std::move(profile)), session_(profile_->options.max_message_size) {
  fire = &Connection::on_timer;
  masks_.reseed();
}

Connection::~Connection() {
  close_socket();
}

bool Connection::reconnecting() const noexcept {
  return profile_->options.reconnect.enabled && !user_closed_ && state_ != State::done;
}

// ---------------------------------------------------------------------------------------------
// Reading

void Connection::on_io(std::uint32_t events) {
  if (fd_ < 0) return;
  if (state_ == State::connecting) {
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error != 0) return fail_attempt(std::string("connect: ") + std::strerror(error));
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) connected();
    return;
  }
  if (state_ == State::securing) return continue_tls_handshake();  // OpenSSL sees any error
  if ((events & EPOLLERR) != 0) {
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length);
    return peer_gone(error);
  }
  if ((events & EPOLLOUT) != 0) {
    // Room again in a full send buffer: the server acknowledged our bytes. For the heartbeat
    // that is a sign of life like a read: a ping queued behind a large upload may take longer
    // than pong_timeout to reach a server that is alive and reading.
    if (outbox_.blocked()) last_heard_ms_ = loop_.loop.now_ms();
    flush();
    if (fd_ < 0) return;
    if (tls_read_wants_write_) events |= EPOLLIN;
  }
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) != 0) read_ready();
}

void Connection::read_ready() {
  if (tls_) return read_ready_tls();
  auto buffer = loop_.loop.receive_buffer();
  const ssize_t received = ::read(fd_, buffer.data(), buffer.size());
  if (received == 0) return peer_gone(0);
  if (received < 0) {
    if (errno != EAGAIN && errno != EINTR) peer_gone(errno);
    return;
  }
  net::Cork& cork = loop_.cork();
  cork.begin(this);
  process(buffer.first(static_cast<std::size_t>(received)));
  cork.end();
  flush();
}

void Connection::read_ready_tls() {
  auto buffer = loop_.loop.receive_buffer();
  net::TlsStatus status = net::TlsStatus::done;
  std::size_t filled = 0;
  do {
    // Records until the buffer is full or OpenSSL keeps nothing epoll cannot see (read ahead):
    // what is still in the socket wakes epoll again, as on the plain path.
    filled = 0;
    while (filled < buffer.size()) {
      const net::TlsResult result = tls_->read(buffer.subspan(filled));
      status = result.status;
      filled += result.bytes;
      if (status != net::TlsStatus::done || !tls_->has_buffered()) break;
    }
    if (filled > 0) {
      net::Cork& cork = loop_.cork();
      cork.begin(this);
      process(buffer.first(filled));
      cork.end();
    }
  } while (fd_ >= 0 && filled == buffer.size() && tls_->has_buffered());
  if (fd_ >= 0) tls_read_wants_write_ = status == net::TlsStatus::want_write;
  flush();  // also after a teardown while processing: it drops the cork
  if (fd_ < 0) return;
  if (status == net::TlsStatus::closed) return peer_gone(0);
  if (status != net::TlsStatus::failed) return;
  if (const int error = tls_->socket_error(); error != 0) return peer_gone(error);
  // A broken record or an alert is the server's fault: worth a word, unlike a reset socket.
  if (state_ == State::handshaking) return fail_attempt(tls_->error());
  if (state_ == State::open && profile_->handlers.on_error)
    profile_->handlers.on_error(*this, tls_->error());
  if (fd_ >= 0) peer_gone(EPROTO);
}

void Connection::process(std::span<std::uint8_t> data) {
  if (state_ == State::handshaking)
    process_handshake(data);
  else if (state_ == State::open || state_ == State::closing) {
    last_heard_ms_ = loop_.loop.now_ms();  // any bytes, even part of a frame, prove the server
    session_.feed(data, *this);
  }
}

// ---------------------------------------------------------------------------------------------
// The session's hooks (ws/session.hpp)

void Connection::session_buffers_idle() noexcept {
  net::release_if_large(buffers_.message);
  // The handler may have ended the connection (close() only marks it; compression_ stays until
  // the connection ends after this iteration, or a reconnect replaces it).
  if (compression_) compression_->message_delivered();
}

ws::InflateStatus Connection::session_inflate(std::span<const std::uint8_t> piece, bool first,
                                              bool last, std::uint64_t limit,
                                              std::span<const std::uint8_t>& message) {
  MessageCompression& compression = *compression_;  // the parser allows RSV1 only with it
  const ws::InflateStatus status = compression.inflate(piece, first, last, limit);
  const std::string_view inflated = compression.message();
  message = as_bytes(inflated);
  return status;
}

void Connection::on_session_message(ws::Opcode opcode, std::span<const std::uint8_t> message) {
  if (state_ != State::open) return;
  if (const auto& handler = profile_->handlers.on_message)
    handler(*this, as_text(message),
            opcode == ws::Opcode::text ? MessageKind::text : MessageKind::binary);
}

void Connection::on_session_ping(std::span<const std::uint8_t> payload) {
  if (state_ == State::open && profile_->handlers.on_ping)
    profile_->handlers.on_ping(*this, as_text(payload));
}

void Connection::on_session_pong(std::span<const std::uint8_t> payload) {
  if (state_ != State::open) return;
  // The heartbeat's answer: the next ping is due after ping_interval of silence from now, not at
  // the pong deadline the timer holds. Any other pong (RFC 6455 §5.5.3 allows unsolicited ones)
  // is only traffic, which heartbeat() counts when the deadline comes.
  if (ping_sent_ms_ != 0 && as_text(payload) == kHeartbeatPing) {
    ping_sent_ms_ = 0;
    loop_.loop.timers().schedule(*this, last_heard_ms_ + to_ms(profile_->options.ping_interval));
  }
  if (profile_->handlers.on_pong) profile_->handlers.on_pong(*this, as_text(payload));
}

void Connection::on_session_close(std::uint16_t code, std::string_view reason,
                                  bool answer_to_ours) {
  if (!failed_) {
    close_code_ = code;
    close_reason_.assign(reason);
  }
  // The answer to our close: the handshake is complete, and the client may close TCP.
  if (answer_to_ours) return teardown();
  // The session answered; the server closes TCP first (RFC 6455 §7.1.1), close_timeout bounds
  // the wait.
  enter_closing();
}

void Connection::on_session_failed(ws::ProtocolError error, bool close_sent) {
  if (!close_sent || state_ != State::open) return teardown();  // a garbled reply to our close
  // RFC 6455 §7.1.7: the session sent the close code the violated rule calls for.
  failed_ = true;
  close_code_ = ws::close_code_for(error);
  close_reason_.assign(ws::describe(error));
  // Reported while still open, as the handlers expect; close() from it finds our close sent.
  if (profile_->handlers.on_error)
    profile_->handlers.on_error(*this, "protocol error: " + close_reason_);
  if (state_ == State::open) enter_closing();
}

// ---------------------------------------------------------------------------------------------
// Frames out and the write path (net/outbox.hpp)

SendStatus Connection::send_message(std::string_view message, MessageKind kind,
                                    std::size_t fragments) {
  if (state_ != State::open || !session_.open()) return SendStatus::dropped;
  if (outbox_.blocked() && buffered_amount() + message.size() > profile_->options.max_backpressure)
    return SendStatus::dropped;
  const auto opcode = kind == MessageKind::text ? ws::Opcode::text : ws::Opcode::binary;
  // RFC 7692 §6.1: a compressed message says so with RSV1 on its first frame only, and its
  // fragments split the compressed payload (§7.2.1).
  const bool compress = compression_ && compression_->should_compress(message.size());
  if (compress) message = compression_->compress(message);
  if (fragments <= 1) {
    session_.send(*this, opcode, as_bytes(message), true, compress);
    return send_status();
  }
  // RFC 6455 §5.4: the first frame carries the opcode, the rest are continuations; FIN on the last.
  const std::size_t piece = message.size() / fragments;
  for (std::size_t i = 0; i < fragments; ++i) {
    const bool last = i + 1 == fragments;
    const std::string_view part =
        last ? message.substr(i * piece) : message.substr(i * piece, piece);
    session_.send(*this, i == 0 ? opcode : ws::Opcode::continuation, as_bytes(part), last,
                  compress && i == 0);
  }
  return send_status();
}

SendStatus Connection::send_ping(std::string_view payload) {
  if (state_ != State::open || !session_.open() || payload.size() > ws::kMaxControlPayload)
    return SendStatus::dropped;
  session_.send(*this, ws::Opcode::ping, as_bytes(payload));
  return send_status();
}

net::ByteBuffer& Connection::session_output() {
  bool flush_later = false;
  net::ByteBuffer& out = outbox_.output(loop_.cork(), this, &flush_later);
  if (flush_later) loop_.connections().schedule_flush(*this);
  return out;
}

void Connection::session_output_done() {
  // A burst inside one handler goes to the kernel at the cork limit, so that backpressure
  // applies. After a write error the bytes wait for the flush after processing to find it: no
  // event fires inside send().
  if (tls_)
    outbox_.after_output(loop_.cork(), this, net::TlsTransport{*tls_});
  else
    outbox_.after_output(loop_.cork(), this, net::SocketTransport{fd_});
}

void Connection::flush() {
  net::Cork& cork = loop_.cork();
  if (fd_ < 0) return outbox_.discard(cork);  // torn down while processing: nowhere to go
  const net::Outbox::Flushed flushed = tls_ ? outbox_.flush(cork, net::TlsTransport{*tls_})
                                            : outbox_.flush(cork, net::SocketTransport{fd_});
  if (flushed.error != 0) return peer_gone(flushed.error);
  update_interest();
  if (flushed.drained && state_ == State::open && profile_->handlers.on_drain)
    profile_->handlers.on_drain(*this);
}

void Connection::update_interest() {
  // Connecting waits for EPOLLOUT only; the TLS handshake for what OpenSSL asks.
  if (fd_ < 0 || state_ == State::connecting || state_ == State::securing) return;
  set_interest(outbox_.interest(tls_read_wants_write_));
}

void Connection::set_interest(std::uint32_t interest) {
  if (interest == interest_) return;
  interest_ = interest;
  loop_.loop.modify(fd_, interest_, this);
}

// ---------------------------------------------------------------------------------------------
// Closing (RFC 6455 §7) and the end of an attempt

void Connection::enter_closing() {
  state_ = State::closing;
  set_deadline(profile_->options.close_timeout);
}

void Connection::close_by_application(std::uint16_t code, std::string_view reason) {
  user_closed_ = true;
  switch (state_) {
    case State::open:
      session_.close(*this, code, reason);
      enter_closing();
      break;
    case State::waiting:
    case State::connecting:
    case State::securing:
    case State::handshaking:
      finish();  // never opened: give up quietly
      break;
    case State::closing:
    case State::done:
      break;
  }
}

void Connection::peer_gone(int error) {
  if (state_ == State::connecting || state_ == State::securing || state_ == State::handshaking) {
    return fail_attempt(error == 0 ? std::string("handshake: the server closed the connection")
                                   : std::string("handshake: ") + std::strerror(error));
  }
  if (state_ == State::open || state_ == State::closing) teardown();
}

void Connection::fail_attempt(std::string reason) {
  spdlog::debug("client {}: {}", profile_->url.host_header, reason);
  close_socket();
  state_ = State::waiting;
  if (profile_->handlers.on_error) profile_->handlers.on_error(*this, reason);
  after_attempt();
}

void Connection::teardown() {
  close_socket();
  state_ = State::waiting;
  const std::uint16_t code =
      session_.close_received() || failed_ ? close_code_ : ws::close_code::kAbnormal;
  if (profile_->handlers.on_close) profile_->handlers.on_close(*this, code, close_reason_);
  compression_.reset();  // zlib's windows are not kept while waiting to reconnect
  after_attempt();
}

void Connection::after_attempt() {
  if (state_ != State::waiting) return;  // the handler called close(): already done
  if (!reconnecting()) return finish();
  const std::uint64_t delay =
      std::max(reconnect_delay_ms(profile_->options.reconnect, attempts_, masks_.next_unit()),
               std::exchange(retry_after_ms_, 0));
  if (attempts_ < 64) ++attempts_;
  loop_.loop.timers().schedule(*this, net::EventLoop::monotonic_ms() + delay);
}

void Connection::close_socket() noexcept {
  net::TimerWheel::cancel(*this);
  if (tls_) {
    tls_->shutdown();
    tls_.reset();
  }
  tls_read_wants_write_ = false;
  if (fd_ >= 0) {
    loop_.loop.close(fd_);
    fd_ = -1;
  }
  interest_ = 0;
  handshake_.reset();
  outbox_.discard(loop_.cork());
  net::release_if_large(buffers_.message);
}

void Connection::finish() noexcept {
  close_socket();
  if (state_ == State::done) return;
  state_ = State::done;
  loop_.connections().retire(*this);
}

void Connection::abandon() noexcept {
  close_socket();
  state_ = State::done;
}

// ---------------------------------------------------------------------------------------------
// Timers: connect, handshake and close timeouts, reconnect delays, the heartbeat

void Connection::set_deadline(double seconds) {
  // The clock itself rather than the loop's per-iteration reading: connect() may run long after
  // the last iteration (or before the first), and a deadline must never come early.
  loop_.loop.timers().schedule(*this, net::EventLoop::monotonic_ms() + to_ms(seconds));
}

void Connection::on_timer(net::TimerNode& node) {
  static_cast<Connection&>(node).timer_fired();
}

void Connection::timer_fired() {
  switch (state_) {
    case State::waiting:
      return attempt();
    case State::connecting:
      if (!pending_error_.empty()) return fail_attempt(std::exchange(pending_error_, {}));
      return fail_attempt("connect: timed out");
    case State::securing:
      return fail_attempt("tls: handshake timed out");
    case State::handshaking:
      return fail_attempt("handshake: timed out waiting for the server's response");
    case State::closing:
      return teardown();  // the server never answered our close or never closed TCP
    case State::open:
      return heartbeat();  // the only timer of an open connection
    case State::done:
      return;
  }
}

void Connection::heartbeat() {
  const ClientOptions& options = profile_->options;
  if (ping_sent_ms_ != 0) {
    // This is the pong deadline. A read before the ping is at least ping_interval older than
    // it; a read after it carries a later (or the same) loop time.
    if (last_heard_ms_ < ping_sent_ms_) return heartbeat_failed();
    ping_sent_ms_ = 0;  // answered, by its pong or by anything else from the server
  }
  const std::uint64_t now = loop_.loop.now_ms();
  const std::uint64_t ping_at = last_heard_ms_ + to_ms(options.ping_interval);
  if (now < ping_at) return loop_.loop.timers().schedule(*this, ping_at);
  // Written like any other frame: behind a backlog, it still goes out in order.
  session_.send(*this, ws::Opcode::ping, as_bytes(kHeartbeatPing));
  ping_sent_ms_ = now;
  loop_.loop.timers().schedule(*this, now + to_ms(options.pong_timeout));
}

void Connection::heartbeat_failed() {
  // RFC 6455 §7.1.7: _Fail the WebSocket Connection_, without a close frame: a server that has
  // not answered for pong_timeout would not read it, and waiting close_timeout for its answer
  // would only delay the reconnect. The server sees the FIN, if it is still there.
  const std::string reason =
      fmt::format("heartbeat: no pong within {:g} s", profile_->options.pong_timeout);
  spdlog::debug("client {}: {}", profile_->url.host_header, reason);
  if (profile_->handlers.on_error) profile_->handlers.on_error(*this, reason);
  // on_error may have called close() (state closing): the server is still gone, end now.
  if (state_ == State::open || state_ == State::closing) teardown();
}

}  // namespace pylon::client
