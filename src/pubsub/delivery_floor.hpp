// One subscriber's delivery floors: per topic, the offset at or below which live deliveries are
// skipped because the subscriber already has them. A subscriber added to a topic with history
// reads the topic's position (and what it missed) under the stream's lock; publications up to
// that position may still sit in its loop's inbox, handed over before it subscribed, and would
// reach it a second time (docs/protocol.md "History and recovery": no duplicate at the seam).
//
// A loop receives a topic's publications in offset order, so the first delivery above the
// floor ends it: a floor lives from a subscribe to the next publication. Single-threaded (the
// subscriber's loop). Header only: the delivery path inlines the empty() test.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "pubsub/message.hpp"

namespace pylon::pubsub {

template <typename Topic>
class DeliveryFloors {
 public:
  bool empty() const noexcept { return floors_.empty(); }

  void set(const Topic* topic, std::uint64_t offset) {
    erase(topic);
    floors_.push_back({topic, offset});
  }
  void erase(const Topic* topic) noexcept {
    std::erase_if(floors_, [topic](const Floor& floor) { return floor.topic == topic; });
  }
  void clear() noexcept {
    floors_.clear();
    floors_.shrink_to_fit();
  }

  // How many leading messages of run (publications of topic, in offset order) to skip.
  std::size_t skip(const Topic* topic, std::span<const MessageRef> run) noexcept {
    const auto floor = std::find_if(floors_.begin(), floors_.end(),
                                    [topic](const Floor& item) { return item.topic == topic; });
    if (floor == floors_.end()) return 0;
    std::size_t skipped = 0;
    while (skipped < run.size() && run[skipped]->offset <= floor->offset) ++skipped;
    if (skipped < run.size()) floors_.erase(floor);  // what follows is above it too
    return skipped;
  }

 private:
  struct Floor {
    const Topic* topic;
    std::uint64_t offset;
  };
  std::vector<Floor> floors_;
};

}  // namespace pylon::pubsub
