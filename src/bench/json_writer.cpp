#include "bench/json_writer.hpp"

#include <cmath>
#include <cstdio>

namespace pylon::bench {

void JsonWriter::key(std::string_view name) {
  if (!first_.empty()) {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
  if (!name.empty()) {
    quoted(name);
    out_ += ':';
  }
}

void JsonWriter::quoted(std::string_view text) {
  out_ += '"';
  for (const char c : text) {
    switch (c) {
      case '"':
        out_ += "\\\"";
        break;
      case '\\':
        out_ += "\\\\";
        break;
      case '\n':
        out_ += "\\n";
        break;
      case '\r':
        out_ += "\\r";
        break;
      case '\t':
        out_ += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out_ += escaped;
        } else {
          out_ += c;
        }
    }
  }
  out_ += '"';
}

void JsonWriter::begin_object(std::string_view name) {
  key(name);
  out_ += '{';
  first_.push_back(true);
}
void JsonWriter::end_object() {
  out_ += '}';
  first_.pop_back();
}
void JsonWriter::begin_array(std::string_view name) {
  key(name);
  out_ += '[';
  first_.push_back(true);
}
void JsonWriter::end_array() {
  out_ += ']';
  first_.pop_back();
}
void JsonWriter::string(std::string_view name, std::string_view value) {
  key(name);
  quoted(value);
}
void JsonWriter::number(std::string_view name, double value) {
  key(name);
  if (!std::isfinite(value)) {
    out_ += "null";
    return;
  }
  char digits[32];
  std::snprintf(digits, sizeof digits, "%.6g", value);
  if (std::fabs(value) >= 1e6 && std::fabs(value) < 1e15)
    std::snprintf(digits, sizeof digits, "%.3f", value);
  out_ += digits;
}
void JsonWriter::integer(std::string_view name, std::uint64_t value) {
  key(name);
  out_ += std::to_string(value);
}
void JsonWriter::boolean(std::string_view name, bool value) {
  key(name);
  out_ += value ? "true" : "false";
}

}  // namespace pylon::bench
