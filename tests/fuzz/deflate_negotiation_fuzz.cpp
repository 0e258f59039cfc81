// libFuzzer target for the negotiation half of src/ws/permessage_deflate.*.
//
// Input layout: byte 0 picks the server policy (shared or context takeover, window limits) and the
// client options; the rest is a Sec-WebSocket-Extensions value. Checks: no crash; negotiate_deflate
// returns params exactly when it writes a response, within RFC 7692's ranges and honouring the
// policy; the response it writes is accepted by accept_deflate_response (the client's check, §7.1)
// with the same params; accept_deflate_response on the raw input never gives params out of range;
// our own client offer is always accepted by our server.
#include <cstdint>
#include <string>
#include <string_view>

#include "ws/permessage_deflate.hpp"

namespace {

using namespace pylon::ws;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

bool in_range(const DeflateParams& params) {
  return params.server_max_window_bits >= 8 && params.server_max_window_bits <= 15 &&
         params.client_max_window_bits >= 8 && params.client_max_window_bits <= 15;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t selector = data[0];
  const std::string_view value(reinterpret_cast<const char*>(data + 1), size - 1);

  const DeflateServerPolicy policy{
      .context_takeover = (selector & 1) != 0,
      .max_window_bits =
          static_cast<std::uint8_t>(8 + ((selector >> 1) & 7) + ((selector >> 4) & 1)),
      .client_max_window_bits = static_cast<std::uint8_t>(8 + ((selector >> 5) & 7))};
  std::string response = "junk";
  const auto agreed = negotiate_deflate(value, policy, response);
  check(agreed.has_value() == !response.empty());
  if (agreed) {
    check(in_range(*agreed));
    check(agreed->server_max_window_bits <=
          std::max<int>(8, std::min<int>(15, policy.max_window_bits)));
    if (!policy.context_takeover) {
      check(agreed->server_no_context_takeover && agreed->client_no_context_takeover);
    }
    // The client that offered client_max_window_bits (as ours always does) accepts the response.
    std::string error = "junk";
    const auto seen = accept_deflate_response(response, {}, error);
    check(seen.has_value() && error.empty());
    check(seen->server_no_context_takeover == agreed->server_no_context_takeover);
    check(seen->client_no_context_takeover == agreed->client_no_context_takeover);
    check(seen->server_max_window_bits == agreed->server_max_window_bits);
    check(seen->client_max_window_bits == agreed->client_max_window_bits);
  }

  // The raw value as a server's response.
  const DeflateClientOptions options{
      .request_no_context_takeover = (selector & 2) != 0,
      .max_window_bits = static_cast<std::uint8_t>(8 + (selector >> 4))};
  std::string error = "junk";
  const auto accepted = accept_deflate_response(value, options, error);
  if (accepted) {
    check(error.empty() && in_range(*accepted));
    check(accepted->server_max_window_bits <= std::min<int>(15, options.max_window_bits));
    if (options.request_no_context_takeover) {
      check(accepted->server_no_context_takeover && accepted->client_no_context_takeover);
    }
  }

  // Our offer, with the input's other extensions after it, always negotiates with our server.
  std::string offers = deflate_offer(options);
  offers += ", ";
  offers += value;
  const auto own = negotiate_deflate(offers, policy, response);
  check(own.has_value());
  const auto own_seen = accept_deflate_response(response, options, error);
  check(own_seen.has_value());
  return 0;
}
