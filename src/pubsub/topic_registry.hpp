// The instance-wide view of topics: which workers (loops) have subscribers of a topic and how
// many subscribers there are in all. A publish asks it where to deliver; a cluster engine (the
// Redis issue) hooks on a topic's first and last subscriber here.
//
// Any thread. One mutex: it is taken once per subscribe, unsubscribe and publish, never per
// subscriber of a delivery.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pylon::pubsub {

inline constexpr unsigned kMaxWorkers = 64;  // workers are a bit mask in a lookup

class TopicRegistry {
 public:
  struct Lookup {
    std::uint64_t workers = 0;    // bit w set: worker w has at least one subscriber
    std::size_t subscribers = 0;  // on this instance
  };

  explicit TopicRegistry(unsigned workers);

  // Called, under the registry's lock, when this instance gains its first subscriber of a topic
  // (true) or loses its last (false): what a cluster engine subscribes to. Being under the lock
  // keeps the calls in the order the counts changed; the hook must only hand the work on.
  using InterestHook = std::function<void(std::string_view topic, bool interested)>;
  void set_interest_hook(InterestHook hook);

  void add_subscriber(std::string_view topic, unsigned worker);
  void remove_subscriber(std::string_view topic, unsigned worker);
  Lookup lookup(std::string_view topic) const;
  std::size_t topic_count() const;
  std::vector<std::string> topics() const;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };
  struct Entry {
    std::vector<std::uint32_t> per_worker;
    Lookup lookup;
  };

  unsigned workers_;
  InterestHook interest_hook_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry, StringHash, std::equal_to<>> topics_;
};

}  // namespace pylon::pubsub
