#include "obs/log.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pylon::obs {
namespace {

std::string render(LogFormat format, std::initializer_list<LogField> fields) {
  std::string line;
  render_log_line(line, format, 1795650000.25, LogLevel::warn, "request refused",
                  std::span(fields.begin(), fields.size()));
  return line;
}

TEST(Log, JsonLinesHaveZapsShapeAndEscapeEverything) {
  const std::string line =
      render(LogFormat::json, {{"remote", std::string_view("1.2.3.4:5")},
                               {"status", std::int64_t{431}},
                               {"bytes", std::uint64_t{7}},
                               {"duration_s", 0.5},
                               {"ok", false},
                               {"agent", std::string_view("a \"quoted\"\n\x01 agent")}});
  EXPECT_EQ(
      line,
      R"({"ts":1795650000.250000,"level":"warn","msg":"request refused","remote":"1.2.3.4:5","status":431,)"
      R"("bytes":7,"duration_s":0.5,"ok":false,"agent":"a \"quoted\"\n\u0001 agent"})");
}

TEST(Log, ConsoleLinesAreForPeople) {
  const std::string line = render(LogFormat::console, {{"remote", std::string_view("1.2.3.4:5")},
                                                       {"reason", std::string_view("bad key")}});
  EXPECT_EQ(line,
            "2026-11-25T23:40:00.250Z WARN request refused remote=1.2.3.4:5 reason=\"bad key\"");
}

// The words of log_level and log_format are parsed with the configuration (config_test.cpp).
TEST(Log, LevelFiltersLines) {
  set_log_level(LogLevel::warn);
  EXPECT_FALSE(log_enabled(LogLevel::info));
  EXPECT_TRUE(log_enabled(LogLevel::error));
  set_log_level(LogLevel::info);
}

}  // namespace
}  // namespace pylon::obs
