#include "server/http_publish.hpp"

#include <string>

#include "obs/log.hpp"
#include "server/topic_request.hpp"

namespace pylon {
namespace {

using namespace topic_request;

HttpResponse answer(const PublishResult& result) {
  HttpResponse response;
  response.content_type = "application/json";
  if (!result.accepted) {
    response.status = 503;
    response.body =
        R"({"error":"engine_unavailable","message":"the cluster engine is unavailable; not delivered"})";
    return response;
  }
  response.body = R"({"subscribers":)" + std::to_string(result.subscribers);
  if (result.offset != 0) response.body += ',';
  append_offset(response.body, result);
  response.body += '}';
  return response;
}

// The key was checked (ApiKeys::guard).
HttpResponse publish(App& app, const Counter& published, const HttpRequest& request) {
  HttpResponse response;
  response.content_type = "application/json";
  Request fields;
  Failure failure{ErrorCode::bad_json, "body is not a JSON object"};
  if (const auto parse_failure = parse_request(request.body(), fields)) {
    failure = *parse_failure;
  } else if (!fields.topic_is_string) {
    failure = {ErrorCode::bad_request, "topic (a string) is required"};
  } else if (const auto topic_failure = check_publish_topic(fields.topic)) {
    failure = *topic_failure;
  } else if (!fields.has_data) {
    failure = {ErrorCode::bad_request, "data is required"};
  } else {
    const DeferredResponse later = request.defer();
    const PublishResult result =
        app.publish(fields.topic, message_envelope(fields.topic, fields.data), MessageKind::text,
                    [later](const PublishResult& outcome) { later.send(answer(outcome)); });
    if (result.accepted) published.add();
    if (!result.pending) return answer(result);
    response.deferred = true;
    return response;
  }
  response.status = failure.code == ErrorCode::reserved_topic ? 403 : 400;
  response.body = R"({"error":")" + std::string(code_name(failure.code)) + R"(","message":)";
  obs::append_json_string(response.body, failure.message);
  response.body += '}';
  return response;
}

}  // namespace

void add_http_publish_route(App& app, std::shared_ptr<ApiKeys> keys) {
  // Registered without the API too: the series is there, at 0, beside source="websocket".
  const Counter published =
      app.metrics().counter("pylon_publishes_total", "Publishes.", {{"source", "http"}});
  if (keys == nullptr) return;
  app.post("/api/publish", [&app, keys = std::move(keys), published](const HttpRequest& request) {
    return keys->guard(request, ApiEndpoint::publish,
                       [&](std::string_view) { return publish(app, published, request); });
  });
}

}  // namespace pylon
