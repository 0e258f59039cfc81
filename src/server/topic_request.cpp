#include "server/topic_request.hpp"

#include "pubsub/json_syntax.hpp"
#include "pubsub/topic_name.hpp"

namespace pylon::topic_request {
namespace {

std::string_view trim_right(std::string_view text) {
  while (!text.empty() &&
         (text.back() == ' ' || text.back() == '\n' || text.back() == '\r' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

// The raw JSON text of a value, exactly as the client wrote it.
bool raw_json(simdjson::ondemand::value value, std::string_view& out) {
  simdjson::ondemand::json_type type;
  if (value.type().get(type)) return false;
  if (type == simdjson::ondemand::json_type::array) {
    simdjson::ondemand::array array;
    if (value.get_array().get(array) || array.raw_json().get(out)) return false;
  } else if (type == simdjson::ondemand::json_type::object) {
    simdjson::ondemand::object object;
    if (value.get_object().get(object) || object.raw_json().get(out)) return false;
  } else {
    out = value.raw_json_token();
  }
  out = trim_right(out);
  return true;
}

}  // namespace

std::string_view code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::bad_json:
      return "bad_json";
    case ErrorCode::bad_request:
      return "bad_request";
    case ErrorCode::unknown_type:
      return "unknown_type";
    case ErrorCode::bad_topic:
      return "bad_topic";
    case ErrorCode::too_many_subscriptions:
      return "too_many_subscriptions";
    case ErrorCode::rate_limited:
      return "rate_limited";
    case ErrorCode::engine_unavailable:
      return "engine_unavailable";
    case ErrorCode::reserved_topic:
      return "reserved_topic";
    case ErrorCode::forbidden:
      return "forbidden";
    case ErrorCode::subscription_token_required:
      return "subscription_token_required";
    case ErrorCode::bad_token:
      return "bad_token";
  }
  return "bad_request";
}

bool is_malformed(ErrorCode code) {
  return code == ErrorCode::bad_json || code == ErrorCode::bad_request ||
         code == ErrorCode::unknown_type || code == ErrorCode::bad_topic;
}

Parsers& parsers() {
  thread_local Parsers instance;
  return instance;
}

std::optional<Failure> parse_request(std::string_view text, Request& request) {
  if (!pubsub::is_valid_json(text))
    return Failure{ErrorCode::bad_json, "request is not valid JSON"};
  Parsers& p = parsers();
  p.padded.assign(text);
  p.padded.resize(text.size() + simdjson::SIMDJSON_PADDING);
  p.topics.clear();
  p.recover.clear();
  p.ack_fields.clear();
  p.ack_later = false;
  simdjson::ondemand::document document;
  simdjson::ondemand::object object;
  if (p.ondemand.iterate(p.padded.data(), text.size(), p.padded.size()).get(document) ||
      document.get_object().get(object))
    return Failure{ErrorCode::bad_json, "request is not a JSON object"};
  for (auto field : object) {
    std::string_view key;
    simdjson::ondemand::value value;
    if (field.unescaped_key().get(key) || field.value().get(value))
      return Failure{ErrorCode::bad_json, "request could not be read"};
    if (key == "type") {
      request.has_type = true;
      request.type_is_string = !value.get_string().get(request.type);
    } else if (key == "topic") {
      request.has_topic = true;
      request.topic_is_string = !value.get_string().get(request.topic);
    } else if (key == "topics") {
      request.has_topics = true;
      simdjson::ondemand::array array;
      if (value.get_array().get(array)) {
        request.topics_are_strings = false;
        continue;
      }
      for (auto item : array) {
        std::string_view topic;
        if (item.get_string().get(topic)) {
          request.topics_are_strings = false;
          break;
        }
        p.topics.push_back(topic);
      }
    } else if (key == "token") {
      if (value.get_string().get(request.token))
        return Failure{ErrorCode::bad_request, "token must be a string"};
    } else if (key == "join_leave") {
      if (value.get_bool().get(request.join_leave))
        return Failure{ErrorCode::bad_request, "join_leave must be true or false"};
    } else if (key == "recover") {
      // Reported once the id is known (it may come later in the object).
      request.recover_error = read_recover(value, p.recover);
    } else if (key == "data") {
      request.has_data = raw_json(value, request.data);
    } else if (key == "id") {
      // An integer or a string, echoed back verbatim.
      if (!raw_json(value, request.id))
        return Failure{ErrorCode::bad_json, "request could not be read"};
      const std::string_view id = request.id;
      const bool is_string = !id.empty() && id.front() == '"';
      const bool is_integer =
          !id.empty() && id.find_first_not_of("-0123456789") == std::string_view::npos;
      request.id_is_valid = is_string || is_integer;
    }
  }
  return std::nullopt;
}

std::optional<Failure> check_publish_topic(std::string_view topic) {
  if (!pubsub::is_valid_topic(topic)) return Failure{ErrorCode::bad_topic, "invalid topic name"};
  if (pubsub::is_server_topic(topic))
    return Failure{ErrorCode::reserved_topic,
                   "topics under pylon/ are published by the server only"};
  return std::nullopt;
}

OffsetEnvelope message_envelope(std::string_view topic, std::string_view data) {
  std::string& envelope = parsers().envelope;
  envelope.assign(R"({"type":"message","topic":")");
  envelope += topic;
  envelope += '"';
  const std::size_t head = envelope.size();
  envelope += R"(,"data":)";
  envelope += data;
  envelope += '}';
  const std::string_view text = envelope;
  return {text.substr(0, head), kOffsetLabel, text.substr(head)};
}

void append_offset(std::string& out, const PublishResult& result) {
  if (result.offset == 0) return;
  out += R"("offset":)";
  out += std::to_string(result.offset);
}

}  // namespace pylon::topic_request
