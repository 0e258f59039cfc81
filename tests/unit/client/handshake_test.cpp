#include "client/handshake.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pylon::client {
namespace {

// RFC 6455 §1.3's example key and its accept value.
constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// Parses `head` (status line + headers, without the blank line) and checks it.
std::string check(const std::string& head, const std::vector<std::string>& offered = {},
                  std::string_view* chosen_out = nullptr) {
  static std::string storage;  // the Response views point into it
  storage = head + "\r\n";
  http::ResponseParser parser;
  http::Response response;
  const http::ParseResult result = parser.parse(storage, response);
  EXPECT_EQ(result.status, http::ParseStatus::done) << head;
  std::string_view chosen;
  std::string error = check_handshake_response(response, kKey, offered, chosen);
  if (chosen_out != nullptr) *chosen_out = chosen;
  return error;
}

std::string good(const std::string& extra = "") {
  return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " +
         std::string(kAccept) + "\r\n" + extra;
}

TEST(ClientHandshake, RequestHasEveryRequiredHeader) {
  const Url url = parse_url("ws://localhost:9001/chat?room=1");
  const std::vector<std::string> protocols = {"chat.v2", "chat"};
  const std::vector<std::pair<std::string, std::string>> extra = {
      {"Origin", "http://example.test"}};
  std::string out;
  write_handshake_request(out, url, kKey, protocols, extra);
  EXPECT_EQ(out,
            "GET /chat?room=1 HTTP/1.1\r\n"
            "Host: localhost:9001\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: chat.v2, chat\r\n"
            "Origin: http://example.test\r\n"
            "\r\n");
}

TEST(ClientHandshake, AcceptsAValidResponse) {
  EXPECT_EQ(check(good()), "");
  // Tokens are case-insensitive and may come in lists (§4.1 steps 2-3).
  EXPECT_EQ(check("HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n"
                  "sec-websocket-accept: " +
                  std::string(kAccept) + "\r\n"),
            "");
}

TEST(ClientHandshake, ExposesTheChosenSubprotocol) {
  std::string_view chosen;
  EXPECT_EQ(check(good("Sec-WebSocket-Protocol: chat\r\n"), {"chat.v2", "chat"}, &chosen), "");
  EXPECT_EQ(chosen, "chat");
  // The server may choose none of the offer.
  EXPECT_EQ(check(good(), {"chat"}, &chosen), "");
  EXPECT_EQ(chosen, "");
}

TEST(ClientHandshake, EachFailureIsNamed) {
  EXPECT_EQ(check("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"),
            "handshake: HTTP 503 Service Unavailable");
  EXPECT_EQ(check("HTTP/1.1 404\r\n"), "handshake: HTTP 404 Not Found");  // reason from the table
  EXPECT_EQ(check("HTTP/1.1 200 OK\r\n"), "handshake: HTTP 200 OK");
  EXPECT_EQ(
      check("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
            std::string(kAccept) + "\r\n"),
      "handshake: missing Upgrade: websocket");
  EXPECT_EQ(check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"),
            "handshake: missing Upgrade: websocket");
  EXPECT_EQ(
      check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"),
      "handshake: missing Connection: upgrade");
  EXPECT_EQ(
      check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"),
      "handshake: missing Sec-WebSocket-Accept");
  EXPECT_EQ(
      check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"),
      "handshake: bad Sec-WebSocket-Accept");
  EXPECT_EQ(check(good("Sec-WebSocket-Accept: " + std::string(kAccept) + "\r\n")),
            "handshake: bad Sec-WebSocket-Accept");  // twice
  EXPECT_EQ(check(good("Sec-WebSocket-Extensions: permessage-deflate\r\n")),
            "handshake: server chose an extension we did not offer: permessage-deflate");
  EXPECT_EQ(check(good("Sec-WebSocket-Protocol: chat\r\n")),
            "handshake: server chose subprotocol 'chat' but none was offered");
  EXPECT_EQ(check(good("Sec-WebSocket-Protocol: Chat\r\n"), {"chat"}),
            "handshake: server chose subprotocol 'Chat' that was not offered");  // case-sensitive
  EXPECT_EQ(check(good("Sec-WebSocket-Protocol: chat, superchat\r\n"), {"chat", "superchat"}),
            "handshake: server chose subprotocol 'chat, superchat' that was not offered");
}

TEST(ClientHandshake, RequestCarriesTheExtensionOffer) {
  const Url url = parse_url("ws://localhost/");
  std::string out;
  write_handshake_request(out, url, kKey, {}, {}, "permessage-deflate; client_max_window_bits");
  EXPECT_NE(out.find("Sec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"),
            std::string::npos)
      << out;
}

// Checks `head` against a permessage-deflate offer made from `options`.
struct DeflateCheck {
  std::string error;
  std::optional<ws::DeflateParams> agreed;
  std::string extensions;
};
DeflateCheck check_deflate(const std::string& head, ws::DeflateClientOptions options = {}) {
  static std::string storage;
  storage = head + "\r\n";
  http::ResponseParser parser;
  http::Response response;
  EXPECT_EQ(parser.parse(storage, response).status, http::ParseStatus::done) << head;
  std::string_view chosen;
  DeflateCheck result;
  result.error = check_handshake_response(response, kKey, {}, chosen, &options, &result.agreed,
                                          &result.extensions);
  return result;
}

TEST(ClientHandshake, AgreedDeflateParameters) {
  DeflateCheck result = check_deflate(
      good("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
           "client_max_window_bits=10\r\n"));
  EXPECT_EQ(result.error, "");
  ASSERT_TRUE(result.agreed.has_value());
  EXPECT_TRUE(result.agreed->server_no_context_takeover);
  EXPECT_FALSE(result.agreed->client_no_context_takeover);
  EXPECT_EQ(result.agreed->client_max_window_bits, 10);
  EXPECT_EQ(result.agreed->server_max_window_bits, 15);
  EXPECT_EQ(result.extensions,
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10");
  // Declined: no header, no agreement, no error.
  result = check_deflate(good());
  EXPECT_EQ(result.error, "");
  EXPECT_FALSE(result.agreed.has_value());
  EXPECT_EQ(result.extensions, "");
}

TEST(ClientHandshake, SeveralExtensionHeadersAreOneList) {
  // Two lines are one list (RFC 9110 §5.3): two permessage-deflate answers are one too many.
  const DeflateCheck result = check_deflate(
      good("Sec-WebSocket-Extensions: permessage-deflate\r\n"
           "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"));
  EXPECT_EQ(result.error,
            "handshake: bad Sec-WebSocket-Extensions: permessage-deflate: accepted twice");
  EXPECT_FALSE(result.agreed.has_value());
}

TEST(ClientHandshake, InvalidDeflateResponsesFail) {
  EXPECT_EQ(check_deflate(good("Sec-WebSocket-Extensions: permessage-deflate; "
                               "server_max_window_bits=12\r\n"),
                          {.max_window_bits = 10})
                .error,
            "handshake: bad Sec-WebSocket-Extensions: permessage-deflate: server_max_window_bits "
            "larger than offered");
  EXPECT_EQ(check_deflate(good("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                          {.request_no_context_takeover = true})
                .error,
            "handshake: bad Sec-WebSocket-Extensions: permessage-deflate: "
            "server_no_context_takeover requested but not accepted");
  const std::string unknown =
      check_deflate(good("Sec-WebSocket-Extensions: permessage-deflate; foo=1\r\n")).error;
  EXPECT_EQ(unknown.rfind("handshake: bad Sec-WebSocket-Extensions: permessage-deflate: ", 0), 0u)
      << unknown;
  const std::string other = check_deflate(good("Sec-WebSocket-Extensions: x-other\r\n")).error;
  EXPECT_EQ(other.rfind("handshake: bad Sec-WebSocket-Extensions: ", 0), 0u) << other;
}

TEST(ClientHandshake, ExtraHeadersAreChecked) {
  using List = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(check_extra_headers(List{{"Origin", "http://a"}, {"X-Token", "abc def"}}), "");
  EXPECT_NE(check_extra_headers(List{{"Bad Name", "x"}}), "");
  EXPECT_NE(check_extra_headers(List{{"", "x"}}), "");
  EXPECT_NE(check_extra_headers(List{{"X-Split", "a\r\nInjected: yes"}}), "");
  EXPECT_EQ(check_extra_headers(List{{"sec-websocket-key", "x"}}),
            "the client writes this header itself: sec-websocket-key");
  EXPECT_NE(check_extra_headers(List{{"Host", "x"}}), "");
}

}  // namespace
}  // namespace pylon::client
