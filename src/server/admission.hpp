// Abuse limits on WebSocket upgrades (issue 13; docs/security.md "Abuse limits"). Per client IP:
// a cap on open WebSockets, a handshake token bucket, and a lockout after repeated failed
// authentications. Over all clients: an admission pace, so that a reconnect storm is let in at a
// configured rate instead of all at once.
//
// One Admission per server, shared by every worker. Client IPs live in a table of kShards
// shards, each behind its own mutex, touched only at upgrades, at a refused authentication and at
// the close of a counted WebSocket: never per message. Memory is bounded twice: an entry with no
// open connection, no lockout and full buckets behaves exactly like no entry, so it is forgotten
// (each shard is swept at most once a second); and at most max_tracked_ips entries exist.
//
// Times are the caller's monotonic milliseconds (its loop's clock), so tests drive the clock; a
// time older than an entry's last update (another loop's clock, read a little earlier) counts as
// no time passed. Thread: any.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>

#include "http/request_parser.hpp"
#include "net/cidr.hpp"
#include "net/socket.hpp"
#include "pylon/config.hpp"
#include "ws/upgrade.hpp"

namespace pylon::detail {

// The IP a limit applies to: IPv4 in the first 4 bytes, IPv6 cut to its /64 (one subscriber's
// prefix, which costs an attacker nothing to vary within).
struct ClientKey {
  std::array<std::uint8_t, 16> bytes{};
  std::uint8_t family = 0;  // AF_INET or AF_INET6
  bool operator==(const ClientKey&) const = default;
};

// The real client (client_ip.hpp: behind a trusted proxy, the address it names) as a key; the
// peer's own address when a trusted proxy names something that is not an IP address.
ClientKey client_key(const net::PeerAddress& peer, std::span<const net::Cidr> trusted,
                     const http::Request& request);

// Tokens that refill at a steady rate up to a capacity (the burst). Rate and capacity are the
// owner's, passed in, so that a table entry holds only the changing part.
struct TokenBucket {
  double tokens = 0;
  std::uint64_t updated_ms = 0;

  void refill(double rate_per_second, double capacity, std::uint64_t now_ms) noexcept;
  // Milliseconds until one whole token, at this rate (0 when there is one).
  std::uint64_t wait_ms(double rate_per_second) const noexcept;
};

// An upgrade refused by a limit: one of the admission rows of the refusal table (ws/upgrade.hpp)
// and the Retry-After the client is given, in seconds.
struct AdmissionRefusal {
  ws::UpgradeError reason;
  std::uint32_t retry_after_s;
};

class Admission {
 public:
  static constexpr std::size_t kShards = 16;
  // A client at its connection cap can only wait until one of its connections closes: a retry
  // cannot hurry that, so it is told to stay away this long.
  static constexpr std::uint32_t kConnectionCapRetryAfterS = 10;
  // The table is full of IPs that hold connections or lockouts: nothing frees up before a sweep.
  static constexpr std::uint32_t kTableFullRetryAfterS = 5;
  // The admission pace never promises a place further out than this.
  static constexpr std::uint32_t kMaxQueueRetryAfterS = 60;

  // Reads the limit keys of the configuration (docs/configuration.md "Abuse limits").
  explicit Admission(const Config& config);

  // Whether any limit is configured: when not, the server does not call admit().
  bool enabled() const noexcept { return per_ip_ || admission_rate_ > 0; }
  // Whether admitted upgrades hold a place against max_connections_per_ip until release().
  bool counts_connections() const noexcept { return connections_per_ip_ > 0; }

  // A well-formed upgrade from `client`: nullopt when admitted (it took a handshake token of its
  // IP and of the pace, and counts against the IP's cap when counts_connections()), else why not.
  // Checked in this order: room in the table for a new IP, lockout, connection cap, the IP's
  // handshake rate, the pace; a refused upgrade takes no token.
  std::optional<AdmissionRefusal> admit(const ClientKey& client, std::uint64_t now_ms);
  // An admitted upgrade's WebSocket closed, or the upgrade was refused after admit() after all.
  // Only when counts_connections().
  void release(const ClientKey& client) noexcept;
  // The route refused the upgrade with 401. Returns true when this failure locked the IP out.
  bool authentication_failed(const ClientKey& client, std::uint64_t now_ms);

  // For the metrics, at scrape time: IPs in the table, IPs locked out now, lockouts so far.
  std::size_t tracked_ips() const;
  std::size_t locked_out_ips(std::uint64_t now_ms) const;
  std::uint64_t lockouts() const noexcept { return lockouts_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::uint32_t connections = 0;
    TokenBucket handshakes;
    TokenBucket failures;
    std::uint64_t locked_until_ms = 0;
  };
  struct KeyHash {
    std::size_t operator()(const ClientKey& key) const noexcept;
  };
  using Table = std::unordered_map<ClientKey, Entry, KeyHash>;
  struct Shard {
    mutable std::mutex mutex;
    Table entries;
    std::uint64_t swept_ms = 0;
  };

  Shard& shard_of(const ClientKey& client) noexcept;
  void refill(Entry& entry, std::uint64_t now_ms) const noexcept;  // both buckets
  // The client's entry, created when there is room (after forgetting what can be); end() when
  // the shard is full. Under the shard's lock.
  Table::iterator find_or_add(Shard& shard, const ClientKey& client, std::uint64_t now_ms);
  // Forgets entries that hold nothing: with `strict`, only those equal to a fresh entry; without,
  // also those whose buckets are still refilling (they lose their rate history, never a
  // connection count or a lockout). Under the shard's lock.
  void forget_idle(Shard& shard, std::uint64_t now_ms, bool strict);
  std::optional<AdmissionRefusal> take_pace(std::uint64_t now_ms);

  std::size_t connections_per_ip_;
  double handshake_rate_, handshake_burst_;
  double failures_per_minute_;
  std::uint64_t lockout_ms_;
  double admission_rate_, admission_burst_;
  std::size_t shard_capacity_;
  bool per_ip_;

  std::array<Shard, kShards> shards_;
  std::mutex pace_mutex_;
  TokenBucket pace_;
  // The end of the virtual queue of clients the pace refused: each is told to come back at its
  // own place in it, so a storm returns spread over time instead of all in the next second.
  double queue_end_ms_ = 0;  // fractional: at 5,000 a second the places are 0.2 ms apart
  std::atomic<std::uint64_t> lockouts_{0};
};

}  // namespace pylon::detail
