#include "http/response_writer.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>

#include "http/response_parser.hpp"

namespace pylon::http {
namespace {

TEST(WriteResponse, OkWithBodyKeepAlive) {
  std::string out;
  const std::array<Header, 1> headers{{{"Content-Type", "text/plain"}}};
  write_response(out, 200, headers, "ok\n", true);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n");
}

TEST(WriteResponse, ErrorWithCloseAndEmptyBody) {
  std::string out;
  write_response(out, 404, {}, "", false);
  EXPECT_EQ(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST(WriteResponse, SwitchingProtocolsHasNoContentLength) {
  std::string out;
  const std::array<Header, 3> headers{{{"Upgrade", "websocket"},
                                       {"Connection", "Upgrade"},
                                       {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}}};
  write_response(out, 101, headers, "", true);
  EXPECT_EQ(out,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
}

TEST(WriteResponse, NoContentWritesNoBody) {
  std::string out;
  write_response(out, 204, {}, "ignored", true);
  EXPECT_EQ(out, "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST(WriteResponse, UnknownStatusAndAppending) {
  std::string out = "previous";
  const std::array<Header, 1> headers{{{"Sec-WebSocket-Version", "13"}}};
  write_response(out, 426, headers, "upgrade", false);
  write_response(out, 599, {}, "x", true);
  EXPECT_EQ(out,
            "previousHTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"
            "Content-Length: 7\r\nConnection: close\r\n\r\nupgrade"
            "HTTP/1.1 599 Unknown\r\nContent-Length: 1\r\n\r\nx");
}

TEST(WriteResponse, ReadsBackWithTheResponseParser) {
  std::string out;
  const std::array<Header, 2> headers{{{"X-A", "1"}, {"X-B", "two words"}}};
  write_response(out, 503, headers, "busy", false);
  Response response;
  ResponseParser parser;
  const ParseResult result = parser.parse(out, response);
  ASSERT_EQ(result.status, ParseStatus::done);
  EXPECT_EQ(result.consumed, out.size() - 4);
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.reason, "Service Unavailable");
  EXPECT_EQ(response.find("x-b")->value, "two words");
  EXPECT_EQ(response.find("content-length")->value, "4");
  EXPECT_TRUE(response.has_token("connection", "close"));
}

TEST(WriteRequest, HandshakeRequest) {
  std::string out;
  const std::array<Header, 5> headers{{{"Host", "server.example.com"},
                                       {"Upgrade", "websocket"},
                                       {"Connection", "Upgrade"},
                                       {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                       {"Sec-WebSocket-Version", "13"}}};
  write_request(out, "GET", "/chat?x=1", headers);
  EXPECT_EQ(out,
            "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n");
}

TEST(WriteRequest, NoHeaders) {
  std::string out = ">";
  write_request(out, "OPTIONS", "*", {});
  EXPECT_EQ(out, ">OPTIONS * HTTP/1.1\r\n\r\n");
}

TEST(Iequals, AsciiCaseInsensitive) {
  EXPECT_TRUE(iequals("Sec-WebSocket-Key", "sec-websocket-key"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_TRUE(iequals("UPGRADE", "upgrade"));
  EXPECT_FALSE(iequals("upgrade", "upgrades"));
  EXPECT_FALSE(iequals("a-b", "a_b"));
  EXPECT_FALSE(
      iequals("@", "`"));  // 0x40 and 0x60 differ only in the case bit, but are not letters
  EXPECT_FALSE(iequals("\xc9", "\xe9"));  // no Latin-1 folding
}

}  // namespace
}  // namespace pylon::http
