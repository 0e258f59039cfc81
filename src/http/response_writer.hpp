// HTTP/1.1 message writers: complete responses for the server role and request heads for the
// client role (the WebSocket opening handshake), appended to a caller-owned std::string.
//
// The writers do not validate or escape: names must be tokens and values field content without
// CR or LF (RFC 9110 §5.5). Values copied from a parsed request always are; anything else must be
// checked by the caller, or a CR LF in a value splits the response. Pure functions, any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "http/request_parser.hpp"

namespace pylon::http {

// Appends a complete HTTP/1.1 response to `out`: status line with reason_phrase(status), the
// given headers in order, Content-Length (always, also 0), "Connection: close" when !keep_alive,
// then the body. `headers` must not hold Content-Length or Connection: close.
// Exception, RFC 9110 §8.6: 1xx and 204 responses carry no Content-Length and no body (`body`
// must be empty; it is not written, since after a 101 the bytes would be read as frames).
// Allocates nothing besides `out`'s own growth (reserved once for the whole response).
void write_response(std::string& out, int status, std::span<const Header> headers,
                    std::string_view body, bool keep_alive);

// Client role: "<method> <target> HTTP/1.1\r\n", the headers, then the blank line.
void write_request(std::string& out, std::string_view method, std::string_view target,
                   std::span<const Header> headers);

// ASCII case-insensitive. Inline: header lookups call it for every header, and most calls end
// at the size test; the same spelling, the common match, is one memcmp (issue 17).
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a == b) return true;
  const auto lower = [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
  };
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace pylon::http
