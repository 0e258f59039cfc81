// The server behind pylon::App: routes, configuration, the counters shared by all loops, and
// the workers (one event loop thread each). Internal to src/server.
//
// Threads: routes and config are written before run() starts the workers and only read after;
// the counters are atomics; everything else belongs to one worker's thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pylon/app.hpp"

namespace pylon::detail {

class Worker;

struct Route {
  std::string path;
  bool websocket = false;
  ErasedBehavior behavior;              // websocket routes
  std::function<HttpResponse()> get;    // plain GET routes
};

class Server {
 public:
  explicit Server(Config config);
  ~Server();

  const Route* find_route(std::string_view path) const noexcept;
  int run();
  void drain();

  Config config;
  std::vector<Route> routes;
  std::atomic<std::size_t> open_websockets{0};
  std::atomic<bool> draining{false};

 private:
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace pylon::detail
