#include "client/loop_state.hpp"

#include "client/connection.hpp"

namespace pylon::client {
namespace {

void free_connection(Connection& connection) {
  delete &connection;
}

}  // namespace

LoopState::LoopState(ClientLoop& owner_loop) : owner(owner_loop) {
  loop.set_end_of_iteration([this] {
    connections_.flush_scheduled();
    connections_.free_retired(free_connection);
  });
}

LoopState::~LoopState() {
  while (Connection* connection = connections_.first()) {
    connection->abandon();
    connections_.retire(*connection);
  }
  connections_.free_retired(free_connection);
}

}  // namespace pylon::client
