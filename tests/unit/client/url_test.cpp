#include "client/url.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace pylon::client {
namespace {

TEST(Url, PathQueryAndPort) {
  const Url url = parse_url("ws://127.0.0.1:9001/ws/echo?room=a&x=1");
  EXPECT_FALSE(url.secure);
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.port, 9001);
  EXPECT_EQ(url.host_header, "127.0.0.1:9001");
  EXPECT_EQ(url.target, "/ws/echo?room=a&x=1");
}

TEST(Url, DefaultsAndEmptyPath) {
  const Url url = parse_url("ws://10.0.0.1");
  EXPECT_EQ(url.port, 80);
  EXPECT_EQ(url.target, "/");
  EXPECT_EQ(url.host_header, "10.0.0.1");
  EXPECT_EQ(parse_url("ws://10.0.0.1?q=1").target,
            "/?q=1");  // RFC 6455 §3: path "/" before a query
  EXPECT_EQ(parse_url("ws://10.0.0.1/").target, "/");
}

TEST(Url, LocalhostConnectsToLoopbackButKeepsItsName) {
  const Url url = parse_url("WS://LocalHost:8080/x");
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.host_header, "LocalHost:8080");
}

TEST(Url, Ipv6InBrackets) {
  const Url url = parse_url("ws://[::1]:9001/chat");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 9001);
  EXPECT_EQ(url.host_header, "[::1]:9001");
  EXPECT_EQ(url.name, "::1");
  EXPECT_EQ(parse_url("ws://[::1]").port, 80);
}

TEST(Url, NameIsTheHostAsWritten) {
  const Url url = parse_url("wss://LocalHost:9443/x");
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.name, "LocalHost");  // what TLS checks the certificate against
  EXPECT_EQ(parse_url("ws://10.0.0.1/").name, "10.0.0.1");
}

TEST(Url, WssIsParsedWithPort443) {
  const Url url = parse_url("wss://127.0.0.1/secure");
  EXPECT_TRUE(url.secure);
  EXPECT_EQ(url.port, 443);
}

void expect_error(const std::string& text, const std::string& fragment) {
  try {
    parse_url(text);
    ADD_FAILURE() << text << " parsed";
  } catch (const std::invalid_argument& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.rfind("url: ", 0), 0u) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << text << " -> " << message;
  }
}

TEST(Url, BadUrlsSayWhy) {
  expect_error("127.0.0.1:80/x", "expected ws://");
  expect_error("http://127.0.0.1/", "scheme must be ws:// or wss://");
  expect_error("ws://", "missing host");
  expect_error("ws:///path", "missing host");
  expect_error("ws://:80/", "missing host");
  expect_error("ws://example.com/", "no DNS");
  expect_error("ws://256.1.1.1/", "no DNS");
  expect_error("ws://127.0.0.1:/", "port must be a number");
  expect_error("ws://127.0.0.1:0/", "port must be a number");
  expect_error("ws://127.0.0.1:65536/", "port must be a number");
  expect_error("ws://127.0.0.1:80x/", "port must be a number");
  expect_error("ws://[::1/", "missing ']'");
  expect_error("ws://[::1]x/", "after ']'");
  expect_error("ws://[zz::1]/", "not an IPv6 address");
  expect_error("ws://user@127.0.0.1/", "user info");
  expect_error("ws://127.0.0.1/a#frag", "fragment");
  expect_error("ws://127.0.0.1/a b", "percent-encode");
  expect_error("ws://127.0.0.1/\r\nX: y", "percent-encode");
}

}  // namespace
}  // namespace pylon::client
