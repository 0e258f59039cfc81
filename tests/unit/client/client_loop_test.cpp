// make_client_profile's checks and ClientLoop bookkeeping (src/client/client_loop.cpp).
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "client/profile.hpp"
#include "pylon/client.hpp"

namespace pylon {
namespace {

std::string profile_error(std::string_view url, ClientOptions options = {}) {
  try {
    make_client_profile(url, {}, std::move(options));
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "";
}

TEST(ClientProfile, TlsOptions) {
  EXPECT_EQ(profile_error("wss://127.0.0.1/", {.tls = {.ca_file = "/nonexistent/ca.pem"}})
                .rfind("tls: ca_file: cannot load /nonexistent/ca.pem: ", 0),
            0u);
  EXPECT_EQ(profile_error("wss://127.0.0.1/", {.tls = {.verify = false, .ca_file = "/x.pem"}}),
            "tls: ca_file is of no use with verify = false");
  // TLS options of a ws:// URL are not looked at.
  EXPECT_EQ(profile_error("ws://127.0.0.1/", {.tls = {.ca_file = "/nonexistent/ca.pem"}}), "");
}

TEST(ClientProfile, TlsContextSharedPerConfiguration) {
  const auto a = make_client_profile("wss://localhost:9001/", {});
  const auto b =
      make_client_profile("wss://127.0.0.1:9002/", {}, {.tls = {.server_name = "x.test"}});
  const auto insecure = make_client_profile("wss://[::1]/", {}, {.tls = {.verify = false}});
  const auto plain = make_client_profile("ws://localhost/", {});
  ASSERT_NE(a->tls, nullptr);
  EXPECT_EQ(a->tls, b->tls);  // server_name is per connection, not part of the context
  EXPECT_NE(a->tls, insecure->tls);
  EXPECT_EQ(plain->tls, nullptr);
  EXPECT_EQ(a->server_name, "localhost");
  EXPECT_EQ(b->server_name, "x.test");
  EXPECT_EQ(insecure->server_name, "::1");
  EXPECT_EQ(insecure->url.port, 443);
}

TEST(ClientProfile, BadUrlHeadersSubprotocolsAndSourceAddress) {
  EXPECT_EQ(profile_error("ws://example.com/").rfind("url: ", 0), 0u);
  EXPECT_EQ(profile_error("ws://127.0.0.1/", {.headers = {{"Upgrade", "x"}}}),
            "headers: the client writes this header itself: Upgrade");
  EXPECT_EQ(profile_error("ws://127.0.0.1/", {.subprotocols = {"a b"}}),
            "subprotocols: not a token: 'a b'");
  EXPECT_EQ(profile_error("ws://127.0.0.1/", {.subprotocols = {""}}),
            "subprotocols: not a token: ''");
  EXPECT_EQ(profile_error("ws://127.0.0.1/", {.source_address = "localhost"}),
            "source_address: not a numeric IP address: localhost");
  EXPECT_EQ(profile_error("ws://127.0.0.1/", {.source_address = "::1"}),
            "source_address: ::1 is not of the URL host's family");
  EXPECT_EQ(profile_error("ws://127.0.0.1/", {.connect_timeout = 0}), "timeouts must be positive");
}

TEST(ClientProfile, HeartbeatOptions) {
  const std::string url = "ws://127.0.0.1/";
  EXPECT_EQ(profile_error(url, {.ping_interval = 0}), "");
  EXPECT_EQ(profile_error(url, {.ping_interval = 0.1}), "");
  EXPECT_EQ(profile_error(url, {.ping_interval = 0.05}),
            "ping_interval: must be 0 (off) or at least 0.1 seconds");
  EXPECT_EQ(profile_error(url, {.ping_interval = -1}),
            "ping_interval: must be 0 (off) or at least 0.1 seconds");
  EXPECT_EQ(profile_error(url, {.ping_interval = 20, .pong_timeout = 0}),
            "pong_timeout: must be at least 0.1 seconds");
}

TEST(ClientProfile, Resolved) {
  const auto profile = make_client_profile("ws://[::1]:9001/x", {}, {.source_address = "::1"});
  EXPECT_EQ(profile->destination.ss_family, AF_INET6);
  EXPECT_GT(profile->source_length, 0u);
  EXPECT_EQ(profile->url.target, "/x");
}

TEST(ClientLoop, ClosingBeforeRunGivesUpQuietly) {
  ClientLoop loop;
  int events = 0;
  WebSocketClient& client = loop.connect(
      "ws://127.0.0.1:1/",
      {
          .on_open = [&](WebSocketClient&) { ++events; },
          .on_close = [&](WebSocketClient&, std::uint16_t, std::string_view) { ++events; },
          .on_error = [&](WebSocketClient&, std::string_view) { ++events; },
      });
  EXPECT_EQ(loop.client_count(), 1u);
  EXPECT_FALSE(client.is_open());
  EXPECT_EQ(client.send("x"), SendStatus::dropped);
  client.close();
  EXPECT_EQ(loop.client_count(), 0u);
  EXPECT_EQ(events, 0);
}

}  // namespace
}  // namespace pylon
