// The public API of a client connection (include/pylon/client.hpp): WebSocketClient forwards
// to client::Connection.
#include "client/connection.hpp"
#include "client/loop_state.hpp"

namespace pylon {
namespace {
client::Connection& self(WebSocketClient& client) {
  return static_cast<client::Connection&>(client);
}
const client::Connection& self(const WebSocketClient& client) {
  return static_cast<const client::Connection&>(client);
}
}  // namespace

SendStatus WebSocketClient::send(std::string_view message, MessageKind kind) {
  return self(*this).send_message(message, kind, 1);
}
SendStatus WebSocketClient::send_fragmented(std::string_view message, MessageKind kind,
                                            std::size_t fragments) {
  return self(*this).send_message(message, kind, fragments);
}
SendStatus WebSocketClient::ping(std::string_view payload) {
  return self(*this).send_ping(payload);
}
void WebSocketClient::close(std::uint16_t code, std::string_view reason) {
  self(*this).close_by_application(code, reason);
}
bool WebSocketClient::is_open() const noexcept {
  return self(*this).is_open();
}
bool WebSocketClient::reconnecting() const noexcept {
  return self(*this).reconnecting();
}
std::size_t WebSocketClient::buffered_amount() const noexcept {
  return self(*this).buffered_amount();
}
std::string_view WebSocketClient::subprotocol() const noexcept {
  return self(*this).subprotocol();
}
std::string_view WebSocketClient::extensions() const noexcept {
  return self(*this).extensions();
}
bool WebSocketClient::compressed() const noexcept {
  return self(*this).compression() != nullptr;
}
const ClientProfile& WebSocketClient::profile() const noexcept {
  return self(*this).profile();
}
ClientLoop& WebSocketClient::loop() noexcept {
  return self(*this).loop_state().owner;
}

}  // namespace pylon
