// The /ws connections of one loop by their token's subject (`sub`), so the backend API finds every
// connection of a user (POST /api/disconnect, /api/unsubscribe; user_commands.hpp).
//
// One per loop thread (this_loop()), touched by that thread alone, so no lock: a connection is
// added when it opens and removed when its close begins. Socket is a connection handle
// (WebSocket<Session>); two handles are the same connection when their data() is.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pylon {

template <typename Socket>
class SubjectIndex {
 public:
  // The index of the calling loop thread.
  static SubjectIndex& this_loop() {
    thread_local SubjectIndex index;
    return index;
  }

  // Open and close, not per message: a subject's first connection allocates its entry.
  void add(std::string_view subject, Socket socket) {
    auto entry = by_subject_.find(subject);
    if (entry == by_subject_.end()) entry = by_subject_.try_emplace(std::string(subject)).first;
    entry->second.push_back(socket);
  }

  void remove(std::string_view subject, Socket socket) {
    const auto entry = by_subject_.find(subject);
    if (entry == by_subject_.end()) return;
    auto& sockets = entry->second;
    const auto found = std::find_if(sockets.begin(), sockets.end(),
                                    [&](Socket& known) { return &known.data() == &socket.data(); });
    if (found == sockets.end()) return;
    *found = sockets.back();
    sockets.pop_back();
    if (sockets.empty()) by_subject_.erase(entry);
  }

  // A copy: what the caller does to them (closing one) changes the index.
  std::vector<Socket> find(std::string_view subject) const {
    const auto entry = by_subject_.find(subject);
    return entry == by_subject_.end() ? std::vector<Socket>{} : entry->second;
  }

  std::size_t subjects() const noexcept { return by_subject_.size(); }

 private:
  std::map<std::string, std::vector<Socket>, std::less<>> by_subject_;
};

}  // namespace pylon
