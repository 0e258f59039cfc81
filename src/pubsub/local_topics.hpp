// One loop's topic table: for each topic, the subscribers this loop owns. Deliveries walk a
// topic's subscriber array; subscribers may leave during a walk (a slow consumer closed, a
// socket error), so removal during delivery leaves a hole that is compacted afterwards.
//
// Single-threaded: only the owning loop touches it. Topic pointers stay valid until the topic's
// last subscriber leaves (node-based map).
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pylon::pubsub {

template <typename Subscriber>
class LocalTopics {
 public:
  struct Topic {
    std::string name;
    std::vector<Subscriber*> subscribers;  // nullptr: a hole left during a delivery
    unsigned delivering = 0;
    bool has_holes = false;
  };

  Topic* find(std::string_view name) noexcept {
    const auto it = topics_.find(name);
    return it == topics_.end() ? nullptr : &it->second;
  }

  // The caller ensures subscriber is not yet on the topic.
  Topic& add(std::string_view name, Subscriber* subscriber) {
    auto it = topics_.find(name);
    if (it == topics_.end()) {
      it = topics_.emplace(std::string(name), Topic{}).first;
      it->second.name = it->first;
    }
    it->second.subscribers.push_back(subscriber);
    return it->second;
  }

  void remove(Topic& topic, Subscriber* subscriber) {
    auto& subscribers = topic.subscribers;
    const auto it = std::find(subscribers.begin(), subscribers.end(), subscriber);
    if (it == subscribers.end()) return;
    if (topic.delivering > 0) {
      *it = nullptr;
      topic.has_holes = true;
      return;
    }
    *it = subscribers.back();
    subscribers.pop_back();
    if (subscribers.empty()) erase(topic);
  }

  // Calls visit(subscriber) for each subscriber present when the walk started and still there.
  template <typename Visit>
  void for_each_subscriber(Topic& topic, Visit&& visit) {
    ++topic.delivering;
    // Index, not iterator: nothing is appended during a walk (subscribing happens on reads), but
    // holes may appear.
    for (std::size_t i = 0; i < topic.subscribers.size(); ++i)
      if (Subscriber* subscriber = topic.subscribers[i]) visit(*subscriber);
    if (--topic.delivering == 0 && topic.has_holes) {
      std::erase(topic.subscribers, nullptr);
      topic.has_holes = false;
      if (topic.subscribers.empty()) erase(topic);
    }
  }

  std::size_t size() const noexcept { return topics_.size(); }

 private:
  // By iterator: erasing by key would pass a reference into the node being destroyed.
  void erase(Topic& topic) { topics_.erase(topics_.find(std::string_view(topic.name))); }

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };
  std::unordered_map<std::string, Topic, StringHash, std::equal_to<>> topics_;
};

}  // namespace pylon::pubsub
