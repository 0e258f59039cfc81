// Benchmark peer: a WebSocket echo server on websocketpp (standalone asio, one thread).
// websocketpp_echo PORT: listens on 127.0.0.1:PORT, accepts any path, echoes every message with
// its opcode; 16 MiB max message, no compression (the plain asio config has none), logging off.
// Built by bench/peers/build.sh, never by the project's default build.
#define ASIO_STANDALONE
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

namespace {

using Server = websocketpp::server<websocketpp::config::asio>;
constexpr std::size_t kMaxMessageSize = 16u << 20;

void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: websocketpp_echo PORT\n");
    return 2;
  }
  raise_open_file_limit();
  Server server;
  server.clear_access_channels(websocketpp::log::alevel::all);
  server.clear_error_channels(websocketpp::log::elevel::all);
  server.init_asio();
  server.set_reuse_addr(true);
  server.set_listen_backlog(65535);
  server.set_max_message_size(kMaxMessageSize);
  // The socket is open only once the TCP connection is accepted: set TCP_NODELAY there.
  server.set_tcp_post_init_handler([&server](websocketpp::connection_hdl hdl) {
    asio::error_code ec;
    server.get_con_from_hdl(hdl)->get_raw_socket().set_option(asio::ip::tcp::no_delay(true), ec);
  });
  server.set_message_handler([&server](websocketpp::connection_hdl hdl, Server::message_ptr msg) {
    websocketpp::lib::error_code ec;
    server.send(hdl, msg->get_payload(), msg->get_opcode(), ec);
  });
  server.listen(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                        static_cast<unsigned short>(std::atoi(argv[1]))));
  server.start_accept();
  server.run();
}
