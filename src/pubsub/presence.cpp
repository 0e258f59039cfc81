#include "pubsub/presence.hpp"

#include <unordered_set>

namespace pylon::pubsub {

bool PresenceTable::join(std::string_view topic, PresenceMember member) {
  Shard& shard = shard_of(topic);
  std::lock_guard lock(shard.mutex);
  auto found = shard.topics.find(topic);
  if (found == shard.topics.end()) found = shard.topics.try_emplace(std::string(topic)).first;
  std::string client = member.client;
  const auto [entry, added] = found->second.insert_or_assign(std::move(client), std::move(member));
  if (added) size_.fetch_add(1, std::memory_order_relaxed);
  return added;
}

bool PresenceTable::leave(std::string_view topic, std::string_view client) {
  Shard& shard = shard_of(topic);
  std::lock_guard lock(shard.mutex);
  const auto found = shard.topics.find(topic);
  if (found == shard.topics.end() || found->second.erase(std::string(client)) == 0) return false;
  if (found->second.empty()) shard.topics.erase(found);
  size_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

PresenceMembers PresenceTable::members(std::string_view topic) const {
  PresenceMembers out;
  Shard& shard = shard_of(topic);
  std::lock_guard lock(shard.mutex);
  const auto found = shard.topics.find(topic);
  if (found == shard.topics.end()) return out;
  out.reserve(found->second.size());
  for (const auto& [client, member] : found->second) out.push_back(member);
  return out;
}

void PresenceTable::for_each(
    const std::function<void(
        const std::string&, const std::unordered_map<std::string, PresenceMember>&)>& visit) const {
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    for (const auto& [topic, members] : shard.topics) visit(topic, members);
  }
}

PresenceStats presence_stats(const PresenceMembers& members) {
  std::unordered_set<std::string_view> users;
  for (const PresenceMember& member : members)
    if (!member.user.empty()) users.insert(member.user);
  return {.clients = members.size(), .users = users.size()};
}

}  // namespace pylon::pubsub
