// The state one ClientLoop shares among its connections: the event loop, the cork, and the
// connections (net/connection_list.hpp: live, to flush, retired). Loop thread only (except
// EventLoop::post/stop).
#pragma once

#include <cstddef>

#include "net/connection_list.hpp"
#include "net/event_loop.hpp"
#include "net/outbox.hpp"

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
  net::Cork& cork() noexcept { return cork_; }
  net::ConnectionList<Connection>& connections() noexcept { return connections_; }
  std::size_t live_count() const noexcept { return connections_.live_count(); }

 private:
  net::Cork cork_;
  net::ConnectionList<Connection> connections_;
};

}  // namespace pylon::client
