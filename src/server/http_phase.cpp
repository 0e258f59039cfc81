// The HTTP phase of a connection: keep-alive requests, plain routes, and the WebSocket upgrade
// (RFC 6455 §4.2). Part of Connection (connection.hpp).
#include <array>
#include <new>
#include <stdexcept>
#include <string>
#include <variant>

#include "http/response_writer.hpp"
#include "net/buffer.hpp"
#include "obs/log.hpp"
#include "server/admission.hpp"
#include "server/client_ip.hpp"
#include "server/connection.hpp"
#include "server/worker.hpp"
#include "ws/upgrade.hpp"

namespace pylon::detail {

using net::as_text;

void Connection::process_http(std::span<std::uint8_t> data) {
  HttpState& http = *http_;
  if (http.awaiting) {
    // Requests behind a deferred one wait for its answer (HTTP/1.1 answers in order).
    http.buffer.append(as_text(data));
    return;
  }
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
    http::Request& request = worker().request_scratch();
    const http::ParseResult result = http.parser.parse(rest, request);
    if (result.status == http::ParseStatus::need_more) {
      if (from_receive_buffer || offset > 0) {
        std::string kept(rest);
        http.buffer.swap(kept);
      }
      return;
    }
    if (result.status == http::ParseStatus::error) {
      worker().server().counters->handshake_failed(HttpFailure::bad_request);
      respond_error(result.error_status, result.error_reason);
      return;
    }
    offset += result.consumed;
    ++http.requests_served;
    http.parser.reset();
    const bool stay = handle_request(request);
    if (http.awaiting) {
      // Kept for after the answer; the handshake timeout bounds the wait.
      std::string kept(input.substr(offset));
      http.buffer.swap(kept);
      deadline_ = net::CompactTime::at(worker().now_ms() +
                                       net::to_ms(worker().server().config.handshake_timeout));
      reschedule_timer();
      return;
    }
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
    deadline_ = net::CompactTime::at(worker().now_ms() +
                                     net::to_ms(worker().server().config.handshake_timeout));
    reschedule_timer();
  }
  if (http_ != nullptr) net::release_if_large(http_->buffer);
}

void Connection::release_http_state() noexcept {
  if (counting_received_ || http_ == nullptr) return;
  http_->~HttpState();
  worker().http_state_pool().deallocate(http_);
  http_ = nullptr;
  // The upgrade's request is done with: from here what comes in is frames, counted in its place.
  if (access_log_) {
    received_ = Traffic{};
    counting_received_ = true;
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP requests and the opening handshake (RFC 6455 §4.2)

namespace {

// The public view of a parsed request (include/pylon/app.hpp).
class RequestView final : public HttpRequest {
 public:
  RequestView(const http::Request& request, const net::PeerAddress& peer,
              std::span<const net::Cidr> trusted_proxies, Worker& worker,
              Connection* connection = nullptr)
      : request_(request),
        peer_(peer),
        trusted_proxies_(trusted_proxies),
        worker_(worker),
        connection_(connection) {}
  std::string_view method() const noexcept override { return request_.method; }
  std::string_view path() const noexcept override { return request_.path; }
  std::string_view query() const noexcept override { return request_.query; }
  std::string_view body() const noexcept override { return request_.body; }
  std::string_view header(std::string_view name) const noexcept override {
    const http::Header* header = request_.find(name);
    return header == nullptr ? std::string_view() : header->value;
  }
  std::string client_ip() const override {
    return real_client_ip(peer_, trusted_proxies_, request_);
  }
  DeferredResponse defer() const override {
    // An upgrade's verdict is taken on the spot: only plain routes have a connection here.
    if (connection_ == nullptr)
      throw std::logic_error("HttpRequest::defer: only a plain HTTP route can answer later");
    return DeferredResponse(&worker_, connection_, worker_.watch(*connection_));
  }

 private:
  const http::Request& request_;
  const net::PeerAddress& peer_;
  std::span<const net::Cidr> trusted_proxies_;
  Worker& worker_;
  Connection* connection_;
};

}  // namespace

bool Connection::handle_request(const http::Request& request) {
  const Server& server = worker().server();
  const Route* route =
      server.find_route(request.path, request.method, request.has_token("Upgrade", "websocket"));
  if (route != nullptr && route->internal != internal_) route = nullptr;
  if (route == nullptr) {
    // Only a failed upgrade counts as a handshake failure; a browser's favicon.ico does not.
    if (request.find("Upgrade") != nullptr)
      server.counters->handshake_failed(HttpFailure::not_found);
    if (const Route* other = server.find_route(request.path);
        other != nullptr && other->internal == internal_) {
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
  const HttpResponse response =
      route->handler(RequestView(request, peer_, server.trusted_proxies, worker(), this));
  if (response.deferred) {
    http_->awaiting = true;
    http_->awaiting_keep_alive = request.keep_alive();
    http_->awaiting_head = request.method == "HEAD";
    return true;
  }
  respond(response, request.keep_alive() && !worker().draining(), request.method == "HEAD");
  return state_ == State::http;
}

void Connection::answer_deferred(const HttpResponse& response) {
  if (state_ != State::http || http_ == nullptr || !http_->awaiting) return;
  http_->awaiting = false;
  respond(response, http_->awaiting_keep_alive && !worker().draining(), http_->awaiting_head);
  // The requests that waited behind it.
  if (state_ == State::http && !http_->buffer.empty()) process_http({});
}

void Connection::upgrade(const Route& route, const http::Request& request) {
  Server& server = worker().server();
  const Config& config = server.config;
  const CompressionSettings& compression = route.compression;
  ws::UpgradePolicy policy{.subprotocols = route.behavior.subprotocols,
                           .allowed_origins = config.allowed_origins};
  if (compression.mode != CompressionMode::off)
    policy.deflate = ws::DeflateServerPolicy{
        .context_takeover = compression.mode == CompressionMode::dedicated,
        .max_window_bits = static_cast<std::uint8_t>(compression.window_bits)};
  ws::UpgradeDecision decision = ws::decide_upgrade(request, policy);
  std::optional<AdmissionRefusal> limited;
  Admission& admission = *server.admission;
  ClientKey client;
  if (std::holds_alternative<ws::UpgradeAcceptance>(decision)) {
    // The server's own reasons to refuse a request that is fine.
    if (worker().draining() || server.draining.load(std::memory_order_relaxed)) {
      decision = ws::UpgradeError::draining;
    } else if (server.open_websockets.fetch_add(1, std::memory_order_relaxed) >=
               config.max_connections) {
      server.open_websockets.fetch_sub(1, std::memory_order_relaxed);
      decision = ws::UpgradeError::connection_limit;
    } else if (admission.enabled()) {
      client = client_key(peer_, server.trusted_proxies, request);
      if ((limited = admission.admit(client, worker().now_ms()))) {
        server.open_websockets.fetch_sub(1, std::memory_order_relaxed);
        decision = limited->reason;
      }
    }
  }
  if (const auto* error = std::get_if<ws::UpgradeError>(&decision)) {
    server.counters->handshake_failed(*error);
    const ws::UpgradeRefusal refusal = ws::describe(*error);
    if (!limited) return respond_error(refusal.status, refusal.reason, refusal.headers);
    // RFC 6585 §4, RFC 9110 §10.2.3: when to try again, in seconds.
    const std::string seconds = std::to_string(limited->retry_after_s);
    const http::Header retry_after[] = {{"Retry-After", seconds}};
    return respond_error(refusal.status, refusal.reason, retry_after);
  }
  const auto& accepted = std::get<ws::UpgradeAcceptance>(decision);
  if (route.behavior.user_data_size > 0) {
    user_data_ = ::operator new(route.behavior.user_data_size,
                                std::align_val_t(route.behavior.user_data_align));
    route.behavior.construct(user_data_);
  }
  if (route.behavior.upgrade) {
    // The route's own checks (authentication), after the cheap ones: a flood that the limits
    // refuse costs no signature verification.
    if (std::optional<HttpResponse> refusal = route.behavior.upgrade(
            RequestView(request, peer_, server.trusted_proxies, worker()), user_data_)) {
      server.open_websockets.fetch_sub(1, std::memory_order_relaxed);
      if (admission.enabled()) {
        if (admission.counts_connections()) admission.release(client);
        // A 401 is a failed authentication, whatever the route checks: the server counts it
        // without knowing about tokens.
        if (refusal->status == 401 && admission.authentication_failed(client, worker().now_ms())) {
          const std::string client_ip = real_client_ip(peer_, server.trusted_proxies, request);
          obs::log(
              obs::LogLevel::warn, "client locked out after failed authentications",
              {{"client_ip", std::string_view(client_ip)}, {"lockout_s", config.auth_lockout}});
        }
      }
      release_user_data(route.behavior);
      server.counters->handshake_failed(HttpFailure::refused_by_route);
      return respond(*refusal, false, false);
    }
  }
  if (admission.counts_connections()) worker().count_client(*this, client);

  route_ = &route;
  worker().websocket_opened();
  route.metrics->handshakes.add();
  route.metrics->connections.add(1);
  std::array<http::Header, 5> headers = {{{"Upgrade", "websocket"},
                                          {"Connection", "Upgrade"},
                                          {"Sec-WebSocket-Accept", accepted.accept_value()}}};
  std::size_t header_count = 3;
  if (accepted.subprotocol) {
    subprotocol_ = static_cast<std::uint8_t>(*accepted.subprotocol + 1);  // kMaxSubprotocols
    headers[header_count++] = {"Sec-WebSocket-Protocol", subprotocol()};
  }
  if (accepted.deflate) {
    headers[header_count++] = {"Sec-WebSocket-Extensions", accepted.extensions};
    agree_compression(*accepted.deflate);
  }
  std::string& response = worker().response_buffer();  // a handshake allocates nothing for it
  response.clear();
  http::write_response(response, 101, std::span(headers.data(), header_count), {}, true);
  write_bytes(response);

  state_ = State::open;
  const std::uint64_t now = worker().now_ms();
  last_activity_ = net::CompactTime::at(now);
  deadline_ = net::CompactTime::at(now + net::to_ms(config.ping_interval));  // the first ping
  reschedule_timer();
  if (obs::log_enabled(obs::LogLevel::info)) {
    // The record for the close lives in the slot (connection.hpp); counting what comes in starts
    // once the HTTP state is released.
    access_log_ = true;
    opened_ms_ = static_cast<std::uint32_t>(now);
    std::string client_ip = real_client_ip(peer_, worker().server().trusted_proxies, request);
    const http::Header* agent = request.find("User-Agent");
    obs::log(obs::LogLevel::info, "websocket open",
             {{"remote", std::string_view(remote_address())},
              {"client_ip", std::string_view(client_ip)},
              {"path", std::string_view(route.path)},
              {"user_agent", agent != nullptr ? agent->value : std::string_view()},
              {"subprotocol", subprotocol()}});
    if (client_ip != peer_.host()) worker().keep_client_ip(*this, std::move(client_ip));
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

void Connection::respond(const HttpResponse& response, bool keep_alive, bool head_only) {
  std::array<http::Header, 6> headers{};
  std::size_t count = 0;
  for (const auto& [name, value] : response.headers)
    if (count < headers.size()) headers[count++] = {name, value};
  respond(response.status, response.body, keep_alive, std::span(headers.data(), count),
          response.content_type, head_only);
}

void Connection::respond_error(int status, std::string_view reason,
                               std::span<const http::Header> extra_headers) {
  // A flood of bad clients must not fill the disk: these lines are rate-limited.
  static obs::LogRateLimit limit(10);
  limit.log(obs::LogLevel::warn, "request refused",
            {{"remote", std::string_view(remote_address())},
             {"status", std::int64_t{status}},
             {"reason", reason}});
  std::string body(reason);
  body += '\n';
  respond(status, body, false, extra_headers);
}

}  // namespace pylon::detail

namespace pylon {

void DeferredResponse::send(HttpResponse response) const {
  worker_->loop().post(
      [worker = worker_, connection = connection_, id = id_, response = std::move(response)] {
        if (detail::Connection* found = worker->watched(connection, id))
          found->answer_deferred(response);
      });
}

}  // namespace pylon
