// A client connection's attempts: the TCP connect, the TLS handshake (wss://) and the opening
// handshake (RFC 6455 §4.1). Part of client::Connection (connection.hpp).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <optional>

#include "client/backoff.hpp"
#include "client/connection.hpp"
#include "client/handshake.hpp"
#include "client/loop_state.hpp"
#include "ws/handshake.hpp"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24  // linux/in.h; glibc's netinet/in.h may lack it
#endif

namespace pylon::client {

using net::as_text;
using net::to_ms;

void Connection::start() {
  attempt();
}

void Connection::attempt() {
  const ClientProfile& profile = *profile_;
  // A fresh protocol state for every attempt.
  session_ = Session(profile.options.max_message_size);
  failed_ = false;
  close_code_ = ws::close_code::kAbnormal;
  close_reason_.clear();
  subprotocol_.clear();
  compression_.reset();
  buffers_ = {};

  // Failures found here are reported from the timer, so connect() never calls a handler before
  // it has returned the handle.
  auto defer_failure = [this](std::string_view what, int error) {
    pending_error_ = std::string(what) + ": " + std::strerror(error);
    close_socket();
    state_ = State::connecting;
    loop_.loop.timers().schedule(*this, loop_.loop.now_ms());
  };
  fd_ = ::socket(profile.destination.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return defer_failure("socket", errno);
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (profile.source_length > 0) {
    // Port 0 with IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect() for the full 4-tuple,
    // so one source address is not limited to one ephemeral range across all destinations.
    if (profile.source.ss_family == AF_INET)
      setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&profile.source), profile.source_length) != 0)
      return defer_failure("bind " + profile.options.source_address, errno);
  }
  state_ = State::connecting;
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&profile.destination),
                profile.destination_length) == 0) {
    loop_.loop.add(fd_, 0, this);
    interest_ = 0;
    connected();
    return;
  }
  if (errno != EINPROGRESS) return defer_failure("connect", errno);
  interest_ = EPOLLOUT;
  loop_.loop.add(fd_, interest_, this);
  set_deadline(profile.options.connect_timeout);
}

void Connection::connected() {
  // handshake_timeout covers the TLS handshake and the upgrade together.
  set_deadline(profile_->options.handshake_timeout);
  if (profile_->tls == nullptr) return send_request();
  try {
    tls_ = net::TlsSession::connect(profile_->tls->native(), fd_, profile_->server_name,
                                    profile_->tls->verify());
  } catch (const std::bad_alloc&) {
    return fail_attempt("tls: no memory for the connection");
  }
  state_ = State::securing;
  continue_tls_handshake();
}

void Connection::continue_tls_handshake() {
  const net::TlsResult result = tls_->handshake();
  switch (result.status) {
    case net::TlsStatus::done:
      return send_request();
    case net::TlsStatus::want_read:
      return set_interest(EPOLLIN);
    case net::TlsStatus::want_write:
      return set_interest(EPOLLOUT);
    case net::TlsStatus::closed:
    case net::TlsStatus::failed:
      return fail_attempt(tls_->error());
  }
}

void Connection::send_request() {
  const ClientProfile& profile = *profile_;
  handshake_ = std::make_unique<Handshake>();
  handshake_->key = ws::generate_client_key();
  std::string request;  // once per connection attempt: allocating here is fine
  const CompressionOptions& compression = profile.options.compression;
  write_handshake_request(
      request, profile.url, handshake_->key, profile.options.subprotocols, profile.options.headers,
      compression.enabled ? ws::deflate_offer(deflate_client_options(compression)) : std::string());
  state_ = State::handshaking;
  session_output().append(request);
  flush();
}

void Connection::process_handshake(std::span<std::uint8_t> data) {
  Handshake& handshake = *handshake_;
  // Parse straight from the receive buffer; copy only when the head is incomplete.
  const bool from_receive_buffer = handshake.buffer.empty();
  if (!from_receive_buffer) handshake.buffer.append(as_text(data));
  const std::string_view input =
      from_receive_buffer ? as_text(data) : std::string_view(handshake.buffer);
  const http::ParseResult result = handshake.parser.parse(input, handshake.response);
  if (result.status == http::ParseStatus::need_more) {
    if (from_receive_buffer) handshake.buffer.assign(input);
    return;
  }
  if (result.status == http::ParseStatus::error)
    return fail_attempt("handshake: malformed response: " + std::string(result.error_reason));
  std::string_view chosen;
  const CompressionOptions& compression = profile_->options.compression;
  const ws::DeflateClientOptions deflate = deflate_client_options(compression);
  std::optional<ws::DeflateParams> agreed;
  std::string extensions;
  std::string error = check_handshake_response(
      handshake.response, handshake.key, profile_->options.subprotocols, chosen,
      compression.enabled ? &deflate : nullptr, &agreed, &extensions);
  if (!error.empty()) {
    const int status = handshake.response.status;
    if (const http::Header* header = handshake.response.find("Retry-After");
        header != nullptr && (status == 429 || status == 503))
      retry_after_ms_ = std::uint64_t{parse_retry_after(header->value).value_or(0)} * 1000;
    return fail_attempt(std::move(error));
  }

  subprotocol_ = chosen;
  if (agreed) {
    // RFC 7692 §6: RSV1 now marks a compressed message (no frame has been parsed yet).
    try {
      compression_ = std::make_unique<MessageCompression>(compression, *agreed, extensions);
    } catch (const std::bad_alloc&) {
      return fail_attempt("handshake: no memory for permessage-deflate");
    }
    session_.enable_compression();
  }
  // Frames the server sent right behind its 101 are in the same buffer.
  std::string leftover(input.substr(result.consumed));
  handshake_.reset();
  state_ = State::open;
  attempts_ = 0;
  last_heard_ms_ = loop_.loop.now_ms();
  ping_sent_ms_ = 0;
  if (profile_->options.ping_interval > 0)
    loop_.loop.timers().schedule(*this, last_heard_ms_ + to_ms(profile_->options.ping_interval));
  else
    net::TimerWheel::cancel(*this);
  update_interest();
  if (profile_->handlers.on_open) profile_->handlers.on_open(*this);
  if (!leftover.empty() && (state_ == State::open || state_ == State::closing))
    session_.feed(std::span(reinterpret_cast<std::uint8_t*>(leftover.data()), leftover.size()),
                  *this);
}

}  // namespace pylon::client
