// The backend API's commands on a user (docs/protocol.md "Backend API"): POST /api/disconnect
// closes every /ws connection whose connection token's `sub` is the user, POST /api/unsubscribe
// unsubscribes those connections from one topic and tells each with
// {"type":"unsubscribed","topic":T,"reason":R}. A command runs on every loop of this instance and,
// with the Redis engine, is sent to every other instance (App::send_to_cluster), which runs it the
// same way; while the engine is down the API answers 503 and nothing is done anywhere.
//
// Parsing is sans-I/O; add_user_command_routes() wires the routes and the cluster handler on the
// main thread before App::run(); apply_user_command() runs on a loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "pylon/app.hpp"
#include "server/api_keys.hpp"
#include "server/subject_index.hpp"

namespace pylon {

// The close code of a disconnect when the request names none: 4000-4999 are the application's
// (RFC 6455 §7.4.2); 4001 is "token expired".
inline constexpr std::uint16_t kDisconnectedCode = 4002;
inline constexpr std::string_view kDisconnectedReason = "disconnected by the server";

struct UserCommand {
  ApiEndpoint kind = ApiEndpoint::disconnect;  // disconnect or unsubscribe
  std::string user;                            // the connection token's sub
  std::string topic;                           // unsubscribe
  std::uint16_t code = kDisconnectedCode;      // disconnect: 4000-4999
  std::string reason{kDisconnectedReason};     // disconnect: at most 123 bytes
  bool operator==(const UserCommand&) const = default;
};

// The body of POST /api/disconnect or /api/unsubscribe; else the error's text, naming the field.
std::variant<UserCommand, std::string> parse_user_command(ApiEndpoint kind, std::string_view body);
// What goes to the other instances: "disconnect {json}" or "unsubscribe {json}".
std::string cluster_message(const UserCommand& command);
std::variant<UserCommand, std::string> parse_cluster_message(std::string_view message);

// Adds POST /api/disconnect and /api/unsubscribe when keys is set, and always the handler of the
// commands other instances send. apply runs a command on the calling loop thread's connections.
void add_user_command_routes(App& app, std::shared_ptr<ApiKeys> keys,
                             std::function<void(const UserCommand&)> apply);

// The command on this loop's connections of its user (SubjectIndex of WebSocket<Session>).
template <typename Session>
void apply_user_command(const UserCommand& command) {
  auto sockets = SubjectIndex<WebSocket<Session>>::this_loop().find(command.user);
  if (command.kind == ApiEndpoint::disconnect) {
    for (auto& socket : sockets) socket.close(command.code, command.reason);
    return;
  }
  // The topic charset needs no JSON escaping (pubsub/topic_name.hpp).
  const std::string notice = R"({"type":"unsubscribed","topic":")" + command.topic +
                             R"(","reason":"unsubscribed by the backend"})";
  for (auto& socket : sockets) {
    if (!socket.is_subscribed(command.topic)) continue;
    socket.unsubscribe(command.topic);
    socket.send(notice);
  }
}

}  // namespace pylon
