// Presence in the /ws topic protocol (docs/protocol.md "Presence"): on topics of namespaces with
// `presence = true`, a connection is a member while subscribed (its client id, its token's sub
// and info), join/leave messages go to the topic's subscribers when the namespace has
// `join_leave = true`, and subscribers may ask `presence` and `presence_stats`. The members live
// in the engine's table (App::presence_join; with Redis, cluster-wide).
//
// Built on the main thread; join, leave and check run on loop threads, read's answer on whatever
// thread the engine answers on. Used by topic_protocol.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/app.hpp"
#include "server/topic_auth.hpp"
#include "server/topic_request.hpp"

namespace pylon {

// A connection's client id: random, made by the server at the upgrade.
std::uint64_t new_client_id();
// As it appears in the protocol: 16 hex digits.
std::string client_id_text(std::uint64_t client);
// The hidden topic (pubsub::is_hidden_topic) a topic's join/leave messages are published on: a
// subscribe with "join_leave":true subscribes the connection to it as well, so only those who
// asked receive them, with no filter in the delivery path.
std::string join_leave_topic(std::string_view topic);

class TopicPresence {
 public:
  explicit TopicPresence(App& app);

  // A connection subscribed to topic (or left it): listed (or no longer), and the join (leave)
  // sent when the namespace asks for it. present: the topics it is listed in, kept by the caller;
  // nothing happens on a topic without presence, or one it is already listed in (not listed in).
  void join(std::vector<std::string>& present, std::string_view topic, std::uint64_t client,
            const Grant* grant);
  void leave(std::vector<std::string>& present, std::string_view topic, std::uint64_t client,
             const Grant* grant);
  // The connection closed: it leaves every topic it is listed in.
  void leave_all(std::vector<std::string>& present, std::uint64_t client, const Grant* grant);

  // Whether a connection (subscribed or not to topic) may ask a presence request on it.
  std::optional<topic_request::Failure> check(std::string_view topic, bool subscribed) const;
  // Reads topic's presence; answer gets the ack's fields (`"presence":{...}`, or with stats
  // `"clients":N,"users":M`), or null when the engine cannot tell now.
  void read(std::string_view topic, bool stats,
            std::function<void(const std::string* fields)> answer);

 private:
  void announce(std::string_view type, std::string_view topic, std::uint64_t client,
                const Grant* grant);

  App& app_;
  const Config& config_;
  Gauge members_;
  Counter joins_, leaves_;
};

}  // namespace pylon
