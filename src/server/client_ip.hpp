// Who the client really is, behind a trusted reverse proxy (the access log's client_ip). Pure;
// any thread.
#pragma once

#include <span>
#include <string>

#include "http/request_parser.hpp"
#include "net/cidr.hpp"
#include "net/socket.hpp"

namespace pylon::detail {

// Headers that name the client are believed only from a trusted proxy: anyone else could write
// them. X-Real-IP is what a proxy like Nginx sets to the address it saw; otherwise the rightmost
// X-Forwarded-For entry that is not itself a trusted proxy; otherwise the peer.
std::string real_client_ip(const net::PeerAddress& peer, std::span<const net::Cidr> trusted,
                           const http::Request& request);

}  // namespace pylon::detail
