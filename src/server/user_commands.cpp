#include "server/user_commands.hpp"

#include <simdjson.h>

#include "obs/log.hpp"
#include "pubsub/topic_name.hpp"

namespace pylon {
namespace {

// RFC 6455 §5.5: a control frame carries at most 125 bytes, two of them the close code.
constexpr std::size_t kMaxReasonBytes = 123;
constexpr std::size_t kMaxUserBytes = 1024;

}  // namespace

std::variant<UserCommand, std::string> parse_user_command(ApiEndpoint kind, std::string_view body) {
  // Rare requests (an operator's or a backend's), parsed whole; the parser keeps its buffers.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element document;
  simdjson::dom::object object;
  if (parser.parse(body.data(), body.size()).get(document) || document.get_object().get(object))
    return std::string("body must be a JSON object");
  UserCommand command;
  command.kind = kind;
  std::string_view text;
  if (object["user"].get_string().get(text) || text.empty() || text.size() > kMaxUserBytes)
    return std::string("user (the connection token's sub, a string of 1-1024 bytes) is required");
  command.user = text;
  if (kind == ApiEndpoint::unsubscribe) {
    if (object["topic"].get_string().get(text)) return std::string("topic (a string) is required");
    if (!pubsub::is_valid_topic(text)) return std::string("topic: invalid topic name");
    command.topic = text;
    return command;
  }
  const auto code = object["code"];
  if (code.error() != simdjson::NO_SUCH_FIELD) {
    std::int64_t value = 0;
    if (code.get_int64().get(value) || value < 4000 || value > 4999)
      return std::string("code must be an integer from 4000 to 4999");
    command.code = static_cast<std::uint16_t>(value);
  }
  const auto reason = object["reason"];
  if (reason.error() != simdjson::NO_SUCH_FIELD) {
    if (reason.get_string().get(text) || text.size() > kMaxReasonBytes)
      return std::string("reason must be a string of at most 123 bytes");
    command.reason = text;
  }
  return command;
}

std::string cluster_message(const UserCommand& command) {
  std::string message(api_endpoint_name(command.kind));
  message += R"( {"user":)";
  obs::append_json_string(message, command.user);
  if (command.kind == ApiEndpoint::unsubscribe) {
    message += R"(,"topic":")" + command.topic + "\"}";
    return message;
  }
  message += R"(,"code":)" + std::to_string(command.code) + R"(,"reason":)";
  obs::append_json_string(message, command.reason);
  message += '}';
  return message;
}

std::variant<UserCommand, std::string> parse_cluster_message(std::string_view message) {
  const std::size_t space = message.find(' ');
  const std::string_view name = message.substr(0, space);
  if (space == std::string_view::npos) return std::string("not a command");
  for (const ApiEndpoint kind : {ApiEndpoint::disconnect, ApiEndpoint::unsubscribe})
    if (name == api_endpoint_name(kind)) return parse_user_command(kind, message.substr(space + 1));
  return std::string("unknown command");
}

void add_user_command_routes(App& app, std::shared_ptr<ApiKeys> keys,
                             std::function<void(const UserCommand&)> apply) {
  // Each loop runs it on its own connections of the user.
  const auto run_everywhere = [&app, apply = std::move(apply)](UserCommand command) {
    auto shared = std::make_shared<const UserCommand>(std::move(command));
    app.run_on_every_loop([apply, shared] { apply(*shared); });
  };
  app.on_cluster_message([run_everywhere](std::string_view message) {
    auto parsed = parse_cluster_message(message);
    if (const auto* error = std::get_if<std::string>(&parsed)) {
      static obs::LogRateLimit limit(1);
      limit.log(obs::LogLevel::warn, "ignored a malformed command from another instance",
                {{"error", std::string_view(*error)}});
      return;
    }
    run_everywhere(std::get<UserCommand>(std::move(parsed)));
  });
  if (!keys) return;
  for (const ApiEndpoint kind : {ApiEndpoint::disconnect, ApiEndpoint::unsubscribe}) {
    const auto handle = [&app, kind, run_everywhere](const HttpRequest& request,
                                                     std::string_view key_name) {
      auto parsed = parse_user_command(kind, request.body());
      if (const auto* error = std::get_if<std::string>(&parsed))
        return api_error(400, "bad_request", *error);
      auto& command = std::get<UserCommand>(parsed);
      // Others first: while they cannot be reached, nothing is done here either (as publishes).
      const ClusterSend sent = app.send_to_cluster(cluster_message(command));
      if (sent == ClusterSend::unavailable)
        return api_error(503, "engine_unavailable",
                         "the cluster engine cannot reach the other instances; nothing was done");
      const std::string_view others = sent == ClusterSend::sent ? "sent" : "none";
      // The key's name, never the user: a `sub` goes in no log line (issue 13).
      obs::log(
          obs::LogLevel::info, "backend API command",
          {{"key", key_name}, {"endpoint", api_endpoint_name(kind)}, {"other_instances", others}});
      run_everywhere(std::move(command));
      return HttpResponse{
          .status = 202,
          .content_type = "application/json",
          .body = R"({"this_instance":"queued","other_instances":")" + std::string(others) + "\"}"};
    };
    app.post("/api/" + std::string(api_endpoint_name(kind)),
             [keys, kind, handle](const HttpRequest& request) {
               return keys->guard(request, kind, [&](std::string_view key_name) {
                 return handle(request, key_name);
               });
             });
  }
}

}  // namespace pylon
