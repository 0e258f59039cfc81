// Sans-I/O HTTP/1.1 response-head parser for the client role: reads the server's answer to the
// WebSocket opening handshake (a status line and header fields, RFC 9112 §4 and §5).
//
// Same contract as RequestParser: the caller owns the bytes and may grow or move its buffer
// between calls; the parser keeps offsets in a fixed-size state and allocates nothing; on done
// the Response holds views into the caller's buffer. One connection, one thread at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/request_parser.hpp"

namespace pylon::http {

struct Response {
  int status = 0;
  std::string_view reason;
  int version_minor = 1;
  std::array<Header, kMaxHeaders> headers{};
  std::size_t header_count = 0;

  const Header* find(std::string_view name) const noexcept;
  std::size_t count(std::string_view name) const noexcept;
  std::string join(std::string_view name) const;  // as Request::join
  // True when a header `name` lists `token` in its comma-separated value (case-insensitive).
  bool has_token(std::string_view name, std::string_view token) const noexcept;
};

// Parses a status line and header fields only: a 101 has no body, and for any other status the
// handshake failed, so the caller reads what it wants and closes. `done` means the head is
// complete; consumed counts the head, and bytes after it (the first WebSocket frames) are left
// alone. Interim 1xx responses other than 101 are reported like any other status.
//
// Limits: max_request_line bounds the status line (400), max_header_bytes and max_headers the
// field section (431); max_body is not used. Error statuses are those a server would send and
// only serve for logging. The status line is "HTTP/1.x" SP 3DIGIT (100-599) [SP reason]; a
// missing SP before an empty reason is accepted, as deployed servers send it. After done or
// error, parse() repeats the same result until reset().
class ResponseParser {
 public:
  explicit ResponseParser(const Limits& limits = {}) noexcept;
  ParseResult parse(std::string_view buffer, Response& out) noexcept;
  void reset() noexcept;

 private:
  enum class Phase : std::uint8_t { status_line, field_lines, done, failed };

  ParseError parse_status_line(std::string_view buffer, const detail::Line& line) noexcept;
  ParseResult fail(ParseError error) noexcept;
  ParseResult finish(std::string_view buffer, Response& out) noexcept;

  Limits limits_;
  Phase phase_ = Phase::status_line;
  detail::LineCursor cursor_;
  detail::FieldSection fields_;
  int status_ = 0;
  detail::Span reason_;
  int version_minor_ = 1;
  std::size_t head_size_ = 0;
  ParseError error_ = ParseError::none;
};

}  // namespace pylon::http
