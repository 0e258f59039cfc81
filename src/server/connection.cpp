#include "server/connection.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <new>


#include "http/response_writer.hpp"
#include "net/buffer.hpp"
#include "obs/log.hpp"
#include "pubsub/topic_name.hpp"
#include "server/worker.hpp"
#include "ws/error.hpp"
#include "ws/handshake.hpp"
#include "ws/utf8.hpp"

namespace pylon::detail {
namespace {

// Reads stop while this much waits for the kernel: a client that sends faster than it reads
// is slowed down by TCP instead of growing our memory (echo, request/response protocols).
constexpr std::size_t kReadPauseBytes = 256 * 1024;
// How long we wait for the peer's close frame / EOF once the closing handshake started.
constexpr std::uint64_t kCloseTimeoutMs = 3000;

std::uint64_t to_ms(double seconds) { return static_cast<std::uint64_t>(seconds * 1000); }

// Precise time for latencies; the loop's cached clock is only good to a few milliseconds.
std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::string_view as_text(std::span<const std::uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace

Connection::Connection(Worker& worker, int fd, const net::PeerAddress& peer, bool internal)
    : worker_(worker),
      http_(new (worker.http_state_pool().allocate()) HttpState(http::Limits{})),
      parser_(ws::Role::server, worker.server().config.max_message_size),
      peer_(peer),
      fd_(fd),
      internal_(internal) {
  fire = &Connection::on_timer;
  interest_ = EPOLLIN | EPOLLRDHUP;
  worker_.loop().add(fd_, interest_, this);
  deadline_ms_ = worker_.now_ms() + to_ms(worker_.server().config.handshake_timeout);
  reschedule_timer();
}

std::string_view Connection::remote_address() const {
  thread_local std::string text;
  text = peer_.to_string();
  return text;
}

Connection::~Connection() {
  release_http_state();
  if (user_data_ != nullptr) {
    const ErasedBehavior& behavior = route_->behavior;
    behavior.destroy(user_data_);
    ::operator delete(user_data_, std::align_val_t(behavior.user_data_align));
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

void Connection::on_io(std::uint32_t events) {
  if (state_ == State::closed) return;
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
  auto buffer = worker_.loop().receive_buffer();
  const ssize_t received = net::read_some(fd_, buffer);
  if (received == 0) {
    peer_gone();
    return;
  }
  if (received < 0) {
    if (errno != EAGAIN && errno != EINTR) peer_gone();
    return;
  }
  worker_.cork(*this);
  process(buffer.first(static_cast<std::size_t>(received)));
  worker_.uncork();
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
      if (state_ == State::open) last_activity_ms_ = worker_.now_ms();
      if (close_received_) break;  // RFC 6455 §5.5.1: nothing after the peer's close is processed
      if (const auto error = parser_.feed(data, *this); error != ws::ProtocolError::none) {
        if (state_ == State::open) fail(error);
        // Bytes after the peer's close are ignored; a garbled reply to our close ends it.
        else if (state_ == State::closing && !close_received_) destroy();
      }
      break;
    case State::closed:
      break;
  }
}

void Connection::process_http(std::span<std::uint8_t> data) {
  HttpState& http = *http_;
  // Parse straight from the receive buffer; copy only when the request is incomplete.
  const bool from_receive_buffer = http.buffer.empty();
  if (!from_receive_buffer) http.buffer.append(as_text(data));
  std::string_view input = from_receive_buffer ? as_text(data) : std::string_view(http.buffer);
  std::size_t offset = 0;
  while (state_ == State::http) {
    const std::string_view rest = input.substr(offset);
    if (rest.empty()) break;
    // The parsed views are needed only while the request is handled, synchronously: one Request
    // per loop (2 KiB of header slots) serves every connection's handshake.
    http::Request& request = worker_.request_scratch();
    const http::ParseResult result = http.parser.parse(rest, request);
    if (result.status == http::ParseStatus::need_more) {
      if (from_receive_buffer || offset > 0) {
        std::string kept(rest);
        http.buffer.swap(kept);
      }
      return;
    }
    if (result.status == http::ParseStatus::error) {
      respond_error(HandshakeFailure::bad_request, result.error_status, result.error_reason);
      return;
    }
    offset += result.consumed;
    ++http.requests_served;
    http.parser.reset();
    const bool stay = handle_request(request);
    if (state_ == State::open) {
      // Frames the client sent right behind its handshake are in the same buffer.
      std::string leftover(input.substr(offset));
      release_http_state();
      if (!leftover.empty()) {
        auto bytes = std::span(reinterpret_cast<std::uint8_t*>(leftover.data()), leftover.size());
        process(bytes);
      }
      return;
    }
    if (!stay) return;
    deadline_ms_ = worker_.now_ms() + to_ms(worker_.server().config.handshake_timeout);
    reschedule_timer();
  }
  if (http_ != nullptr) net::release_if_large(http_->buffer);
}

void Connection::release_http_state() noexcept {
  if (http_ == nullptr) return;
  http_->~HttpState();
  worker_.http_state_pool().deallocate(http_);
  http_ = nullptr;
}

// ---------------------------------------------------------------------------------------------
// HTTP requests and the opening handshake (RFC 6455 §4.2)

namespace {

// The public view of a parsed request (include/pylon/app.hpp).
class RequestView final : public HttpRequest {
 public:
  explicit RequestView(const http::Request& request) : request_(request) {}
  std::string_view method() const noexcept override { return request_.method; }
  std::string_view path() const noexcept override { return request_.path; }
  std::string_view query() const noexcept override { return request_.query; }
  std::string_view body() const noexcept override { return request_.body; }
  std::string_view header(std::string_view name) const noexcept override {
    const http::Header* header = request_.find(name);
    return header == nullptr ? std::string_view() : header->value;
  }

 private:
  const http::Request& request_;
};

}  // namespace

bool Connection::handle_request(const http::Request& request) {
  const Server& server = worker_.server();
  const Route* route = server.find_route(request.path, request.method, request.has_token("Upgrade", "websocket"));
  if (route != nullptr && route->internal != internal_) route = nullptr;
  if (route == nullptr) {
    // Only a failed upgrade counts as a handshake failure; a browser's favicon.ico does not.
    if (request.find("Upgrade") != nullptr) server.counters->handshake_failed(HandshakeFailure::not_found);
    if (const Route* other = server.find_route(request.path); other != nullptr && other->internal == internal_) {
      const std::string allow = other->method == "GET" ? "GET, HEAD" : other->method;
      const http::Header allow_header[] = {{"Allow", allow}};
      respond(405, "method not allowed\n", request.keep_alive(), allow_header);
    } else {
      respond(404, "not found\n", request.keep_alive());
    }
    return state_ == State::http;
  }
  if (route->websocket) {
    upgrade(*route, request);
    return false;
  }
  const HttpResponse response = route->handler(RequestView(request));
  std::array<http::Header, 6> headers{};
  std::size_t count = 0;
  for (const auto& [name, value] : response.headers)
    if (count < headers.size()) headers[count++] = {name, value};
  respond(response.status, response.body, request.keep_alive() && !worker_.draining(),
          std::span(headers.data(), count), response.content_type, request.method == "HEAD");
  return state_ == State::http;
}

void Connection::upgrade(const Route& route, const http::Request& request) {
  const Config& config = worker_.server().config;
  if (request.method != "GET") {
    const http::Header allow[] = {{"Allow", "GET"}};
    return respond_error(HandshakeFailure::method, 405, "a WebSocket handshake is a GET request", allow);
  }
  // RFC 6455 §4.2.1: Upgrade and Connection are token lists, compared case-insensitively, and
  // may appear more than once.
  const http::Header upgrade_required[] = {{"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"}};
  if (!request.has_token("Upgrade", "websocket") || !request.has_token("Connection", "upgrade"))
    return respond_error(HandshakeFailure::not_websocket, 426, "this endpoint speaks WebSocket: Upgrade: websocket required",
                         upgrade_required);
  if (request.version_minor < 1)
    return respond_error(HandshakeFailure::bad_request, 400, "a WebSocket handshake needs HTTP/1.1");
  const http::Header* version = request.find("Sec-WebSocket-Version");
  if (version == nullptr || version->value != "13" || request.count("Sec-WebSocket-Version") != 1)
    return respond_error(HandshakeFailure::bad_version, 426, "unsupported Sec-WebSocket-Version: only 13", upgrade_required);
  const http::Header* key = request.find("Sec-WebSocket-Key");
  if (key == nullptr || request.count("Sec-WebSocket-Key") != 1 || !ws::is_valid_client_key(key->value))
    return respond_error(HandshakeFailure::bad_key, 400, "missing or invalid Sec-WebSocket-Key");
  if (!config.allowed_origins.empty()) {
    // Browsers always send Origin; its absence means a non-browser client, which CSWSH cannot use.
    if (const http::Header* origin = request.find("Origin"); origin != nullptr) {
      const auto& allowed = config.allowed_origins;
      if (std::find(allowed.begin(), allowed.end(), origin->value) == allowed.end())
        return respond_error(HandshakeFailure::origin, 403, "origin not allowed");
    }
  }
  Server& server = worker_.server();
  if (worker_.draining() || server.draining.load(std::memory_order_relaxed))
    return respond_error(HandshakeFailure::draining, 503, "server is shutting down");
  if (server.open_websockets.fetch_add(1, std::memory_order_relaxed) >= config.max_connections) {
    server.open_websockets.fetch_sub(1, std::memory_order_relaxed);
    return respond_error(HandshakeFailure::limit, 503, "connection limit reached");
  }

  route_ = &route;
  worker_.websocket_opened();
  route.metrics->handshakes.add();
  route.metrics->connections.add(1);
  char accept[ws::kAcceptKeySize];
  ws::compute_accept_key(key->value, accept);
  std::array<http::Header, 5> headers = {{{"Upgrade", "websocket"},
                                          {"Connection", "Upgrade"},
                                          {"Sec-WebSocket-Accept", std::string_view(accept, sizeof accept)}}};
  std::size_t header_count = 3;
  if (const http::Header* offered = request.find("Sec-WebSocket-Protocol"); offered != nullptr) {
    const std::string_view chosen = ws::select_subprotocol(offered->value, route.behavior.subprotocols);
    // Keep the index of the route's own copy: the view points into the request buffer.
    const auto& subprotocols = route.behavior.subprotocols;
    for (std::size_t i = 0; i < subprotocols.size(); ++i)
      if (!chosen.empty() && subprotocols[i] == chosen) subprotocol_ = static_cast<std::uint8_t>(i + 1);
    if (subprotocol_ > 0) headers[header_count++] = {"Sec-WebSocket-Protocol", subprotocol()};
  }
  std::string extensions;
  negotiate_compression(request, extensions);
  if (!extensions.empty()) headers[header_count++] = {"Sec-WebSocket-Extensions", extensions};
  std::string response;
  http::write_response(response, 101, std::span(headers.data(), header_count), {}, true);
  write_bytes(response);

  state_ = State::open;
  const std::uint64_t now = worker_.now_ms();
  last_activity_ms_ = now;
  deadline_ms_ = now + to_ms(config.ping_interval);  // the first ping
  if (route.behavior.user_data_size > 0) {
    user_data_ = ::operator new(route.behavior.user_data_size, std::align_val_t(route.behavior.user_data_align));
    route.behavior.construct(user_data_);
  }
  reschedule_timer();
  if (obs::log_enabled(obs::LogLevel::info)) {
    access_ = std::make_unique<AccessLog>();
    access_->client_ip = real_client_ip(request);
    access_->path = route.path;
    access_->opened_ms = now;
    const http::Header* agent = request.find("User-Agent");
    obs::log(obs::LogLevel::info, "websocket open",
             {{"remote", remote_address()},
              {"client_ip", std::string_view(access_->client_ip)},
              {"path", access_->path},
              {"user_agent", agent != nullptr ? agent->value : std::string_view()},
              {"subprotocol", subprotocol()}});
  }
  if (route.behavior.open) route.behavior.open(*this);
}

void Connection::respond(int status, std::string_view body, bool keep_alive,
                         std::span<const http::Header> extra_headers, std::string_view content_type,
                         bool head_only) {
  std::array<http::Header, 8> headers{};
  std::size_t count = 0;
  headers[count++] = {"Content-Type", content_type};
  for (const auto& header : extra_headers) headers[count++] = header;
  std::string response;  // HTTP answers are off the WebSocket hot path: one allocation is fine
  http::write_response(response, status, std::span(headers.data(), count), body, keep_alive);
  // RFC 9110 §9.3.2: HEAD gets the GET's headers (Content-Length included), without the body.
  if (head_only) response.resize(response.size() - body.size());
  write_bytes(response);
  if (!keep_alive) {
    enter_closing();
    shutdown_after_flush_ = true;
  }
}

void Connection::respond_error(HandshakeFailure failure, int status, std::string_view reason,
                               std::span<const http::Header> extra_headers) {
  worker_.server().counters->handshake_failed(failure);
  // A flood of bad clients must not fill the disk: these lines are rate-limited.
  static obs::LogRateLimit limit(10);
  limit.log(obs::LogLevel::warn, "request refused",
            {{"remote", remote_address()}, {"status", std::int64_t{status}}, {"reason", reason}});
  std::string body(reason);
  body += '\n';
  respond(status, body, false, extra_headers);
}

// ---------------------------------------------------------------------------------------------
// Frames in (ws::FrameParser handler)

void Connection::on_message_data(ws::Opcode opcode, std::span<const std::uint8_t> chunk, bool first,
                                 bool last) {
  if (state_ != State::open) return;  // after our close, data is read but not delivered
  const bool compressed = parser_.message_compressed();
  if (first && last) {  // the common case: no copy
    if (compressed) return receive_compressed(opcode, chunk);
    return deliver(opcode, chunk);
  }
  if (compressed) return receive_compressed_piece(opcode, chunk, last);
  std::string& message = spill().message;
  message.append(as_text(chunk));
  if (!last) return;
  deliver(opcode, std::span(reinterpret_cast<const std::uint8_t*>(message.data()), message.size()));
  net::release_if_large(spill_->message);  // the spill outlives the delivery (destroy() keeps it)
  release_spill_if_empty();
}

void Connection::on_control_frame_data(ws::Opcode opcode, std::span<const std::uint8_t> chunk,
                                       bool first, bool last) {
  if (first && last) return handle_control(opcode, chunk);
  std::string& control = spill().control;
  control.append(as_text(chunk));
  if (!last) return;
  handle_control(opcode, std::span(reinterpret_cast<const std::uint8_t*>(control.data()), control.size()));
  spill_->control.clear();
  release_spill_if_empty();
}

void Connection::deliver(ws::Opcode opcode, std::span<const std::uint8_t> message) {
  const MessageKind kind = opcode == ws::Opcode::text ? MessageKind::text : MessageKind::binary;
  const RouteMetrics& metrics = *route_->metrics;
  metrics.messages_received[static_cast<std::size_t>(kind)].add();
  metrics.bytes_received[static_cast<std::size_t>(kind)].add(message.size());
  if (access_) {
    ++access_->messages_in;
    access_->bytes_in += message.size();
  }
  const auto& handler = route_->behavior.message;
  if (!handler) return;
  const std::uint64_t started = monotonic_ns();
  handler(*this, as_text(message), kind);
  metrics.handling.observe(static_cast<double>(monotonic_ns() - started) * 1e-9);
}

void Connection::handle_control(ws::Opcode opcode, std::span<const std::uint8_t> payload) {
  switch (opcode) {
    case ws::Opcode::ping:
      // RFC 6455 §5.5.2: answer with a pong carrying the same application data.
      if (state_ == State::open) send_frame(ws::Opcode::pong, payload);
      break;
    case ws::Opcode::pong:
      // RFC 6455 §5.5.3: an unsolicited pong is allowed and needs no answer; any pong proves
      // the peer alive.
      if (awaiting_pong_ && payload.size() == sizeof(std::uint64_t)) {
        std::uint64_t sent_ns = 0;
        std::memcpy(&sent_ns, payload.data(), sizeof sent_ns);
        const std::uint64_t now_ns = monotonic_ns();
        if (sent_ns <= now_ns && now_ns - sent_ns < 60'000'000'000ull)  // ours, not a forgery
          worker_.server().counters->ping_rtt.observe(static_cast<double>(now_ns - sent_ns) * 1e-9);
      }
      if (awaiting_pong_) {
        // deadline_ms_ was the pong deadline: the next ping is one interval after the last.
        const Config& config = worker_.server().config;
        deadline_ms_ = deadline_ms_ - to_ms(config.pong_timeout) + to_ms(config.ping_interval);
        awaiting_pong_ = false;
        reschedule_timer();  // the wheel still holds the pong deadline
      }
      break;
    case ws::Opcode::close: {
      if (close_received_) return;  // RFC 6455 §5.5.1: nothing after the first close counts
      ws::ClosePayload close;
      ws::parse_close_payload(payload, close);  // the parser has already validated it
      close_received_ = true;
      if (close_sent_) {  // the answer to our close: the handshake is complete
        destroy();
        return;
      }
      // RFC 6455 §5.5.1: answer with a close, echoing the status code.
      if (close.code == ws::close_code::kNoStatus) send_frame(ws::Opcode::close, {});
      else send_close(close.code, {});
      enter_closing();
      shutdown_after_flush_ = true;
      notify_close(close.code, close.reason);
      break;
    }
    default:
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Frames out and the write path

SendStatus Connection::send_message(std::string_view message, MessageKind kind) {
  if (state_ != State::open || close_sent_) return SendStatus::dropped;
  const RouteMetrics& metrics = *route_->metrics;
  if (write_blocked_ && buffered_amount() + message.size() > worker_.server().config.max_backpressure) {
    metrics.backpressure_drops.add();
    return SendStatus::dropped;
  }
  metrics.messages_sent[static_cast<std::size_t>(kind)].add();
  metrics.bytes_sent[static_cast<std::size_t>(kind)].add(message.size());
  count_out(1, message.size());
  const auto opcode = kind == MessageKind::text ? ws::Opcode::text : ws::Opcode::binary;
  const auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(message.data()), message.size());
  if (!deflate_ || message.size() < route_->compression.threshold) return send_frame(opcode, bytes);
  // RFC 7692 §7.2.1: compress, drop the 00 00 ff ff tail (the codec does), set RSV1.
  std::string& compressed = worker_.deflate_buffer();
  compressed.clear();
  ws::MessageDeflater& deflater =
      dedicated_ ? dedicated_->deflater : worker_.shared_deflater(deflate_params_.server_max_window_bits);
  deflater.compress(bytes, compressed);
  const ServerMetrics& counters = *worker_.server().counters;
  counters.compressions.add();
  counters.compressed_bytes[1].add(compressed.size());
  counters.uncompressed_bytes[1].add(message.size());
  return send_frame(opcode, std::span(reinterpret_cast<const std::uint8_t*>(compressed.data()), compressed.size()), true);
}

void Connection::negotiate_compression(const http::Request& request, std::string& response_value) {
  const CompressionSettings& settings = route_->compression;
  if (settings.mode == CompressionMode::off || request.find("Sec-WebSocket-Extensions") == nullptr) return;
  const std::string offers = request.join("Sec-WebSocket-Extensions");
  ws::DeflateServerPolicy policy;
  policy.context_takeover = settings.mode == CompressionMode::dedicated;
  policy.max_window_bits = static_cast<std::uint8_t>(settings.window_bits);
  const auto params = ws::negotiate_deflate(offers, policy, response_value);
  if (!params) return;
  deflate_ = true;
  deflate_params_ = *params;
  parser_ = ws::FrameParser<Connection>(ws::Role::server, worker_.server().config.max_message_size, true);
  if (policy.context_takeover)
    dedicated_ = std::make_unique<DedicatedDeflate>(DedicatedDeflate{
        ws::MessageDeflater(params->server_max_window_bits, static_cast<int>(settings.memory_level),
                            params->server_no_context_takeover),
        ws::MessageInflater(params->client_max_window_bits, params->client_no_context_takeover)});
}

void Connection::receive_compressed(ws::Opcode opcode, std::span<const std::uint8_t> compressed) {
  // Shared mode agreed client_no_context_takeover, so one decompressor per loop serves everyone.
  ws::MessageInflater& inflater = dedicated_ ? dedicated_->inflater : worker_.shared_inflater();
  std::string& message = worker_.inflate_buffer();
  message.clear();
  // The inflated size counts against max_message_size while inflating: a bomb stops at the limit.
  const auto status = inflater.inflate(compressed, true, worker_.server().config.max_message_size, message);
  const auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(message.data()), message.size());
  if (check_inflated(status, opcode, bytes, compressed.size())) deliver(opcode, bytes);
}

void Connection::receive_compressed_piece(ws::Opcode opcode, std::span<const std::uint8_t> compressed, bool last) {
  Spill& spill = this->spill();
  if (!dedicated_ && !spill.inflater) spill.inflater = worker_.borrow_inflater();
  ws::MessageInflater& inflater = dedicated_ ? dedicated_->inflater : *spill.inflater;
  const auto status = inflater.inflate(compressed, last, worker_.server().config.max_message_size, spill.message);
  spill.compressed_size += compressed.size();
  if (status == ws::MessageInflater::Status::ok && !last) return;
  const std::size_t compressed_size = spill.compressed_size;
  spill.compressed_size = 0;
  if (spill.inflater) worker_.return_inflater(std::move(spill.inflater));
  const auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(spill.message.data()), spill.message.size());
  if (check_inflated(status, opcode, bytes, compressed_size)) deliver(opcode, bytes);
  net::release_if_large(spill_->message);  // the spill outlives the delivery (destroy() keeps it)
  release_spill_if_empty();
}

bool Connection::check_inflated(ws::MessageInflater::Status status, ws::Opcode opcode,
                                std::span<const std::uint8_t> message, std::size_t compressed_size) {
  if (status == ws::MessageInflater::Status::too_large) {
    fail(ws::ProtocolError::message_too_large);
    return false;
  }
  if (status == ws::MessageInflater::Status::corrupt) {
    fail(ws::ProtocolError::invalid_compressed_data);
    return false;
  }
  // RFC 7692 §8: the text is UTF-8 after decompression (the parser could not check it).
  if (opcode == ws::Opcode::text && !ws::is_valid_utf8(message)) {
    fail(ws::ProtocolError::invalid_utf8);
    return false;
  }
  const ServerMetrics& counters = *worker_.server().counters;
  counters.compressed_bytes[0].add(compressed_size);
  counters.uncompressed_bytes[0].add(message.size());
  return true;
}

const std::string& Connection::frame_for(const pubsub::Message& message) {
  if (!deflate_ || message.payload_size < route_->compression.threshold) return message.frame;
  // Compressed once per (message, window size) and shared by every subscriber that agreed to it.
  const std::uint8_t bits = deflate_params_.server_max_window_bits;
  bool created = false;
  const std::string& frame = message.compressed_frame(bits, worker_.shared_deflater(bits), created);
  if (created) worker_.server().counters->compressions.add();
  return frame;
}

SendStatus Connection::send_frame(ws::Opcode opcode, std::span<const std::uint8_t> payload, bool rsv1) {
  std::uint8_t header[ws::kMaxFrameHeaderSize];
  const std::size_t header_size = ws::write_frame_header(header, opcode, payload.size(), true, rsv1);
  write_bytes(std::string_view(reinterpret_cast<const char*>(header), header_size));
  write_bytes(as_text(payload));
  return write_blocked_ ? SendStatus::queued : SendStatus::sent;
}

void Connection::write_bytes(std::string_view bytes) {
  // Order matters: once something waits in the backlog, everything goes behind it.
  if (worker_.is_corked(*this) && buffered_amount() == 0) {
    worker_.cork_buffer().append(bytes);
    return;
  }
  spill().pending.append(bytes);
  if (!write_blocked_) worker_.schedule_flush(*this);
}

void Connection::send_close(std::uint16_t code, std::string_view reason) {
  std::uint8_t payload[ws::kMaxControlPayload];
  const std::size_t size = ws::write_close_payload(payload, code, reason);
  send_frame(ws::Opcode::close, std::span(payload, size));
}

void Connection::flush() {
  if (state_ == State::closed) return;
  ssize_t written = 0;
  std::string& cork = worker_.cork_buffer();
  if (!cork.empty()) {
    // Right after this connection's processing the cork holds its bytes alone, and nothing was
    // pending before them (write_bytes queues everything behind an existing backlog).
    written = net::send_some(fd_, cork.data(), cork.size());
    const std::size_t taken = written > 0 ? static_cast<std::size_t>(written) : 0;
    if (taken < cork.size()) spill().pending.append(cork, taken, std::string::npos);
    cork.clear();
    if (cork.capacity() > 2 * net::EventLoop::kReceiveBufferSize) {
      std::string().swap(cork);
      cork.reserve(net::EventLoop::kReceiveBufferSize);
    }
  } else if (buffered_amount() > 0) {
    Spill& spill = *spill_;
    written = net::send_some(fd_, spill.pending.data() + spill.pending_offset, buffered_amount());
    if (written > 0) spill.pending_offset += static_cast<std::size_t>(written);
  }
  if (written < 0 && errno != EAGAIN && errno != EINTR) return peer_gone();
  const bool was_blocked = write_blocked_;
  write_blocked_ = buffered_amount() > 0;
  if (!write_blocked_) {
    if (spill_) {
      spill_->pending_offset = 0;
      net::release_if_large(spill_->pending);
    }
    if (shutdown_after_flush_) {
      ::shutdown(fd_, SHUT_WR);  // FIN right behind our last bytes (close frame or error response)
      shutdown_after_flush_ = false;
    }
  }
  update_interest();
  report_backlog();
  release_spill_if_empty();
  if (was_blocked && !write_blocked_ && state_ == State::open && route_->behavior.drain)
    route_->behavior.drain(*this);
}

void Connection::report_backlog() noexcept {
  if (!spill_) return;
  const std::size_t backlog = buffered_amount();
  if (backlog == spill_->reported_backlog) return;
  worker_.server().counters->send_backlog.add(static_cast<std::int64_t>(backlog) -
                                              static_cast<std::int64_t>(spill_->reported_backlog));
  spill_->reported_backlog = backlog;
}

void Connection::update_interest() {
  static_assert((EPOLLIN | EPOLLOUT | EPOLLRDHUP) <= 0xffff, "interest_ holds these flags in 16 bits");
  std::uint16_t interest = EPOLLRDHUP;
  if (buffered_amount() < kReadPauseBytes) interest |= EPOLLIN;
  if (write_blocked_) interest |= EPOLLOUT;
  if (interest == interest_) return;
  interest_ = interest;
  worker_.loop().modify(fd_, interest_, this);
}

// ---------------------------------------------------------------------------------------------
// Closing (RFC 6455 §7)

void Connection::fail(ws::ProtocolError error) {
  // RFC 6455 §7.1.7: _Fail the WebSocket Connection_ with the code the violated rule calls for.
  static obs::LogRateLimit limit(10);
  limit.log(obs::LogLevel::warn, "protocol error",
            {{"remote", remote_address()}, {"error", ws::name(error)},
             {"code", std::uint64_t{ws::close_code_for(error)}}});
  worker_.server().counters->protocol_error(error);
  begin_close(ws::close_code_for(error), ws::describe(error));
}

void Connection::begin_close(std::uint16_t code, std::string_view reason) {
  if (state_ != State::open) return;
  send_close(code, reason);
  close_sent_ = true;
  enter_closing();
  shutdown_after_flush_ = true;
  notify_close(code, reason);
}

void Connection::close_by_application(std::uint16_t code, std::string_view reason) {
  begin_close(code, reason);
}

bool Connection::start_drain_close() {
  if (state_ != State::open) return false;
  begin_close(ws::close_code::kGoingAway, "server shutting down");
  return true;
}

void Connection::enter_closing() noexcept {
  state_ = State::closing;
  unsubscribe_all();  // a closing connection takes no more deliveries; its topic counts drop now
  // A close queued behind a backlog (a slow consumer) reaches the peer only once it reads
  // again: give it as long as the heartbeat gives a silent peer before calling it dead. Its
  // memory stays bounded by max_backpressure meanwhile.
  const Config& config = worker_.server().config;
  std::uint64_t timeout = kCloseTimeoutMs;
  if (write_blocked_) timeout = std::max(timeout, to_ms(config.ping_interval + config.pong_timeout));
  deadline_ms_ = worker_.now_ms() + timeout;
  reschedule_timer();
}

void Connection::notify_close(std::uint16_t code, std::string_view reason) {
  if (route_ == nullptr) return;
  // Whoever sent the first close frame closed; a dropped connection (1006) is the client's doing.
  const CloseSide side = close_sent_ && !close_received_ ? CloseSide::server : CloseSide::client;
  worker_.server().counters->closed(code, side);
  if (access_) {
    obs::log(obs::LogLevel::info, "websocket close",
             {{"remote", remote_address()},
              {"client_ip", std::string_view(access_->client_ip)},
              {"path", access_->path},
              {"duration_s", static_cast<double>(worker_.now_ms() - access_->opened_ms) / 1000.0},
              {"messages_in", access_->messages_in},
              {"messages_out", access_->messages_out},
              {"bytes_in", access_->bytes_in},
              {"bytes_out", access_->bytes_out},
              {"code", std::uint64_t{code}},
              {"side", std::string_view(side == CloseSide::server ? "server" : "client")}});
    access_.reset();
  }
  if (route_->behavior.close) route_->behavior.close(*this, code, reason);
}

std::string Connection::real_client_ip(const http::Request& request) const {
  // Headers that name the client are believed only from a trusted proxy: anyone else could
  // write them. X-Real-IP is what a proxy like Nginx sets to the address it saw; otherwise the
  // rightmost X-Forwarded-For entry that is not itself a trusted proxy.
  const std::string peer = peer_.host();
  const auto& trusted = worker_.server().trusted_proxies;
  const auto is_trusted = [&trusted](std::string_view ip) {
    return std::any_of(trusted.begin(), trusted.end(), [ip](const net::Cidr& range) { return range.contains(ip); });
  };
  if (trusted.empty() || !is_trusted(peer)) return peer;
  const auto trim = [](std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
  };
  if (const http::Header* real_ip = request.find("X-Real-IP"); real_ip != nullptr && !trim(real_ip->value).empty())
    return std::string(trim(real_ip->value));
  if (const http::Header* forwarded = request.find("X-Forwarded-For")) {
    std::string_view list = forwarded->value;
    while (!list.empty()) {
      const auto comma = list.rfind(',');
      const std::string_view entry = trim(comma == std::string_view::npos ? list : list.substr(comma + 1));
      if (!entry.empty() && !is_trusted(entry)) return std::string(entry);
      if (comma == std::string_view::npos) break;
      list = list.substr(0, comma);
    }
  }
  return peer;
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
  if (is_websocket()) {
    worker_.server().open_websockets.fetch_sub(1, std::memory_order_relaxed);
    worker_.websocket_closed();
    route_->metrics->connections.add(-1);
  }
  // The spill itself stays until the object is freed: a handler may still be reading a message
  // that lives in it.
  if (spill_) {
    worker_.server().counters->send_backlog.add(-static_cast<std::int64_t>(spill_->reported_backlog));
    spill_->reported_backlog = 0;
  }
  state_ = State::closed;
  net::TimerWheel::cancel(*this);
  worker_.loop().remove(fd_);
  ::close(fd_);
  fd_ = -1;
  worker_.retire(*this);
}

// ---------------------------------------------------------------------------------------------
// Timers: handshake, heartbeat, idle, close

void Connection::on_timer(net::TimerNode& node) { static_cast<Connection&>(node).timer_fired(); }

void Connection::timer_fired() {
  const std::uint64_t now = worker_.now_ms();
  const Config& config = worker_.server().config;
  switch (state_) {
    case State::http:
    case State::closing:
      if (now < deadline_ms_) break;
      // A keep-alive connection idle between requests is not a failed handshake.
      if (state_ == State::http && (http_->requests_served == 0 || !http_->buffer.empty()))
        worker_.server().counters->handshake_failed(HandshakeFailure::timeout);
      return destroy();  // slow handshake, or a peer that never closes
    case State::open:
      if (awaiting_pong_ && now >= deadline_ms_) return begin_close(ws::close_code::kGoingAway, "pong timeout");
      if (config.idle_timeout > 0 && now >= last_activity_ms_ + to_ms(config.idle_timeout))
        return begin_close(ws::close_code::kGoingAway, "idle timeout");
      if (!awaiting_pong_ && now >= deadline_ms_) {
        // The payload is the send time, so the pong alone gives the round trip.
        const std::uint64_t sent_ns = monotonic_ns();
        std::uint8_t payload[sizeof sent_ns];
        std::memcpy(payload, &sent_ns, sizeof payload);
        send_frame(ws::Opcode::ping, payload);
        awaiting_pong_ = true;
        deadline_ms_ = now + to_ms(config.pong_timeout);
      }
      break;
    case State::closed:
      return;
  }
  reschedule_timer();
}

void Connection::reschedule_timer() {
  std::uint64_t deadline = deadline_ms_;
  if (state_ == State::open) {
    const Config& config = worker_.server().config;
    if (config.idle_timeout > 0) deadline = std::min(deadline, last_activity_ms_ + to_ms(config.idle_timeout));
  }
  worker_.loop().timers().schedule(*this, deadline);
}

// ---------------------------------------------------------------------------------------------
// Topics

bool Connection::is_subscribed(std::string_view topic) const noexcept {
  if (!spill_) return false;
  const auto& subscriptions = spill_->subscriptions;
  return std::any_of(subscriptions.begin(), subscriptions.end(),
                     [topic](const auto* subscribed) { return subscribed->name == topic; });
}

bool Connection::subscribe(std::string_view topic) {
  if (!pubsub::is_valid_topic(topic)) return false;
  if (is_subscribed(topic)) return true;
  spill().subscriptions.push_back(&worker_.topics().add(topic, this));
  worker_.server().topics->add_subscriber(topic, worker_.index());
  worker_.server().counters->subscriptions.add(1);
  return true;
}

bool Connection::unsubscribe(std::string_view topic) {
  if (!spill_) return false;
  auto& subscriptions = spill_->subscriptions;
  for (auto it = subscriptions.begin(); it != subscriptions.end(); ++it) {
    if ((*it)->name != topic) continue;
    // The registry first: removing the last local subscriber frees the topic and its name.
    worker_.server().topics->remove_subscriber(topic, worker_.index());
    worker_.topics().remove(**it, this);
    subscriptions.erase(it);
    worker_.server().counters->subscriptions.add(-1);
    release_spill_if_empty();
    return true;
  }
  return false;
}

void Connection::unsubscribe_all() noexcept {
  if (!spill_ || spill_->subscriptions.empty()) return;
  auto& subscriptions = spill_->subscriptions;
  for (auto* topic : subscriptions) {
    worker_.server().topics->remove_subscriber(topic->name, worker_.index());
    worker_.topics().remove(*topic, this);
  }
  worker_.server().counters->subscriptions.add(-static_cast<std::int64_t>(subscriptions.size()));
  subscriptions.clear();
  subscriptions.shrink_to_fit();
}

PublishResult Connection::publish(std::string_view topic, std::string_view message, MessageKind kind) {
  const std::string_view parts[] = {message};
  return worker_.server().publish(topic, kind == MessageKind::text ? ws::Opcode::text : ws::Opcode::binary, parts);
}

void Connection::deliver_frames(std::span<const pubsub::MessageRef> run) {
  if (state_ != State::open || close_sent_) return;
  // Bytes sent outside a read (an earlier delivery) go out first, so that only what the kernel
  // really refused counts against max_backpressure.
  if (buffered_amount() > 0 && !write_blocked_) {
    flush();
    if (state_ != State::open) return;
  }
  const RouteMetrics& metrics = *route_->metrics;
  for (const auto& message : run) {
    const std::size_t kind = message->opcode == ws::Opcode::text ? 0 : 1;
    metrics.messages_sent[kind].add();
    metrics.bytes_sent[kind].add(message->payload_size);
    count_out(1, message->payload_size);
  }
  // A window of its own (dedicated mode, context takeover agreed): every message is compressed
  // for this subscriber alone. Otherwise the frames shared by every subscriber go out as they are.
  const bool own_window = dedicated_ && !deflate_params_.server_no_context_takeover;
  const std::size_t delivered = own_window ? write_own_frames(run) : write_shared_frames(run);
  if (state_ != State::open) return;  // the peer is gone
  report_backlog();
  if (delivered == run.size()) return;
  if (route_->behavior.slow_consumer == SlowConsumerPolicy::close) {
    metrics.backpressure_closes.add();
    return begin_close(ws::close_code::kPolicyViolation, "slow consumer");
  }
  metrics.backpressure_drops.add(run.size() - delivered);  // drop policy: skipped for this subscriber
}

std::size_t Connection::write_shared_frames(std::span<const pubsub::MessageRef> run) {
  const ServerMetrics& counters = *worker_.server().counters;
  for (const auto& message : run) {
    if (const std::string& frame = frame_for(*message); &frame != &message->frame) {
      counters.compressed_bytes[1].add(frame.size() - ws::frame_header_size(frame.size(), false));
      counters.uncompressed_bytes[1].add(message->payload_size);
    }
  }
  std::size_t index = 0;
  std::size_t written_into_first = 0;  // bytes of run[index] the kernel already has
  if (buffered_amount() == 0) {
    // Zero copy: the kernel reads the shared frames directly, one writev per 64 frames.
    constexpr std::size_t kMaxIovecs = 64;
    iovec iov[kMaxIovecs];
    while (index < run.size()) {
      const std::size_t first = index;
      const std::size_t count = std::min(kMaxIovecs, run.size() - index);
      for (std::size_t i = 0; i < count; ++i) {
        const std::string& frame = frame_for(*run[index + i]);
        iov[i] = {const_cast<char*>(frame.data()), frame.size()};
      }
      const ssize_t written = net::send_vector(fd_, iov, count);
      if (written < 0 && errno != EAGAIN && errno != EINTR) {
        peer_gone();
        return run.size();
      }
      std::size_t taken = written > 0 ? static_cast<std::size_t>(written) : 0;
      const std::size_t end = index + count;
      while (index < end && taken >= iov[index - first].iov_len) taken -= iov[index++ - first].iov_len;
      if (index < end) {  // the kernel is full inside run[index]
        written_into_first = taken;
        break;
      }
    }
    if (index == run.size()) return index;
    // The frame the kernel stopped in must be completed whatever the limit: the stream would
    // be corrupt otherwise.
    spill().pending.append(frame_for(*run[index]), written_into_first, std::string::npos);
    ++index;
    write_blocked_ = true;
    update_interest();
  }
  // Behind a backlog: copy, in order, up to max_backpressure.
  const std::size_t limit = worker_.server().config.max_backpressure;
  for (; index < run.size(); ++index) {
    const std::string& frame = frame_for(*run[index]);
    if (buffered_amount() + frame.size() > limit) break;
    spill().pending.append(frame);
  }
  return index;
}

std::size_t Connection::write_own_frames(std::span<const pubsub::MessageRef> run) {
  // The frames are built in the worker's scratch buffer and written with one send. A message is
  // compressed only once it is sure to go out, since the peer's window must hold exactly what
  // our compressor's does: past max_backpressure it is not compressed at all.
  const std::size_t limit = worker_.server().config.max_backpressure;
  const ServerMetrics& counters = *worker_.server().counters;
  std::string& frames = worker_.frame_buffer();
  frames.clear();
  std::size_t index = 0;
  for (; index < run.size(); ++index) {
    const pubsub::Message& message = *run[index];
    // Behind a backlog every message must fit; with none, the first goes out whatever its size.
    if ((index > 0 || buffered_amount() > 0) && buffered_amount() + frames.size() + message.frame.size() > limit)
      break;
    if (message.payload_size < route_->compression.threshold) {
      frames += message.frame;
      continue;
    }
    std::string& compressed = worker_.deflate_buffer();
    compressed.clear();
    const std::string_view payload = message.payload();
    dedicated_->deflater.compress(payload, compressed);
    counters.compressions.add();
    counters.compressed_bytes[1].add(compressed.size());
    counters.uncompressed_bytes[1].add(payload.size());
    std::uint8_t header[ws::kMaxFrameHeaderSize];
    frames.append(reinterpret_cast<const char*>(header),
                  ws::write_frame_header(header, message.opcode, compressed.size(), true, true));
    frames += compressed;
  }
  std::size_t taken = 0;
  if (buffered_amount() == 0) {
    const ssize_t written = net::send_some(fd_, frames.data(), frames.size());
    if (written < 0 && errno != EAGAIN && errno != EINTR) {
      peer_gone();
      return run.size();
    }
    taken = written > 0 ? static_cast<std::size_t>(written) : 0;
  }
  if (taken < frames.size()) {
    spill().pending.append(frames, taken, std::string::npos);
    if (!write_blocked_) {
      write_blocked_ = true;
      update_interest();
    }
  }
  return index;
}

// ---------------------------------------------------------------------------------------------
// The public API's entry points (include/pylon/app.hpp)

SendStatus send(Connection& connection, std::string_view message, MessageKind kind) {
  return connection.send_message(message, kind);
}
void close(Connection& connection, std::uint16_t code, std::string_view reason) {
  connection.close_by_application(code, reason);
}
std::size_t buffered_amount(const Connection& connection) noexcept { return connection.buffered_amount(); }
void* user_data(Connection& connection) noexcept { return connection.user_data(); }
std::string_view remote_address(const Connection& connection) noexcept { return connection.remote_address(); }
std::string_view subprotocol(const Connection& connection) noexcept { return connection.subprotocol(); }
bool subscribe(Connection& connection, std::string_view topic) { return connection.subscribe(topic); }
bool unsubscribe(Connection& connection, std::string_view topic) { return connection.unsubscribe(topic); }
bool is_subscribed(const Connection& connection, std::string_view topic) noexcept {
  return connection.is_subscribed(topic);
}
std::size_t subscription_count(const Connection& connection) noexcept { return connection.subscription_count(); }
PublishResult publish(Connection& connection, std::string_view topic, std::string_view message, MessageKind kind) {
  return connection.publish(topic, message, kind);
}

}  // namespace pylon::detail
