// A complete WebSocket echo server on the pylon library.
//   echo_server [PORT]    then connect to ws://127.0.0.1:PORT/echo
#include <cstdlib>
#include <string>

#include "pylon/app.hpp"

struct Session {
  std::size_t messages = 0;  // per-connection user data
};

int main(int argc, char** argv) {
  pylon::Config config;
  config.listen = std::string("127.0.0.1:") + (argc > 1 ? argv[1] : "9001");
  config.threads = 1;

  pylon::App app(config);
  app.ws<Session>(
      "/echo",
      {
          // permessage-deflate with a window per connection: request/response traffic compresses
          // best with the history of earlier messages (topics with many subscribers want `shared`).
          .compression = pylon::CompressionSettings{.mode = pylon::CompressionMode::dedicated,
                                                    .window_bits = 12},
          .open = [](auto& socket) { socket.data().messages = 0; },
          .message =
              [](auto& socket, std::string_view message, pylon::MessageKind kind) {
                ++socket.data().messages;
                socket.send(message, kind);  // sent, queued, or dropped past max_backpressure
              },
          .close =
              [](auto& socket, std::uint16_t code, std::string_view) {
                std::printf("closed with %u after %zu messages\n", code, socket.data().messages);
              },
      });
  return app.run();  // one loop per thread; SIGTERM drains and returns 0
}
