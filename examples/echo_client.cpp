// A WebSocket client on the pylon library: sends a few messages, prints the echoes, closes.
//   echo_client [URL]    (default ws://127.0.0.1:9001/echo, the echo_server example)
#include <cstdio>
#include <stdexcept>
#include <string>

#include "pylon/client.hpp"

int main(int argc, char** argv) {
  pylon::ClientLoop loop;  // one event loop; run() runs it on this thread
  int received = 0;
  int status = 1;
  pylon::ClientHandlers handlers{
      .on_open =
          [](pylon::WebSocketClient& ws) {
            ws.send("hello");
            ws.send(std::string("\x01\x02\x03", 3), pylon::MessageKind::binary);
            ws.send_fragmented("a message in three frames", pylon::MessageKind::text, 3);
          },
      .on_message =
          [&](pylon::WebSocketClient& ws, std::string_view message, pylon::MessageKind kind) {
            const bool text = kind == pylon::MessageKind::text;
            std::printf("%s, %zu bytes: %s\n", text ? "text" : "binary", message.size(),
                        text ? std::string(message).c_str() : "...");
            if (++received == 3) ws.close(1000, "done");  // on_close follows the server's answer
          },
      .on_close =
          [&](pylon::WebSocketClient&, std::uint16_t code, std::string_view) {
            std::printf("closed with %u\n", code);
            status = code == 1000 ? 0 : 1;
            loop.stop();
          },
      .on_error =
          [&](pylon::WebSocketClient& ws, std::string_view error) {
            std::fprintf(stderr, "error: %s\n", std::string(error).c_str());
            if (!ws.is_open()) loop.stop();  // before open; after open, on_close follows
          },
  };
  try {
    loop.connect(argc > 1 ? argv[1] : "ws://127.0.0.1:9001/echo", std::move(handlers));
  } catch (const std::invalid_argument& error) {  // e.g. "url: missing host"
    std::fprintf(stderr, "%s\n", error.what());
    return 2;
  }
  loop.run();
  return status;
}
