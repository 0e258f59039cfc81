#include "bench/payload.hpp"

#include <charconv>

namespace pylon::bench {

bool parse_payload_kind(std::string_view text, PayloadKind& kind) noexcept {
  if (text == "filler")
    kind = PayloadKind::filler;
  else if (text == "json")
    kind = PayloadKind::json;
  else
    return false;
  return true;
}

std::string_view payload_kind_name(PayloadKind kind) noexcept {
  return kind == PayloadKind::json ? "json" : "filler";
}

namespace {

void append_number(std::string& out, std::uint64_t value) {
  char digits[20];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, end);
}

// xorshift64*: cheap, deterministic numbers for the records.
std::uint64_t next(std::uint64_t& state) noexcept {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1Dull;
}

}  // namespace

void append_payload(std::string& out, PayloadKind kind, std::size_t bytes, std::uint64_t seed) {
  const std::size_t end = out.size() + bytes;
  if (kind == PayloadKind::json) {
    std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (bool first = true;; first = false) {
      const std::size_t mark = out.size();
      if (!first) out += ',';
      const std::uint64_t random = next(state);
      out += R"({"symbol":"SYM)";
      append_number(out, random % 50);
      out += R"(","price":)";
      append_number(out, 100 + (random >> 8) % 900);
      out += '.';
      const std::uint64_t cents = (random >> 20) % 100;
      if (cents < 10) out += '0';
      append_number(out, cents);
      out += R"(,"volume":)";
      append_number(out, (random >> 28) % 100000);
      out += '}';
      if (out.size() > end) {  // this record does not fit: spaces instead
        out.resize(mark);
        break;
      }
    }
  }
  out.append(end - out.size(), kind == PayloadKind::json ? ' ' : 'x');
}

}  // namespace pylon::bench
