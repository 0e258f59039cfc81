#include "cluster/redis_presence.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <charconv>
#include <memory>

#include "net/event_loop.hpp"

namespace pylon::cluster {
namespace {

// KEYS: hash, sorted set. ARGV: TTL (ms), then client, value pairs. Writes the pairs with an
// expiry TTL from now (Redis's clock: instances' clocks may differ), drops the expired entries,
// and makes the keys live at least as long as the entries just written.
constexpr std::string_view kWriteScript = R"lua(
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], now_ms + ttl, ARGV[i])
end
for _, client in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms)) do
  redis.call('HDEL', KEYS[1], client)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
return 0
)lua";

// KEYS: hash, sorted set. Drops the expired entries, answers the rest (HGETALL).
constexpr std::string_view kReadScript = R"lua(
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for _, client in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms)) do
  redis.call('HDEL', KEYS[1], client)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
return redis.call('HGETALL', KEYS[1])
)lua";

// false: hiredis refused the command (the context is going away); the callback will not run.
bool send_argv(redisAsyncContext* context, const std::vector<std::string>& arguments,
               redisCallbackFn* callback = nullptr, void* data = nullptr) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(arguments.size());
  lengths.reserve(arguments.size());
  for (const std::string& argument : arguments) {
    argv.push_back(argument.data());
    lengths.push_back(argument.size());
  }
  return redisAsyncCommandArgv(context, callback, data, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) == REDIS_OK;
}

// A read's callback: its PresenceDone, owned until the reply (or the context's end) arrives.
void on_read_reply(redisAsyncContext*, void* reply_pointer, void* data) {
  const std::unique_ptr<pubsub::PresenceDone> done(static_cast<pubsub::PresenceDone*>(data));
  PresenceMembers members;
  const auto* reply = static_cast<const redisReply*>(reply_pointer);
  if (reply == nullptr || !RedisPresence::decode_all(reply, members)) return (*done)(nullptr);
  (*done)(&members);
}

}  // namespace

RedisPresence::RedisPresence(std::string prefix, net::EventLoop& loop)
    : prefix_(std::move(prefix)), loop_(loop) {
  fire = &RedisPresence::on_tick;
  loop_.timers().schedule(*this, loop_.now_ms() + kTickMs);
}

RedisPresence::~RedisPresence() {
  net::TimerWheel::cancel(*this);
}

std::string_view RedisPresence::write_script() noexcept {
  return kWriteScript;
}
std::string_view RedisPresence::read_script() noexcept {
  return kReadScript;
}

std::string RedisPresence::encode(const PresenceMember& member) {
  return std::to_string(member.user.size()) + ':' + member.user + member.info;
}

bool RedisPresence::decode(std::string_view client, std::string_view value,
                           PresenceMember& member) {
  std::size_t length = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), length);
  const auto digits = static_cast<std::size_t>(end - value.data());
  if (error != std::errc() || digits >= value.size() || value[digits] != ':' ||
      value.size() - digits - 1 < length)
    return false;
  member.client = client;
  member.user = value.substr(digits + 1, length);
  member.info = value.substr(digits + 1 + length);
  return true;
}

bool RedisPresence::decode_all(const redisReply* reply, PresenceMembers& members) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) return false;
  members.reserve(reply->elements / 2);
  for (std::size_t index = 0; index < reply->elements; index += 2) {
    const redisReply* client = reply->element[index];
    const redisReply* value = reply->element[index + 1];
    if (client->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING) return false;
    PresenceMember member;
    if (!decode(std::string_view(client->str, client->len),
                std::string_view(value->str, value->len), member))
      continue;  // not written by pylon: not a member
    members.push_back(std::move(member));
  }
  return true;
}

void RedisPresence::publisher_ready(redisAsyncContext* publisher) {
  publisher_ = publisher;
  for (const auto& [topic, client] : leaves_) send_leave(topic, client);
  leaves_.clear();
  leaves_.shrink_to_fit();
  for (auto& [topic, entry] : topics_) {
    write(topic, entry);
    entry.refreshed_ms = loop_.now_ms();
  }
}

void RedisPresence::join(std::string topic, PresenceMember member, std::uint64_t ttl_ms) {
  Topic& entry = topics_[topic];
  if (entry.values.empty()) entry.refreshed_ms = loop_.now_ms();
  entry.ttl_ms = ttl_ms;
  std::string client = member.client;
  const auto [value, added] = entry.values.insert_or_assign(std::move(client), encode(member));
  if (added) ++members_;
  if (publisher_ != nullptr) write(topic, entry, &value->first);
}

void RedisPresence::leave(std::string topic, std::string client) {
  const auto found = topics_.find(topic);
  if (found == topics_.end() || found->second.values.erase(client) == 0) return;
  --members_;
  if (found->second.values.empty()) topics_.erase(found);
  if (publisher_ != nullptr)
    send_leave(topic, client);
  else
    leaves_.emplace_back(std::move(topic), std::move(client));
}

void RedisPresence::read(std::string topic, pubsub::PresenceDone done) {
  if (publisher_ == nullptr) return done(nullptr);
  auto owned = std::make_unique<pubsub::PresenceDone>(std::move(done));
  if (!send_argv(publisher_,
                 {"EVALSHA", read_sha, "2", prefix_ + "presence:" + topic,
                  prefix_ + "presence-expiry:" + topic},
                 &on_read_reply, owned.get()))
    return (*owned)(nullptr);
  owned.release();  // on_read_reply owns it now
}

void RedisPresence::write(const std::string& topic, const Topic& entry, const std::string* client) {
  std::vector<std::string> arguments{"EVALSHA",
                                     write_sha,
                                     "2",
                                     prefix_ + "presence:" + topic,
                                     prefix_ + "presence-expiry:" + topic,
                                     std::to_string(entry.ttl_ms)};
  const std::size_t fixed = arguments.size();
  const auto flush = [&] {
    send_argv(publisher_, arguments);
    arguments.resize(fixed);
  };
  if (client != nullptr) {
    arguments.push_back(*client);
    arguments.push_back(entry.values.at(*client));
    return flush();
  }
  for (const auto& [id, value] : entry.values) {
    arguments.push_back(id);
    arguments.push_back(value);
    if (arguments.size() - fixed == 2 * kRefreshBatch) flush();
  }
  if (arguments.size() > fixed) flush();
}

void RedisPresence::send_leave(const std::string& topic, const std::string& client) {
  send_argv(publisher_, {"HDEL", prefix_ + "presence:" + topic, client});
  send_argv(publisher_, {"ZREM", prefix_ + "presence-expiry:" + topic, client});
}

void RedisPresence::on_tick(net::TimerNode& node) {
  auto& self = static_cast<RedisPresence&>(node);
  self.refresh_due();
  self.loop_.timers().schedule(self, self.loop_.now_ms() + kTickMs);
}

// Each topic every third of its TTL: two refreshes may be missed (a slow Redis, a busy loop)
// before its members expire.
void RedisPresence::refresh_due() {
  if (publisher_ == nullptr) return;
  const std::uint64_t now = loop_.now_ms();
  for (auto& [topic, entry] : topics_) {
    if (now < entry.refreshed_ms + entry.ttl_ms / 3) continue;
    write(topic, entry);
    entry.refreshed_ms = now;
  }
}

}  // namespace pylon::cluster
