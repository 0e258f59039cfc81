#include "server/history_protocol.hpp"

#include <algorithm>
#include <charconv>

#include "obs/log.hpp"

namespace pylon {

std::optional<std::string_view> read_recover(simdjson::ondemand::value value,
                                             std::vector<RecoverRequest>& requests) {
  constexpr std::string_view kShape = R"(recover must be {"TOPIC":{"offset":N,"epoch":"E"},...})";
  simdjson::ondemand::object topics;
  if (value.get_object().get(topics)) return kShape;
  for (auto field : topics) {
    RecoverRequest request;
    simdjson::ondemand::object position;
    // The key is a view into the parse buffer: topic names have no escapes to undo.
    if (field.unescaped_key().get(request.topic) || field.value().get_object().get(position))
      return kShape;
    bool has_offset = false, has_epoch = false;
    for (auto item : position) {
      std::string_view key;
      simdjson::ondemand::value member;
      if (item.unescaped_key().get(key) || item.value().get(member)) return kShape;
      if (key == "offset") {
        // An unsigned integer: offsets start at 1, and 0 is "before the first".
        if (member.get_uint64().get(request.since.offset))
          return "recover: offset must be an integer of 0 or more";
        has_offset = true;
      } else if (key == "epoch") {
        std::string_view epoch;
        if (member.get_string().get(epoch)) return "recover: epoch must be a string";
        request.since.epoch = epoch;
        has_epoch = true;
      }
    }
    if (!has_offset || !has_epoch) return "recover: each topic needs an offset and an epoch";
    requests.push_back(std::move(request));
  }
  return std::nullopt;
}

const StreamPosition* find_recover(const std::vector<RecoverRequest>& requests,
                                   std::string_view topic) noexcept {
  const auto found =
      std::find_if(requests.begin(), requests.end(),
                   [topic](const RecoverRequest& item) { return item.topic == topic; });
  return found == requests.end() ? nullptr : &found->since;
}

void append_position(std::string& positions, std::string_view topic,
                     const HistorySubscription& subscription, bool asked) {
  if (!positions.empty()) positions += ',';
  positions += '"';
  positions += topic;  // a valid topic name needs no escaping
  positions += R"(":{"offset":)";
  char digits[20];
  const auto written = std::to_chars(digits, digits + sizeof digits, subscription.position.offset);
  positions.append(digits, written.ptr);
  positions += R"(,"epoch":)";
  obs::append_json_string(positions, subscription.position.epoch);
  if (asked) positions += subscription.recovered ? R"(,"recovered":true)" : R"(,"recovered":false)";
  positions += '}';
}

}  // namespace pylon
