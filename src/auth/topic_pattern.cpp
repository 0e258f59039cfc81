#include "auth/topic_pattern.hpp"

#include "pubsub/topic_name.hpp"

namespace pylon::auth {

bool is_valid_topic_pattern(std::string_view pattern) noexcept {
  if (pattern.empty() || pattern.size() > pubsub::kMaxTopicLength) return false;
  if (pattern.back() == '*') pattern.remove_suffix(1);
  if (pattern.empty()) return true;  // "*": every topic
  for (const char c : pattern)
    if (!pubsub::is_topic_char(c)) return false;
  return true;
}

bool topic_matches(std::string_view pattern, std::string_view topic) noexcept {
  if (!pattern.empty() && pattern.back() == '*') {
    pattern.remove_suffix(1);
    return topic.starts_with(pattern);
  }
  return topic == pattern;
}

bool any_topic_matches(std::span<const std::string> patterns, std::string_view topic) noexcept {
  for (const auto& pattern : patterns)
    if (topic_matches(pattern, topic)) return true;
  return false;
}

}  // namespace pylon::auth
