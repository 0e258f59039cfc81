#include "http/response_parser.hpp"

namespace pylon::http {

const Header* Response::find(std::string_view name) const noexcept {
  return detail::find_header(headers.data(), header_count, name);
}

std::size_t Response::count(std::string_view name) const noexcept {
  return detail::count_headers(headers.data(), header_count, name);
}

std::string Response::join(std::string_view name) const {
  std::string out;
  detail::join_headers(headers.data(), header_count, name, out);
  return out;
}

bool Response::has_token(std::string_view name, std::string_view token) const noexcept {
  return detail::headers_have_token(headers.data(), header_count, name, token);
}

ResponseParser::ResponseParser(const Limits& limits) noexcept
    : limits_(detail::clamp(limits)), fields_(limits_) {}

void ResponseParser::reset() noexcept {
  phase_ = Phase::status_line;
  cursor_.reset();
  fields_.reset();
  status_ = 0;
  reason_ = {};
  version_minor_ = 1;
  head_size_ = 0;
  error_ = ParseError::none;
}

ParseResult ResponseParser::fail(ParseError error) noexcept {
  phase_ = Phase::failed;
  error_ = error;
  return detail::failure(error);
}

ParseResult ResponseParser::parse(std::string_view buffer, Response& out) noexcept {
  if (phase_ == Phase::failed) return detail::failure(error_);
  const std::size_t seen = phase_ == Phase::done ? head_size_ : cursor_.scanned();
  if (buffer.size() < seen) return fail(ParseError::buffer_shrank);

  detail::Line line;
  if (phase_ == Phase::status_line) {
    if (!cursor_.next(buffer, line)) {
      if (cursor_.partial_size(buffer) > limits_.max_request_line) {
        return fail(ParseError::status_line_too_long);
      }
      return {};
    }
    if (const ParseError error = parse_status_line(buffer, line); error != ParseError::none) {
      return fail(error);
    }
    cursor_.advance(line);
    phase_ = Phase::field_lines;
  }

  if (phase_ == Phase::field_lines) {
    ParseError error = ParseError::none;
    switch (fields_.read(cursor_, buffer, head_size_, error,
                         [](std::string_view) { return ParseError::none; })) {
      case detail::FieldSection::Progress::need_more:
        return {};
      case detail::FieldSection::Progress::failed:
        return fail(error);
      case detail::FieldSection::Progress::done:
        break;
    }
    phase_ = Phase::done;
  }
  return finish(buffer, out);
}

// RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
ParseError ResponseParser::parse_status_line(std::string_view buffer,
                                             const detail::Line& line) noexcept {
  const std::string_view text = buffer.substr(line.begin, line.end - line.begin);
  if (text.size() > limits_.max_request_line) return ParseError::status_line_too_long;
  if (text.find('\r') != std::string_view::npos) return ParseError::bare_cr;

  const std::size_t space = text.find(' ');
  int minor = 1;
  if (const ParseError error = detail::parse_version(text.substr(0, space), minor);
      error != ParseError::none) {
    return error;
  }
  if (space == std::string_view::npos) return ParseError::invalid_status_code;
  const std::string_view rest = text.substr(space + 1);
  // RFC 9110 §15: three digits, 100-599; anything else cannot be interpreted.
  if (rest.size() < 3 || rest[0] < '1' || rest[0] > '5' || rest[1] < '0' || rest[1] > '9' ||
      rest[2] < '0' || rest[2] > '9') {
    return ParseError::invalid_status_code;
  }
  std::size_t reason_begin = line.begin + space + 1 + 3;
  std::string_view reason = rest.substr(3);
  if (!reason.empty()) {
    if (reason.front() != ' ') return ParseError::invalid_status_code;  // e.g. "2000"
    reason.remove_prefix(1);
    ++reason_begin;
  }
  // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
  for (char c : reason) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return ParseError::invalid_reason;
  }
  status_ = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
  reason_ = {static_cast<std::uint32_t>(reason_begin), static_cast<std::uint32_t>(reason.size())};
  version_minor_ = minor;
  return ParseError::none;
}

ParseResult ResponseParser::finish(std::string_view buffer, Response& out) noexcept {
  out.status = status_;
  out.reason = reason_.in(buffer);
  out.version_minor = version_minor_;
  out.header_count = fields_.fill(buffer, out.headers);
  ParseResult result;
  result.status = ParseStatus::done;
  result.consumed = head_size_;
  return result;
}

}  // namespace pylon::http
