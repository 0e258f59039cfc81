// The history part of the /ws topic protocol (docs/protocol.md "History and recovery"): the
// `recover` field of a subscribe and the positions its ack answers. Used by topic_protocol.cpp.
// Loop thread; views point into the caller's parse buffers.
#pragma once

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/app.hpp"

namespace pylon {

// `"offset":` — what the envelope of a publication carries on a topic with history.
inline constexpr std::string_view kOffsetLabel = R"(,"offset":)";

struct RecoverRequest {
  std::string_view topic;
  StreamPosition since;
};

// Reads `{"T":{"offset":N,"epoch":"E"},...}` into requests; the reason when it is malformed.
std::optional<std::string_view> read_recover(simdjson::ondemand::value value,
                                             std::vector<RecoverRequest>& requests);

// The request's position for topic, or nullptr.
const StreamPosition* find_recover(const std::vector<RecoverRequest>& requests,
                                   std::string_view topic) noexcept;

// Appends `"T":{"offset":N,"epoch":"E"}` to positions, with `,"recovered":B` when the subscribe
// asked to recover, and a comma before it unless it is the first.
void append_position(std::string& positions, std::string_view topic,
                     const HistorySubscription& subscription, bool asked);

}  // namespace pylon
