// Tests for src/ws/upgrade.*.
#include "ws/upgrade.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace pylon::ws {
namespace {

// RFC 6455 §1.3's example key and its accept value.
constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// The header lines of a good handshake, without the request line.
std::string good_headers() {
  return "Host: example.com\r\n"
         "Upgrade: websocket\r\n"
         "Connection: Upgrade\r\n"
         "Sec-WebSocket-Key: " +
         std::string(kKey) +
         "\r\n"
         "Sec-WebSocket-Version: 13\r\n";
}

// A request parsed from its text; the views point into `text`, so it is neither copied nor moved.
struct Parsed {
  explicit Parsed(std::string head) : text(std::move(head)) {
    http::RequestParser parser;
    const http::ParseResult result = parser.parse(text, request);
    EXPECT_EQ(result.status, http::ParseStatus::done) << text;
  }
  Parsed(const Parsed&) = delete;
  Parsed& operator=(const Parsed&) = delete;

  std::string text;
  http::Request request;
};

UpgradeDecision decide(std::string head, const UpgradePolicy& policy = {}) {
  const Parsed parsed(std::move(head) + "\r\n");
  return decide_upgrade(parsed.request, policy);
}

// A good handshake with `extra` header lines (each ending in CRLF) appended.
UpgradeDecision decide_good(std::string_view extra, const UpgradePolicy& policy = {}) {
  return decide("GET /chat HTTP/1.1\r\n" + good_headers() + std::string(extra), policy);
}

std::optional<UpgradeError> refusal(const UpgradeDecision& decision) {
  if (const auto* error = std::get_if<UpgradeError>(&decision)) return *error;
  return std::nullopt;
}

// A copy, so that it may be taken from a temporary decision.
UpgradeAcceptance accepted(const UpgradeDecision& decision) {
  const auto* acceptance = std::get_if<UpgradeAcceptance>(&decision);
  EXPECT_NE(acceptance, nullptr) << "refused: " << describe(std::get<UpgradeError>(decision)).name;
  return acceptance != nullptr ? *acceptance : UpgradeAcceptance{};
}

std::vector<std::pair<std::string, std::string>> headers_of(const UpgradeRefusal& row) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const http::Header& header : row.headers) out.emplace_back(header.name, header.value);
  return out;
}

// --- The table --------------------------------------------------------------------------------

TEST(UpgradeTest, EveryRefusalHasItsRow) {
  using Headers = std::vector<std::pair<std::string, std::string>>;
  const Headers upgrade_required = {{"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"}};
  struct Row {
    UpgradeError error;
    int status;
    std::string_view reason;
    Headers headers;
    std::string_view name;
  };
  const Row rows[] = {
      {UpgradeError::method_not_get,
       405,
       "a WebSocket handshake is a GET request",
       {{"Allow", "GET"}},
       "method"},
      {UpgradeError::not_websocket, 426,
       "this endpoint speaks WebSocket: Upgrade: websocket required", upgrade_required,
       "not_websocket"},
      {UpgradeError::http10_request,
       400,
       "a WebSocket handshake needs HTTP/1.1",
       {},
       "http10_request"},
      {UpgradeError::bad_version, 426, "unsupported Sec-WebSocket-Version: only 13",
       upgrade_required, "bad_version"},
      {UpgradeError::bad_key, 400, "missing or invalid Sec-WebSocket-Key", {}, "bad_key"},
      {UpgradeError::origin_not_allowed, 403, "origin not allowed", {}, "origin"},
      {UpgradeError::draining, 503, "server is shutting down", {}, "draining"},
      {UpgradeError::connection_limit, 503, "connection limit reached", {}, "limit"},
      {UpgradeError::ip_table_full, 503, "too many client addresses", {}, "ip_table_full"},
      {UpgradeError::ip_locked_out,
       429,
       "too many failed authentications from this address",
       {},
       "ip_locked_out"},
      {UpgradeError::ip_connection_limit,
       429,
       "too many connections from this address",
       {},
       "ip_connections"},
      {UpgradeError::ip_handshake_rate,
       429,
       "too many handshakes from this address",
       {},
       "ip_handshake_rate"},
      {UpgradeError::admission_rate,
       503,
       "new connections are admitted at a limited pace",
       {},
       "admission_rate"},
  };
  ASSERT_EQ(std::size(rows), kUpgradeErrorCount);
  std::set<std::string_view> names;
  for (const Row& row : rows) {
    const UpgradeRefusal refusal = describe(row.error);
    EXPECT_EQ(refusal.status, row.status) << row.name;
    EXPECT_EQ(refusal.reason, row.reason) << row.name;
    EXPECT_EQ(headers_of(refusal), row.headers) << row.name;
    EXPECT_EQ(refusal.name, row.name);
    names.insert(refusal.name);
  }
  EXPECT_EQ(names.size(), kUpgradeErrorCount);  // the names tell the refusals apart
}

TEST(UpgradeTest, UnknownErrorHasAFallbackRow) {
  const UpgradeRefusal refusal = describe(static_cast<UpgradeError>(kUpgradeErrorCount));
  EXPECT_EQ(refusal.status, 500);
  EXPECT_EQ(refusal.name, "unknown");
  EXPECT_TRUE(refusal.headers.empty());
}

// --- Acceptance -------------------------------------------------------------------------------

TEST(UpgradeTest, RfcExampleIsAcceptedWithItsAcceptKey) {
  const UpgradeDecision decision = decide_good("");
  const UpgradeAcceptance acceptance = accepted(decision);
  EXPECT_EQ(acceptance.accept_value(), kAccept);
  EXPECT_FALSE(acceptance.subprotocol);
  EXPECT_TRUE(acceptance.extensions.empty());
  EXPECT_FALSE(acceptance.deflate);
}

TEST(UpgradeTest, TokenListsAreCaseInsensitiveAndMayRepeat) {
  const char* variants[] = {
      "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n",  // Firefox
      "Upgrade: websocket\r\nConnection: keep-alive\r\nConnection: upgrade\r\n",
      "connection: UPGRADE\r\nupgrade: WebSocket\r\n",
      "Upgrade: h2c, websocket\r\nConnection: close\r\nConnection: Upgrade\r\n",
      "Upgrade: foo\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
  };
  for (const char* headers : variants) {
    const std::string head = std::string("GET / HTTP/1.1\r\nHost: h\r\n") + headers +
                             "Sec-WebSocket-Key: " + std::string(kKey) +
                             "\r\nSec-WebSocket-Version: 13\r\n";
    EXPECT_EQ(accepted(decide(head)).accept_value(), kAccept) << headers;
  }
}

// --- Each refusal -----------------------------------------------------------------------------

TEST(UpgradeTest, MethodOtherThanGetIsRefusedFirst) {
  EXPECT_EQ(refusal(decide("POST /chat HTTP/1.1\r\n" + good_headers())),
            UpgradeError::method_not_get);
  EXPECT_EQ(refusal(decide("HEAD /chat HTTP/1.1\r\n" + good_headers())),
            UpgradeError::method_not_get);
  EXPECT_EQ(refusal(decide("get /chat HTTP/1.1\r\n" + good_headers())),
            UpgradeError::method_not_get);  // methods are case-sensitive (RFC 9110 §9.1)
  // Before everything else: a POST that is wrong in every other way too.
  EXPECT_EQ(refusal(decide("POST / HTTP/1.0\r\n")), UpgradeError::method_not_get);
}

TEST(UpgradeTest, MissingUpgradeOrConnectionTokenIsNotWebsocket) {
  const std::string rest =
      "Sec-WebSocket-Key: " + std::string(kKey) + "\r\nSec-WebSocket-Version: 13\r\n";
  const char* variants[] = {
      "Connection: Upgrade\r\n",  // no Upgrade
      "Upgrade: websocket\r\n",   // no Connection
      "Upgrade: websocket\r\nConnection: keep-alive\r\n",
      "Upgrade: h2c\r\nConnection: Upgrade\r\n",
      "Upgrade: websockets\r\nConnection: Upgrade\r\n",  // a token, not a prefix
      "Upgrade: websocket\r\nConnection: upgraded\r\n",
  };
  for (const char* headers : variants) {
    EXPECT_EQ(refusal(decide(std::string("GET / HTTP/1.1\r\nHost: h\r\n") + headers + rest)),
              UpgradeError::not_websocket)
        << headers;
  }
  // Checked before the HTTP version.
  EXPECT_EQ(refusal(decide("GET / HTTP/1.0\r\n")), UpgradeError::not_websocket);
}

TEST(UpgradeTest, Http10IsRefused) {
  EXPECT_EQ(refusal(decide("GET /chat HTTP/1.0\r\n" + good_headers())),
            UpgradeError::http10_request);
  // Before the version and key checks.
  EXPECT_EQ(refusal(decide("GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")),
            UpgradeError::http10_request);
}

TEST(UpgradeTest, VersionMustBeExactlyOne13) {
  const std::string start =
      "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: " +
      std::string(kKey) + "\r\n";
  EXPECT_EQ(refusal(decide(start)), UpgradeError::bad_version);  // missing
  EXPECT_EQ(refusal(decide(start + "Sec-WebSocket-Version: 8\r\n")), UpgradeError::bad_version);
  EXPECT_EQ(refusal(decide(start + "Sec-WebSocket-Version: 13, 8\r\n")), UpgradeError::bad_version);
  EXPECT_EQ(refusal(decide(start + "Sec-WebSocket-Version: 013\r\n")), UpgradeError::bad_version);
  EXPECT_EQ(refusal(decide(start + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n")),
            UpgradeError::bad_version);
  // Surrounding whitespace is not part of the value (RFC 9110 §5.5).
  EXPECT_EQ(accepted(decide(start + "Sec-WebSocket-Version:   13 \r\n")).accept_value(), kAccept);
  // Before the key: no key and a bad version is a bad version.
  EXPECT_EQ(refusal(decide("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Version: 12\r\n")),
            UpgradeError::bad_version);
}

TEST(UpgradeTest, KeyMustBeOneBase64Of16Bytes) {
  const std::string start =
      "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Version: 13\r\n";
  const std::string key = "Sec-WebSocket-Key: " + std::string(kKey) + "\r\n";
  EXPECT_EQ(refusal(decide(start)), UpgradeError::bad_key);  // missing
  EXPECT_EQ(refusal(decide(start + key + key)), UpgradeError::bad_key);
  EXPECT_EQ(refusal(decide(start + key + "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n")),
            UpgradeError::bad_key);
  EXPECT_EQ(refusal(decide(start + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n")),
            UpgradeError::bad_key);
  EXPECT_EQ(refusal(decide(start + "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n")),
            UpgradeError::bad_key);  // 10 bytes
  EXPECT_EQ(refusal(decide(start + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n")),
            UpgradeError::bad_key);
  // Before the origin.
  const std::string allowed[] = {"https://example.com"};
  EXPECT_EQ(
      refusal(decide(start + "Origin: https://evil.example\r\n", {.allowed_origins = allowed})),
      UpgradeError::bad_key);
}

TEST(UpgradeTest, OriginMustBeInANonEmptyAllowList) {
  const std::string allowed[] = {"https://example.com", "https://app.example.com"};
  const UpgradePolicy policy{.allowed_origins = allowed};
  EXPECT_EQ(refusal(decide_good("Origin: https://evil.example\r\n", policy)),
            UpgradeError::origin_not_allowed);
  EXPECT_EQ(refusal(decide_good("Origin: HTTPS://EXAMPLE.COM\r\n", policy)),
            UpgradeError::origin_not_allowed);  // exact comparison
  EXPECT_EQ(refusal(decide_good("Origin: null\r\n", policy)), UpgradeError::origin_not_allowed);
  EXPECT_EQ(accepted(decide_good("Origin: https://app.example.com\r\n", policy)).accept_value(),
            kAccept);
  // No Origin: not a browser, which cross-site hijacking needs.
  EXPECT_EQ(accepted(decide_good("", policy)).accept_value(), kAccept);
  // An empty list allows any Origin.
  EXPECT_EQ(accepted(decide_good("Origin: https://evil.example\r\n")).accept_value(), kAccept);
}

TEST(UpgradeTest, ServerStateRefusalsAreNeverDecidedHere) {
  // Whatever the request, draining, connection_limit and the abuse limits come from the caller.
  const char* heads[] = {"POST / HTTP/1.1\r\nHost: h\r\n", "GET / HTTP/1.1\r\nHost: h\r\n",
                         "GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"};
  for (const char* head : heads) {
    const std::optional<UpgradeError> error = refusal(decide(head));
    ASSERT_TRUE(error);
    EXPECT_LT(*error, kFirstServerStateError);
  }
}

// --- Subprotocol ------------------------------------------------------------------------------

TEST(UpgradeTest, SubprotocolIsTheClientsFirstSupportedOne) {
  const std::vector<std::string> route = {"json", "chat.v2", "chat.v1"};
  const UpgradePolicy policy{.subprotocols = route};
  EXPECT_EQ(
      accepted(decide_good("Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n", policy)).subprotocol,
      2u);
  EXPECT_EQ(accepted(decide_good("Sec-WebSocket-Protocol: xml,  json \r\n", policy)).subprotocol,
            0u);
  // Repeated headers are one list (RFC 6455 §11.3.4), in order.
  EXPECT_EQ(accepted(decide_good("Sec-WebSocket-Protocol: xml\r\n"
                                 "Sec-WebSocket-Protocol: chat.v2, json\r\n",
                                 policy))
                .subprotocol,
            1u);
  // None supported, names are case-sensitive, or an empty offer: no subprotocol.
  EXPECT_FALSE(accepted(decide_good("Sec-WebSocket-Protocol: chat.v3\r\n", policy)).subprotocol);
  EXPECT_FALSE(accepted(decide_good("Sec-WebSocket-Protocol: JSON\r\n", policy)).subprotocol);
  EXPECT_FALSE(accepted(decide_good("Sec-WebSocket-Protocol: \r\n", policy)).subprotocol);
  EXPECT_FALSE(accepted(decide_good("", policy)).subprotocol);
}

TEST(UpgradeTest, RouteWithoutSubprotocolsAgreesNone) {
  EXPECT_FALSE(accepted(decide_good("Sec-WebSocket-Protocol: json\r\n")).subprotocol);
}

// --- permessage-deflate -----------------------------------------------------------------------

TEST(UpgradeTest, DeflateIsNegotiatedWhenOfferedAndOn) {
  const UpgradePolicy shared{.deflate = DeflateServerPolicy{}};
  const UpgradeDecision decision = decide_good(
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n", shared);
  const UpgradeAcceptance acceptance = accepted(decision);
  ASSERT_TRUE(acceptance.deflate);
  EXPECT_TRUE(acceptance.deflate->server_no_context_takeover);
  EXPECT_TRUE(acceptance.deflate->client_no_context_takeover);
  // The same answer as negotiate_deflate gives for that offer.
  std::string expected;
  ASSERT_TRUE(negotiate_deflate("permessage-deflate; client_max_window_bits", {}, expected));
  EXPECT_EQ(acceptance.extensions, expected);

  const UpgradePolicy takeover{.deflate = DeflateServerPolicy{.context_takeover = true}};
  const UpgradeAcceptance plain =
      accepted(decide_good("Sec-WebSocket-Extensions: permessage-deflate\r\n", takeover));
  ASSERT_TRUE(plain.deflate);
  EXPECT_FALSE(plain.deflate->server_no_context_takeover);
  EXPECT_EQ(plain.extensions, "permessage-deflate");
}

TEST(UpgradeTest, DeflateOffersAcrossRepeatedHeaders) {
  const UpgradePolicy policy{.deflate = DeflateServerPolicy{.context_takeover = true}};
  // The first header's offer is invalid (window bits 16), the second one is taken.
  const UpgradeAcceptance acceptance = accepted(
      decide_good("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n"
                  "sec-websocket-extensions: x-webkit-deflate-frame, permessage-deflate\r\n",
                  policy));
  ASSERT_TRUE(acceptance.deflate);
  EXPECT_EQ(acceptance.extensions, "permessage-deflate");
}

TEST(UpgradeTest, NoDeflateWithoutOfferOrWhenOff) {
  const UpgradePolicy on{.deflate = DeflateServerPolicy{}};
  const UpgradePolicy off{};  // deflate = nullopt
  const struct {
    const char* extensions;
    const UpgradePolicy* policy;
  } cases[] = {
      {"", &on},  // no offer
      {"Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n", &on},
      {"Sec-WebSocket-Extensions: permessage-deflate; x=1\r\n", &on},  // declined
      {"Sec-WebSocket-Extensions: permessage-deflate\r\n", &off},
  };
  for (const auto& c : cases) {
    const UpgradeDecision decision = decide_good(c.extensions, *c.policy);
    EXPECT_FALSE(accepted(decision).deflate) << c.extensions;
    EXPECT_TRUE(accepted(decision).extensions.empty()) << c.extensions;
  }
}

}  // namespace
}  // namespace pylon::ws
