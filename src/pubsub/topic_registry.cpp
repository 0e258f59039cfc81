#include "pubsub/topic_registry.hpp"

namespace pylon::pubsub {

TopicRegistry::TopicRegistry(unsigned workers) : workers_(workers) {}

void TopicRegistry::add_subscriber(std::string_view topic, unsigned worker) {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) it = topics_.emplace(std::string(topic), Entry{std::vector<std::uint32_t>(workers_), {}}).first;
  Entry& entry = it->second;
  if (entry.per_worker[worker]++ == 0) entry.lookup.workers |= std::uint64_t{1} << worker;
  ++entry.lookup.subscribers;
}

void TopicRegistry::remove_subscriber(std::string_view topic, unsigned worker) {
  std::lock_guard lock(mutex_);
  const auto it = topics_.find(topic);
  if (it == topics_.end() || it->second.per_worker[worker] == 0) return;
  Entry& entry = it->second;
  if (--entry.per_worker[worker] == 0) entry.lookup.workers &= ~(std::uint64_t{1} << worker);
  if (--entry.lookup.subscribers == 0) topics_.erase(it);
}

TopicRegistry::Lookup TopicRegistry::lookup(std::string_view topic) const {
  std::lock_guard lock(mutex_);
  const auto it = topics_.find(topic);
  return it == topics_.end() ? Lookup{} : it->second.lookup;
}

std::size_t TopicRegistry::topic_count() const {
  std::lock_guard lock(mutex_);
  return topics_.size();
}

}  // namespace pylon::pubsub
