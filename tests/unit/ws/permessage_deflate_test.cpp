// Tests for src/ws/permessage_deflate.*: negotiation (RFC 7692 §7.1) and the codec (§7.2).
#include "ws/permessage_deflate.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>
#include <vector>

namespace pylon::ws {
namespace {

using Status = MessageInflater::Status;

// ---------------------------------------------------------------------------------------------
// Server role: negotiate_deflate

const DeflateServerPolicy kShared{};
const DeflateServerPolicy kTakeover{.context_takeover = true};

std::optional<DeflateParams> negotiate(std::string_view offers, const DeflateServerPolicy& policy,
                                       std::string& response) {
  return negotiate_deflate(offers, policy, response);
}

std::string response_for(std::string_view offers, const DeflateServerPolicy& policy = kTakeover) {
  std::string response = "junk";
  const auto params = negotiate(offers, policy, response);
  EXPECT_EQ(params.has_value(), !response.empty()) << offers;
  return response;
}

bool declined(std::string_view offers, const DeflateServerPolicy& policy = kTakeover) {
  std::string response = "junk";
  const bool none = !negotiate(offers, policy, response).has_value();
  EXPECT_EQ(none, response.empty()) << offers;
  return none;
}

TEST(PermessageDeflateNegotiationTest, PlainOfferTakeover) {
  std::string response;
  const auto params = negotiate("permessage-deflate", kTakeover, response);
  ASSERT_TRUE(params);
  EXPECT_EQ(response, "permessage-deflate");
  EXPECT_FALSE(params->server_no_context_takeover);
  EXPECT_FALSE(params->client_no_context_takeover);
  EXPECT_EQ(params->server_max_window_bits, 15);
  EXPECT_EQ(params->client_max_window_bits, 15);
}

TEST(PermessageDeflateNegotiationTest, PlainOfferSharedAddsBothNoContextTakeover) {
  std::string response;
  const auto params = negotiate("permessage-deflate", kShared, response);
  ASSERT_TRUE(params);
  EXPECT_EQ(response, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  EXPECT_TRUE(params->server_no_context_takeover);
  EXPECT_TRUE(params->client_no_context_takeover);
}

TEST(PermessageDeflateNegotiationTest, BrowserOffer) {
  // What Chromium and Firefox send.
  std::string response;
  const auto params = negotiate("permessage-deflate; client_max_window_bits", kShared, response);
  ASSERT_TRUE(params);
  EXPECT_EQ(response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "client_max_window_bits=15");
  EXPECT_EQ(params->client_max_window_bits, 15);
}

TEST(PermessageDeflateNegotiationTest, ServerNoContextTakeover) {
  EXPECT_EQ(response_for("permessage-deflate; server_no_context_takeover"),
            "permessage-deflate; server_no_context_takeover");
  std::string response;
  EXPECT_TRUE(negotiate("permessage-deflate;server_no_context_takeover", kTakeover, response)
                  ->server_no_context_takeover);
  // §7.1.1.1: no value allowed, quoted or not.
  EXPECT_TRUE(declined("permessage-deflate; server_no_context_takeover=1"));
  EXPECT_TRUE(declined("permessage-deflate; server_no_context_takeover=\"x\""));
  EXPECT_TRUE(
      declined("permessage-deflate; server_no_context_takeover; server_no_context_takeover"));
}

TEST(PermessageDeflateNegotiationTest, ClientNoContextTakeover) {
  std::string response;
  const auto params =
      negotiate("permessage-deflate; client_no_context_takeover", kTakeover, response);
  ASSERT_TRUE(params);
  EXPECT_TRUE(params->client_no_context_takeover);
  EXPECT_FALSE(params->server_no_context_takeover);
  EXPECT_EQ(response, "permessage-deflate; client_no_context_takeover");
  EXPECT_TRUE(declined("permessage-deflate; client_no_context_takeover=true"));
  EXPECT_TRUE(
      declined("permessage-deflate; client_no_context_takeover; client_no_context_takeover"));
}

TEST(PermessageDeflateNegotiationTest, ServerMaxWindowBits) {
  std::string response;
  for (int bits = 8; bits <= 15; ++bits) {
    const std::string offer = "permessage-deflate; server_max_window_bits=" + std::to_string(bits);
    const auto params = negotiate(offer, kTakeover, response);
    ASSERT_TRUE(params) << offer;
    EXPECT_EQ(params->server_max_window_bits, bits);
    EXPECT_EQ(response, offer);  // §7.1.2.1: accepted by including it
  }
  // §7.1.2.1: a value is required, 8..15, no leading zeros, decimal.
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits"));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits="));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=7"));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=16"));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=0"));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=09"));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=010"));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=-9"));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=+9"));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=a"));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=100000000000000000009"));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"));
}

TEST(PermessageDeflateNegotiationTest, ServerMaxWindowBitsFromPolicy) {
  const DeflateServerPolicy small{.context_takeover = true, .max_window_bits = 10};
  std::string response;
  // Not offered: the server may still limit its own window (§7.1.2.1).
  auto params = negotiate("permessage-deflate", small, response);
  ASSERT_TRUE(params);
  EXPECT_EQ(params->server_max_window_bits, 10);
  EXPECT_EQ(response, "permessage-deflate; server_max_window_bits=10");
  // Offered larger: the smaller of the two.
  params = negotiate("permessage-deflate; server_max_window_bits=12", small, response);
  EXPECT_EQ(params->server_max_window_bits, 10);
  EXPECT_EQ(response, "permessage-deflate; server_max_window_bits=10");
  // Offered smaller: the offer.
  params = negotiate("permessage-deflate; server_max_window_bits=9", small, response);
  EXPECT_EQ(params->server_max_window_bits, 9);
  // Out-of-range policies are clamped.
  params =
      negotiate("permessage-deflate", {.context_takeover = true, .max_window_bits = 3}, response);
  EXPECT_EQ(params->server_max_window_bits, 8);
  params =
      negotiate("permessage-deflate", {.context_takeover = true, .max_window_bits = 20}, response);
  EXPECT_EQ(params->server_max_window_bits, 15);
  EXPECT_EQ(response, "permessage-deflate");
}

TEST(PermessageDeflateNegotiationTest, ClientMaxWindowBits) {
  std::string response;
  // With no value: the client supports the parameter; the server answers with its limit.
  auto params = negotiate("permessage-deflate; client_max_window_bits", kTakeover, response);
  ASSERT_TRUE(params);
  EXPECT_EQ(response, "permessage-deflate; client_max_window_bits=15");
  // With a value: the response is never above it.
  params = negotiate("permessage-deflate; client_max_window_bits=10", kTakeover, response);
  ASSERT_TRUE(params);
  EXPECT_EQ(params->client_max_window_bits, 10);
  EXPECT_EQ(response, "permessage-deflate; client_max_window_bits=10");
  const DeflateServerPolicy limit{.context_takeover = true, .client_max_window_bits = 9};
  params = negotiate("permessage-deflate; client_max_window_bits", limit, response);
  EXPECT_EQ(params->client_max_window_bits, 9);
  EXPECT_EQ(response, "permessage-deflate; client_max_window_bits=9");
  params = negotiate("permessage-deflate; client_max_window_bits=12", limit, response);
  EXPECT_EQ(params->client_max_window_bits, 9);
  // §7.1.2.2: not offered -> never in the response, and the client may use 15.
  params = negotiate("permessage-deflate", limit, response);
  EXPECT_EQ(params->client_max_window_bits, 15);
  EXPECT_EQ(response, "permessage-deflate");
  // Invalid values and duplicates decline.
  EXPECT_TRUE(declined("permessage-deflate; client_max_window_bits="));
  EXPECT_TRUE(declined("permessage-deflate; client_max_window_bits=7"));
  EXPECT_TRUE(declined("permessage-deflate; client_max_window_bits=16"));
  EXPECT_TRUE(declined("permessage-deflate; client_max_window_bits=08"));
  EXPECT_TRUE(declined("permessage-deflate; client_max_window_bits=x"));
  EXPECT_TRUE(declined("permessage-deflate; client_max_window_bits; client_max_window_bits"));
  EXPECT_TRUE(declined("permessage-deflate; client_max_window_bits=10; client_max_window_bits"));
}

TEST(PermessageDeflateNegotiationTest, AllParameters) {
  std::string response;
  const auto params = negotiate(
      "permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
      "server_max_window_bits=11; client_max_window_bits=12",
      kTakeover, response);
  ASSERT_TRUE(params);
  EXPECT_TRUE(params->server_no_context_takeover && params->client_no_context_takeover);
  EXPECT_EQ(params->server_max_window_bits, 11);
  EXPECT_EQ(params->client_max_window_bits, 12);
  EXPECT_EQ(response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=11; client_max_window_bits=12");
}

TEST(PermessageDeflateNegotiationTest, UnknownParameterDeclines) {
  EXPECT_TRUE(declined("permessage-deflate; foo"));
  EXPECT_TRUE(declined("permessage-deflate; foo=1"));
  EXPECT_TRUE(declined("permessage-deflate; client_max_window_bits; x_custom=\"y\""));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window"));
}

TEST(PermessageDeflateNegotiationTest, FirstAcceptableOfferWins) {
  std::string response;
  // §7.1: the first offer is declined (invalid), the second accepted.
  auto params = negotiate(
      "permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=10",
      kTakeover, response);
  ASSERT_TRUE(params);
  EXPECT_EQ(params->server_max_window_bits, 10);
  EXPECT_EQ(response, "permessage-deflate; server_max_window_bits=10");
  // Two valid offers: the first one.
  params = negotiate(
      "permessage-deflate; client_max_window_bits=9, permessage-deflate; client_max_window_bits",
      kTakeover, response);
  EXPECT_EQ(params->client_max_window_bits, 9);
  // Unknown parameter, then duplicate, then valid.
  params = negotiate(
      "permessage-deflate; x, permessage-deflate; server_no_context_takeover; "
      "server_no_context_takeover, permessage-deflate; client_no_context_takeover",
      kTakeover, response);
  ASSERT_TRUE(params);
  EXPECT_EQ(response, "permessage-deflate; client_no_context_takeover");
  // All invalid.
  EXPECT_TRUE(declined("permessage-deflate; a, permessage-deflate; server_max_window_bits"));
}

TEST(PermessageDeflateNegotiationTest, OtherExtensionsInTheList) {
  EXPECT_EQ(response_for("x-webkit-deflate-frame, permessage-deflate; client_max_window_bits"),
            "permessage-deflate; client_max_window_bits=15");
  EXPECT_EQ(response_for("foo; bar=\"a,b\"; baz, permessage-deflate, other"), "permessage-deflate");
  EXPECT_TRUE(declined("foo, bar; permessage-deflate"));
  EXPECT_TRUE(declined("permessage-deflate-x, deflate-frame"));
  EXPECT_TRUE(declined(""));
  EXPECT_TRUE(declined(" , ,, "));
  // Garbage before ours does not hide it.
  EXPECT_EQ(response_for(";;, =, permessage-deflate"), "permessage-deflate");
}

TEST(PermessageDeflateNegotiationTest, QuotedValues) {
  std::string response;
  auto params = negotiate("permessage-deflate; server_max_window_bits=\"10\"", kTakeover, response);
  ASSERT_TRUE(params);
  EXPECT_EQ(params->server_max_window_bits, 10);
  EXPECT_EQ(response, "permessage-deflate; server_max_window_bits=10");
  params = negotiate("permessage-deflate; client_max_window_bits=\"9\"", kTakeover, response);
  EXPECT_EQ(params->client_max_window_bits, 9);
  // A quoted-pair unescapes to the token "11".
  params = negotiate("permessage-deflate; server_max_window_bits=\"1\\1\"", kTakeover, response);
  ASSERT_TRUE(params);
  EXPECT_EQ(params->server_max_window_bits, 11);
  // RFC 6455 §9.1: the unescaped value must be a token; empty, unclosed, invalid values decline.
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=\"\""));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=\"10"));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=\"1 0\""));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=\"16\""));
  EXPECT_TRUE(declined("permessage-deflate; server_no_context_takeover=\"\""));
  // A comma inside quotes does not split the list.
  EXPECT_TRUE(declined("permessage-deflate; x=\"a, permessage-deflate\""));
}

TEST(PermessageDeflateNegotiationTest, CaseOfTokens) {
  EXPECT_EQ(response_for("Permessage-Deflate"), "permessage-deflate");
  EXPECT_EQ(response_for("PERMESSAGE-DEFLATE; Server_No_Context_Takeover"),
            "permessage-deflate; server_no_context_takeover");
  EXPECT_EQ(response_for("permessage-deflate; CLIENT_MAX_WINDOW_BITS=10"),
            "permessage-deflate; client_max_window_bits=10");
}

TEST(PermessageDeflateNegotiationTest, Whitespace) {
  EXPECT_EQ(
      response_for(
          "  permessage-deflate  ;  client_max_window_bits = 10 ;\tserver_no_context_takeover\t "),
      "permessage-deflate; server_no_context_takeover; client_max_window_bits=10");
  EXPECT_EQ(response_for("permessage-deflate;server_max_window_bits=10"),
            "permessage-deflate; server_max_window_bits=10");
  // Syntax errors decline the offer.
  EXPECT_TRUE(declined("permessage-deflate;"));
  EXPECT_TRUE(declined("permessage-deflate; ; server_no_context_takeover"));
  EXPECT_TRUE(declined("permessage-deflate server_no_context_takeover"));
  EXPECT_TRUE(declined("permessage-deflate; server_max_window_bits=1 0"));
  EXPECT_TRUE(declined("permessage-deflate; server max_window_bits=10"));
}

TEST(PermessageDeflateNegotiationTest, SharedPolicyAlwaysBothNoContextTakeover) {
  for (const char* offer : {"permessage-deflate", "permessage-deflate; server_no_context_takeover",
                            "permessage-deflate; client_no_context_takeover",
                            "permessage-deflate; client_max_window_bits=10"}) {
    std::string response;
    const auto params = negotiate(offer, kShared, response);
    ASSERT_TRUE(params) << offer;
    EXPECT_TRUE(params->server_no_context_takeover && params->client_no_context_takeover);
    EXPECT_NE(response.find("; server_no_context_takeover; client_no_context_takeover"),
              std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// Client role: deflate_offer, accept_deflate_response

TEST(PermessageDeflateClientTest, Offers) {
  EXPECT_EQ(deflate_offer({}), "permessage-deflate; client_max_window_bits");
  EXPECT_EQ(deflate_offer({.request_no_context_takeover = true, .max_window_bits = 10}),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10; client_max_window_bits");
}

TEST(PermessageDeflateClientTest, OffersAreAcceptedByOurServer) {
  for (const DeflateClientOptions& options :
       {DeflateClientOptions{}, DeflateClientOptions{.request_no_context_takeover = true},
        DeflateClientOptions{.max_window_bits = 9}}) {
    for (const DeflateServerPolicy& policy :
         {kShared, kTakeover,
          DeflateServerPolicy{.max_window_bits = 12, .client_max_window_bits = 8}}) {
      std::string response, error;
      const auto server = negotiate(deflate_offer(options), policy, response);
      ASSERT_TRUE(server);
      const auto client = accept_deflate_response(response, options, error);
      ASSERT_TRUE(client) << response << ": " << error;
      EXPECT_EQ(error, "");
      EXPECT_EQ(client->server_no_context_takeover, server->server_no_context_takeover);
      EXPECT_EQ(client->client_no_context_takeover, server->client_no_context_takeover);
      EXPECT_EQ(client->server_max_window_bits, server->server_max_window_bits);
      EXPECT_EQ(client->client_max_window_bits, server->client_max_window_bits);
    }
  }
}

std::string client_error(std::string_view response, const DeflateClientOptions& options = {}) {
  std::string error;
  EXPECT_FALSE(accept_deflate_response(response, options, error)) << response;
  EXPECT_NE(error, "") << response;
  return error;
}

TEST(PermessageDeflateClientTest, ValidResponses) {
  std::string error;
  auto params = accept_deflate_response("permessage-deflate", {}, error);
  ASSERT_TRUE(params);
  EXPECT_EQ(params->server_max_window_bits, 15);
  params = accept_deflate_response(
      "permessage-deflate; server_no_context_takeover; client_max_window_bits=9", {}, error);
  ASSERT_TRUE(params);
  EXPECT_TRUE(params->server_no_context_takeover);  // may be included unasked (§7.1.1.1)
  EXPECT_FALSE(params->client_no_context_takeover);
  EXPECT_EQ(params->client_max_window_bits, 9);
  params = accept_deflate_response("permessage-deflate; server_max_window_bits=8", {}, error);
  EXPECT_EQ(params->server_max_window_bits, 8);  // limiting the server unasked is fine
  params = accept_deflate_response("permessage-deflate; server_max_window_bits=9",
                                   {.max_window_bits = 10}, error);
  EXPECT_EQ(params->server_max_window_bits, 9);
  params = accept_deflate_response("permessage-deflate; client_no_context_takeover", {}, error);
  EXPECT_TRUE(params->client_no_context_takeover);
  params = accept_deflate_response("Permessage-Deflate ; server_max_window_bits=\"12\"", {}, error);
  EXPECT_EQ(params->server_max_window_bits, 12);
}

TEST(PermessageDeflateClientTest, DeclinedIsNotAnError) {
  std::string error = "junk";
  EXPECT_FALSE(accept_deflate_response("", {}, error));
  EXPECT_EQ(error, "");
  EXPECT_FALSE(accept_deflate_response("  ", {}, error));
  EXPECT_EQ(error, "");
}

TEST(PermessageDeflateClientTest, FailuresPerSection7_1) {
  client_error("permessage-deflate; foo");  // unknown
  client_error("permessage-deflate; server_no_context_takeover; server_no_context_takeover");
  client_error("permessage-deflate; server_no_context_takeover=1");  // invalid value
  client_error("permessage-deflate; client_no_context_takeover=1");
  client_error("permessage-deflate; server_max_window_bits");  // value required
  client_error("permessage-deflate; server_max_window_bits=16");
  client_error("permessage-deflate; server_max_window_bits=7");
  client_error("permessage-deflate; server_max_window_bits=08");
  client_error("permessage-deflate; client_max_window_bits");  // value required
  client_error("permessage-deflate; client_max_window_bits=16");
  client_error("permessage-deflate; client_max_window_bits=10; client_max_window_bits=10");
  client_error("permessage-deflate; server_max_window_bits=11", {.max_window_bits = 10});
  client_error("permessage-deflate", {.max_window_bits = 10});  // absent = 15 > offered
  client_error("permessage-deflate; client_no_context_takeover",
               {.request_no_context_takeover = true});     // §7.1.1.1 MUST include
  client_error("permessage-deflate, permessage-deflate");  // accepted twice
  client_error("x-other");                                 // not offered
  client_error("permessage-deflate, x-other");
  client_error("permessage-deflate;");  // syntax
  client_error("permessage-deflate; server_max_window_bits=\"10");
}

// ---------------------------------------------------------------------------------------------
// Codec

constexpr std::uint64_t kMaxLimit() {
  return ~std::uint64_t{0};
}

std::string compress(MessageDeflater& deflater, std::string_view message) {
  std::string out;
  deflater.compress(message, out);
  return out;
}

std::string inflate_all(MessageInflater& inflater, std::string_view compressed,
                        std::uint64_t limit = kMaxLimit()) {
  std::string out;
  EXPECT_EQ(inflater.inflate(compressed, true, limit, out), Status::ok);
  return out;
}

std::string random_bytes(std::size_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(size, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string compressible_text(std::size_t size, unsigned seed) {
  static const char* const kWords[] = {"{\"topic\":",  "\"chat/room-", "\"user\":", "\"hello\"",
                                       "\"message\":", "world",        ", ",        "}",
                                       "42",           "temperature"};
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < size) s += kWords[rng() % 10];
  s.resize(size);
  return s;
}

TEST(PermessageDeflateCodecTest, RfcExampleHelloBothWays) {
  // RFC 7692 §7.2.3.1: "Hello" compressed is f2 48 cd c9 c9 07 00.
  const std::string expected("\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
  MessageDeflater deflater(15, 8, true);
  EXPECT_EQ(compress(deflater, "Hello"), expected);
  MessageInflater inflater(15, true);
  EXPECT_EQ(inflate_all(inflater, expected), "Hello");
}

TEST(PermessageDeflateCodecTest, RfcExamplesOfOtherEncodings) {
  MessageInflater inflater(15, false);
  // §7.2.3.1, the same message in two fragments.
  std::string out;
  EXPECT_EQ(inflater.inflate(std::string_view("\xf2\x48\xcd", 3), false, 100, out), Status::ok);
  EXPECT_EQ(inflater.inflate(std::string_view("\xc9\xc9\x07\x00", 4), true, 100, out), Status::ok);
  EXPECT_EQ(out, "Hello");
  // §7.2.3.2: with context takeover, the second "Hello" refers back to the first.
  EXPECT_EQ(inflate_all(inflater, std::string_view("\xf2\x00\x11\x00\x00", 5)), "Hello");
  // §7.2.3.3: a DEFLATE block with no compression.
  MessageInflater stored(15, false);
  EXPECT_EQ(
      inflate_all(stored, std::string_view("\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00", 11)),
      "Hello");
  // §7.2.3.4: a block with BFINAL = 1, then a normal message (context kept).
  MessageInflater final_block(15, false);
  EXPECT_EQ(inflate_all(final_block, std::string_view("\xf3\x48\xcd\xc9\xc9\x07\x00", 7)), "Hello");
  EXPECT_EQ(inflate_all(final_block, std::string_view("\xf2\x00\x11\x00\x00", 5)), "Hello");
  // §7.2.3.5: two DEFLATE blocks in one message.
  MessageInflater two_blocks(15, false);
  EXPECT_EQ(
      inflate_all(two_blocks,
                  std::string_view("\xf2\x48\x05\x00\x00\x00\xff\xff\xca\xc9\xc9\x07\x00", 13)),
      "Hello");
}

TEST(PermessageDeflateCodecTest, EmptyMessage) {
  MessageDeflater deflater(15, 8, false);
  MessageInflater inflater(15, false);
  for (int i = 0; i < 3; ++i) {
    const std::string compressed = compress(deflater, "");
    EXPECT_EQ(compressed, std::string(1, '\0'));  // §7.2.3.6: a single 0x00
    EXPECT_EQ(inflate_all(inflater, compressed), "");
  }
  // An empty payload (some peers send it for an empty message) inflates to nothing and leaves
  // the stream usable.
  EXPECT_EQ(inflate_all(inflater, ""), "");
  EXPECT_EQ(inflate_all(inflater, compress(deflater, "after")), "after");
  MessageInflater fresh(15, false);
  EXPECT_EQ(inflate_all(fresh, ""), "");
  MessageDeflater fresh_deflater(15, 8, false);
  EXPECT_EQ(inflate_all(fresh, compress(fresh_deflater, "x")), "x");
}

class PermessageDeflateRoundTripTest
    : public ::testing::TestWithParam<std::tuple<std::size_t, bool, bool>> {};

TEST_P(PermessageDeflateRoundTripTest, RoundTrip) {
  const auto [size, random, no_context_takeover] = GetParam();
  const std::string message = random ? random_bytes(size, 7) : compressible_text(size, 7);
  MessageDeflater deflater(15, 8, no_context_takeover);
  MessageInflater inflater(15, no_context_takeover);
  for (int round = 0; round < 2; ++round) {
    const std::string compressed = compress(deflater, message);
    if (!random && size >= 1024) {
      EXPECT_LT(compressed.size(), size / 2);
    }
    EXPECT_EQ(inflate_all(inflater, compressed, size), message);
    // A limit of exactly the size is enough; one less is too small.
    if (size > 0) {
      MessageInflater strict(15, true);
      MessageDeflater again(15, 8, true);
      std::string out;
      EXPECT_EQ(strict.inflate(compress(again, message), true, size - 1, out), Status::too_large);
      EXPECT_LE(out.size(), size - 1);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, PermessageDeflateRoundTripTest,
                         ::testing::Combine(::testing::Values(0, 1, 125, 16 * 1024, 1024 * 1024),
                                            ::testing::Bool(), ::testing::Bool()));

TEST(PermessageDeflateCodecTest, FragmentedInArbitraryPieces) {
  std::mt19937 rng(99);
  MessageDeflater deflater(15, 8, false);
  MessageInflater inflater(15, false);
  for (int message_index = 0; message_index < 40; ++message_index) {
    const std::string message = message_index % 3 == 0
                                    ? random_bytes(rng() % 70000, message_index)
                                    : compressible_text(rng() % 70000, message_index);
    const std::string compressed = compress(deflater, message);
    std::string out;
    std::size_t offset = 0;
    // Pieces of 0..(1..300) bytes, the last piece possibly empty.
    while (offset < compressed.size()) {
      const std::size_t piece = std::min<std::size_t>(compressed.size() - offset,
                                                      rng() % (message_index % 4 == 0 ? 3 : 300));
      ASSERT_EQ(inflater.inflate(std::string_view(compressed).substr(offset, piece), false,
                                 message.size(), out),
                Status::ok);
      offset += piece;
    }
    ASSERT_EQ(inflater.inflate(std::string_view(), true, message.size(), out), Status::ok);
    ASSERT_EQ(out, message) << message_index;
  }
}

TEST(PermessageDeflateCodecTest, ContextTakeoverShrinksRepeatedMessage) {
  const std::string message = compressible_text(2000, 3) + random_bytes(500, 3);
  MessageDeflater takeover(15, 8, false);
  const std::string first = compress(takeover, message);
  const std::string second = compress(takeover, message);
  EXPECT_LT(second.size(), first.size() / 4);
  MessageInflater inflater(15, false);
  EXPECT_EQ(inflate_all(inflater, first), message);
  EXPECT_EQ(inflate_all(inflater, second), message);
  // A no-context-takeover inflater cannot resolve the back-reference.
  MessageInflater reset_inflater(15, true);
  EXPECT_EQ(inflate_all(reset_inflater, first), message);
  std::string out;
  EXPECT_EQ(reset_inflater.inflate(second, true, kMaxLimit(), out), Status::corrupt);
}

TEST(PermessageDeflateCodecTest, NoContextTakeoverResets) {
  const std::string message = compressible_text(3000, 5);
  MessageDeflater deflater(15, 8, true);
  const std::string first = compress(deflater, message);
  const std::string second = compress(deflater, message);
  EXPECT_EQ(first, second);  // nothing carried over: compress-once output is reproducible
  // Any fresh inflater, in any order, inflates each message alone.
  MessageInflater inflater(15, true);
  EXPECT_EQ(inflate_all(inflater, second), message);
  MessageInflater other(15, false);
  EXPECT_EQ(inflate_all(other, first), message);
}

TEST(PermessageDeflateCodecTest, SharedDeflaterServesManyInflaters) {
  MessageDeflater shared(15, 8, true);
  std::vector<MessageInflater> subscribers;
  for (int i = 0; i < 5; ++i) subscribers.emplace_back(15, i % 2 == 0);
  for (int round = 0; round < 4; ++round) {
    const std::string message = compressible_text(500 + round * 100, round);
    const std::string compressed = compress(shared, message);
    for (auto& inflater : subscribers) EXPECT_EQ(inflate_all(inflater, compressed), message);
  }
}

TEST(PermessageDeflateCodecTest, SmallWindows) {
  for (std::uint8_t bits = 8; bits <= 15; ++bits) {
    const std::string message = compressible_text(20000, bits) + random_bytes(3000, bits);
    MessageDeflater deflater(bits, 1, false);
    MessageInflater inflater(bits, false);
    for (int round = 0; round < 3; ++round) {
      EXPECT_EQ(inflate_all(inflater, compress(deflater, message)), message) << int{bits};
    }
  }
}

TEST(PermessageDeflateCodecTest, TailHandling) {
  MessageDeflater deflater(15, 8, false);
  MessageInflater inflater(15, false);
  // Our output never ends with 00 00 ff ff (the sender removes it) and ends at a flush boundary.
  for (const std::string& message : {std::string("Hello"), compressible_text(10000, 1)}) {
    const std::string compressed = compress(deflater, message);
    ASSERT_GE(compressed.size(), 1u);
    EXPECT_NE(compressed.substr(compressed.size() >= 4 ? compressed.size() - 4 : 0),
              std::string("\x00\x00\xff\xff", 4));
    EXPECT_EQ(inflate_all(inflater, compressed), message);
  }
  // The message's compressed bytes end exactly at a piece boundary, then an empty last piece.
  const std::string message = compressible_text(5000, 2);
  const std::string compressed = compress(deflater, message);
  std::string out;
  ASSERT_EQ(inflater.inflate(compressed, false, kMaxLimit(), out), Status::ok);
  ASSERT_EQ(inflater.inflate(std::string_view(), true, kMaxLimit(), out), Status::ok);
  EXPECT_EQ(out, message);
  // A peer that leaves the 00 00 ff ff on (the RFC says to remove it): still inflates, and with
  // context takeover the next message still works.
  for (bool no_context_takeover : {false, true}) {
    MessageDeflater peer(15, 8, no_context_takeover);
    MessageInflater receiver(15, no_context_takeover);
    for (int round = 0; round < 3; ++round) {
      const std::string text = compressible_text(800, round);
      std::string with_tail = compress(peer, text);
      with_tail.append("\x00\x00\xff\xff", 4);
      EXPECT_EQ(inflate_all(receiver, with_tail), text);
      EXPECT_EQ(inflate_all(receiver, compress(peer, text)), text);
    }
  }
  // And a peer that appends a whole extra empty stored block (00 00 00 ff ff) after the marker.
  MessageInflater extra(15, true);
  std::string with_block("\xf2\x48\xcd\xc9\xc9\x07\x00\x00\x00\xff\xff\x00\x00\x00\xff\xff", 16);
  EXPECT_EQ(inflate_all(extra, with_block), "Hello");
}

TEST(PermessageDeflateCodecTest, BombStopsAtTheLimit) {
  const std::string zeros(16 * 1024 * 1024, '\0');
  MessageDeflater deflater(15, 8, true, 9);
  const std::string bomb = compress(deflater, zeros);
  EXPECT_LT(bomb.size(), 32u * 1024);
  constexpr std::uint64_t kLimit = 1024 * 1024;
  MessageInflater inflater(15, true);
  std::string out;
  EXPECT_EQ(inflater.inflate(bomb, true, kLimit, out), Status::too_large);
  EXPECT_LE(out.size(), kLimit);
  EXPECT_LE(out.capacity(), kLimit);  // never a block past the limit (issue 17)
  // Fed in small pieces: stops at the piece that passes the limit.
  inflater.reset();
  out.clear();
  out.shrink_to_fit();
  Status status = Status::ok;
  std::size_t offset = 0;
  for (; offset < bomb.size() && status == Status::ok; offset += 100) {
    status = inflater.inflate(std::string_view(bomb).substr(offset, 100), false, kLimit, out);
    EXPECT_LE(out.size(), kLimit);
  }
  EXPECT_EQ(status, Status::too_large);
  EXPECT_LT(offset, bomb.size() / 8);
  EXPECT_LE(out.capacity(), kLimit);
  // The limit counts the whole message, exactly.
  MessageInflater exact(15, true);
  std::string small;
  const std::string compressed = compress(deflater, std::string_view(zeros).substr(0, 5000));
  EXPECT_EQ(exact.inflate(compressed, true, 5000, small), Status::ok);
  EXPECT_EQ(small.size(), 5000u);
  small.clear();
  EXPECT_EQ(exact.inflate(compressed, true, 4999, small), Status::too_large);
  EXPECT_EQ(small.size(), 4999u);
  // A limit of 0 accepts only empty messages.
  MessageInflater zero(15, true);
  std::string none;
  EXPECT_EQ(zero.inflate(compress(deflater, ""), true, 0, none), Status::ok);
  EXPECT_EQ(zero.inflate(compress(deflater, "a"), true, 0, none), Status::too_large);
  EXPECT_EQ(none, "");
}

TEST(PermessageDeflateCodecTest, TheOutputNeverGrowsPastTheLimit) {
  // std::string doubles its capacity on its own: a limit that is no power of two, after bytes
  // already in the buffer, in one piece and in many.
  const std::string zeros(8 * 1024 * 1024, '\0');
  MessageDeflater deflater(15, 8, true, 9);
  const std::string bomb = compress(deflater, zeros);
  constexpr std::uint64_t kLimit = 1536 * 1024 + 7;
  for (const std::size_t piece : {bomb.size(), std::size_t{1000}}) {
    MessageInflater inflater(15, true);
    std::string out = "kept";
    Status status = Status::ok;
    for (std::size_t offset = 0; offset < bomb.size() && status == Status::ok; offset += piece)
      status = inflater.inflate(std::string_view(bomb).substr(offset, piece), false, kLimit, out);
    EXPECT_EQ(status, Status::too_large);
    EXPECT_EQ(out.size(), 4 + kLimit);
    EXPECT_LE(out.capacity(), 4 + kLimit) << "piece " << piece;
    EXPECT_EQ(out.substr(0, 4), "kept");
  }
}

TEST(PermessageDeflateCodecTest, CorruptInput) {
  {
    MessageInflater inflater(15, false);
    std::string out;
    // BTYPE = 11 is reserved.
    EXPECT_EQ(inflater.inflate(std::string_view("\xff\xff\xff\xff", 4), true, 1000, out),
              Status::corrupt);
  }
  {
    // A stored block whose NLEN is not the complement of LEN.
    MessageInflater inflater(15, false);
    std::string out;
    EXPECT_EQ(inflater.inflate(std::string_view("\x00\x05\x00\x00\x00", 5), true, 1000, out),
              Status::corrupt);
    // After reset() the inflater is usable again.
    inflater.reset();
    out.clear();
    EXPECT_EQ(
        inflater.inflate(std::string_view("\xf2\x48\xcd\xc9\xc9\x07\x00", 7), true, 1000, out),
        Status::ok);
    EXPECT_EQ(out, "Hello");
  }
  {
    // A distance beyond anything written (fresh stream, no dictionary).
    MessageInflater inflater(15, true);
    std::string out;
    EXPECT_EQ(inflater.inflate(std::string_view("\xf2\x00\x11\x00\x00", 5), true, 1000, out),
              Status::corrupt);
  }
  {
    // Random bytes are rejected (or inflate within the limit) without crashing.
    std::mt19937 rng(5);
    int corrupt = 0;
    for (int i = 0; i < 200; ++i) {
      MessageInflater inflater(15, false);
      std::string out;
      const Status status = inflater.inflate(random_bytes(64, rng()), true, 4096, out);
      EXPECT_LE(out.size(), 4096u);
      corrupt += status == Status::corrupt;
    }
    EXPECT_GT(corrupt, 100);
  }
}

TEST(PermessageDeflateCodecTest, Moves) {
  MessageDeflater deflater(15, 8, false);
  MessageInflater inflater(15, false);
  const std::string first = compress(deflater, "Hello");
  EXPECT_EQ(inflate_all(inflater, first), "Hello");
  MessageDeflater moved_deflater(std::move(deflater));
  MessageInflater moved_inflater(std::move(inflater));
  // The context survives the move: the second "Hello" is a back-reference.
  const std::string second = compress(moved_deflater, "Hello");
  EXPECT_EQ(second, std::string("\xf2\x00\x11\x00\x00", 5));
  EXPECT_EQ(inflate_all(moved_inflater, second), "Hello");
  MessageDeflater assigned(9, 1, true);
  assigned = std::move(moved_deflater);
  EXPECT_EQ(inflate_all(moved_inflater, compress(assigned, "Hello")), "Hello");
}

TEST(PermessageDeflateCodecTest, MemoryEstimatesCoverWhatZlibAllocates) {
  for (const auto& [bits, level] : {std::pair<std::uint8_t, int>{15, 8}, {10, 4}, {8, 1}, {9, 9}}) {
    MessageDeflater deflater(bits, level, false);
    const std::size_t estimate = MessageDeflater::memory_estimate(bits, level);
    EXPECT_LE(deflater.allocated_bytes(), estimate) << int{bits} << "/" << level;
    EXPECT_GE(deflater.allocated_bytes(), estimate * 9 / 10) << int{bits} << "/" << level;
    MessageInflater inflater(bits, false);
    // The window is allocated on first use.
    const std::string message = compressible_text(70000, 1);
    EXPECT_EQ(inflate_all(inflater, compress(deflater, message)), message);
    const std::size_t inflate_estimate = MessageInflater::memory_estimate(bits);
    EXPECT_LE(inflater.allocated_bytes(), inflate_estimate) << int{bits};
    EXPECT_GE(inflater.allocated_bytes(), inflate_estimate * 8 / 10) << int{bits};
  }
  EXPECT_EQ(MessageDeflater::memory_estimate(15, 8), 262144u + 6144u);
  EXPECT_EQ(MessageDeflater::memory_estimate(10, 4), 4096u + 8192u + 6144u);
  // 8 is compressed as 9.
  EXPECT_EQ(MessageDeflater::memory_estimate(8, 8), MessageDeflater::memory_estimate(9, 8));
}

// An agreed 8-bit window is compressed with 9 (zlib's minimum for raw deflate): nothing may refer
// more than 256 bytes back, or a peer inflating with a true 256-byte window could not read it.
TEST(PermessageDeflateCodecTest, AnEightBitWindowNeverRefersFurtherThan256Bytes) {
  std::string block;
  for (int i = 0; i < 300; ++i) block += static_cast<char>((i * 7919 + i / 3) & 0xff);
  const std::string message = block + block + block + std::string(1000, 'a');  // repeats 300 back
  for (const bool no_context_takeover : {true, false}) {
    MessageDeflater deflater(8, 8, no_context_takeover);
    z_stream z{};
    ASSERT_EQ(inflateInit2(&z, -8), Z_OK);
    for (int round = 0; round < 3; ++round) {
      std::string compressed = compress(deflater, message);
      EXPECT_LT(compressed.size(), message.size()) << "the run of a's still compresses";
      compressed.append("\x00\x00\xff\xff", 4);
      std::string out(message.size() + 64, '\0');
      z.next_in = reinterpret_cast<Bytef*>(compressed.data());
      z.avail_in = static_cast<uInt>(compressed.size());
      z.next_out = reinterpret_cast<Bytef*>(out.data());
      z.avail_out = static_cast<uInt>(out.size());
      const int result = inflate(&z, Z_SYNC_FLUSH);
      ASSERT_TRUE(result == Z_OK || result == Z_BUF_ERROR)
          << (z.msg != nullptr ? z.msg : "") << " round " << round;
      out.resize(out.size() - z.avail_out);
      EXPECT_EQ(out, message) << "round " << round;
    }
    inflateEnd(&z);
  }
}

TEST(PermessageDeflateCodecTest, InteropWithPlainZlib) {
  // A peer compressing with zlib directly (Z_SYNC_FLUSH, tail removed), several messages.
  z_stream z{};
  ASSERT_EQ(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  MessageInflater inflater(15, false);
  for (int i = 0; i < 5; ++i) {
    std::string message = compressible_text(1000 + i * 1000, i);
    std::string compressed(message.size() + 1024, '\0');
    z.next_in = reinterpret_cast<Bytef*>(message.data());
    z.avail_in = static_cast<uInt>(message.size());
    z.next_out = reinterpret_cast<Bytef*>(compressed.data());
    z.avail_out = static_cast<uInt>(compressed.size());
    ASSERT_EQ(deflate(&z, Z_SYNC_FLUSH), Z_OK);
    compressed.resize(compressed.size() - z.avail_out - 4);
    EXPECT_EQ(inflate_all(inflater, compressed), message);
  }
  deflateEnd(&z);
}

}  // namespace
}  // namespace pylon::ws
