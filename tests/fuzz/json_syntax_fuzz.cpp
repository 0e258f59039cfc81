// Fuzzes pubsub::is_valid_json against simdjson's DOM parser: whatever simdjson accepts must be
// accepted, and what is accepted must be rejected by simdjson only for reasons that are not
// syntax (integers past 64 bits, nesting deeper than simdjson allows).
#include <simdjson.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pubsub/json_syntax.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool ours = pylon::pubsub::is_valid_json(text);
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(text);
  const auto error = parser.parse(padded).error();
  // simdjson allows deeper nesting than we do; compare only where that cannot matter.
  const auto openings =
      std::count_if(text.begin(), text.end(), [](char c) { return c == '[' || c == '{'; });
  const bool shallow = openings < static_cast<std::ptrdiff_t>(pylon::pubsub::kMaxJsonDepth);
  if (error == simdjson::SUCCESS && !ours && shallow) __builtin_trap();
  if (ours && error != simdjson::SUCCESS && error != simdjson::NUMBER_OUT_OF_RANGE &&
      error != simdjson::DEPTH_ERROR && error != simdjson::NUMBER_ERROR)
    __builtin_trap();
  return 0;
}
