#include "server/admission.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string_view>

#include "server/client_ip.hpp"

namespace pylon::detail {
namespace {

constexpr std::uint64_t kSweepIntervalMs = 1000;
constexpr double kFailureWindowSeconds = 60;  // auth_failures_per_minute

std::uint32_t whole_seconds(std::uint64_t ms) noexcept {
  return static_cast<std::uint32_t>(std::max<std::uint64_t>(1, (ms + 999) / 1000));
}

}  // namespace

ClientKey client_key(const net::PeerAddress& peer, std::span<const net::Cidr> trusted,
                     const http::Request& request) {
  ClientKey key{.bytes = peer.bytes, .family = peer.family};
  if (!trusted.empty()) {
    // A bare address parses as a range of its full length; anything else a proxy wrote is not
    // an address, and the peer (the proxy) stands for the client.
    const std::optional<net::Cidr> named = net::parse_cidr(real_client_ip(peer, trusted, request));
    if (named && named->prefix == (named->family == AF_INET ? 32u : 128u))
      key = {.bytes = named->address, .family = static_cast<std::uint8_t>(named->family)};
  }
  // An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d (RFC 4291 §2.5.5.2).
  constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (key.family == AF_INET6 &&
      std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), key.bytes.begin())) {
    std::copy(key.bytes.begin() + 12, key.bytes.end(), key.bytes.begin());
    std::fill(key.bytes.begin() + 4, key.bytes.end(), 0);
    key.family = AF_INET;
  }
  if (key.family == AF_INET6) std::fill(key.bytes.begin() + 8, key.bytes.end(), 0);
  return key;
}

void TokenBucket::refill(double rate_per_second, double capacity, std::uint64_t now_ms) noexcept {
  if (now_ms <= updated_ms) return;
  tokens = std::min(capacity,
                    tokens + rate_per_second * static_cast<double>(now_ms - updated_ms) / 1000);
  updated_ms = now_ms;
}

std::uint64_t TokenBucket::wait_ms(double rate_per_second) const noexcept {
  if (tokens >= 1) return 0;
  return static_cast<std::uint64_t>(std::ceil((1 - tokens) * 1000 / rate_per_second));
}

Admission::Admission(const Config& config)
    : connections_per_ip_(config.max_connections_per_ip),
      handshake_rate_(static_cast<double>(config.handshake_rate_per_ip)),
      handshake_burst_(static_cast<double>(config.handshake_burst_per_ip)),
      failures_per_minute_(static_cast<double>(config.auth_failures_per_minute)),
      lockout_ms_(static_cast<std::uint64_t>(config.auth_lockout * 1000)),
      admission_rate_(static_cast<double>(config.admission_rate)),
      admission_burst_(static_cast<double>(config.admission_burst)),
      shard_capacity_(std::max<std::size_t>(1, config.max_tracked_ips / kShards)),
      per_ip_(connections_per_ip_ > 0 || handshake_rate_ > 0 || failures_per_minute_ > 0),
      pace_{.tokens = admission_burst_} {}

std::size_t Admission::KeyHash::operator()(const ClientKey& key) const noexcept {
  const std::string_view bytes(reinterpret_cast<const char*>(key.bytes.data()), key.bytes.size());
  return std::hash<std::string_view>{}(bytes) ^ key.family;
}

Admission::Shard& Admission::shard_of(const ClientKey& client) noexcept {
  // The table's own hash uses the low bits for buckets; the shard takes the high ones.
  return shards_[(KeyHash{}(client) >> 56) % kShards];
}

void Admission::refill(Entry& entry, std::uint64_t now_ms) const noexcept {
  entry.handshakes.refill(handshake_rate_, handshake_burst_, now_ms);
  entry.failures.refill(failures_per_minute_ / kFailureWindowSeconds, failures_per_minute_, now_ms);
}

void Admission::forget_idle(Shard& shard, std::uint64_t now_ms, bool strict) {
  for (auto item = shard.entries.begin(); item != shard.entries.end();) {
    Entry& entry = item->second;
    bool idle = entry.connections == 0 && entry.locked_until_ms <= now_ms;
    if (idle && strict) {
      refill(entry, now_ms);
      idle = entry.handshakes.tokens >= handshake_burst_ &&
             entry.failures.tokens >= failures_per_minute_;
    }
    item = idle ? shard.entries.erase(item) : std::next(item);
  }
  shard.swept_ms = now_ms;
}

Admission::Table::iterator Admission::find_or_add(Shard& shard, const ClientKey& client,
                                                  std::uint64_t now_ms) {
  if (now_ms >= shard.swept_ms + kSweepIntervalMs) forget_idle(shard, now_ms, true);
  if (auto found = shard.entries.find(client); found != shard.entries.end()) return found;
  if (shard.entries.size() >= shard_capacity_) {
    forget_idle(shard, now_ms, false);
    if (shard.entries.size() >= shard_capacity_) return shard.entries.end();
  }
  const Entry fresh{.handshakes = {.tokens = handshake_burst_, .updated_ms = now_ms},
                    .failures = {.tokens = failures_per_minute_, .updated_ms = now_ms}};
  return shard.entries.emplace(client, fresh).first;
}

std::optional<AdmissionRefusal> Admission::admit(const ClientKey& client, std::uint64_t now_ms) {
  if (!per_ip_) return take_pace(now_ms);
  Shard& shard = shard_of(client);
  std::lock_guard lock(shard.mutex);
  const auto found = find_or_add(shard, client, now_ms);
  if (found == shard.entries.end())
    return AdmissionRefusal{ws::UpgradeError::ip_table_full, kTableFullRetryAfterS};
  Entry& entry = found->second;
  if (entry.locked_until_ms > now_ms)
    return AdmissionRefusal{ws::UpgradeError::ip_locked_out,
                            whole_seconds(entry.locked_until_ms - now_ms)};
  if (connections_per_ip_ > 0 && entry.connections >= connections_per_ip_)
    return AdmissionRefusal{ws::UpgradeError::ip_connection_limit, kConnectionCapRetryAfterS};
  refill(entry, now_ms);
  if (handshake_rate_ > 0) {
    if (entry.handshakes.tokens < 1)
      return AdmissionRefusal{ws::UpgradeError::ip_handshake_rate,
                              whole_seconds(entry.handshakes.wait_ms(handshake_rate_))};
  }
  // The pace last: a client its own limits refuse takes no place that others wait for.
  if (std::optional<AdmissionRefusal> refusal = take_pace(now_ms)) return refusal;
  if (handshake_rate_ > 0) entry.handshakes.tokens -= 1;
  if (connections_per_ip_ > 0) ++entry.connections;
  return std::nullopt;
}

std::optional<AdmissionRefusal> Admission::take_pace(std::uint64_t now_ms) {
  if (admission_rate_ <= 0) return std::nullopt;
  std::lock_guard lock(pace_mutex_);
  pace_.refill(admission_rate_, admission_burst_, now_ms);
  if (pace_.tokens >= 1) {
    pace_.tokens -= 1;
    return std::nullopt;
  }
  // The refused client's place: one pace interval behind the last one told to wait, or the next
  // token when nobody waits; never beyond kMaxQueueRetryAfterS.
  const auto now = static_cast<double>(now_ms);
  queue_end_ms_ = std::max(queue_end_ms_ + 1000 / admission_rate_,
                           now + static_cast<double>(pace_.wait_ms(admission_rate_)));
  queue_end_ms_ = std::min(queue_end_ms_, now + kMaxQueueRetryAfterS * 1000.0);
  return AdmissionRefusal{
      ws::UpgradeError::admission_rate,
      whole_seconds(static_cast<std::uint64_t>(std::ceil(queue_end_ms_ - now)))};
}

void Admission::release(const ClientKey& client) noexcept {
  Shard& shard = shard_of(client);
  std::lock_guard lock(shard.mutex);
  if (const auto found = shard.entries.find(client);
      found != shard.entries.end() && found->second.connections > 0)
    --found->second.connections;
}

bool Admission::authentication_failed(const ClientKey& client, std::uint64_t now_ms) {
  if (failures_per_minute_ <= 0) return false;
  Shard& shard = shard_of(client);
  std::lock_guard lock(shard.mutex);
  const auto found = find_or_add(shard, client, now_ms);
  if (found == shard.entries.end()) return false;  // full: admit() refuses this IP anyway
  Entry& entry = found->second;
  refill(entry, now_ms);
  entry.failures.tokens -= 1;
  // The failure that empties the bucket locks the IP out: auth_failures_per_minute failures in
  // a row, or more than that many a minute on average.
  if (entry.failures.tokens >= 1 || entry.locked_until_ms > now_ms) return false;
  entry.locked_until_ms = now_ms + lockout_ms_;
  lockouts_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::size_t Admission::tracked_ips() const {
  std::size_t count = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    count += shard.entries.size();
  }
  return count;
}

std::size_t Admission::locked_out_ips(std::uint64_t now_ms) const {
  std::size_t count = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    count += static_cast<std::size_t>(std::count_if(
        shard.entries.begin(), shard.entries.end(),
        [now_ms](const Table::value_type& item) { return item.second.locked_until_ms > now_ms; }));
  }
  return count;
}

}  // namespace pylon::detail
