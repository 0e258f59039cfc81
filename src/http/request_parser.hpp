// Sans-I/O HTTP/1.1 request parser (server role) and the pieces of HTTP/1.1 message framing it
// shares with the response parser (client role): line framing, the field-line rules, limits and
// the error table.
//
// Ownership: the caller owns the bytes. The parser owns only a small fixed-size state (offsets,
// never pointers, so the caller may grow or move its buffer between calls); on `done` the
// `Request` holds string_views into the caller's buffer, valid as long as that buffer is.
// Nothing here allocates. A parser belongs to one connection and one thread at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pylon::http {

struct Header {
  std::string_view name;
  std::string_view value;
};

inline constexpr std::size_t kMaxHeaders = 64;  // capacity of the fixed header array

// Every limit is "at most": a value exactly at the limit is accepted, one past it is not. Each is
// applied as soon as the bytes received prove it exceeded, without waiting for the line to end.
struct Limits {
  // Request line (or status line) length without its CRLF/LF. Past it: 414 when the request
  // target is what makes the line long, otherwise 400. Decided on the first max_request_line
  // bytes alone (so it is the same however the bytes arrive): 414 when they hold a method, one
  // SP, and a target that runs to the limit or is followed by at most 8 bytes ("HTTP/1.1").
  std::size_t max_request_line = 8192;
  // Sum of the field-line lengths, each counted without its CRLF/LF -> 431.
  std::size_t max_header_bytes = 16384;
  // Number of field lines; clamped to kMaxHeaders -> 431.
  std::size_t max_headers = kMaxHeaders;
  // Content-Length beyond it -> 413 (as soon as the header line is complete).
  std::size_t max_body = 1 << 20;
};

// One enumerator per rule a message can break; `describe()` maps each to the status a server
// answers with and a short reason. The client role reports the same codes for logging only.
enum class ParseError : std::uint8_t {
  none,
  bare_cr,                     // 400 RFC 9112 §2.2
  request_line_too_long,       // 400 (the method or version part makes it long)
  target_too_long,             // 414 RFC 9112 §3
  invalid_method,              // 400 RFC 9110 §9.1: method = token
  invalid_target,              // 400 RFC 9112 §3.2
  http09_request,              // 505 a request line without version
  invalid_version,             // 400 RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT
  unsupported_version,         // 505 RFC 9110 §15.6.6
  obs_fold,                    // 400 RFC 9112 §5.2
  whitespace_before_colon,     // 400 RFC 9112 §5.1
  missing_colon,               // 400 RFC 9112 §5
  invalid_header_name,         // 400 RFC 9110 §5.1: field-name = token
  invalid_header_value,        // 400 RFC 9110 §5.5
  too_many_headers,            // 431 RFC 6585 §5
  header_section_too_large,    // 431 RFC 6585 §5
  invalid_content_length,      // 400 RFC 9110 §8.6
  conflicting_content_length,  // 400 RFC 9112 §6.3
  body_too_large,              // 413 RFC 9110 §15.5.14
  transfer_encoding,           // 501 RFC 9112 §6.1: we accept no transfer coding
  missing_host,                // 400 RFC 9112 §3.2
  duplicate_host,              // 400 RFC 9112 §3.2
  invalid_host,                // 400 RFC 9112 §3.2: Host = uri-host [ ":" port ]
  status_line_too_long,        // 400 (client role)
  invalid_status_code,         // 400 RFC 9112 §4: status-code = 3DIGIT
  invalid_reason,              // 400 RFC 9112 §4
  buffer_shrank,               // 500 caller bug: the buffer is shorter than on the last call
};

struct ErrorDescription {
  int status;
  std::string_view reason;
};
ErrorDescription describe(ParseError error) noexcept;

enum class ParseStatus : std::uint8_t { need_more, done, error };

struct ParseResult {
  ParseStatus status = ParseStatus::need_more;
  std::size_t consumed = 0;       // done: bytes of this message (head + body)
  int error_status = 0;           // error: 400, 413, 414, 431, 501, 505 (describe(error).status)
  std::string_view error_reason;  // error: short text for a response body or a log line
  ParseError error = ParseError::none;  // error: which rule was broken
};

struct Request {
  std::string_view method, target, path, query;  // path = target before '?', query after (no '?')
  int version_minor = 1;                         // HTTP/1.<minor>
  std::array<Header, kMaxHeaders> headers{};
  std::size_t header_count = 0;
  std::string_view body;  // Content-Length body ("" when none)

  // First header with this name, case-insensitive; nullptr when absent.
  const Header* find(std::string_view name) const noexcept;
  std::size_t count(std::string_view name) const noexcept;  // how many headers have this name
  // The values of every header `name`, as the one comma-separated list they are (RFC 9110 §5.3).
  std::string join(std::string_view name) const;
  // True when a header `name` (any of them) lists `token` in its comma-separated value,
  // case-insensitively (RFC 9110 §5.6.1), e.g. has_token("Connection", "upgrade").
  bool has_token(std::string_view name, std::string_view token) const noexcept;
  // RFC 9112 §9.3: HTTP/1.1 persistent unless "Connection: close"; HTTP/1.0 only with
  // "keep-alive".
  bool keep_alive() const noexcept;
};

namespace detail {

// A range of the caller's buffer. Offsets fit 32 bits because the limits are clamped so that a
// message head stays far below 4 GiB.
struct Span {
  std::uint32_t begin = 0;
  std::uint32_t size = 0;
  std::string_view in(std::string_view buffer) const noexcept { return buffer.substr(begin, size); }
};

struct FieldSpan {
  Span name;
  Span value;
};

// A complete line: [begin, end) is its content without CRLF/LF; next is the byte after the LF.
struct Line {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::size_t next = 0;
};

// Line framing (RFC 9112 §2.2): a line ends with LF, optionally preceded by CR.
class LineCursor {
 public:
  // The next complete line, or false when its LF has not arrived. The LF search resumes where
  // the previous call stopped, so feeding a byte at a time stays linear.
  bool next(std::string_view buffer, Line& line) noexcept;
  void advance(const Line& line) noexcept { begin_ = scan_ = line.next; }
  // Content bytes of the incomplete line received so far. A trailing CR may be the start of the
  // line's CRLF, so it does not count yet.
  std::size_t partial_size(std::string_view buffer) const noexcept;
  std::size_t begin() const noexcept { return begin_; }
  std::size_t scanned() const noexcept { return scan_; }
  void reset() noexcept { begin_ = scan_ = 0; }

 private:
  std::size_t begin_ = 0;  // first byte of the current line
  std::size_t scan_ = 0;   // bytes before this offset hold no LF of the current line
};

// The field section of one message (RFC 9112 §5), stored as offsets, with its limits.
class FieldSection {
 public:
  explicit FieldSection(const Limits& limits) noexcept;
  // Limits that the incomplete line already proves exceeded (partial = its content so far).
  ParseError check_partial(std::size_t partial) const noexcept;
  // Checks the limits and RFC 9112 §5 / RFC 9110 §5.5 on one complete, non-empty field line,
  // then stores it.
  ParseError add(std::string_view buffer, const detail::Line& line) noexcept;
  std::size_t size() const noexcept { return count_; }
  const FieldSpan& operator[](std::size_t i) const noexcept { return fields_[i]; }
  // Writes the views into `buffer`; returns the count.
  std::size_t fill(std::string_view buffer, std::array<Header, kMaxHeaders>& out) const noexcept;
  void reset() noexcept { count_ = bytes_ = 0; }

  // Reads field lines from `cursor` up to the blank line that ends the head (RFC 9112 §2.1),
  // resuming across calls. Three outcomes: need_more, done (head_size = the byte after the blank
  // line), failed (`error` says why). on_field(buffer) checks each stored field further and
  // returns an error or ParseError::none.
  enum class Progress : std::uint8_t { need_more, done, failed };
  template <typename OnField>
  Progress read(LineCursor& cursor, std::string_view buffer, std::size_t& head_size,
                ParseError& error, OnField on_field) noexcept {
    Line line;
    for (;;) {
      if (!cursor.next(buffer, line)) {
        error = check_partial(cursor.partial_size(buffer));
        return error == ParseError::none ? Progress::need_more : Progress::failed;
      }
      cursor.advance(line);
      if (line.end == line.begin) {
        head_size = line.next;
        return Progress::done;
      }
      error = add(buffer, line);
      if (error == ParseError::none) error = on_field(buffer);
      if (error != ParseError::none) return Progress::failed;
    }
  }

 private:
  // Which rule a line that is not `name: value` breaks, checked in the RFCs' order.
  static ParseError field_error(std::string_view text) noexcept;

  std::size_t max_headers_;
  std::size_t max_bytes_;
  std::array<FieldSpan, kMaxHeaders> fields_;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;  // content bytes of the stored field lines
};

// Limits with every value clamped to what the offset types hold.
Limits clamp(const Limits& limits) noexcept;
// RFC 9110 §5.6.2: tchar.
bool is_tchar(unsigned char c) noexcept;
// RFC 9110 §5.6.1: does the comma-separated list contain `token` (case-insensitive)?
bool list_has_token(std::string_view list, std::string_view token) noexcept;
ParseResult failure(ParseError error) noexcept;
// Lookups shared by Request and Response (names compared case-insensitively).
const Header* find_header(const Header* headers, std::size_t count, std::string_view name) noexcept;
std::size_t count_headers(const Header* headers, std::size_t count, std::string_view name) noexcept;
void join_headers(const Header* headers, std::size_t count, std::string_view name,
                  std::string& out);
bool headers_have_token(const Header* headers, std::size_t count, std::string_view name,
                        std::string_view token) noexcept;
// Parses "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3). HTTP/1.x above 1.1 reads as 1.1 (RFC 9110
// §6.2); any other major version is unsupported_version.
ParseError parse_version(std::string_view text, int& minor) noexcept;

}  // namespace detail

// Resumable: call parse() again with the SAME buffer grown by newly received bytes (it may have
// moved in memory); it continues where it stopped instead of rescanning. On done, `out` holds
// views into `buffer` and the result tells how many bytes the request took (pipelined bytes
// after it are left alone); `out` is written only on done. Then call reset() before the next
// request. After done or error, parse() repeats the same result until reset().
//
// Tolerates one empty line before the request line (RFC 9112 §2.2) and LF-only line endings.
// Rejects: obs-fold, whitespace between a field name and its colon, non-token method or field
// names, bare CR, control characters other than HTAB in field values, a Content-Length that is
// not a number or differs between its copies (400); Transfer-Encoding (501: no chunked request
// bodies); a missing or repeated Host (400); versions other than HTTP/1.x (505; 400 when
// malformed). Field values are trimmed of OWS and may hold obs-text (0x80-0xFF).
//
// path/query: for origin-form the target split at the first '?'. For absolute-form
// ("http://host/p?q", RFC 9112 §3.2.2) path is the path component after the authority, which is
// empty when the target has none (means "/"). Authority-form and "*" leave path = target.
class RequestParser {
 public:
  explicit RequestParser(const Limits& limits = {}) noexcept;
  ParseResult parse(std::string_view buffer, Request& out) noexcept;
  void reset() noexcept;

 private:
  enum class Phase : std::uint8_t { request_line, field_lines, body, done, failed };

  ParseError parse_request_line(std::string_view buffer, const detail::Line& line) noexcept;
  ParseError note_field(std::string_view buffer) noexcept;  // framing fields of the last line
  ParseError finish_head() noexcept;
  ParseResult fail(ParseError error) noexcept;
  ParseResult finish(std::string_view buffer, Request& out) noexcept;

  Limits limits_;
  Phase phase_ = Phase::request_line;
  bool skipped_empty_line_ = false;
  detail::LineCursor cursor_;
  detail::FieldSection fields_;
  detail::Span method_, target_;
  int version_minor_ = 1;
  std::size_t host_count_ = 0;
  bool has_content_length_ = false;
  std::size_t content_length_ = 0;
  std::size_t head_size_ = 0;
  ParseError error_ = ParseError::none;
};

}  // namespace pylon::http
