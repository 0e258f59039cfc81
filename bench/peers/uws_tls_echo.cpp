// uWebSockets echo over TLS (uSockets built with OpenSSL, as its WITH_OPENSSL=1 does), the peer of
// `pylon serve --tls-cert`: bench/tls.py runs both side by side. Echoes every message on any path
// on 127.0.0.1:PORT; no compression, no automatic pings, no idle timeout, 16 MiB messages.
//
//   uws_tls_echo PORT CERT_FILE KEY_FILE [low-memory]
//
// `low-memory` sets uWS's ssl_prefer_low_memory_usage (SSL_MODE_RELEASE_BUFFERS: no 2 x 16 KiB
// record buffers kept by an idle connection, as pylon does); without it uWS keeps OpenSSL's
// default. Built by bench/peers/build.sh against ../shared/peers/uwebsockets.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "App.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: uws_tls_echo PORT CERT_FILE KEY_FILE [low-memory]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  uWS::SocketContextOptions tls;
  tls.cert_file_name = argv[2];
  tls.key_file_name = argv[3];
  tls.ssl_prefer_low_memory_usage = argc > 4 && std::strcmp(argv[4], "low-memory") == 0;

  struct Empty {};
  uWS::SSLApp app(tls);
  if (app.constructorFailed()) {
    std::fprintf(stderr, "uws_tls_echo: cannot load %s / %s\n", argv[2], argv[3]);
    return 1;
  }
  uWS::SSLApp::WebSocketBehavior<Empty> echo;
  echo.compression = uWS::DISABLED;
  echo.maxPayloadLength = 16 * 1024 * 1024;
  echo.idleTimeout = 0;
  echo.maxBackpressure = 64 * 1024 * 1024;
  echo.closeOnBackpressureLimit = false;
  echo.resetIdleTimeoutOnSend = false;
  echo.sendPingsAutomatically = false;
  echo.message = [](auto* socket, std::string_view message, uWS::OpCode opcode) {
    socket->send(message, opcode, false);
  };
  app.ws<Empty>("/*", std::move(echo))
      .listen("127.0.0.1", port,
              [port](auto* listener) {
                if (!listener) {
                  std::fprintf(stderr, "uws_tls_echo: cannot listen on %d\n", port);
                  std::exit(1);
                }
                std::printf("uws_tls_echo listening on %d\n", port);
                std::fflush(stdout);
              })
      .run();
}
