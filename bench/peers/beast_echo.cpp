// Benchmark peer: a single-threaded asynchronous WebSocket echo server on Boost.Beast.
// beast_echo PORT: listens on 127.0.0.1:PORT, accepts any path, echoes every message with its
// opcode; 16 MiB max message, no compression (Beast's default), no timeouts.
// Built by bench/peers/build.sh, never by the project's default build.
#include <sys/resource.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kMaxMessageSize = 16u << 20;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : stream_(std::move(socket)) {}

  void start() {
    stream_.read_message_max(kMaxMessageSize);
    stream_.auto_fragment(false);
    stream_.async_accept([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->read();
    });
  }

 private:
  void read() {
    stream_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      self->stream_.text(self->stream_.got_text());
      self->stream_.async_write(self->buffer_.data(), [self](beast::error_code ec2, std::size_t) {
        if (ec2) return;
        self->buffer_.consume(self->buffer_.size());
        self->read();
      });
    });
  }

  websocket::stream<tcp::socket> stream_;
  beast::flat_buffer buffer_;
};

void accept_loop(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](beast::error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<Session>(std::move(socket))->start();
    }
    accept_loop(acceptor);
  });
}

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
    std::fprintf(stderr, "usage: beast_echo PORT\n");
    return 2;
  }
  raise_open_file_limit();
  asio::io_context io{1};
  tcp::endpoint endpoint{asio::ip::make_address("127.0.0.1"),
                         static_cast<unsigned short>(std::atoi(argv[1]))};
  tcp::acceptor acceptor{io};
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(65535);
  accept_loop(acceptor);
  io.run();
}
