#include "obs/log.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

namespace pylon::obs {
namespace {

constexpr std::size_t kQueueLines = 16384;

std::atomic<LogLevel> current_level{LogLevel::info};
std::atomic<LogFormat> current_format{LogFormat::json};
std::shared_ptr<spdlog::logger> writer;  // set once by start_logging, before any loop thread runs

constexpr std::string_view kLevelNames[] = {"debug", "debug", "info", "warn",
                                            "error"};  // zap has no trace

std::string_view level_name(LogLevel level) {
  return level == LogLevel::trace ? "trace" : kLevelNames[static_cast<int>(level)];
}

template <typename Number>
void append_number(std::string& out, Number value) {
  char buffer[32];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, end);
}

void append_value(std::string& out, const LogValue& value, bool quote_strings) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          if (quote_strings || v.empty() || v.find_first_of(" \"=\n") != std::string_view::npos)
            append_json_string(out, v);
          else
            out += v;
        } else if constexpr (std::is_same_v<T, bool>) {
          out += v ? "true" : "false";
        } else {
          append_number(out, v);
        }
      },
      value);
}

double now_epoch_seconds() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration<double>(now).count();
}

void write_line(LogLevel level, const std::string& line) {
  if (writer) {
    writer->log(level >= LogLevel::error ? spdlog::level::err : spdlog::level::info, "{}", line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;  // UTF-8 passes through; invalid bytes from clients never reach a log field raw
        }
    }
  }
  out += '"';
}

void render_log_line(std::string& out, LogFormat format, double epoch_seconds, LogLevel level,
                     std::string_view message, std::span<const LogField> fields) {
  out.clear();
  if (format == LogFormat::json) {
    out += "{\"ts\":";
    char buffer[32];
    const int length = std::snprintf(buffer, sizeof buffer, "%.6f", epoch_seconds);
    out.append(buffer, static_cast<std::size_t>(length));
    out += ",\"level\":";
    append_json_string(out, level_name(level));
    out += ",\"msg\":";
    append_json_string(out, message);
    for (const LogField& field : fields) {
      out += ',';
      append_json_string(out, field.key);
      out += ':';
      append_value(out, field.value, true);
    }
    out += '}';
    return;
  }
  const auto seconds = static_cast<std::time_t>(epoch_seconds);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  out += stamp;
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03dZ",
                static_cast<int>((epoch_seconds - static_cast<double>(seconds)) * 1000));
  out += millis;
  out += ' ';
  std::string_view name = level_name(level);
  for (const char c : name) out += static_cast<char>(c - 32);  // upper case
  out += ' ';
  out += message;
  for (const LogField& field : fields) {
    out += ' ';
    out += field.key;
    out += '=';
    append_value(out, field.value, false);
  }
}

void start_logging(LogFormat format, LogLevel level) {
  current_format.store(format);
  current_level.store(level);
  spdlog::init_thread_pool(kQueueLines, 1);
  // overrun_oldest: a full queue drops its oldest line instead of blocking the caller.
  writer = spdlog::create_async_nb<spdlog::sinks::stderr_sink_mt>("pylon");
  writer->set_pattern("%v");
  writer->set_level(spdlog::level::trace);
  writer->flush_on(spdlog::level::err);
}

void stop_logging() noexcept {
  if (!writer) return;
  writer->flush();
  spdlog::shutdown();
  writer.reset();
}

void set_log_level(LogLevel level) noexcept {
  current_level.store(level, std::memory_order_relaxed);
}

bool log_enabled(LogLevel level) noexcept {
  return level >= current_level.load(std::memory_order_relaxed);
}

void log(LogLevel level, std::string_view message, std::span<const LogField> fields) {
  if (!log_enabled(level)) return;
  thread_local std::string line;
  render_log_line(line, current_format.load(std::memory_order_relaxed), now_epoch_seconds(), level,
                  message, fields);
  write_line(level, line);
}

void LogRateLimit::log(LogLevel level, std::string_view message,
                       std::initializer_list<LogField> fields) {
  if (!log_enabled(level)) return;
  const auto second = static_cast<std::uint64_t>(now_epoch_seconds());
  if (window_.exchange(second, std::memory_order_relaxed) != second)
    in_window_.store(0, std::memory_order_relaxed);
  if (in_window_.fetch_add(1, std::memory_order_relaxed) >= per_second_) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::uint64_t suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
  if (suppressed == 0) return obs::log(level, message, std::span(fields.begin(), fields.size()));
  // The same line plus the count of what was dropped since the last one that got through.
  LogField extended[kMaxFields + 1];
  std::size_t count = 0;
  for (const LogField& field : fields)
    if (count < kMaxFields) extended[count++] = field;
  extended[count++] = {"suppressed", suppressed};
  obs::log(level, message, std::span<const LogField>(extended, count));
}

}  // namespace pylon::obs
