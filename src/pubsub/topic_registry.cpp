#include "pubsub/topic_registry.hpp"

namespace pylon::pubsub {

TopicRegistry::TopicRegistry(unsigned workers) : workers_(workers) {}

void TopicRegistry::add_subscriber(std::string_view topic, unsigned worker) {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(topic);
  if (it == topics_.end())
    it = topics_.emplace(std::string(topic), Entry{std::vector<std::uint32_t>(workers_), {}}).first;
  Entry& entry = it->second;
  if (entry.per_worker[worker]++ == 0) entry.lookup.workers |= std::uint64_t{1} << worker;
  if (entry.lookup.subscribers++ == 0 && interest_hook_) interest_hook_(topic, true);
}

void TopicRegistry::set_interest_hook(InterestHook hook) {
  std::lock_guard lock(mutex_);
  interest_hook_ = std::move(hook);
}

std::vector<std::string> TopicRegistry::topics() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  names.reserve(topics_.size());
  for (const auto& [name, entry] : topics_) names.push_back(name);
  return names;
}

void TopicRegistry::remove_subscriber(std::string_view topic, unsigned worker) {
  std::lock_guard lock(mutex_);
  const auto it = topics_.find(topic);
  if (it == topics_.end() || it->second.per_worker[worker] == 0) return;
  Entry& entry = it->second;
  if (--entry.per_worker[worker] == 0) entry.lookup.workers &= ~(std::uint64_t{1} << worker);
  if (--entry.lookup.subscribers == 0) {
    if (interest_hook_) interest_hook_(topic, false);
    topics_.erase(it);
  }
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
