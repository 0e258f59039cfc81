// The public API's entry points (include/pylon/app.hpp): pylon::WebSocket forwards here.
#include "server/connection.hpp"
#include "server/worker.hpp"

namespace pylon::detail {

SendStatus send(Connection& connection, std::string_view message, MessageKind kind) {
  return connection.send_message(message, kind);
}
void close(Connection& connection, std::uint16_t code, std::string_view reason) {
  connection.close_by_application(code, reason);
}
std::size_t buffered_amount(const Connection& connection) noexcept {
  return connection.buffered_amount();
}
void* user_data(Connection& connection) noexcept {
  return connection.user_data();
}
std::string remote_address(const Connection& connection) {
  return connection.remote_address();
}
std::string_view subprotocol(const Connection& connection) noexcept {
  return connection.subprotocol();
}
bool subscribe(Connection& connection, std::string_view topic) {
  return connection.subscribe(topic);
}
bool unsubscribe(Connection& connection, std::string_view topic) {
  return connection.unsubscribe(topic);
}
bool is_subscribed(const Connection& connection, std::string_view topic) noexcept {
  return connection.is_subscribed(topic);
}
std::size_t subscription_count(const Connection& connection) noexcept {
  return connection.subscription_count();
}
std::vector<std::string> subscriptions(const Connection& connection) {
  return connection.subscriptions();
}
PublishResult publish(Connection& connection, std::string_view topic, const OffsetEnvelope& message,
                      MessageKind kind, std::uint64_t tag) {
  return connection.publish(topic, message, kind, tag);
}
ConnectionRef connection_ref(Connection& connection) {
  Worker& worker = connection.worker();
  return {&worker, &connection, worker.watch(connection)};
}
void run_on(const ConnectionRef& ref, std::function<void(Connection&)> task) {
  ref.worker->loop().post([ref, task = std::move(task)] {
    Connection* found = ref.worker->watched(ref.connection, ref.id);
    if (found != nullptr && found->is_open()) task(*found);
  });
}
std::optional<HistorySubscription> subscribe_with_history(Connection& connection,
                                                          std::string_view topic,
                                                          const StreamPosition* since,
                                                          std::uint64_t tag) {
  return connection.subscribe_with_history(topic, since, tag);
}

}  // namespace pylon::detail
