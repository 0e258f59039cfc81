#include "pubsub/inbox.hpp"

#include <algorithm>
#include <iterator>
#include <tuple>

namespace pylon::pubsub {

bool Inbox::add_remote(std::span<MessageRef> messages) {
  std::lock_guard lock(remote_mutex_);
  const bool first = remote_.empty();
  remote_.insert(remote_.end(), std::make_move_iterator(messages.begin()),
                 std::make_move_iterator(messages.end()));
  return first;
}

void Inbox::collect() {
  {
    std::lock_guard lock(remote_mutex_);
    collected_.swap(remote_);
  }
  waiting_.insert(waiting_.end(), std::make_move_iterator(collected_.begin()),
                  std::make_move_iterator(collected_.end()));
  collected_.clear();
}

bool Inbox::take(std::vector<MessageRef>& batch) {
  const std::string_view topic = waiting_.empty() ? std::string_view() : waiting_.front()->topic;
  if (std::all_of(waiting_.begin(), waiting_.end(),
                  [topic](const MessageRef& message) { return message->topic == topic; })) {
    batch.swap(waiting_);
    return false;
  }
  grouping_.clear();
  for (std::size_t i = 0; i < waiting_.size(); ++i)
    grouping_.push_back({.topic = waiting_[i]->topic, .first = i, .position = i});
  std::sort(grouping_.begin(), grouping_.end(), [](const Grouping& a, const Grouping& b) {
    return std::tie(a.topic, a.position) < std::tie(b.topic, b.position);
  });
  for (std::size_t i = 1; i < grouping_.size(); ++i)
    if (grouping_[i].topic == grouping_[i - 1].topic) grouping_[i].first = grouping_[i - 1].first;
  std::sort(grouping_.begin(), grouping_.end(), [](const Grouping& a, const Grouping& b) {
    return std::tie(a.first, a.position) < std::tie(b.first, b.position);
  });
  for (const Grouping& entry : grouping_) batch.push_back(std::move(waiting_[entry.position]));
  waiting_.clear();
  return true;
}

}  // namespace pylon::pubsub
