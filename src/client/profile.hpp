// What a client connection needs that does not change between connections and reconnects: the
// parsed URL, resolved socket addresses, the TLS context, handlers and options. Built once by
// make_client_profile, then immutable and shared by every connection made from it.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <string>

#include "client/url.hpp"
#include "pylon/client.hpp"

namespace pylon {
namespace client {
class TlsContext;
}

struct ClientProfile {
  client::Url url;
  ClientHandlers handlers;
  ClientOptions options;
  sockaddr_storage destination{};
  socklen_t destination_length = 0;
  sockaddr_storage source{};
  socklen_t source_length = 0;                    // 0: let the kernel choose
  std::shared_ptr<const client::TlsContext> tls;  // wss:// only
  std::string server_name;                        // wss://: SNI and the name verified
};

}  // namespace pylon
