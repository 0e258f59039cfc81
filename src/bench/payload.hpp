// What `pylon bench` puts in its messages (--payload): `filler` is `x` repeated, which deflate
// shrinks ~60:1; `json` is market-data-like records whose keys repeat and whose numbers vary,
// closer to real traffic for compression measurements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pylon::bench {

enum class PayloadKind : std::uint8_t { filler, json };

// "filler" or "json"; false for anything else.
bool parse_payload_kind(std::string_view text, PayloadKind& kind) noexcept;
std::string_view payload_kind_name(PayloadKind kind) noexcept;

// Appends exactly `bytes` bytes: for json, comma-separated objects such as
// {"symbol":"SYM7","price":104.37,"volume":93812} (a JSON array's elements once wrapped in [ ]),
// padded with spaces; the numbers follow from `seed`, so different seeds give different records.
void append_payload(std::string& out, PayloadKind kind, std::size_t bytes, std::uint64_t seed);

}  // namespace pylon::bench
