// The topic patterns of a token's permission lists (auth/jwt.hpp, "subscribe" and "publish").
// A pattern is either a topic name (pubsub/topic_name.hpp), which matches that topic exactly, or
// a prefix followed by one trailing '*', which matches every topic that starts with the prefix:
// "chat:*" matches "chat:room-1" and "chat:" but not "chat" (the prefix is literal, ':' included);
// a lone "*" matches every topic. '*' is not a topic character, so a pattern never collides with
// a name. '*' anywhere but at the end, and anything else outside the topic syntax, is invalid.
// Nothing else is special ('?', '**', '{a,b}' are all invalid). Pure functions; any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace pylon::auth {

bool is_valid_topic_pattern(std::string_view pattern) noexcept;

// Does the valid pattern match the topic? (Invalid patterns never get past verify().)
bool topic_matches(std::string_view pattern, std::string_view topic) noexcept;

// Does any of the patterns match the topic? An empty list matches nothing.
bool any_topic_matches(std::span<const std::string> patterns, std::string_view topic) noexcept;

}  // namespace pylon::auth
