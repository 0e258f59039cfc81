// Presence in Redis for the Redis engine (docs/cluster.md "Presence"). Per topic a hash
// prefix+"presence:"+topic (client id → the member's user and info) and a sorted set
// prefix+"presence-expiry:"+topic (client id → the millisecond, by Redis's clock, after which
// the entry no longer counts). Redis 7.0 has no per-field TTL (HEXPIRE came in 7.4), hence the
// sorted set.
//
// Each instance keeps its own members here as well and refreshes them (one script per topic, up
// to kRefreshBatch members a call) every third of their TTL, and all of them at once when the
// publisher connection comes back (Redis may have restarted empty). Entries past their expiry are
// dropped by every refresh and every read of the topic, and both keys expire with their TTL when
// nobody refreshes them: a SIGKILLed instance's members are gone within the TTL.
//
// Leaves made while the publisher is down are sent when it is back. Engine loop only (the
// RedisEngine owns it; redis_engine.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "net/timer_wheel.hpp"
#include "pubsub/cluster_engine.hpp"

struct redisAsyncContext;
struct redisReply;

namespace pylon::net {
class EventLoop;
}

namespace pylon::cluster {

class RedisPresence final : net::TimerNode {
 public:
  static constexpr std::size_t kRefreshBatch = 500;  // members per script call
  static constexpr std::uint64_t kTickMs = 1000;

  RedisPresence(std::string prefix, net::EventLoop& loop);
  ~RedisPresence();
  RedisPresence(const RedisPresence&) = delete;
  RedisPresence& operator=(const RedisPresence&) = delete;

  // The scripts' text, loaded by the publisher's handshake (SCRIPT LOAD) into the SHA-1 strings.
  static std::string_view write_script() noexcept;
  static std::string_view read_script() noexcept;
  std::string write_sha, read_sha;

  // The publisher connection is ready: every member is written again, and the leaves kept.
  void publisher_ready(redisAsyncContext* publisher);
  void publisher_lost() noexcept { publisher_ = nullptr; }

  void join(std::string topic, PresenceMember member, std::uint64_t ttl_ms);
  void leave(std::string topic, std::string client);
  void read(std::string topic, pubsub::PresenceDone done);

  // This instance's members, every topic together.
  std::size_t members() const noexcept { return members_; }

  // A member as its hash field's value: the user's length in decimal, ':', the user, the info.
  static std::string encode(const PresenceMember& member);
  // Decodes a field and its value; false when the value is not of that shape.
  static bool decode(std::string_view client, std::string_view value, PresenceMember& member);
  // HGETALL's answer; false when it is not an array of strings in pairs.
  static bool decode_all(const redisReply* reply, PresenceMembers& members);

 private:
  struct Topic {
    std::uint64_t ttl_ms = 0;
    std::uint64_t refreshed_ms = 0;
    std::unordered_map<std::string, std::string> values;  // client → encoded member
  };

  // Writes topic's members (all, or the one client given) with a fresh expiry.
  void write(const std::string& topic, const Topic& entry, const std::string* client = nullptr);
  void send_leave(const std::string& topic, const std::string& client);
  static void on_tick(net::TimerNode& node);
  void refresh_due();

  const std::string prefix_;
  net::EventLoop& loop_;
  redisAsyncContext* publisher_ = nullptr;
  std::unordered_map<std::string, Topic> topics_;
  std::vector<std::pair<std::string, std::string>> leaves_;  // made while the publisher was down
  std::size_t members_ = 0;
};

}  // namespace pylon::cluster
