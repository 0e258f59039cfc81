// The /ws pub/sub protocol (docs/protocol.md) on the client's side, sans-I/O: reading what the
// server sends and judging a topic's offsets. Used by TopicClient (include/pylon/topic_client.hpp)
// and by `pylon bench fanout`; a reader belongs to one thread.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pylon::client {

// {"type":"message","topic":T[,"offset":N],"data":D}: the server writes exactly this key order
// without spaces (docs/protocol.md "Messages"), so a delivery is read without a JSON parser and
// without copying; topic names cannot hold a quote. Views point into `text`.
struct TopicMessage {
  std::string_view topic;
  std::uint64_t offset = 0;  // 0: a topic without history (offsets start at 1)
  std::string_view data;     // the publisher's JSON, byte for byte
};
// False when `text` is not a delivery of this shape (an ack, an error, something else).
bool parse_topic_message(std::string_view text, TopicMessage& out) noexcept;

// Where a subscriber stands in a topic's history, judged by the next delivery's offset.
enum class OffsetVerdict : std::uint8_t {
  next,       // last + 1: deliver it
  duplicate,  // at or below the last one seen: already delivered
  gap,        // past last + 1: publications were missed in between
};
constexpr OffsetVerdict judge_offset(std::uint64_t last, std::uint64_t offset) noexcept {
  if (offset <= last) return OffsetVerdict::duplicate;
  return offset == last + 1 ? OffsetVerdict::next : OffsetVerdict::gap;
}

// One topic of a subscribe ack's "positions".
struct ReplyPosition {
  std::string_view topic;
  std::uint64_t offset = 0;
  std::string_view epoch;
  bool recovery = false;   // the ack says "recovered" (the subscribe asked to recover)
  bool recovered = false;  // its value
};

// Every other message of the server: answers and notices.
struct Reply {
  enum class Kind : std::uint8_t { ack, error, unsubscribed, other };
  Kind kind = Kind::other;
  std::uint64_t id = 0;  // 0: none, or not a number (TopicClient sends numbers from 1)
  bool has_offset = false;
  std::uint64_t offset = 0;              // the ack of a publish on a topic with history
  std::string_view code;                 // error
  std::string_view text;                 // error: "message"; unsubscribed: "reason"
  std::string_view topic;                // unsubscribed
  std::vector<ReplyPosition> positions;  // the ack of a subscribe to topics with history
};

// Parses replies with simdjson's on-demand parser into buffers it reuses (no allocation once they
// have grown to the largest reply). Views in the Reply point into the reader: valid until the
// next read.
class ReplyReader {
 public:
  // False when `text` is not a JSON object, or a field of a known reply has the wrong type.
  bool read(std::string_view text, Reply& out);

 private:
  simdjson::ondemand::parser parser_;
  std::string padded_;  // the text and SIMDJSON_PADDING bytes, as simdjson requires
};

}  // namespace pylon::client
