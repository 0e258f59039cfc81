// One loop's publications waiting for delivery (DESIGN.md "The engine"). The loop's own thread
// adds what it publishes; other threads add theirs in batches, and the first batch since the loop
// last collected asks for one wake-up, so a loop is woken at most once per batch whatever the
// number of publications in it. Everything waiting is delivered together at the end of the
// iteration, each topic's publications as one run: a subscriber gets one write per iteration.
//
// add_remote: any thread. Everything else: the owning loop's thread only.
#pragma once

#include <cstddef>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "pubsub/message.hpp"

namespace pylon::pubsub {

class Inbox {
 public:
  void add_local(MessageRef message) { waiting_.push_back(std::move(message)); }
  // Moves messages in, in their order. True when the loop must be woken to collect them (nothing
  // was added since its last collect()); false when a wake-up is already on its way.
  bool add_remote(std::span<MessageRef> messages);
  // What other threads added, behind what waits already (one lock per batch).
  void collect();
  bool empty() const noexcept { return waiting_.empty(); }
  // Swaps everything waiting into batch (given empty: its capacity is kept for the next round),
  // each topic's publications together and in their order, topics in the order of their first
  // publication. True when the batch holds several topics.
  bool take(std::vector<MessageRef>& batch);

 private:
  std::vector<MessageRef> waiting_;
  std::vector<MessageRef> collected_;  // collect()'s spare, swapped with remote_ under the lock
  std::mutex remote_mutex_;
  std::vector<MessageRef> remote_;

  // take()'s scratch when topics interleave, kept for the next batch.
  struct Grouping {
    std::string_view topic;
    std::size_t first;     // where the topic's first publication is in the batch
    std::size_t position;  // where this one is
  };
  std::vector<Grouping> grouping_;
};

}  // namespace pylon::pubsub
