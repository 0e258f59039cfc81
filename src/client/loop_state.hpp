// The state one ClientLoop shares among its connections: the event loop, the cork buffer, the
// list of live connections, and those to flush or free at the end of the iteration. Loop thread
// only (except EventLoop::post/stop).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "net/event_loop.hpp"

namespace pylon {
class ClientLoop;
}

namespace pylon::client {

class Connection;

class LoopState {
 public:
  explicit LoopState(ClientLoop& owner);
  ~LoopState();

  ClientLoop& owner;
  net::EventLoop loop;

  // Corked writes (as in the server's Worker): while a connection processes what it read,
  // everything it sends collects here and goes out in one write when processing ends.
  bool is_corked(const Connection& connection) const noexcept { return corked_ == &connection; }
  std::string& cork_buffer() noexcept { return cork_; }
  void cork(Connection& connection) noexcept { corked_ = &connection; }
  void uncork() noexcept { corked_ = nullptr; }
  bool any_corked() const noexcept { return corked_ != nullptr; }

  void link(Connection& connection) noexcept;
  // Connections with bytes written outside their own read processing: flushed at iteration end.
  void schedule_flush(Connection& connection);
  // Unlinks a finished connection; it is freed at the end of the iteration.
  void retire(Connection& connection);
  std::size_t live_count() const noexcept { return live_; }

 private:
  void end_of_iteration();

  Connection* connections_ = nullptr;  // intrusive list of live connections
  std::size_t live_ = 0;
  std::vector<Connection*> flush_list_;
  std::vector<Connection*> retired_;
  Connection* corked_ = nullptr;
  std::string cork_;
};

}  // namespace pylon::client
