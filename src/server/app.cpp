#include "pylon/app.hpp"

#include <stdexcept>

#include "server/server.hpp"

namespace pylon {

App::App(Config config) : server_(std::make_unique<detail::Server>(std::move(config))) {}

App::~App() = default;

void App::add_route(std::string path, detail::ErasedBehavior behavior) {
  if (behavior.subprotocols.size() > detail::kMaxSubprotocols)
    throw std::invalid_argument(path + ": at most 255 subprotocols per WebSocket route");
  detail::Route route;
  route.path = std::move(path);
  route.websocket = true;
  route.behavior = std::move(behavior);
  server_->routes.push_back(std::move(route));
}

namespace {

detail::Route http_route(std::string method, std::string path, HttpHandler handler) {
  detail::Route route;
  route.path = std::move(path);
  route.method = std::move(method);
  route.handler = std::move(handler);
  return route;
}

}  // namespace

App& App::get(std::string path, HttpHandler handler) {
  server_->routes.push_back(http_route("GET", std::move(path), std::move(handler)));
  return *this;
}

App& App::post(std::string path, HttpHandler handler) {
  server_->routes.push_back(http_route("POST", std::move(path), std::move(handler)));
  return *this;
}

PublishResult App::publish(std::string_view topic, std::string_view message, MessageKind kind) {
  return publish(topic, OffsetEnvelope{.head = message}, kind);
}

PublishResult App::publish(std::string_view topic, const OffsetEnvelope& message,
                           MessageKind kind) {
  return publish(topic, message, kind, {});
}

PublishResult App::publish(std::string_view topic, const OffsetEnvelope& message, MessageKind kind,
                           std::function<void(const PublishResult&)> settled) {
  return server_->publish(topic, detail::opcode_of(kind), message, std::move(settled));
}

void App::presence_join(std::string_view topic, PresenceMember member) {
  server_->presence_join(topic, std::move(member));
}
void App::presence_leave(std::string_view topic, std::string_view client) {
  server_->presence_leave(topic, client);
}
void App::read_presence(std::string_view topic,
                        std::function<void(const PresenceMembers* members)> done) {
  server_->read_presence(topic, std::move(done));
}

void App::run_on_every_loop(std::function<void()> task) {
  server_->run_on_every_loop(task);
}
ClusterSend App::send_to_cluster(std::string_view message) {
  return server_->send_to_cluster(message);
}
void App::on_cluster_message(std::function<void(std::string_view message)> handler) {
  server_->cluster_handlers.push_back(std::move(handler));
}

MetricsRegistry& App::metrics() noexcept {
  return server_->metrics;
}
void App::on_reload(std::function<void()> reload) {
  server_->reloads.push_back(std::move(reload));
}

void App::on_loop_tick(std::function<void()> tick) {
  server_->loop_ticks.push_back(std::move(tick));
}

int App::run() {
  return server_->run();
}
void App::drain() {
  server_->drain();
}
bool App::draining() const noexcept {
  return server_->draining.load(std::memory_order_relaxed);
}
bool App::ready() const noexcept {
  return server_->ready();
}
void App::check_config() const {
  server_->check_config();
}
const Config& App::config() const noexcept {
  return server_->config;
}

}  // namespace pylon
