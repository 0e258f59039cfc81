// Structured logs: one JSON object per line in zap's production shape
// ({"ts":<epoch seconds>,"level":"info","msg":"...", fields...}) or a console line for people.
//
// Any thread. A line is rendered on the calling thread into a reused buffer and handed to an
// asynchronous writer thread whose queue drops the oldest lines when full: logging never
// blocks a loop thread. Lines that a flood could multiply (bad clients) go through a
// LogRateLimit, which reports how many it suppressed.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "pylon/config.hpp"

namespace pylon::obs {

// The configuration's enums (log_level, log_format keys), so that a level is parsed once, at load.
using pylon::LogFormat;
using pylon::LogLevel;

using LogValue = std::variant<std::string_view, std::int64_t, std::uint64_t, double, bool>;
struct LogField {
  std::string_view key;
  LogValue value;
};

// Before: lines go to stderr synchronously (start-up errors). After: asynchronous.
void start_logging(LogFormat format, LogLevel level);
void stop_logging() noexcept;  // flushes; call before exit
void set_log_level(LogLevel level) noexcept;
bool log_enabled(LogLevel level) noexcept;

void log(LogLevel level, std::string_view message, std::span<const LogField> fields);
inline void log(LogLevel level, std::string_view message,
                std::initializer_list<LogField> fields = {}) {
  log(level, message, std::span(fields.begin(), fields.size()));
}

// At most `per_second` lines a second for one kind of line; the first line after a suppressed
// stretch carries "suppressed": how many were dropped.
class LogRateLimit {
 public:
  explicit LogRateLimit(std::uint32_t per_second) noexcept : per_second_(per_second) {}
  void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

 private:
  static constexpr std::size_t kMaxFields = 15;
  std::uint32_t per_second_;
  std::atomic<std::uint64_t> window_{0};     // the second this window counts
  std::atomic<std::uint32_t> in_window_{0};  // lines written in it
  std::atomic<std::uint64_t> suppressed_{0};
};

// Appends text as a JSON string (quotes, escapes for ", \ and control characters); the one JSON
// string writer of the server (logs, the topic protocol's replies, the dashboard's stats).
void append_json_string(std::string& out, std::string_view text);

// Renders one line (no newline) into out; exposed for tests.
void render_log_line(std::string& out, LogFormat format, double epoch_seconds, LogLevel level,
                     std::string_view message, std::span<const LogField> fields);

}  // namespace pylon::obs
