// The instance-wide view of topics: which workers (loops) have subscribers of a topic and how
// many subscribers there are in all. A publish asks it where to deliver; a cluster engine (the
// Redis issue) hooks on a topic's first and last subscriber here.
//
// Any thread. One mutex: it is taken once per subscribe, unsubscribe and publish, never per
// subscriber of a delivery.
#pragma once

#include <cstddef>
#include <cstdint>
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

  void add_subscriber(std::string_view topic, unsigned worker);
  void remove_subscriber(std::string_view topic, unsigned worker);
  Lookup lookup(std::string_view topic) const;
  std::size_t topic_count() const;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
  };
  struct Entry {
    std::vector<std::uint32_t> per_worker;
    Lookup lookup;
  };

  unsigned workers_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry, StringHash, std::equal_to<>> topics_;
};

}  // namespace pylon::pubsub
