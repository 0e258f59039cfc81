// A strict RFC 8259 syntax check: is this text exactly one JSON value? Numbers of any size are
// accepted (the protocol forwards data verbatim and never converts it), strings must be valid
// UTF-8 with valid escapes, nesting is bounded. Pure function, no allocation; fuzzed in
// tests/fuzz/json_syntax_fuzz.cpp.
#pragma once

#include <cstddef>
#include <string_view>

namespace pylon::pubsub {

inline constexpr std::size_t kMaxJsonDepth = 128;

bool is_valid_json(std::string_view text) noexcept;

}  // namespace pylon::pubsub
