#include "pubsub/history.hpp"

#include <chrono>
#include <random>

namespace pylon::pubsub {

// 56 random bits as 14 hex digits: short enough for the string's inline buffer (no allocation),
// and two epochs of one topic colliding is out of reach. Not a secret: only unique.
std::string new_epoch() {
  thread_local std::mt19937_64 generator{(std::uint64_t{std::random_device{}()} << 32) |
                                         std::random_device{}()};
  std::uint64_t bits = generator();
  std::string epoch(14, '0');
  for (char& digit : epoch) {
    digit = "0123456789abcdef"[bits & 0xF];
    bits >>= 4;
  }
  return epoch;
}

void History::Ring::push(Entry entry, std::size_t capacity) {
  if (count_ == slots_.size()) {
    // Grows towards capacity by doubling: a topic published to rarely keeps a small ring.
    std::vector<Entry> grown;
    grown.reserve(std::min(capacity, std::max<std::size_t>(4, slots_.size() * 2)));
    for (std::size_t index = 0; index < count_; ++index)
      grown.push_back(std::move(slots_[(head_ + index) % slots_.size()]));
    grown.resize(grown.capacity());
    slots_.swap(grown);
    head_ = 0;
  }
  slots_[(head_ + count_) % slots_.size()] = std::move(entry);
  ++count_;
}

void History::Ring::pop_front() noexcept {
  slots_[head_].message.reset();
  head_ = (head_ + 1) % slots_.size();
  --count_;
}

std::uint64_t History::now_ms() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

History::Locked History::lock(std::string_view topic, const HistoryPolicy& policy,
                              std::uint64_t now_ms) {
  Shard& shard = shards_[std::hash<std::string_view>{}(topic) % kShards];
  std::unique_lock guard(shard.mutex);
  auto found = shard.streams.find(topic);
  if (found == shard.streams.end()) {
    found = shard.streams.emplace(std::string(topic), Stream{}).first;
    Stream& created = found->second;
    created.policy = policy;
    created.epoch = new_epoch();
    created.touched_ms = now_ms;
    streams_.fetch_add(1, std::memory_order_relaxed);
  }
  trim(found->second, now_ms);
  return Locked(*this, std::move(guard), found->second, now_ms);
}

void History::drop_oldest(Stream& stream) noexcept {
  publications_.fetch_sub(1, std::memory_order_relaxed);
  bytes_.fetch_sub(stream.ring.front().message->frame.size(), std::memory_order_relaxed);
  stream.ring.pop_front();
}

void History::trim(Stream& stream, std::uint64_t now_ms) noexcept {
  while (stream.ring.count() > 0 && stream.ring.front().stored_ms + stream.policy.ttl_ms <= now_ms)
    drop_oldest(stream);
}

void History::sweep(std::uint64_t now_ms) {
  const std::size_t first = sweep_cursor_.fetch_add(kShardsPerSweep, std::memory_order_relaxed);
  for (std::size_t index = 0; index < kShardsPerSweep; ++index) {
    Shard& shard = shards_[(first + index) % kShards];
    std::lock_guard guard(shard.mutex);
    for (auto it = shard.streams.begin(); it != shard.streams.end();) {
      Stream& stream = it->second;
      trim(stream, now_ms);
      // Kept while it has publications, or was touched within its TTL: a subscriber that
      // read its epoch a moment ago can still recover against it.
      if (stream.ring.count() > 0 || stream.touched_ms + stream.policy.ttl_ms > now_ms) {
        ++it;
        continue;
      }
      it = shard.streams.erase(it);
      streams_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
}

std::uint64_t History::Locked::top() const noexcept {
  return stream_->top;
}

const std::string& History::Locked::epoch() const noexcept {
  return stream_->epoch;
}

void History::Locked::append(MessageRef message) {
  Stream& stream = *stream_;
  stream.top = message->offset;
  stream.touched_ms = now_ms_;
  if (stream.ring.count() == stream.policy.size) history_->drop_oldest(stream);
  history_->publications_.fetch_add(1, std::memory_order_relaxed);
  history_->bytes_.fetch_add(message->frame.size(), std::memory_order_relaxed);
  stream.ring.push({std::move(message), now_ms_}, stream.policy.size);
}

Recovery plan_recovery(std::uint64_t top, std::string_view epoch, std::uint64_t first_kept,
                       std::uint64_t since_offset, std::string_view since_epoch, bool latest_only) {
  const bool same_epoch = since_epoch == epoch;
  if (same_epoch && since_offset > top) return Recovery::impossible;  // never given
  if (same_epoch && since_offset == top) return Recovery::nothing_missed;
  // The latest value is the whole state: it recovers any position, of any epoch.
  if (latest_only) return first_kept <= top ? Recovery::latest : Recovery::impossible;
  if (!same_epoch || since_offset + 1 < first_kept) return Recovery::impossible;
  return Recovery::after_since;
}

bool History::Locked::read_after(std::uint64_t offset, std::string_view epoch,
                                 std::vector<MessageRef>& missed) const {
  const Stream& stream = *stream_;
  const Ring& ring = stream.ring;
  const std::uint64_t first_kept = ring.count() > 0 ? ring.front().message->offset : stream.top + 1;
  switch (plan_recovery(stream.top, stream.epoch, first_kept, offset, epoch,
                        stream.policy.latest_only)) {
    case Recovery::nothing_missed:
      return true;
    case Recovery::latest:
      missed.push_back(ring.back().message);
      return true;
    case Recovery::impossible:
      return false;
    case Recovery::after_since:
      break;
  }
  for (std::size_t index = offset + 1 - first_kept; index < ring.count(); ++index)
    missed.push_back(ring.at(index).message);
  return true;
}

}  // namespace pylon::pubsub
