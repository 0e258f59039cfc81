// The client side of the RFC 6455 §4.1 opening handshake, sans-I/O: the request bytes, and the
// checks a client must make of the server's response. Pure functions; any thread.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "client/url.hpp"
#include "http/response_parser.hpp"
#include "ws/permessage_deflate.hpp"

namespace pylon::client {

using HeaderList = std::span<const std::pair<std::string, std::string>>;

// Appends the GET request with Host, Upgrade, Connection, Sec-WebSocket-Key/-Version, the
// subprotocol offer (when any), the extension offer (when not empty) and the extra headers, in
// that order.
void write_handshake_request(std::string& out, const Url& url, std::string_view key,
                             std::span<const std::string> subprotocols, HeaderList extra_headers,
                             std::string_view extensions_offer = {});

// Empty when the extra headers are acceptable, else why not: names must be tokens, values must
// hold no CR, LF or NUL (the writer does not escape), and headers the client writes itself
// (Host, Upgrade, Connection, Sec-WebSocket-*) cannot be given twice.
std::string check_extra_headers(HeaderList extra_headers);

// Checks a complete response head against RFC 6455 §4.1 (the client's steps 1-6 after the
// request): 101, Upgrade: websocket, Connection: upgrade, the expected Sec-WebSocket-Accept, no
// extension unless we offered permessage-deflate, and a subprotocol only out of our offer.
// Returns an empty string when the connection is established, else "handshake: <reason>". On
// success `chosen` is the server's subprotocol (a view into the response; empty when none).
//
// Extensions: `deflate_offer` is the permessage-deflate offer we made (nullptr: none). Then the
// Sec-WebSocket-Extensions response (several headers joined with ", ") is checked by
// ws::accept_deflate_response (RFC 7692 §7.1): an invalid one fails the handshake with
// "handshake: bad Sec-WebSocket-Extensions: <why>"; a valid one sets *agreed and *extensions to
// the agreed parameters and the response value; none leaves *agreed empty.
std::string check_handshake_response(const http::Response& response, std::string_view key,
                                     std::span<const std::string> offered_subprotocols,
                                     std::string_view& chosen,
                                     const ws::DeflateClientOptions* deflate_offer = nullptr,
                                     std::optional<ws::DeflateParams>* agreed = nullptr,
                                     std::string* extensions = nullptr);

}  // namespace pylon::client
