// The memory engine's presence (docs/protocol.md "Presence"): per topic, the members joined on
// this instance, by client id. The Redis engine keeps the cluster's in Redis
// (cluster/redis_presence.hpp) and this instance's own in one of these, which it refreshes there.
//
// Threads: any. Topics are spread over kShards shards by hash, one mutex each: a join, a leave
// and a read take one shard's lock; members() copies out under it.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pylon/presence.hpp"

namespace pylon::pubsub {

class PresenceTable {
 public:
  static constexpr std::size_t kShards = 16;

  // false: that client was already a member of topic (its entry is replaced).
  bool join(std::string_view topic, PresenceMember member);
  // false: it was not a member.
  bool leave(std::string_view topic, std::string_view client);
  PresenceMembers members(std::string_view topic) const;
  // Every topic with its members, one shard locked at a time (the Redis engine's refresh).
  void for_each(
      const std::function<void(const std::string& topic,
                               const std::unordered_map<std::string, PresenceMember>& members)>&
          visit) const;
  // Members of every topic together; any thread, for the metrics.
  std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };
  template <typename Value>
  using Map = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;
  struct alignas(64) Shard {
    mutable std::mutex mutex;
    Map<std::unordered_map<std::string, PresenceMember>> topics;
  };
  Shard& shard_of(std::string_view topic) const noexcept {
    return shards_[StringHash{}(topic) % kShards];
  }

  mutable std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> size_{0};
};

// The answer of presence_stats: members, and distinct non-empty user ids among them.
struct PresenceStats {
  std::size_t clients = 0;
  std::size_t users = 0;
};
PresenceStats presence_stats(const PresenceMembers& members);

}  // namespace pylon::pubsub
