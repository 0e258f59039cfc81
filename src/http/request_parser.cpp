#include "http/request_parser.hpp"

#include <algorithm>
#include <limits>

#include "http/response_writer.hpp"

namespace pylon::http {
namespace {

// Keeps every offset of a message head below 2^32 (see detail::Span): the request line and
// the field section can each reach 1 GiB, far beyond anything sensible.
constexpr std::size_t kLimitCeiling = std::size_t{1} << 30;

constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) table[c] = true;
  return table;
}
constexpr std::array<bool, 256> kTchar = make_tchar_table();

// RFC 3986 §3.2.2 reg-name / IP-literal characters plus ':' for the port: what a Host value may
// hold (RFC 9112 §3.2).
constexpr std::array<bool, 256> make_host_table() {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (unsigned char c : std::string_view("-._~%!$&'()*+,;=:[]")) table[c] = true;
  return table;
}
constexpr std::array<bool, 256> kHostChar = make_host_table();

// RFC 9110 §5.5: field-content is VCHAR, SP, HTAB and obs-text; no other control character.
constexpr std::array<bool, 256> make_field_content_table() {
  std::array<bool, 256> table{};
  for (int c = 0x20; c < 0x100; ++c) table[c] = c != 0x7f;
  table['\t'] = true;
  return table;
}
constexpr std::array<bool, 256> kFieldContent = make_field_content_table();

bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

std::string_view trim_ows(std::string_view text) noexcept {
  while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
  return text;
}

detail::Span span_of(std::size_t begin, std::size_t size) noexcept {
  return {static_cast<std::uint32_t>(begin), static_cast<std::uint32_t>(size)};
}

// The request line passed max_request_line. RFC 9112 §3 asks for 414 when the target is too
// long. The decision looks only at the first `max` bytes so that it does not depend on how the
// bytes were split: a method, one SP, then a target that is either still running at the limit or
// followed by no more than a version's worth of bytes ("HTTP/1.1") -> 414. Otherwise the method
// or the version part is what is long -> 400.
ParseError classify_long_request_line(std::string_view window) noexcept {
  constexpr std::size_t kVersionSize = 8;  // "HTTP/1.1"
  std::size_t m = 0;
  while (m < window.size() && detail::is_tchar(static_cast<unsigned char>(window[m]))) ++m;
  if (m == 0 || m == window.size() || window[m] != ' ') return ParseError::request_line_too_long;
  const std::size_t space = window.find(' ', m + 1);
  if (space == m + 1) return ParseError::request_line_too_long;  // empty target
  if (space == std::string_view::npos || window.size() - (space + 1) <= kVersionSize) {
    return ParseError::target_too_long;
  }
  return ParseError::request_line_too_long;
}

// RFC 9110 §8.6: Content-Length = 1*DIGIT. A list of identical values ("5, 5") is what a
// recipient may see after a proxy joined duplicate lines, and reads as one value. Huge numbers
// saturate: they are still numbers, only too large (413, not 400).
ParseError parse_content_length(std::string_view value, std::uint64_t& length) noexcept {
  constexpr std::uint64_t kSaturated = std::numeric_limits<std::uint64_t>::max();
  bool first = true;
  while (true) {
    const std::size_t comma = value.find(',');
    const std::string_view element = trim_ows(value.substr(0, comma));
    if (element.empty()) return ParseError::invalid_content_length;
    std::uint64_t number = 0;
    for (char c : element) {
      if (!is_digit(c)) return ParseError::invalid_content_length;
      const auto digit = static_cast<std::uint64_t>(c - '0');
      number = number > (kSaturated - digit) / 10 ? kSaturated : number * 10 + digit;
    }
    if (!first && number != length) return ParseError::conflicting_content_length;
    length = number;
    first = false;
    if (comma == std::string_view::npos) return ParseError::none;
    value.remove_prefix(comma + 1);
  }
}

bool is_scheme(std::string_view text) noexcept {
  if (text.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(text[0])) return false;
  return std::all_of(text.begin(), text.end(), [&](char c) {
    return alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
  });
}

// path and query per the Request contract; every view stays inside `target`.
void split_target(std::string_view target, std::string_view& path,
                  std::string_view& query) noexcept {
  const std::size_t question = target.find('?');
  if (question == std::string_view::npos) {
    path = target;
    query = target.substr(target.size());
  } else {
    path = target.substr(0, question);
    query = target.substr(question + 1);
  }
  // RFC 9112 §3.2.2 absolute-form: drop "scheme://authority" so routes see the path.
  if (path.empty() || path.front() == '/') return;
  const std::size_t scheme_end = path.find("://");
  if (scheme_end == std::string_view::npos || !is_scheme(path.substr(0, scheme_end))) return;
  const std::size_t slash = path.find('/', scheme_end + 3);
  path = path.substr(slash == std::string_view::npos ? path.size() : slash);
}

}  // namespace

ErrorDescription describe(ParseError error) noexcept {
  switch (error) {
    case ParseError::none:
      return {0, ""};
    case ParseError::bare_cr:
      return {400, "bare CR"};
    case ParseError::request_line_too_long:
      return {400, "request line too long"};
    case ParseError::target_too_long:
      return {414, "request target too long"};
    case ParseError::invalid_method:
      return {400, "invalid method"};
    case ParseError::invalid_target:
      return {400, "invalid request target"};
    case ParseError::http09_request:
      return {505, "HTTP/0.9 request not supported"};
    case ParseError::invalid_version:
      return {400, "malformed HTTP version"};
    case ParseError::unsupported_version:
      return {505, "HTTP version not supported"};
    case ParseError::obs_fold:
      return {400, "obsolete header line folding"};
    case ParseError::whitespace_before_colon:
      return {400, "whitespace between header name and colon"};
    case ParseError::missing_colon:
      return {400, "header line without colon"};
    case ParseError::invalid_header_name:
      return {400, "invalid header name"};
    case ParseError::invalid_header_value:
      return {400, "control character in header value"};
    case ParseError::too_many_headers:
      return {431, "too many header fields"};
    case ParseError::header_section_too_large:
      return {431, "header section too large"};
    case ParseError::invalid_content_length:
      return {400, "invalid Content-Length"};
    case ParseError::conflicting_content_length:
      return {400, "conflicting Content-Length"};
    case ParseError::body_too_large:
      return {413, "body too large"};
    case ParseError::transfer_encoding:
      return {501, "Transfer-Encoding not supported"};
    case ParseError::missing_host:
      return {400, "missing Host header"};
    case ParseError::duplicate_host:
      return {400, "more than one Host header"};
    case ParseError::invalid_host:
      return {400, "invalid Host header"};
    case ParseError::status_line_too_long:
      return {400, "status line too long"};
    case ParseError::invalid_status_code:
      return {400, "invalid status code"};
    case ParseError::invalid_reason:
      return {400, "control character in reason phrase"};
    case ParseError::buffer_shrank:
      return {500, "buffer shorter than on the previous call"};
  }
  return {500, "unknown parse error"};
}

// ---------------------------------------------------------------------------------------------
// detail: the pieces shared with the response parser

namespace detail {

Limits clamp(const Limits& limits) noexcept {
  Limits out = limits;
  out.max_request_line = std::min(out.max_request_line, kLimitCeiling);
  out.max_header_bytes = std::min(out.max_header_bytes, kLimitCeiling);
  out.max_headers = std::min(out.max_headers, kMaxHeaders);
  return out;
}

bool is_tchar(unsigned char c) noexcept {
  return kTchar[c];
}

bool list_has_token(std::string_view list, std::string_view token) noexcept {
  while (true) {
    const std::size_t comma = list.find(',');
    if (iequals(trim_ows(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

ParseResult failure(ParseError error) noexcept {
  const ErrorDescription description = describe(error);
  ParseResult result;
  result.status = ParseStatus::error;
  result.error_status = description.status;
  result.error_reason = description.reason;
  result.error = error;
  return result;
}

ParseError parse_version(std::string_view text, int& minor) noexcept {
  if (text.size() == 8 && text.substr(0, 5) == "HTTP/" && is_digit(text[5]) && text[6] == '.' &&
      is_digit(text[7])) {
    if (text[5] != '1') return ParseError::unsupported_version;
    // RFC 9110 §6.2: a higher minor version is processed as the highest we implement.
    minor = text[7] == '0' ? 0 : 1;
    return ParseError::none;
  }
  // "HTTP/2", "HTTP/3": well-formed names of versions this codec does not speak.
  if (text.size() == 6 && text.substr(0, 5) == "HTTP/" && is_digit(text[5]) && text[5] != '1') {
    return ParseError::unsupported_version;
  }
  return ParseError::invalid_version;
}

const Header* find_header(const Header* headers, std::size_t count,
                          std::string_view name) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    if (iequals(headers[i].name, name)) return &headers[i];
  }
  return nullptr;
}

std::size_t count_headers(const Header* headers, std::size_t count,
                          std::string_view name) noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < count; ++i) n += iequals(headers[i].name, name) ? 1 : 0;
  return n;
}

void join_headers(const Header* headers, std::size_t count, std::string_view name,
                  std::string& out) {
  for (std::size_t i = 0; i < count; ++i) {
    if (!iequals(headers[i].name, name)) continue;
    if (!out.empty()) out += ", ";
    out += headers[i].value;
  }
}

bool headers_have_token(const Header* headers, std::size_t count, std::string_view name,
                        std::string_view token) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    if (iequals(headers[i].name, name) && list_has_token(headers[i].value, token)) return true;
  }
  return false;
}

bool LineCursor::next(std::string_view buffer, Line& line) noexcept {
  const std::size_t lf = buffer.find('\n', scan_);
  if (lf == std::string_view::npos) {
    scan_ = buffer.size();
    return false;
  }
  line.begin = begin_;
  line.end = (lf > begin_ && buffer[lf - 1] == '\r') ? lf - 1 : lf;
  line.next = lf + 1;
  scan_ = lf;
  return true;
}

std::size_t LineCursor::partial_size(std::string_view buffer) const noexcept {
  std::size_t size = buffer.size() - begin_;
  if (size > 0 && buffer.back() == '\r') --size;
  return size;
}

FieldSection::FieldSection(const Limits& limits) noexcept
    : max_headers_(clamp(limits).max_headers), max_bytes_(clamp(limits).max_header_bytes) {}

ParseError FieldSection::check_partial(std::size_t partial) const noexcept {
  // An empty partial line may still become the blank line that ends the head.
  if (partial == 0) return ParseError::none;
  if (count_ >= max_headers_) return ParseError::too_many_headers;
  if (partial > max_bytes_ - bytes_) return ParseError::header_section_too_large;
  return ParseError::none;
}

ParseError FieldSection::add(std::string_view buffer, const Line& line) noexcept {
  const std::size_t size = line.end - line.begin;
  // Limits first, in the order check_partial() applies them, so that the verdict does not depend
  // on whether the line arrived whole.
  if (count_ >= max_headers_) return ParseError::too_many_headers;
  if (size > max_bytes_ - bytes_) return ParseError::header_section_too_large;

  const std::string_view text = buffer.substr(line.begin, size);
  // The common line in one pass: a token, a colon, field content. Anything else is looked at
  // rule by rule (field_error) for the exact error.
  std::size_t colon = 0;
  while (colon < text.size() && kTchar[static_cast<unsigned char>(text[colon])]) ++colon;
  if (colon == 0 || colon == text.size() || text[colon] != ':') return field_error(text);
  const std::string_view value = trim_ows(text.substr(colon + 1));
  for (char c : value) {
    if (!kFieldContent[static_cast<unsigned char>(c)]) return field_error(text);
  }
  const std::size_t value_begin = line.begin + static_cast<std::size_t>(value.data() - text.data());
  fields_[count_] = {span_of(line.begin, colon), span_of(value_begin, value.size())};
  ++count_;
  bytes_ += size;
  return ParseError::none;
}

ParseError FieldSection::field_error(std::string_view text) noexcept {
  if (text.find('\r') != std::string_view::npos) return ParseError::bare_cr;  // RFC 9112 §2.2
  // RFC 9112 §5.2: a line starting with whitespace continues the previous one (obs-fold); a
  // server must reject it or unfold it, and unfolding would need a copy.
  if (is_ows(text.front())) return ParseError::obs_fold;
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) return ParseError::missing_colon;
  const std::string_view name = text.substr(0, colon);
  if (name.empty()) return ParseError::invalid_header_name;
  // RFC 9112 §5.1: no whitespace between name and colon (a smuggling vector: some proxies
  // strip it, others keep it as part of the name).
  if (is_ows(name.back())) return ParseError::whitespace_before_colon;
  for (char c : name) {
    if (!kTchar[static_cast<unsigned char>(c)]) return ParseError::invalid_header_name;
  }
  return ParseError::invalid_header_value;  // a control character in the value
}

std::size_t FieldSection::fill(std::string_view buffer,
                               std::array<Header, kMaxHeaders>& out) const noexcept {
  for (std::size_t i = 0; i < count_; ++i) {
    out[i] = {fields_[i].name.in(buffer), fields_[i].value.in(buffer)};
  }
  return count_;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Request

const Header* Request::find(std::string_view name) const noexcept {
  return detail::find_header(headers.data(), header_count, name);
}

std::size_t Request::count(std::string_view name) const noexcept {
  return detail::count_headers(headers.data(), header_count, name);
}

std::string Request::join(std::string_view name) const {
  std::string out;
  detail::join_headers(headers.data(), header_count, name, out);
  return out;
}

bool Request::has_token(std::string_view name, std::string_view token) const noexcept {
  return detail::headers_have_token(headers.data(), header_count, name, token);
}

bool Request::keep_alive() const noexcept {
  if (has_token("Connection", "close")) return false;
  if (version_minor == 0) return has_token("Connection", "keep-alive");
  return true;
}

// ---------------------------------------------------------------------------------------------
// RequestParser

RequestParser::RequestParser(const Limits& limits) noexcept
    : limits_(detail::clamp(limits)), fields_(limits_) {}

void RequestParser::reset() noexcept {
  phase_ = Phase::request_line;
  skipped_empty_line_ = false;
  cursor_.reset();
  fields_.reset();
  method_ = target_ = {};
  version_minor_ = 1;
  host_count_ = 0;
  has_content_length_ = false;
  content_length_ = 0;
  head_size_ = 0;
  error_ = ParseError::none;
}

ParseResult RequestParser::fail(ParseError error) noexcept {
  phase_ = Phase::failed;
  error_ = error;
  return detail::failure(error);
}

ParseResult RequestParser::parse(std::string_view buffer, Request& out) noexcept {
  if (phase_ == Phase::failed) return detail::failure(error_);
  const std::size_t seen = phase_ == Phase::done ? head_size_ + content_length_ : cursor_.scanned();
  if (buffer.size() < seen) return fail(ParseError::buffer_shrank);

  detail::Line line;
  while (phase_ == Phase::request_line) {
    if (!cursor_.next(buffer, line)) {
      if (cursor_.partial_size(buffer) > limits_.max_request_line) {
        return fail(
            classify_long_request_line(buffer.substr(cursor_.begin(), limits_.max_request_line)));
      }
      return {};
    }
    if (line.end == line.begin && !skipped_empty_line_) {
      // RFC 9112 §2.2: ignore at least one empty line before the request line (some clients
      // send an extra CRLF after a POST body).
      skipped_empty_line_ = true;
      cursor_.advance(line);
      continue;
    }
    if (const ParseError error = parse_request_line(buffer, line); error != ParseError::none) {
      return fail(error);
    }
    cursor_.advance(line);
    phase_ = Phase::field_lines;
  }

  if (phase_ == Phase::field_lines) {
    ParseError error = ParseError::none;
    switch (fields_.read(cursor_, buffer, head_size_, error,
                         [this](std::string_view bytes) { return note_field(bytes); })) {
      case detail::FieldSection::Progress::need_more:
        return {};
      case detail::FieldSection::Progress::failed:
        return fail(error);
      case detail::FieldSection::Progress::done:
        break;
    }
    if (const ParseError head_error = finish_head(); head_error != ParseError::none)
      return fail(head_error);
    phase_ = Phase::body;
  }

  if (phase_ == Phase::body) {
    if (buffer.size() - head_size_ < content_length_) return {};
    phase_ = Phase::done;
  }
  return finish(buffer, out);
}

// RFC 9112 §3: request-line = method SP request-target SP HTTP-version, with single spaces.
// Lenient splitting on any whitespace (which §3 permits) is refused on purpose: proxies in front
// of us may split differently.
ParseError RequestParser::parse_request_line(std::string_view buffer,
                                             const detail::Line& line) noexcept {
  const std::string_view text = buffer.substr(line.begin, line.end - line.begin);
  if (text.size() > limits_.max_request_line) {
    return classify_long_request_line(text.substr(0, limits_.max_request_line));
  }
  if (text.find('\r') != std::string_view::npos) return ParseError::bare_cr;

  std::size_t method_size = 0;
  while (method_size < text.size() && kTchar[static_cast<unsigned char>(text[method_size])]) {
    ++method_size;
  }
  if (method_size == 0 || method_size == text.size() || text[method_size] != ' ') {
    return ParseError::invalid_method;
  }
  const std::size_t target_begin = method_size + 1;
  const std::size_t space = text.find(' ', target_begin);
  const std::string_view target = text.substr(target_begin, space - target_begin);
  if (target.empty()) return ParseError::invalid_target;
  // RFC 3986 URIs are visible ASCII; whitespace, controls and raw 0x80-0xFF are not.
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return ParseError::invalid_target;
  }
  if (space == std::string_view::npos) {
    // "GET /path" is an HTTP/0.9 simple request.
    return target.front() == '/' ? ParseError::http09_request : ParseError::invalid_version;
  }
  int minor = 1;
  if (const ParseError error = detail::parse_version(text.substr(space + 1), minor);
      error != ParseError::none) {
    return error;
  }
  method_ = span_of(line.begin, method_size);
  target_ = span_of(line.begin + target_begin, target.size());
  version_minor_ = minor;
  return ParseError::none;
}

// The fields that decide how the message is framed and routed, checked as each line arrives so
// that a bad request is refused before its remaining header lines are read.
ParseError RequestParser::note_field(std::string_view buffer) noexcept {
  const detail::FieldSpan& field = fields_[fields_.size() - 1];
  const std::string_view name = field.name.in(buffer);
  const std::string_view value = field.value.in(buffer);
  if (iequals(name, "Host")) {
    if (++host_count_ > 1) return ParseError::duplicate_host;
    for (char c : value) {
      if (!kHostChar[static_cast<unsigned char>(c)]) return ParseError::invalid_host;
    }
    return ParseError::none;
  }
  if (iequals(name, "Transfer-Encoding")) {
    // RFC 9112 §6.1: a transfer coding we do not implement is answered with 501. Chunked
    // request bodies are refused on purpose: no route here takes a streamed body.
    return ParseError::transfer_encoding;
  }
  if (iequals(name, "Content-Length")) {
    std::uint64_t length = 0;
    if (const ParseError error = parse_content_length(value, length); error != ParseError::none) {
      return error;
    }
    // RFC 9112 §6.3: differing lengths make the framing ambiguous (request smuggling).
    if (has_content_length_ && length != content_length_) {
      return ParseError::conflicting_content_length;
    }
    if (length > limits_.max_body) return ParseError::body_too_large;
    has_content_length_ = true;
    content_length_ = static_cast<std::size_t>(length);
  }
  return ParseError::none;
}

ParseError RequestParser::finish_head() noexcept {
  // RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400.
  if (version_minor_ == 1 && host_count_ == 0) return ParseError::missing_host;
  return ParseError::none;
}

ParseResult RequestParser::finish(std::string_view buffer, Request& out) noexcept {
  out.method = method_.in(buffer);
  out.target = target_.in(buffer);
  split_target(out.target, out.path, out.query);
  out.version_minor = version_minor_;
  out.header_count = fields_.fill(buffer, out.headers);
  out.body = buffer.substr(head_size_, content_length_);
  ParseResult result;
  result.status = ParseStatus::done;
  result.consumed = head_size_ + content_length_;
  return result;
}

}  // namespace pylon::http
