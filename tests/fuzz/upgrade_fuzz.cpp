// libFuzzer target for src/ws/upgrade.hpp (the server's opening-handshake decision).
//
// Input layout: byte 0 picks the policy (the route's subprotocols, an Origin allow-list, the
// permessage-deflate policy), byte 1 seeds the chunk-split pattern; the rest is the wire bytes.
// They go through http::RequestParser twice, whole and in chunks (each chunked call sees the
// bytes in a new heap block), and decide_upgrade() runs on every complete request (pipelined ones
// too). Checks: an acceptance carries the 28-char accept value of the request's key, passed every
// check, and its subprotocol and deflate answers fit the policy; a refusal is one of the
// enumerators the function decides and its table row is a 4xx/5xx with a reason and a name; the
// sequence of decisions does not depend on how the bytes were split.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_parser.hpp"
#include "splitter.hpp"
#include "ws/upgrade.hpp"

namespace {

using namespace pylon;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

const std::vector<std::string> kSubprotocolSets[] = {
    {}, {"chat"}, {"json", "chat.v2", "chat.v1"}, {"chat", "chat"}};
const std::vector<std::string> kOrigins = {"https://example.com", "null"};

ws::UpgradePolicy make_policy(std::uint8_t selector) {
  ws::UpgradePolicy policy;
  policy.subprotocols = kSubprotocolSets[selector & 3];
  if (selector & 4) policy.allowed_origins = kOrigins;
  switch ((selector >> 3) & 3) {
    case 0:
      break;
    case 1:
      policy.deflate = ws::DeflateServerPolicy{};
      break;
    case 2:
      policy.deflate = ws::DeflateServerPolicy{.context_takeover = true};
      break;
    default:
      policy.deflate = ws::DeflateServerPolicy{
          .context_takeover = true, .max_window_bits = 9, .client_max_window_bits = 10};
      break;
  }
  return policy;
}

void check_acceptance(const ws::UpgradeAcceptance& accepted, const http::Request& request,
                      const ws::UpgradePolicy& policy) {
  check(accepted.accept_value().size() == ws::kAcceptKeySize);
  const http::Header* key = request.find("Sec-WebSocket-Key");
  check(key != nullptr && request.count("Sec-WebSocket-Key") == 1 &&
        ws::is_valid_client_key(key->value));
  check(accepted.accept_value() == ws::accept_key(key->value));
  check(request.method == "GET" && request.version_minor >= 1);
  check(request.has_token("Upgrade", "websocket") && request.has_token("Connection", "upgrade"));
  const http::Header* version = request.find("Sec-WebSocket-Version");
  check(version != nullptr && version->value == "13");
  if (const http::Header* origin = request.find("Origin");
      origin != nullptr && !policy.allowed_origins.empty()) {
    check(std::find(policy.allowed_origins.begin(), policy.allowed_origins.end(), origin->value) !=
          policy.allowed_origins.end());
  }
  if (accepted.subprotocol) {
    check(*accepted.subprotocol < policy.subprotocols.size());
    // The first of equal names; the client named it (has_token is looser: case-insensitive).
    const std::string& chosen = policy.subprotocols[*accepted.subprotocol];
    check(std::find(policy.subprotocols.begin(), policy.subprotocols.end(), chosen) -
              policy.subprotocols.begin() ==
          static_cast<std::ptrdiff_t>(*accepted.subprotocol));
    check(request.has_token("Sec-WebSocket-Protocol", chosen));
  }
  check(accepted.deflate.has_value() == !accepted.extensions.empty());
  if (accepted.deflate) {
    check(policy.deflate.has_value() && request.find("Sec-WebSocket-Extensions") != nullptr);
    const ws::DeflateParams& params = *accepted.deflate;
    check(params.server_max_window_bits >= ws::kMinWindowBits &&
          params.server_max_window_bits <= ws::kMaxWindowBits);
    check(params.client_max_window_bits >= ws::kMinWindowBits &&
          params.client_max_window_bits <= ws::kMaxWindowBits);
    if (!policy.deflate->context_takeover) {
      check(params.server_no_context_takeover && params.client_no_context_takeover);
    }
  }
}

void check_refusal(ws::UpgradeError error) {
  check(static_cast<std::size_t>(error) < ws::kUpgradeErrorCount);
  // The refusals from server state are the caller's to decide.
  check(error < ws::kFirstServerStateError);
  const ws::UpgradeRefusal row = ws::describe(error);
  check(row.status >= 400 && row.status <= 599);
  check(!row.reason.empty() && !row.name.empty());
}

// The decision as one string, to compare decisions on requests parsed from different buffers.
std::string flatten(const ws::UpgradeDecision& decision) {
  if (const auto* error = std::get_if<ws::UpgradeError>(&decision)) {
    return "refused " + std::string(ws::describe(*error).name);
  }
  const auto& accepted = std::get<ws::UpgradeAcceptance>(decision);
  std::string out = "accepted " + std::string(accepted.accept_value());
  out += " subprotocol=" + (accepted.subprotocol ? std::to_string(*accepted.subprotocol) : "-");
  out += " extensions=" + accepted.extensions;
  if (accepted.deflate) {
    const ws::DeflateParams& p = *accepted.deflate;
    out += " deflate=" + std::to_string(p.server_no_context_takeover) +
           std::to_string(p.client_no_context_takeover) + "/" +
           std::to_string(p.server_max_window_bits) + "/" +
           std::to_string(p.client_max_window_bits);
  }
  return out;
}

std::string decide_and_check(const http::Request& request, const ws::UpgradePolicy& policy) {
  const ws::UpgradeDecision decision = ws::decide_upgrade(request, policy);
  if (const auto* error = std::get_if<ws::UpgradeError>(&decision)) {
    check_refusal(*error);
  } else {
    check_acceptance(std::get<ws::UpgradeAcceptance>(decision), request, policy);
  }
  std::string flat = flatten(decision);
  check(flatten(ws::decide_upgrade(request, policy)) == flat);  // no hidden state
  return flat;
}

// Parses every request of `input` (whole when splitter is null), deciding on each one; the last
// entry says how the stream ended (a parse error, or bytes still waiting for more).
std::vector<std::string> run(std::string_view input, const ws::UpgradePolicy& policy,
                             pylon::fuzz::Splitter* splitter) {
  std::vector<std::string> decisions;
  http::RequestParser parser;
  http::Request request;
  std::size_t size = splitter != nullptr ? 0 : input.size();
  auto block = std::make_unique<char[]>(size + 1);
  std::memcpy(block.get(), input.data(), size);
  std::size_t start = 0;  // first byte of the request being parsed
  for (;;) {
    const std::string_view buffer(block.get() + start, size - start);
    const http::ParseResult result = parser.parse(buffer, request);
    if (result.status == http::ParseStatus::done) {
      decisions.push_back(decide_and_check(request, policy));
      start += result.consumed;
      parser.reset();
      continue;
    }
    if (result.status == http::ParseStatus::error) {
      decisions.push_back("parse error " + std::to_string(result.error_status));
      return decisions;
    }
    if (size == input.size()) {
      decisions.push_back("need more");
      return decisions;
    }
    // Move the bytes to a new block: a view kept from an earlier call reads freed memory.
    size += splitter->next(input.size() - size, input.size());
    auto grown = std::make_unique<char[]>(size + 1);
    std::memcpy(grown.get(), input.data(), size);
    block = std::move(grown);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const ws::UpgradePolicy policy = make_policy(data[0]);
  pylon::fuzz::Splitter splitter(data[1]);
  const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);

  const std::vector<std::string> whole = run(input, policy, nullptr);
  const std::vector<std::string> chunked = run(input, policy, &splitter);
  check(whole == chunked);
  return 0;
}
