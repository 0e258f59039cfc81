#include "pylon/app.hpp"

#include "server/server.hpp"

namespace pylon {

App::App(Config config) : server_(std::make_unique<detail::Server>(std::move(config))) {}

App::~App() = default;

void App::add_route(std::string path, detail::ErasedBehavior behavior) {
  detail::Route route;
  route.path = std::move(path);
  route.websocket = true;
  route.behavior = std::move(behavior);
  server_->routes.push_back(std::move(route));
}

App& App::get(std::string path, std::function<HttpResponse()> handler) {
  detail::Route route;
  route.path = std::move(path);
  route.get = std::move(handler);
  server_->routes.push_back(std::move(route));
  return *this;
}

int App::run() { return server_->run(); }
void App::drain() { server_->drain(); }
bool App::draining() const noexcept { return server_->draining.load(std::memory_order_relaxed); }
const Config& App::config() const noexcept { return server_->config; }

}  // namespace pylon
