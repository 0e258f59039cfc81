// ClientLoop and make_client_profile (include/pylon/client.hpp).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdexcept>

#include "client/connection.hpp"
#include "client/handshake.hpp"
#include "client/loop_state.hpp"
#include "client/profile.hpp"
#include "client/tls.hpp"
#include "net/socket.hpp"

namespace pylon {
namespace {

// Fills `out` with a numeric address; returns its length, 0 when `host` is not numeric.
socklen_t to_sockaddr(const std::string& host, std::uint16_t port, sockaddr_storage& out) {
  out = {};
  if (host.find(':') != std::string::npos) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1 ? sizeof(sockaddr_in6) : 0;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(port);
  return inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1 ? sizeof(sockaddr_in) : 0;
}

bool is_subprotocol_token(const std::string& protocol) {
  // RFC 6455 §4.1: each element is a token (RFC 2616 separators excluded), printable ASCII.
  if (protocol.empty()) return false;
  for (const char c : protocol) {
    if (c <= 0x20 || c >= 0x7F ||
        std::string_view("()<>@,;:\\\"/[]?={}").find(c) != std::string_view::npos)
      return false;
  }
  return true;
}

}  // namespace

std::shared_ptr<const ClientProfile> make_client_profile(std::string_view url,
                                                         ClientHandlers handlers,
                                                         ClientOptions options) {
  auto profile = std::make_shared<ClientProfile>();
  profile->url = client::parse_url(url);
  if (const std::string error = client::check_extra_headers(options.headers); !error.empty())
    throw std::invalid_argument("headers: " + error);
  for (const std::string& protocol : options.subprotocols) {
    if (!is_subprotocol_token(protocol))
      throw std::invalid_argument("subprotocols: not a token: '" + protocol + "'");
  }
  profile->destination_length =
      to_sockaddr(profile->url.host, profile->url.port, profile->destination);
  if (!options.source_address.empty()) {
    profile->source_length = to_sockaddr(options.source_address, 0, profile->source);
    if (profile->source_length == 0)
      throw std::invalid_argument("source_address: not a numeric IP address: " +
                                  options.source_address);
    if (profile->source.ss_family != profile->destination.ss_family)
      throw std::invalid_argument("source_address: " + options.source_address +
                                  " is not of the URL host's family");
  }
  if (options.connect_timeout <= 0 || options.handshake_timeout <= 0 || options.close_timeout <= 0)
    throw std::invalid_argument("timeouts must be positive");
  // Below the timer wheel's 100 ms tick a heartbeat cannot be kept (nor is one useful).
  if (!(options.ping_interval == 0 || options.ping_interval >= 0.1))
    throw std::invalid_argument("ping_interval: must be 0 (off) or at least 0.1 seconds");
  if (!(options.pong_timeout >= 0.1))
    throw std::invalid_argument("pong_timeout: must be at least 0.1 seconds");
  if (profile->url.secure) {
    if (!options.tls.verify && !options.tls.ca_file.empty())
      throw std::invalid_argument("tls: ca_file is of no use with verify = false");
    profile->tls = client::TlsContext::get(options.tls);
    profile->server_name =
        options.tls.server_name.empty() ? profile->url.name : options.tls.server_name;
  }
  profile->handlers = std::move(handlers);
  profile->options = std::move(options);
  return profile;
}

ClientLoop::ClientLoop() : state_(std::make_unique<client::LoopState>(*this)) {
  // One descriptor per connection: a load test needs the hard limit, not the default soft 1024.
  static const std::uint64_t open_file_limit = net::raise_open_file_limit();
  (void)open_file_limit;
}
ClientLoop::~ClientLoop() = default;

WebSocketClient& ClientLoop::connect(std::shared_ptr<const ClientProfile> profile) {
  if (profile == nullptr) throw std::invalid_argument("connect: no profile");
  auto* connection = new client::Connection(*state_, std::move(profile));
  state_->connections().link(*connection);
  connection->start();
  return *connection;
}

WebSocketClient& ClientLoop::connect(std::string_view url, ClientHandlers handlers,
                                     ClientOptions options) {
  return connect(make_client_profile(url, std::move(handlers), std::move(options)));
}

void ClientLoop::run() {
  state_->loop.run();
}
void ClientLoop::stop() noexcept {
  state_->loop.stop();
}
void ClientLoop::post(std::function<void()> task) {
  state_->loop.post(std::move(task));
}
std::size_t ClientLoop::client_count() const noexcept {
  return state_->live_count();
}

}  // namespace pylon
