#include "server/topic_presence.hpp"

#include <algorithm>
#include <random>

#include "obs/log.hpp"
#include "pubsub/presence.hpp"
#include "pubsub/topic_name.hpp"

namespace pylon {
namespace {

using topic_request::ErrorCode;
using topic_request::Failure;

// {"user":U,"info":I} (no info: none) of one member, as the presence answer lists it.
void append_member(std::string& out, std::string_view user, std::string_view info) {
  out += R"({"user":)";
  obs::append_json_string(out, user);
  if (!info.empty()) {
    out += R"(,"info":)";
    out += info;
  }
  out += '}';
}

}  // namespace

std::uint64_t new_client_id() {
  // Unique among the connections a topic lists, not secret: it is shown to every subscriber.
  thread_local std::mt19937_64 random{std::random_device{}()};
  return random();
}

std::string client_id_text(std::uint64_t client) {
  std::string text(16, '0');
  for (std::size_t index = 16; index-- > 0; client >>= 4)
    text[index] = "0123456789abcdef"[client & 0xF];
  return text;
}

std::string join_leave_topic(std::string_view topic) {
  std::string hidden = "#join_leave:";
  hidden += topic;
  return hidden;
}

TopicPresence::TopicPresence(App& app)
    : app_(app),
      config_(app.config()),
      members_(app.metrics().gauge("pylon_presence_clients",
                                   "Subscriptions this instance lists in presence (namespaces "
                                   "with presence = true).")),
      joins_(app.metrics().counter("pylon_presence_events_total",
                                   "Join and leave messages published.", {{"type", "join"}})),
      leaves_(app.metrics().counter("pylon_presence_events_total",
                                    "Join and leave messages published.", {{"type", "leave"}})) {}

void TopicPresence::join(std::vector<std::string>& present, std::string_view topic,
                         std::uint64_t client, const Grant* grant) {
  if (!namespace_rules(config_, topic).presence ||
      std::find(present.begin(), present.end(), topic) != present.end())
    return;
  present.emplace_back(topic);
  members_.add(1);
  app_.presence_join(topic, {.client = client_id_text(client),
                             .user = grant != nullptr ? grant->subject : std::string(),
                             .info = grant != nullptr ? grant->info : std::string()});
  announce("join", topic, client, grant);
}

void TopicPresence::leave(std::vector<std::string>& present, std::string_view topic,
                          std::uint64_t client, const Grant* grant) {
  const auto found = std::find(present.begin(), present.end(), topic);
  if (found == present.end()) return;
  const std::string left = std::move(*found);
  present.erase(found);
  members_.add(-1);
  app_.presence_leave(left, client_id_text(client));
  announce("leave", left, client, grant);
}

void TopicPresence::leave_all(std::vector<std::string>& present, std::uint64_t client,
                              const Grant* grant) {
  while (!present.empty()) leave(present, present.back(), client, grant);
  present.shrink_to_fit();
}

std::optional<Failure> TopicPresence::check(std::string_view topic, bool subscribed) const {
  if (!pubsub::is_valid_topic(topic)) return Failure{ErrorCode::bad_topic, "invalid topic name"};
  if (!namespace_rules(config_, topic).presence)
    return Failure{ErrorCode::forbidden, "presence is off on this topic's namespace"};
  if (!subscribed)
    return Failure{ErrorCode::forbidden, "presence is answered to the topic's subscribers only"};
  return std::nullopt;
}

void TopicPresence::read(std::string_view topic, bool stats,
                         std::function<void(const std::string* fields)> answer) {
  app_.read_presence(topic, [stats, answer = std::move(answer)](const PresenceMembers* members) {
    if (members == nullptr) return answer(nullptr);
    std::string fields;
    if (stats) {
      const pubsub::PresenceStats counts = pubsub::presence_stats(*members);
      fields = R"("clients":)" + std::to_string(counts.clients) + R"(,"users":)" +
               std::to_string(counts.users);
      return answer(&fields);
    }
    fields = R"("presence":{)";
    for (const PresenceMember& member : *members) {
      if (fields.back() != '{') fields += ',';
      obs::append_json_string(fields, member.client);
      fields += ':';
      append_member(fields, member.user, member.info);
    }
    fields += '}';
    answer(&fields);
  });
}

// {"type":"join","topic":T,"client":C,"user":U,"info":I}, published like a message (without an
// offset: join_leave is refused on namespaces with history, config.cpp) to the subscribers that
// asked for join/leave (join_leave_topic).
void TopicPresence::announce(std::string_view type, std::string_view topic, std::uint64_t client,
                             const Grant* grant) {
  if (!namespace_rules(config_, topic).join_leave) return;
  std::string message = R"({"type":")";
  message += type;
  // The topic charset needs no JSON escaping (pubsub/topic_name.hpp).
  message += R"(","topic":")";
  message += topic;
  message += R"(","client":")";
  message += client_id_text(client);
  message += R"(",)";
  const std::string_view user = grant != nullptr ? std::string_view(grant->subject) : "";
  std::string member;
  append_member(member, user, grant != nullptr ? std::string_view(grant->info) : "");
  message += std::string_view(member).substr(1);  // the member's fields, after its '{'
  if (!app_.publish(join_leave_topic(topic), message).accepted)
    return;  // the engine is down: nobody gets it
  (type == "join" ? joins_ : leaves_).add();
}

}  // namespace pylon
