// The history of topics on this instance, the memory engine's (docs/protocol.md "History and
// recovery"): per topic a stream holding a bounded ring of its latest publications (by count and
// by age), its latest offset (publications are numbered 1, 2, 3 … without gaps) and its epoch, a
// random name given when the stream is created. A stream that is lost (the process restarted, or
// it expired idle) comes back under a new epoch, so its old offsets are never taken for new ones.
//
// Threads: any. Streams are spread over kShards shards by topic hash, one mutex each. A Locked
// handle holds its topic's shard lock: under it the publisher takes the next offset, stores the
// message and hands it to the loops (so every loop receives a topic's publications in offset
// order), and a subscriber reads what it missed. Entries share the published message (MessageRef):
// nothing is copied, and the ring allocates only while it grows towards its size.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pubsub/message.hpp"

namespace pylon::pubsub {

struct HistoryPolicy {
  std::size_t size = 1;      // publications kept per topic, at least 1
  std::uint64_t ttl_ms = 1;  // how long each is kept
  bool latest_only = false;  // a recovery sends the latest publication only ("cache" mode)
};

// How much of a stream a subscriber that last saw (since_offset, since_epoch) can be sent, from
// what the stream holds: its latest offset `top`, its epoch, and the offset of the oldest
// publication it still keeps (`first_kept`; top + 1 when it keeps none). One decision for every
// engine: the memory engine's rings and the Redis engine's streams (cluster/redis_history.hpp).
// A new random epoch (14 hex digits): unique, not secret.
std::string new_epoch();

enum class Recovery : std::uint8_t {
  nothing_missed,  // the subscriber is at the top
  after_since,     // send every kept publication after since_offset
  latest,          // latest-only stream: send its latest publication
  impossible,      // another epoch, a position never given, or a ring that no longer reaches back
};
Recovery plan_recovery(std::uint64_t top, std::string_view epoch, std::uint64_t first_kept,
                       std::uint64_t since_offset, std::string_view since_epoch, bool latest_only);

class History {
 public:
  static constexpr std::size_t kShards = 64;
  // Shards one sweep() looks at: the loops' ticks together cover them all every few seconds.
  static constexpr std::size_t kShardsPerSweep = 16;

  History() = default;
  History(const History&) = delete;
  History& operator=(const History&) = delete;

 private:
  struct Entry {
    MessageRef message;
    std::uint64_t stored_ms = 0;
  };
  // A circular buffer that grows (doubling) up to the policy's size, then overwrites.
  class Ring {
   public:
    std::size_t count() const noexcept { return count_; }
    const Entry& at(std::size_t index) const noexcept {
      return slots_[(head_ + index) % slots_.size()];
    }
    const Entry& front() const noexcept { return at(0); }
    const Entry& back() const noexcept { return at(count_ - 1); }
    void push(Entry entry, std::size_t capacity);
    void pop_front() noexcept;

   private:
    std::vector<Entry> slots_;
    std::size_t head_ = 0, count_ = 0;
  };
  struct Stream {
    HistoryPolicy policy;
    std::string epoch;
    std::uint64_t top = 0;
    std::uint64_t touched_ms = 0;  // created or last appended to
    Ring ring;
  };

 public:
  // A topic's stream with its shard locked; expired entries are already trimmed.
  class Locked {
   public:
    std::uint64_t top() const noexcept;  // the latest offset given; 0 before the first
    const std::string& epoch() const noexcept;
    // Keeps message, whose offset must be top() + 1, dropping the oldest beyond the size.
    void append(MessageRef message);
    // What a subscriber that last saw `offset` of `epoch` missed, appended to `missed` oldest
    // first (latest-only streams: the latest publication, if newer than offset or of another
    // epoch). false, with nothing appended, when the history cannot tell: another epoch, an
    // offset ahead of the stream, or a ring that no longer reaches back to offset + 1.
    bool read_after(std::uint64_t offset, std::string_view epoch,
                    std::vector<MessageRef>& missed) const;

   private:
    friend class History;
    Locked(History& history, std::unique_lock<std::mutex> lock, Stream& stream, std::uint64_t now)
        : history_(&history), lock_(std::move(lock)), stream_(&stream), now_ms_(now) {}
    History* history_;
    std::unique_lock<std::mutex> lock_;
    Stream* stream_;
    std::uint64_t now_ms_;
  };

  // The stream of topic, created (with a new epoch and the policy) when it has none.
  Locked lock(std::string_view topic, const HistoryPolicy& policy, std::uint64_t now_ms);
  // Trims expired entries and frees streams left empty and idle past their TTL, in the next
  // kShardsPerSweep shards (a cursor shared by every caller).
  void sweep(std::uint64_t now_ms);

  // For the metrics; any thread.
  std::size_t publications() const noexcept {
    return publications_.load(std::memory_order_relaxed);
  }
  std::size_t bytes() const noexcept { return bytes_.load(std::memory_order_relaxed); }
  std::size_t streams() const noexcept { return streams_.load(std::memory_order_relaxed); }

  // The steady clock in milliseconds, the time base of every now_ms.
  static std::uint64_t now_ms() noexcept;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };
  struct alignas(64) Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Stream, StringHash, std::equal_to<>> streams;
  };

  void trim(Stream& stream, std::uint64_t now_ms) noexcept;
  void drop_oldest(Stream& stream) noexcept;

  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> sweep_cursor_{0};
  std::atomic<std::size_t> publications_{0}, bytes_{0}, streams_{0};
};

}  // namespace pylon::pubsub
