// Presence (docs/protocol.md "Presence"): who is subscribed to a topic, as the server tracks it
// for namespaces with `presence = true`. One member per connection and topic.
#pragma once

#include <string>
#include <vector>

namespace pylon {

struct PresenceMember {
  std::string client;  // the connection's id, made by the server (16 hex digits in pylon serve)
  std::string user;    // the connection token's sub; "" for an anonymous connection
  std::string info;    // the token's pylon.info as raw JSON; "" when it has none
  bool operator==(const PresenceMember&) const = default;
};

// A topic's members as read (their order is unspecified); null: the cluster engine cannot tell
// now (Redis unreachable).
using PresenceMembers = std::vector<PresenceMember>;

}  // namespace pylon
