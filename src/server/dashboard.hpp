// The live dashboard of `pylon serve` (docs/dashboard.md): the page at `/` with its script and
// style (the files of web/, embedded in the binary at build time), and a stats publisher that
// puts a JSON snapshot of the server's metrics on the topic `pylon/stats` once a second. The page
// subscribes to that topic over `/ws` with the topic protocol (docs/protocol.md), so the stats
// reach it the way any application's messages reach its clients.
//
//   pylon::App app(config);
//   pylon::add_topic_routes(app);       // the page needs `/ws`
//   pylon::Dashboard dashboard(app);    // adds the routes, starts the publisher
//   return app.run();                   // the dashboard stops when it goes out of scope
//
// Threads: construct it on the thread that builds the App, before App::run() (it adds routes).
// The publisher is a thread of its own; the destructor stops and joins it, so destroy the
// Dashboard after run() has returned and before the App.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <span>
#include <string_view>
#include <thread>

#include "pylon/app.hpp"

namespace pylon {

inline constexpr std::string_view kStatsTopic = "pylon/stats";

class Dashboard {
 public:
  explicit Dashboard(App& app, std::chrono::milliseconds interval = std::chrono::seconds(1));
  ~Dashboard();
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

 private:
  void publish_loop();

  App& app_;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

namespace detail {

// One embedded file of web/: index.html is served at "/", every other file at "/<name>".
struct DashboardAsset {
  std::string_view path;
  std::string_view content_type;
  std::string_view body;
};

// Generated at build time by cmake/embed_web.cmake.
std::span<const DashboardAsset> dashboard_assets() noexcept;

}  // namespace detail
}  // namespace pylon
