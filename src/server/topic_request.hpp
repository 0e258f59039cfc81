// The /ws topic protocol's requests (docs/protocol.md): the error codes a request can get, and
// the parse of a JSON request into its fields with simdjson's on-demand parser, in buffers reused
// by every message of a loop thread. Used by topic_protocol.cpp; loop thread only.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/app.hpp"
#include "server/history_protocol.hpp"

namespace pylon::topic_request {

enum class ErrorCode : std::uint8_t {
  bad_json,                // not JSON, or not an object
  bad_request,             // a field missing or of the wrong type
  unknown_type,            // "type" missing or not subscribe / unsubscribe / publish / refresh
  bad_topic,               // a topic name outside the charset or length
  too_many_subscriptions,  // past max_subscriptions
  rate_limited,            // past max_publish_rate
  engine_unavailable,      // the cluster engine cannot reach the other instances: not delivered
  reserved_topic,          // a publish on a server topic (pylon/...)
  forbidden,               // the token or the topic's namespace does not allow it
  subscription_token_required,  // a namespace of subscription tokens, and none was given
  bad_token,                    // the subscription token does not verify
};

std::string_view code_name(ErrorCode code);

// Malformed requests count towards the garbage limit; limits hit by a well-formed one do not.
bool is_malformed(ErrorCode code);

struct Failure {
  ErrorCode code;
  std::string_view message;
};

// Parsing state reused by every message of a loop thread: no allocation per message once the
// buffers have grown to the largest message seen.
struct Parsers {
  simdjson::ondemand::parser ondemand;
  std::string denial;  // the text of the last refusal by the topic's rules
  std::string padded;  // the message followed by SIMDJSON_PADDING bytes, as simdjson requires
  std::vector<std::string_view> topics;
  std::vector<RecoverRequest> recover;  // a subscribe's "recover"
  std::string ack_fields;  // what the ack adds after the id: history positions, an offset
  bool ack_later = false;  // the request's ack waits for Redis (Session::pending)
  std::string reply;
  std::string envelope;
};

Parsers& parsers();

// The fields of a request. Views point into the Parsers' buffers: valid until the next parse.
struct Request {
  std::string_view type, topic, data, id;         // data and id as their raw JSON text
  std::string_view token;                         // subscribe: a subscription token
  std::optional<std::string_view> recover_error;  // a malformed "recover"
  bool join_leave = false;                        // subscribe: join/leave messages wanted
  bool has_type = false, has_topic = false, has_topics = false, has_data = false;
  bool type_is_string = false, topic_is_string = false, topics_are_strings = true,
       id_is_valid = true;
};

// Checks the syntax of the whole text first (numbers of any size are fine: data is forwarded,
// never converted), then reads the known fields with simdjson's on-demand parser.
std::optional<Failure> parse_request(std::string_view text, Request& request);

// A publish's topic: valid, and not a server topic (pylon/...).
std::optional<Failure> check_publish_topic(std::string_view topic);
// `{"type":"message","topic":T,"data":D}`, with `"offset":N` after the topic on a topic with
// history, assembled in the loop's envelope buffer (valid until the next call), then encoded once
// into the frame every subscriber shares.
OffsetEnvelope message_envelope(std::string_view topic, std::string_view data);
// `"offset":N` of a publish's answer on a topic with history; nothing elsewhere.
void append_offset(std::string& out, const PublishResult& result);

}  // namespace pylon::topic_request
