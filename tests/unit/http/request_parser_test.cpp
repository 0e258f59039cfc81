#include "http/request_parser.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace pylon::http {
namespace {

using namespace std::string_view_literals;

constexpr std::string_view kSimple = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

ParseResult parse_once(std::string_view input, Request& out, const Limits& limits = {}) {
  RequestParser parser(limits);
  return parser.parse(input, out);
}

ParseResult parse_once(std::string_view input, const Limits& limits = {}) {
  Request request;
  return parse_once(input, request, limits);
}

// Feeds `input` a byte at a time, copying the bytes received so far into a fresh heap block
// before every call (the old one freed) so that a parser keeping pointers reads freed memory
// under ASan and wrong bytes without it.
ParseResult parse_byte_at_a_time(std::string_view input, Request& out, std::size_t& calls,
                                 const Limits& limits = {}) {
  RequestParser parser(limits);
  std::unique_ptr<char[]> block;
  ParseResult result;
  calls = 0;
  for (std::size_t size = 1; size <= input.size(); ++size) {
    auto grown = std::make_unique<char[]>(size);
    std::copy(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(size), grown.get());
    block = std::move(grown);
    ++calls;
    result = parser.parse(std::string_view(block.get(), size), out);
    if (result.status != ParseStatus::need_more) break;
  }
  return result;  // `out` now refers to freed memory: callers look only at the result
}

void expect_error(std::string_view input, int status, ParseError error, const Limits& limits = {}) {
  SCOPED_TRACE(::testing::Message() << "input: " << ::testing::PrintToString(std::string(input)));
  const ParseResult result = parse_once(input, limits);
  EXPECT_EQ(result.status, ParseStatus::error);
  EXPECT_EQ(result.error_status, status);
  EXPECT_EQ(result.error, error);
  EXPECT_FALSE(result.error_reason.empty());
  EXPECT_EQ(result.error_reason, describe(error).reason);
}

// ----------------------------------------------------------------------------------------------
// valid requests

TEST(RequestParser, GetWithQuery) {
  const std::string input =
      "GET /chat/room?id=7&x=%20y HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\n\r\n";
  Request request;
  const ParseResult result = parse_once(input, request);
  ASSERT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(result.consumed, input.size());
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.target, "/chat/room?id=7&x=%20y");
  EXPECT_EQ(request.path, "/chat/room");
  EXPECT_EQ(request.query, "id=7&x=%20y");
  EXPECT_EQ(request.version_minor, 1);
  ASSERT_EQ(request.header_count, 2u);
  EXPECT_EQ(request.headers[0].name, "Host");
  EXPECT_EQ(request.headers[0].value, "example.com:8080");
  EXPECT_EQ(request.headers[1].name, "User-Agent");
  EXPECT_EQ(request.body, "");
}

TEST(RequestParser, PathWithoutQueryAndEmptyQuery) {
  Request request;
  ASSERT_EQ(parse_once("GET /a/b HTTP/1.1\r\nHost: h\r\n\r\n", request).status, ParseStatus::done);
  EXPECT_EQ(request.path, "/a/b");
  EXPECT_EQ(request.query, "");
  ASSERT_EQ(parse_once("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", request).status, ParseStatus::done);
  EXPECT_EQ(request.path, "/a");
  EXPECT_EQ(request.query, "");
}

TEST(RequestParser, AbsoluteFormPathIsThePathComponent) {
  Request request;
  ASSERT_EQ(parse_once("GET http://h:1/ws/echo?x=1 HTTP/1.1\r\nHost: h:1\r\n\r\n", request).status,
            ParseStatus::done);
  EXPECT_EQ(request.target, "http://h:1/ws/echo?x=1");
  EXPECT_EQ(request.path, "/ws/echo");
  EXPECT_EQ(request.query, "x=1");
  ASSERT_EQ(parse_once("GET https://h HTTP/1.1\r\nHost: h\r\n\r\n", request).status,
            ParseStatus::done);
  EXPECT_EQ(request.path, "");
  ASSERT_EQ(parse_once("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", request).status, ParseStatus::done);
  EXPECT_EQ(request.path, "*");
  ASSERT_EQ(parse_once("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", request).status,
            ParseStatus::done);
  EXPECT_EQ(request.path, "h:443");
}

TEST(RequestParser, ManyHeadersUpToCapacity) {
  std::string input = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (std::size_t i = 1; i < kMaxHeaders; ++i) input += "X-H" + std::to_string(i) + ": v\r\n";
  input += "\r\n";
  Request request;
  const ParseResult result = parse_once(input, request);
  ASSERT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(request.header_count, kMaxHeaders);
  EXPECT_EQ(request.headers[kMaxHeaders - 1].name, "X-H63");
}

TEST(RequestParser, CaseInsensitiveLookupAndTrimming) {
  const std::string input =
      "GET /ws HTTP/1.1\r\nhOsT: h\r\nUpgrade:websocket\r\nConnection: keep-alive, Upgrade \r\n"
      "X-Dup: 1\r\nx-dup:\t 2\t\r\nEmpty:\r\nSpaces:   \r\n\r\n";
  Request request;
  ASSERT_EQ(parse_once(input, request).status, ParseStatus::done);
  ASSERT_NE(request.find("HOST"), nullptr);
  EXPECT_EQ(request.find("host")->value, "h");
  EXPECT_EQ(request.find("upgrade")->value, "websocket");
  EXPECT_EQ(request.find("CONNECTION")->value, "keep-alive, Upgrade");
  EXPECT_EQ(request.find("Sec-WebSocket-Key"), nullptr);
  EXPECT_EQ(request.count("X-DUP"), 2u);
  EXPECT_EQ(request.find("X-Dup")->value, "1");
  EXPECT_EQ(request.headers[4].value, "2");
  EXPECT_EQ(request.find("empty")->value, "");
  EXPECT_EQ(request.find("spaces")->value, "");
  EXPECT_EQ(request.count("nothing"), 0u);
  EXPECT_TRUE(request.has_token("connection", "upgrade"));
  EXPECT_TRUE(request.has_token("Connection", "Keep-Alive"));
  EXPECT_FALSE(request.has_token("Connection", "close"));
  EXPECT_FALSE(request.has_token("Upgrade", "web"));
}

TEST(RequestParser, ObsTextAndTabInValuesAreAccepted) {
  const std::string input = "GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xc3\xa9\tand\xff\r\n\r\n";
  Request request;
  ASSERT_EQ(parse_once(input, request).status, ParseStatus::done);
  EXPECT_EQ(request.find("x-name")->value, "caf\xc3\xa9\tand\xff");
}

TEST(RequestParser, KeepAliveRules) {
  struct Case {
    std::string_view input;
    bool keep_alive;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", true},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: upgrade\r\n\r\n", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.input));
    Request request;
    ASSERT_EQ(parse_once(c.input, request).status, ParseStatus::done);
    EXPECT_EQ(request.keep_alive(), c.keep_alive);
  }
}

TEST(RequestParser, Http10NeedsNoHost) {
  Request request;
  ASSERT_EQ(parse_once("GET / HTTP/1.0\r\n\r\n", request).status, ParseStatus::done);
  EXPECT_EQ(request.version_minor, 0);
  EXPECT_EQ(request.header_count, 0u);
}

TEST(RequestParser, HigherHttp1MinorReadsAsHttp11) {  // RFC 9110 §6.2
  Request request;
  ASSERT_EQ(parse_once("GET / HTTP/1.7\r\nHost: h\r\n\r\n", request).status, ParseStatus::done);
  EXPECT_EQ(request.version_minor, 1);
}

TEST(RequestParser, BodyWithContentLength) {
  const std::string input =
      "POST /publish HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world";
  Request request;
  const ParseResult result = parse_once(input, request);
  ASSERT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(result.consumed, input.size());
  EXPECT_EQ(request.body, "hello world");
}

TEST(RequestParser, ContentLengthZeroAndIdenticalDuplicates) {
  Request request;
  ASSERT_EQ(parse_once("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", request).status,
            ParseStatus::done);
  EXPECT_EQ(request.body, "");
  const std::string dup =
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 003\r\n\r\nabc";
  ASSERT_EQ(parse_once(dup, request).status, ParseStatus::done);
  EXPECT_EQ(request.body, "abc");
  const std::string list = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc";
  ASSERT_EQ(parse_once(list, request).status, ParseStatus::done);
  EXPECT_EQ(request.body, "abc");
}

TEST(RequestParser, PipelinedRequestsConsumeOnlyTheFirst) {
  const std::string first = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxy";
  const std::string second = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string input = first + second;
  RequestParser parser;
  Request request;
  ParseResult result = parser.parse(input, request);
  ASSERT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(result.consumed, first.size());
  EXPECT_EQ(request.path, "/a");
  EXPECT_EQ(request.body, "xy");

  parser.reset();
  result = parser.parse(std::string_view(input).substr(result.consumed), request);
  ASSERT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(result.consumed, second.size());
  EXPECT_EQ(request.path, "/b");
}

TEST(RequestParser, ToleratesOneLeadingEmptyLine) {
  Request request;
  const std::string crlf = std::string("\r\n") + std::string(kSimple);
  ParseResult result = parse_once(crlf, request);
  ASSERT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(result.consumed, crlf.size());
  EXPECT_EQ(request.method, "GET");
  const std::string lf = std::string("\n") + std::string(kSimple);
  EXPECT_EQ(parse_once(lf).status, ParseStatus::done);
  expect_error(std::string("\r\n\r\n") + std::string(kSimple), 400, ParseError::invalid_method);
}

TEST(RequestParser, LfOnlyLineEndings) {
  const std::string input = "POST /x HTTP/1.1\nHost: h\nContent-Length: 1\n\nz";
  Request request;
  const ParseResult result = parse_once(input, request);
  ASSERT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(result.consumed, input.size());
  EXPECT_EQ(request.find("host")->value, "h");
  EXPECT_EQ(request.body, "z");
  // Mixed endings too.
  EXPECT_EQ(parse_once("GET / HTTP/1.1\r\nHost: h\n\r\n").status, ParseStatus::done);
}

// ----------------------------------------------------------------------------------------------
// incremental parsing

const std::vector<std::string>& valid_requests() {
  static const std::vector<std::string> requests = {
      std::string(kSimple),
      "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\n",
      "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
      "\r\nGET / HTTP/1.0\r\n\r\n",
      "GET / HTTP/1.1\nHost: h\nX-Y:  z \n\n",
  };
  return requests;
}

TEST(RequestParser, EveryProperPrefixNeedsMore) {
  for (const std::string& input : valid_requests()) {
    SCOPED_TRACE(input);
    for (std::size_t size = 0; size < input.size(); ++size) {
      const ParseResult result = parse_once(std::string_view(input).substr(0, size));
      ASSERT_EQ(result.status, ParseStatus::need_more) << "prefix of " << size << " bytes";
    }
    const ParseResult result = parse_once(input);
    ASSERT_EQ(result.status, ParseStatus::done);
    EXPECT_EQ(result.consumed, input.size());
  }
}

TEST(RequestParser, ByteAtATimeWithBufferMovedBetweenCalls) {
  for (const std::string& input : valid_requests()) {
    SCOPED_TRACE(input);
    Request incremental;
    std::size_t calls = 0;
    const ParseResult result = parse_byte_at_a_time(input, incremental, calls);
    ASSERT_EQ(result.status, ParseStatus::done);
    EXPECT_EQ(result.consumed, input.size());
    EXPECT_EQ(calls, input.size());
  }
}

TEST(RequestParser, ResumedParseGivesTheSameViewsAsOneShot) {
  const std::string& input = valid_requests()[1];
  RequestParser parser;
  Request request;
  std::string buffer;
  ParseResult result;
  for (char c : input) {
    std::string moved = buffer + c;  // a new allocation every call
    buffer.swap(moved);
    buffer.shrink_to_fit();
    result = parser.parse(buffer, request);
  }
  ASSERT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.path, "/chat");
  EXPECT_EQ(request.query, "x=1");
  ASSERT_EQ(request.header_count, 5u);
  EXPECT_EQ(request.find("sec-websocket-key")->value, "dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(request.headers[4].name, "Sec-WebSocket-Version");
  EXPECT_EQ(request.headers[4].value, "13");
  for (std::size_t i = 0; i < request.header_count; ++i) {
    EXPECT_GE(request.headers[i].name.data(), buffer.data());
    EXPECT_LE(request.headers[i].value.data() + request.headers[i].value.size(),
              buffer.data() + buffer.size());
  }
}

TEST(RequestParser, EveryTwoWaySplitMatchesOneShot) {
  for (const std::string& input : valid_requests()) {
    for (std::size_t split = 0; split <= input.size(); ++split) {
      RequestParser parser;
      Request request;
      const ParseResult first = parser.parse(std::string_view(input).substr(0, split), request);
      if (split < input.size()) {
        ASSERT_EQ(first.status, ParseStatus::need_more);
      }
      const ParseResult second = parser.parse(input, request);
      ASSERT_EQ(second.status, ParseStatus::done);
      EXPECT_EQ(second.consumed, input.size());
    }
  }
}

TEST(RequestParser, ResultIsStickyUntilReset) {
  RequestParser parser;
  Request request;
  const std::string input = std::string(kSimple) + "GARBAGE";
  ParseResult result = parser.parse(input, request);
  ASSERT_EQ(result.status, ParseStatus::done);
  result = parser.parse(input, request);
  EXPECT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(result.consumed, kSimple.size());

  parser.reset();
  result = parser.parse("BAD LINE\r\n", request);
  ASSERT_EQ(result.status, ParseStatus::error);
  result = parser.parse(kSimple, request);  // still the same error
  EXPECT_EQ(result.status, ParseStatus::error);
  EXPECT_EQ(result.error, ParseError::invalid_version);

  parser.reset();
  EXPECT_EQ(parser.parse(kSimple, request).status, ParseStatus::done);
}

TEST(RequestParser, ShrunkBufferIsReportedNotRead) {
  RequestParser parser;
  Request request;
  ASSERT_EQ(parser.parse("GET / HTTP/1.1\r\nHo", request).status, ParseStatus::need_more);
  const ParseResult result = parser.parse("GET", request);
  EXPECT_EQ(result.status, ParseStatus::error);
  EXPECT_EQ(result.error, ParseError::buffer_shrank);
  EXPECT_EQ(result.error_status, 500);
}

// ----------------------------------------------------------------------------------------------
// errors, each with a minimal input

TEST(RequestParserErrors, RequestLine) {
  expect_error("G@T / HTTP/1.1\r\n", 400, ParseError::invalid_method);
  expect_error(" / HTTP/1.1\r\n", 400, ParseError::invalid_method);
  expect_error("GET\r\n", 400, ParseError::invalid_method);
  expect_error("\r\n\r\n", 400, ParseError::invalid_method);
  expect_error("GET\t/ HTTP/1.1\r\n", 400, ParseError::invalid_method);
  expect_error("GET  / HTTP/1.1\r\n", 400, ParseError::invalid_target);
  expect_error("GET /\x01 HTTP/1.1\r\n", 400, ParseError::invalid_target);
  expect_error("GET /\xc3\xa9 HTTP/1.1\r\n", 400, ParseError::invalid_target);
  expect_error("GET /\r\n", 505, ParseError::http09_request);
  expect_error("GET x\r\n", 400, ParseError::invalid_version);
  expect_error("GET / HTTP/1.1 \r\n", 400, ParseError::invalid_version);
  expect_error("GET / http/1.1\r\n", 400, ParseError::invalid_version);
  expect_error("GET / HTTP/1.10\r\n", 400, ParseError::invalid_version);
  expect_error("GET / HTTP/1\r\n", 400, ParseError::invalid_version);
  expect_error("GET / HTTP/2.0\r\n", 505, ParseError::unsupported_version);
  expect_error("GET / HTTP/2\r\n", 505, ParseError::unsupported_version);
  expect_error("GET / HTTP/0.9\r\n", 505, ParseError::unsupported_version);
  expect_error("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, ParseError::unsupported_version);
  expect_error("GET / HTTP/1.1\r\r\n", 400, ParseError::bare_cr);
  expect_error("GET /\r HTTP/1.1\r\n", 400, ParseError::bare_cr);
}

TEST(RequestParserErrors, FieldLines) {
  expect_error("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400, ParseError::obs_fold);
  expect_error("GET / HTTP/1.1\r\n\tHost: h\r\n\r\n", 400, ParseError::obs_fold);
  expect_error("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, ParseError::whitespace_before_colon);
  expect_error("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400, ParseError::whitespace_before_colon);
  expect_error("GET / HTTP/1.1\r\nHost h\r\n\r\n", 400, ParseError::missing_colon);
  expect_error("GET / HTTP/1.1\r\n: h\r\n\r\n", 400, ParseError::invalid_header_name);
  expect_error("GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", 400, ParseError::invalid_header_name);
  expect_error("GET / HTTP/1.1\r\nX Y: h\r\n\r\n", 400, ParseError::invalid_header_name);
  expect_error("GET / HTTP/1.1\r\nX-\xc3\xa9: h\r\n\r\n", 400, ParseError::invalid_header_name);
  expect_error(
      "GET / HTTP/1.1\r\nX: a\x01"
      "b\r\n\r\n",
      400, ParseError::invalid_header_value);
  expect_error("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400, ParseError::invalid_header_value);
  expect_error("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"sv, 400, ParseError::invalid_header_value);
  expect_error("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400, ParseError::bare_cr);
  expect_error("GET / HTTP/1.1\r\nX: a\r\r\n\r\n", 400, ParseError::bare_cr);
}

TEST(RequestParserErrors, Framing) {
  expect_error("GET / HTTP/1.1\r\n\r\n", 400, ParseError::missing_host);
  expect_error("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, ParseError::duplicate_host);
  expect_error("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400, ParseError::duplicate_host);
  expect_error("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, ParseError::invalid_host);
  expect_error("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, ParseError::invalid_host);
  expect_error("POST / HTTP/1.1\r\nContent-Length: x\r\n", 400, ParseError::invalid_content_length);
  expect_error("POST / HTTP/1.1\r\nContent-Length: -1\r\n", 400,
               ParseError::invalid_content_length);
  expect_error("POST / HTTP/1.1\r\nContent-Length: +1\r\n", 400,
               ParseError::invalid_content_length);
  expect_error("POST / HTTP/1.1\r\nContent-Length:\r\n", 400, ParseError::invalid_content_length);
  expect_error("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n", 400,
               ParseError::invalid_content_length);
  expect_error("POST / HTTP/1.1\r\nContent-Length: 1,\r\n", 400,
               ParseError::invalid_content_length);
  expect_error("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n", 400,
               ParseError::conflicting_content_length);
  expect_error("POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n", 400,
               ParseError::conflicting_content_length);
  expect_error("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n", 413,
               ParseError::body_too_large);
  expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", 501,
               ParseError::transfer_encoding);
  expect_error("POST / HTTP/1.1\r\ntransfer-encoding: identity\r\n", 501,
               ParseError::transfer_encoding);
}

TEST(RequestParserErrors, ErrorIsReportedWithoutWaitingForTheRestOfTheHead) {
  // The bad line is complete; no blank line has arrived yet.
  expect_error("GET / HTTP/1.1\r\nHost : h\r\n", 400, ParseError::whitespace_before_colon);
  expect_error("XX\x01 / HTTP/1.1\r\n", 400, ParseError::invalid_method);
}

TEST(RequestParserErrors, EveryStatusHasAReasonPhrase) {
  for (int e = 1; e <= static_cast<int>(ParseError::buffer_shrank); ++e) {
    const ErrorDescription description = describe(static_cast<ParseError>(e));
    EXPECT_GE(description.status, 400) << e;
    EXPECT_FALSE(description.reason.empty()) << e;
  }
}

// ----------------------------------------------------------------------------------------------
// limits: exactly at the limit passes, one past fails, and as soon as the bytes prove it

std::string request_line_of(std::size_t size) {  // "GET /aaa… HTTP/1.1", `size` bytes
  const std::string fixed = "GET / HTTP/1.1";
  return "GET /" + std::string(size - fixed.size(), 'a') + " HTTP/1.1";
}

TEST(RequestParserLimits, RequestLineAtAndPastTheLimit) {
  Limits limits;
  limits.max_request_line = 100;
  const std::string at = request_line_of(100) + "\r\nHost: h\r\n\r\n";
  EXPECT_EQ(parse_once(at, limits).status, ParseStatus::done);
  const std::string past = request_line_of(101) + "\r\nHost: h\r\n\r\n";
  expect_error(past, 414, ParseError::target_too_long, limits);
  // A long method or version is not a long URI.
  expect_error(std::string(101, 'G') + " / HTTP/1.1\r\n", 400, ParseError::request_line_too_long,
               limits);
  expect_error("GET / HTTP/1.1" + std::string(90, 'x') + "\r\n", 400,
               ParseError::request_line_too_long, limits);
}

TEST(RequestParserLimits, RequestLineLimitAppliesBeforeTheLineEnds) {
  Limits limits;
  limits.max_request_line = 100;
  const std::string line = request_line_of(101);
  // 100 bytes (and 100 + CR) may still be a valid line; the 101st content byte is not.
  EXPECT_EQ(parse_once(std::string_view(line).substr(0, 100), limits).status,
            ParseStatus::need_more);
  EXPECT_EQ(parse_once(std::string(line.substr(0, 100)) + "\r", limits).status,
            ParseStatus::need_more);
  const ParseResult result = parse_once(std::string_view(line).substr(0, 101), limits);
  EXPECT_EQ(result.status, ParseStatus::error);
  EXPECT_EQ(result.error_status, 414);
  EXPECT_EQ(parse_once(std::string(101, 'G'), limits).error_status, 400);
}

std::string with_header_bytes(std::size_t bytes) {
  // "Host: h" (7) plus one "X: vvv…" line making the field lines total `bytes` (CRLFs excluded).
  return "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(bytes - 7 - 3, 'v') + "\r\n\r\n";
}

TEST(RequestParserLimits, HeaderBytesAtAndPastTheLimit) {
  Limits limits;
  limits.max_header_bytes = 200;
  EXPECT_EQ(parse_once(with_header_bytes(200), limits).status, ParseStatus::done);
  expect_error(with_header_bytes(201), 431, ParseError::header_section_too_large, limits);
}

TEST(RequestParserLimits, HeaderBytesLimitAppliesBeforeTheLineEnds) {
  Limits limits;
  limits.max_header_bytes = 200;
  const std::string input = with_header_bytes(201);
  const std::size_t line_start = input.find("X: ");
  const std::size_t exactly_full = line_start + (200 - 7);
  EXPECT_EQ(parse_once(std::string_view(input).substr(0, exactly_full), limits).status,
            ParseStatus::need_more);
  const ParseResult result =
      parse_once(std::string_view(input).substr(0, exactly_full + 1), limits);
  EXPECT_EQ(result.status, ParseStatus::error);
  EXPECT_EQ(result.error, ParseError::header_section_too_large);
}

std::string with_headers(std::size_t count) {
  std::string input = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (std::size_t i = 1; i < count; ++i) input += "X: 1\r\n";
  return input + "\r\n";
}

TEST(RequestParserLimits, HeaderCountAtAndPastTheLimit) {
  Limits limits;
  limits.max_headers = 5;
  EXPECT_EQ(parse_once(with_headers(5), limits).status, ParseStatus::done);
  expect_error(with_headers(6), 431, ParseError::too_many_headers, limits);
  // Past the fixed capacity whatever the configured limit.
  limits.max_headers = 1000;
  EXPECT_EQ(parse_once(with_headers(kMaxHeaders), limits).status, ParseStatus::done);
  expect_error(with_headers(kMaxHeaders + 1), 431, ParseError::too_many_headers, limits);
}

TEST(RequestParserLimits, HeaderCountLimitAppliesAtTheFirstByteOfTheExtraLine) {
  Limits limits;
  limits.max_headers = 5;
  const std::string full = with_headers(5);
  const std::string head = full.substr(0, full.size() - 2);  // without the blank line
  EXPECT_EQ(parse_once(head, limits).status, ParseStatus::need_more);
  EXPECT_EQ(parse_once(head + "\r", limits).status, ParseStatus::need_more);  // blank line?
  const ParseResult result = parse_once(head + "X", limits);
  EXPECT_EQ(result.status, ParseStatus::error);
  EXPECT_EQ(result.error, ParseError::too_many_headers);
}

TEST(RequestParserLimits, BodyAtAndPastTheLimit) {
  Limits limits;
  limits.max_body = 10;
  Request request;
  const std::string at = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
  ASSERT_EQ(parse_once(at, request, limits).status, ParseStatus::done);
  EXPECT_EQ(request.body, "0123456789");
  // 413 as soon as the Content-Length line is complete, before the body arrives.
  expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n", 413,
               ParseError::body_too_large, limits);
}

TEST(RequestParserLimits, ZeroLimits) {
  Limits limits;
  limits.max_request_line = 0;
  EXPECT_EQ(parse_once("G", limits).error, ParseError::request_line_too_long);
  EXPECT_EQ(parse_once("\r", limits).status, ParseStatus::need_more);
  limits = {};
  limits.max_headers = 0;
  EXPECT_EQ(parse_once("GET / HTTP/1.0\r\n\r\n", limits).status, ParseStatus::done);
  EXPECT_EQ(parse_once("GET / HTTP/1.0\r\nH", limits).error, ParseError::too_many_headers);
}

TEST(RequestParserTest, TokenListsOfHeaderValues) {
  EXPECT_TRUE(detail::list_has_token("Upgrade", "upgrade"));
  EXPECT_TRUE(detail::list_has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(detail::list_has_token("keep-alive,Upgrade", "UPGRADE"));
  EXPECT_TRUE(detail::list_has_token(" \tupgrade\t ,close", "upgrade"));
  EXPECT_TRUE(detail::list_has_token("a,,  ,websocket", "WebSocket"));
  EXPECT_FALSE(detail::list_has_token("keep-alive", "upgrade"));
  EXPECT_FALSE(detail::list_has_token("upgrade-insecure", "upgrade"));
  EXPECT_FALSE(detail::list_has_token("up grade", "upgrade"));
  EXPECT_FALSE(detail::list_has_token("", "upgrade"));
  EXPECT_FALSE(detail::list_has_token(",,", "upgrade"));
  EXPECT_FALSE(detail::list_has_token("upgrade", ""));
}

}  // namespace
}  // namespace pylon::http
