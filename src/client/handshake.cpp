#include "client/handshake.hpp"

#include <array>
#include <string>
#include <vector>

#include "http/response_writer.hpp"
#include "http/status.hpp"
#include "ws/handshake.hpp"

namespace pylon::client {
namespace {

constexpr std::string_view kClientWrittenHeaders[] = {"Host",
                                                      "Upgrade",
                                                      "Connection",
                                                      "Sec-WebSocket-Key",
                                                      "Sec-WebSocket-Version",
                                                      "Sec-WebSocket-Protocol",
                                                      "Sec-WebSocket-Extensions"};

// RFC 9110 §5.6.2 tchar.
bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string failure(std::string_view reason) {
  return "handshake: " + std::string(reason);
}

}  // namespace

void write_handshake_request(std::string& out, const Url& url, std::string_view key,
                             std::span<const std::string> subprotocols, HeaderList extra_headers,
                             std::string_view extensions_offer) {
  std::string offer;
  for (const std::string& protocol : subprotocols) {
    if (!offer.empty()) offer += ", ";
    offer += protocol;
  }
  std::vector<http::Header> headers;
  headers.reserve(7 + extra_headers.size());
  headers.push_back({"Host", url.host_header});
  headers.push_back({"Upgrade", "websocket"});
  headers.push_back({"Connection", "Upgrade"});
  headers.push_back({"Sec-WebSocket-Key", key});
  headers.push_back({"Sec-WebSocket-Version", "13"});
  if (!offer.empty()) headers.push_back({"Sec-WebSocket-Protocol", offer});
  if (!extensions_offer.empty()) headers.push_back({"Sec-WebSocket-Extensions", extensions_offer});
  for (const auto& [name, value] : extra_headers) headers.push_back({name, value});
  http::write_request(out, "GET", url.target, headers);
}

std::string check_extra_headers(HeaderList extra_headers) {
  for (const auto& [name, value] : extra_headers) {
    if (name.empty()) return "header name is empty";
    for (const char c : name) {
      if (!is_token_char(c)) return "header name is not an HTTP token: " + name;
    }
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
      return "header value holds CR, LF or NUL: " + name;
    for (const std::string_view reserved : kClientWrittenHeaders) {
      if (http::iequals(name, reserved)) return "the client writes this header itself: " + name;
    }
  }
  return {};
}

std::string check_handshake_response(const http::Response& response, std::string_view key,
                                     std::span<const std::string> offered_subprotocols,
                                     std::string_view& chosen,
                                     const ws::DeflateClientOptions* deflate_offer,
                                     std::optional<ws::DeflateParams>* agreed,
                                     std::string* extensions) {
  chosen = {};
  if (agreed != nullptr) agreed->reset();
  // §4.1 step 1: anything but 101 is handled per HTTP; for us the connection has failed.
  if (response.status != 101) {
    const std::string_view reason =
        response.reason.empty() ? http::reason_phrase(response.status) : response.reason;
    return failure("HTTP " + std::to_string(response.status) + " " + std::string(reason));
  }
  // Steps 2 and 3: tokens, case-insensitive.
  if (!response.has_token("Upgrade", "websocket")) return failure("missing Upgrade: websocket");
  if (!response.has_token("Connection", "upgrade")) return failure("missing Connection: upgrade");
  // Step 4.
  const http::Header* accept = response.find("Sec-WebSocket-Accept");
  if (accept == nullptr) return failure("missing Sec-WebSocket-Accept");
  char expected[ws::kAcceptKeySize];
  ws::compute_accept_key(key, expected);
  if (response.count("Sec-WebSocket-Accept") != 1 ||
      accept->value != std::string_view(expected, sizeof expected)) {
    return failure("bad Sec-WebSocket-Accept");
  }
  // Step 5: an extension "not present in the client's handshake" fails the connection.
  if (deflate_offer == nullptr) {
    if (const http::Header* header = response.find("Sec-WebSocket-Extensions"); header != nullptr)
      return failure("server chose an extension we did not offer: " + std::string(header->value));
  } else {
    const std::string value = response.join("Sec-WebSocket-Extensions");
    std::string error;
    std::optional<ws::DeflateParams> params =
        ws::accept_deflate_response(value, *deflate_offer, error);
    if (!error.empty()) return failure("bad Sec-WebSocket-Extensions: " + error);
    if (params && agreed != nullptr) *agreed = params;
    if (params && extensions != nullptr) *extensions = std::move(value);
  }
  // Step 6: a subprotocol only out of our offer (exact match, §4.1: case-sensitive).
  if (const http::Header* protocol = response.find("Sec-WebSocket-Protocol"); protocol != nullptr) {
    if (offered_subprotocols.empty())
      return failure("server chose subprotocol '" + std::string(protocol->value) +
                     "' but none was offered");
    bool offered = false;
    for (const std::string& candidate : offered_subprotocols)
      offered = offered || candidate == protocol->value;
    if (!offered || response.count("Sec-WebSocket-Protocol") != 1)
      return failure("server chose subprotocol '" + std::string(protocol->value) +
                     "' that was not offered");
    chosen = protocol->value;
  }
  return {};
}

}  // namespace pylon::client
