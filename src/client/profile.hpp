// What a client connection needs that does not change between connections and reconnects: the
// parsed URL, resolved socket addresses, handlers and options. Built once by
// make_client_profile, then immutable and shared by every connection made from it.
#pragma once

#include <sys/socket.h>

#include "client/url.hpp"
#include "pylon/client.hpp"

namespace pylon {

struct ClientProfile {
  client::Url url;
  ClientHandlers handlers;
  ClientOptions options;
  sockaddr_storage destination{};
  socklen_t destination_length = 0;
  sockaddr_storage source{};
  socklen_t source_length = 0;  // 0: let the kernel choose
};

}  // namespace pylon
