#include "client/loop_state.hpp"

#include "client/connection.hpp"

namespace pylon::client {

LoopState::LoopState(ClientLoop& owner_loop) : owner(owner_loop) {
  cork_.reserve(net::EventLoop::kReceiveBufferSize);
  loop.set_end_of_iteration([this] { end_of_iteration(); });
}

LoopState::~LoopState() {
  while (connections_ != nullptr) {
    Connection* connection = connections_;
    connections_ = connection->list_next;
    connection->abandon();
    delete connection;
  }
  for (Connection* connection : retired_) delete connection;
}

void LoopState::link(Connection& connection) noexcept {
  connection.list_next = connections_;
  if (connections_ != nullptr) connections_->list_prev = &connection;
  connections_ = &connection;
  ++live_;
}

void LoopState::schedule_flush(Connection& connection) {
  if (connection.flush_scheduled) return;
  connection.flush_scheduled = true;
  flush_list_.push_back(&connection);
}

void LoopState::retire(Connection& connection) {
  if (connection.list_prev != nullptr)
    connection.list_prev->list_next = connection.list_next;
  else
    connections_ = connection.list_next;
  if (connection.list_next != nullptr) connection.list_next->list_prev = connection.list_prev;
  connection.list_prev = connection.list_next = nullptr;
  --live_;
  retired_.push_back(&connection);
}

void LoopState::end_of_iteration() {
  // Flushing may finish a connection (write error) but never frees it: retired ones are freed
  // below, after every list that could point at them has been walked.
  for (std::size_t i = 0; i < flush_list_.size(); ++i) {
    Connection* connection = flush_list_[i];
    connection->flush_scheduled = false;
    connection->flush();
  }
  flush_list_.clear();
  for (Connection* connection : retired_) delete connection;
  retired_.clear();
}

}  // namespace pylon::client
