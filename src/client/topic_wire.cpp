#include "client/topic_wire.hpp"

#include <charconv>

namespace pylon::client {

bool parse_topic_message(std::string_view text, TopicMessage& out) noexcept {
  constexpr std::string_view kHead = R"({"type":"message","topic":")";
  constexpr std::string_view kOffset = R"(,"offset":)";
  constexpr std::string_view kData = R"(,"data":)";
  if (!text.starts_with(kHead) || !text.ends_with('}')) return false;
  std::size_t at = kHead.size();
  const std::size_t quote = text.find('"', at);
  if (quote == std::string_view::npos) return false;
  out.topic = text.substr(at, quote - at);
  at = quote + 1;
  out.offset = 0;
  if (text.substr(at).starts_with(kOffset)) {
    at += kOffset.size();
    const char* end = text.data() + text.size();
    const auto [ptr, error] = std::from_chars(text.data() + at, end, out.offset);
    if (error != std::errc() || ptr == text.data() + at) return false;
    at = static_cast<std::size_t>(ptr - text.data());
  }
  if (!text.substr(at).starts_with(kData)) return false;
  at += kData.size();
  if (at >= text.size() - 1) return false;  // no value before the closing brace
  out.data = text.substr(at, text.size() - 1 - at);
  return true;
}

namespace {

using simdjson::ondemand::object;
using simdjson::ondemand::value;

// "positions":{"topic":{"offset":N,"epoch":"E"[,"recovered":B]}, ...}
bool read_positions(value positions, std::vector<ReplyPosition>& out) {
  object topics;
  if (positions.get_object().get(topics)) return false;
  for (auto field : topics) {
    ReplyPosition position;
    object fields;
    if (field.unescaped_key().get(position.topic) || field.value().get_object().get(fields))
      return false;
    for (auto item : fields) {
      std::string_view key;
      value entry;
      if (item.unescaped_key().get(key) || item.value().get(entry)) return false;
      if (key == "offset") {
        if (entry.get_uint64().get(position.offset)) return false;
      } else if (key == "epoch") {
        if (entry.get_string().get(position.epoch)) return false;
      } else if (key == "recovered") {
        position.recovery = true;
        if (entry.get_bool().get(position.recovered)) return false;
      }
    }
    out.push_back(position);
  }
  return true;
}

}  // namespace

bool ReplyReader::read(std::string_view text, Reply& out) {
  out.kind = Reply::Kind::other;
  out.id = 0;
  out.has_offset = false;
  out.offset = 0;
  out.code = out.text = out.topic = {};
  out.positions.clear();
  padded_.assign(text);
  padded_.resize(text.size() + simdjson::SIMDJSON_PADDING);
  simdjson::ondemand::document document;
  object fields;
  if (parser_.iterate(padded_.data(), text.size(), padded_.size()).get(document) ||
      document.get_object().get(fields))
    return false;
  for (auto field : fields) {
    std::string_view key;
    value entry;
    if (field.unescaped_key().get(key) || field.value().get(entry)) return false;
    if (key == "type") {
      std::string_view type;
      if (entry.get_string().get(type)) return false;
      if (type == "ack") out.kind = Reply::Kind::ack;
      if (type == "error") out.kind = Reply::Kind::error;
      if (type == "unsubscribed") out.kind = Reply::Kind::unsubscribed;
    } else if (key == "id") {
      // Ids of other clients' choosing (strings, negative numbers) are not ours: left at 0.
      if (entry.get_uint64().get(out.id)) out.id = 0;
    } else if (key == "offset") {
      if (entry.get_uint64().get(out.offset)) return false;
      out.has_offset = true;
    } else if (key == "positions") {
      if (!read_positions(entry, out.positions)) return false;
    } else if (key == "code") {
      if (entry.get_string().get(out.code)) return false;
    } else if (key == "message" || key == "reason") {
      if (entry.get_string().get(out.text)) return false;
    } else if (key == "topic") {
      if (entry.get_string().get(out.topic)) return false;
    }
  }
  return true;
}

}  // namespace pylon::client
