// The connections of one loop, for the server's workers and the client's loops alike: an
// intrusive list of the live ones, those with bytes to flush at the end of the iteration, and
// those retired during it, freed only after the iteration (STYLE rule 12: closing inside a
// callback only marks a connection, so no callback ever touches freed memory).
//
// T provides the flag `bool flush_scheduled` and `void flush()`, and with kLinked, to be kept in
// the list of live ones, the links `T* list_prev`, `T* list_next` (the server's connections have
// none: their worker finds the live ones in its SlabPool). How a retired T is freed is the owner's
// (a slab pool, or delete). Loop thread only.
#pragma once

#include <cstddef>
#include <vector>

namespace pylon::net {

template <typename T, bool kLinked = true>
class ConnectionList {
 public:
  void link(T& connection) noexcept requires kLinked {
    connection.list_next = first_;
    if (first_ != nullptr) first_->list_prev = &connection;
    first_ = &connection;
    ++live_;
  }

  // Unlinks a finished connection; end_of_iteration frees it.
  void retire(T& connection) {
    if constexpr (kLinked) {
      if (connection.list_prev != nullptr)
        connection.list_prev->list_next = connection.list_next;
      else
        first_ = connection.list_next;
      if (connection.list_next != nullptr) connection.list_next->list_prev = connection.list_prev;
      connection.list_prev = connection.list_next = nullptr;
      --live_;
    }
    retired_.push_back(&connection);
  }

  // Bytes were written outside the connection's own read processing: flush it at iteration end.
  void schedule_flush(T& connection) {
    if (connection.flush_scheduled) return;
    connection.flush_scheduled = true;
    flush_list_.push_back(&connection);
  }

  // End of an iteration: flush the scheduled connections, then free the retired ones. Flushing
  // may retire a connection (a write error) but never frees it: free_retired does, after every
  // list that could point at it has been walked.
  void flush_scheduled() {
    for (std::size_t i = 0; i < flush_list_.size(); ++i) {
      T* connection = flush_list_[i];
      connection->flush_scheduled = false;
      connection->flush();
    }
    flush_list_.clear();
  }
  // `free(T&)` frees one retired connection.
  template <typename Free>
  void free_retired(Free free) {
    for (T* connection : retired_) free(*connection);
    retired_.clear();
  }

  T* first() const noexcept requires kLinked { return first_; }
  std::size_t live_count() const noexcept requires kLinked { return live_; }

 private:
  T* first_ = nullptr;
  std::size_t live_ = 0;
  std::vector<T*> flush_list_;
  std::vector<T*> retired_;
};

}  // namespace pylon::net
