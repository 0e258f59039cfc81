// A small streaming JSON writer for the bench reports: objects, arrays, strings, integers and
// finite numbers (NaN and infinities become null). Commas are placed by the writer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pylon::bench {

class JsonWriter {
 public:
  void begin_object(std::string_view key = {});
  void end_object();
  void begin_array(std::string_view key = {});
  void end_array();
  void string(std::string_view key, std::string_view value);
  void number(std::string_view key, double value);
  void integer(std::string_view key, std::uint64_t value);
  void boolean(std::string_view key, bool value);
  // In arrays: an empty key.
  const std::string& text() const noexcept { return out_; }

 private:
  void key(std::string_view name);
  void quoted(std::string_view text);

  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written in it yet
};

}  // namespace pylon::bench
