#include "http/response_parser.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace pylon::http {
namespace {

// RFC 6455 §1.3, as a server sends it, followed by the first bytes of a WebSocket frame.
constexpr std::string_view kHandshake =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "Sec-WebSocket-Protocol: chat\r\n"
    "\r\n";

ParseResult parse_once(std::string_view input, Response& out, const Limits& limits = {}) {
  ResponseParser parser(limits);
  return parser.parse(input, out);
}

ParseResult parse_once(std::string_view input, const Limits& limits = {}) {
  Response response;
  return parse_once(input, response, limits);
}

void expect_error(std::string_view input, ParseError error, const Limits& limits = {}) {
  SCOPED_TRACE(::testing::PrintToString(std::string(input)));
  const ParseResult result = parse_once(input, limits);
  EXPECT_EQ(result.status, ParseStatus::error);
  EXPECT_EQ(result.error, error);
  EXPECT_EQ(result.error_status, describe(error).status);
  EXPECT_FALSE(result.error_reason.empty());
}

TEST(ResponseParser, SwitchingProtocolsHandshake) {
  const std::string input = std::string(kHandshake) + "\x81\x05hello";
  Response response;
  const ParseResult result = parse_once(input, response);
  ASSERT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(result.consumed, kHandshake.size());  // the frame bytes are left to the caller
  EXPECT_EQ(response.status, 101);
  EXPECT_EQ(response.reason, "Switching Protocols");
  EXPECT_EQ(response.version_minor, 1);
  ASSERT_EQ(response.header_count, 4u);
  EXPECT_EQ(response.find("sec-websocket-accept")->value, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(response.count("UPGRADE"), 1u);
  EXPECT_TRUE(response.has_token("connection", "upgrade"));
  EXPECT_EQ(response.find("Sec-WebSocket-Extensions"), nullptr);
}

TEST(ResponseParser, ErrorResponseHeadOnly) {
  const std::string input =
      "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 5\r\n\r\n"
      "nope!";
  Response response;
  const ParseResult result = parse_once(input, response);
  ASSERT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(result.consumed, input.size() - 5);
  EXPECT_EQ(response.status, 426);
  EXPECT_EQ(response.find("sec-websocket-version")->value, "13");
}

TEST(ResponseParser, LenientStatusLines) {
  Response response;
  ASSERT_EQ(parse_once("HTTP/1.1 200\r\n\r\n", response).status, ParseStatus::done);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.reason, "");
  ASSERT_EQ(parse_once("HTTP/1.1 404 \r\n\r\n", response).status, ParseStatus::done);
  EXPECT_EQ(response.reason, "");
  ASSERT_EQ(parse_once("HTTP/1.0 500 Oops  with\tspaces\xff\n\n", response).status,
            ParseStatus::done);
  EXPECT_EQ(response.version_minor, 0);
  EXPECT_EQ(response.reason, "Oops  with\tspaces\xff");
}

TEST(ResponseParser, EveryProperPrefixNeedsMore) {
  for (std::size_t size = 0; size < kHandshake.size(); ++size) {
    ASSERT_EQ(parse_once(kHandshake.substr(0, size)).status, ParseStatus::need_more) << size;
  }
}

TEST(ResponseParser, ByteAtATimeWithBufferMovedBetweenCalls) {
  ResponseParser parser;
  Response response;
  std::string buffer;
  ParseResult result;
  for (char c : kHandshake) {
    std::string moved = buffer + c;
    buffer.swap(moved);
    buffer.shrink_to_fit();
    result = parser.parse(buffer, response);
    if (buffer.size() < kHandshake.size()) {
      ASSERT_EQ(result.status, ParseStatus::need_more);
    }
  }
  ASSERT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(result.consumed, kHandshake.size());
  EXPECT_EQ(response.status, 101);
  EXPECT_EQ(response.reason, "Switching Protocols");
  EXPECT_EQ(response.headers[3].name, "Sec-WebSocket-Protocol");
  EXPECT_EQ(response.headers[3].value, "chat");
}

TEST(ResponseParser, ResetForASecondResponse) {
  ResponseParser parser;
  Response response;
  ASSERT_EQ(parser.parse("HTTP/1.1 100 Continue\r\n\r\n", response).status, ParseStatus::done);
  EXPECT_EQ(response.status, 100);
  parser.reset();
  ASSERT_EQ(parser.parse(kHandshake, response).status, ParseStatus::done);
  EXPECT_EQ(response.status, 101);
}

TEST(ResponseParserErrors, BadStatusLines) {
  expect_error("HTTP/1.1 99 Low\r\n", ParseError::invalid_status_code);
  expect_error("HTTP/1.1 600 High\r\n", ParseError::invalid_status_code);
  expect_error("HTTP/1.1 2000 OK\r\n", ParseError::invalid_status_code);
  expect_error("HTTP/1.1 20x OK\r\n", ParseError::invalid_status_code);
  expect_error("HTTP/1.1 \r\n", ParseError::invalid_status_code);
  expect_error("HTTP/1.1\r\n", ParseError::invalid_status_code);
  expect_error("HTTP/1.1  200 OK\r\n", ParseError::invalid_status_code);
  expect_error("HTTP/1.1 101 Switching\x01Protocols\r\n", ParseError::invalid_reason);
  expect_error("HTTP/1.1 101 Switching\x7f\r\n", ParseError::invalid_reason);
  expect_error("HTTP/1.1 101 Switching\rProtocols\r\n", ParseError::bare_cr);
  expect_error("HTTP/2 101 Switching Protocols\r\n", ParseError::unsupported_version);
  expect_error("HTTP/2.0 200 OK\r\n", ParseError::unsupported_version);
  expect_error("ICY 200 OK\r\n", ParseError::invalid_version);
  expect_error("http/1.1 200 OK\r\n", ParseError::invalid_version);
  expect_error("\r\nHTTP/1.1 200 OK\r\n", ParseError::invalid_version);
}

TEST(ResponseParserErrors, BadFieldLines) {
  expect_error("HTTP/1.1 101 S\r\nUpgrade : websocket\r\n", ParseError::whitespace_before_colon);
  expect_error("HTTP/1.1 101 S\r\nUpgrade: a\r\n b\r\n", ParseError::obs_fold);
  expect_error("HTTP/1.1 101 S\r\nUpgrade\r\n", ParseError::missing_colon);
  expect_error("HTTP/1.1 101 S\r\nX: \x01\r\n", ParseError::invalid_header_value);
}

TEST(ResponseParserLimits, StatusLineAtAndPastTheLimit) {
  Limits limits;
  limits.max_request_line = 40;
  const std::string prefix = "HTTP/1.1 200 ";
  const std::string at = prefix + std::string(40 - prefix.size(), 'r');
  EXPECT_EQ(parse_once(at + "\r\n\r\n", limits).status, ParseStatus::done);
  EXPECT_EQ(parse_once(at + "\r", limits).status, ParseStatus::need_more);
  expect_error(at + "r\r\n\r\n", ParseError::status_line_too_long, limits);
  expect_error(at + "r", ParseError::status_line_too_long, limits);  // before the line ends
}

TEST(ResponseParserLimits, HeadersAtAndPastTheLimits) {
  Limits limits;
  limits.max_headers = 2;
  limits.max_header_bytes = 20;
  EXPECT_EQ(parse_once("HTTP/1.1 200 OK\r\nA: 123456\r\nB: 1234567\r\n\r\n", limits).status,
            ParseStatus::done);  // 9 + 10 = 19 bytes, 2 lines
  expect_error("HTTP/1.1 200 OK\r\nA: 123456\r\nB: 1234567\r\nC", ParseError::too_many_headers,
               limits);
  EXPECT_EQ(parse_once("HTTP/1.1 200 OK\r\nA: 123456\r\nB: 12345678\r\n\r\n", limits).status,
            ParseStatus::done);  // exactly 20
  expect_error("HTTP/1.1 200 OK\r\nA: 123456\r\nB: 123456789", ParseError::header_section_too_large,
               limits);
}

}  // namespace
}  // namespace pylon::http
