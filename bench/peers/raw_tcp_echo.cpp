// Benchmark ceiling: a raw TCP echo server (epoll, one thread, no framing). It writes back
// exactly the bytes it reads, so a client that sends WebSocket-shaped frames measures what the
// kernel costs for the same traffic with no protocol work at all.
// raw_tcp_echo PORT: listens on 127.0.0.1:PORT. Built by bench/peers/build.sh.
//
// Per readiness event: one read of everything the socket has (up to the buffer), one write of
// it. Bytes the kernel does not take wait in a per-connection backlog behind EPOLLOUT, and the
// socket stops reading until the backlog drains (backpressure, no unbounded growth).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kReadBufferSize = 256 * 1024;
constexpr int kMaxEvents = 512;

struct Connection {
  std::string backlog;  // bytes read but not yet taken by the kernel
};

void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(fd, 65535) != 0) {
    std::perror("raw_tcp_echo: bind/listen");
    std::exit(1);
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: raw_tcp_echo PORT\n");
    return 2;
  }
  raise_open_file_limit();
  const int listener = listen_on(std::atoi(argv[1]));
  const int epoll = epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener;
  epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);

  std::vector<Connection> connections;  // indexed by fd
  std::vector<char> buffer(kReadBufferSize);
  epoll_event events[kMaxEvents];

  auto close_connection = [&](int fd) {
    epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    std::string().swap(connections[fd].backlog);
  };

  for (;;) {
    const int ready = epoll_wait(epoll, events, kMaxEvents, -1);
    for (int i = 0; i < ready; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        for (;;) {
          const int client = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (client < 0) break;
          int one = 1;
          setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if (static_cast<std::size_t>(client) >= connections.size())
            connections.resize(client + 1024);
          epoll_event add{};
          add.events = EPOLLIN;
          add.data.fd = client;
          epoll_ctl(epoll, EPOLL_CTL_ADD, client, &add);
        }
        continue;
      }
      Connection& connection = connections[fd];
      if (events[i].events & EPOLLOUT) {
        const ssize_t sent = write(fd, connection.backlog.data(), connection.backlog.size());
        if (sent < 0 && errno != EAGAIN) {
          close_connection(fd);
          continue;
        }
        if (sent > 0) connection.backlog.erase(0, static_cast<std::size_t>(sent));
        if (connection.backlog.empty()) {
          epoll_event in{};
          in.events = EPOLLIN;
          in.data.fd = fd;
          epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &in);
        }
        continue;
      }
      const ssize_t received = read(fd, buffer.data(), buffer.size());
      if (received <= 0) {
        if (received == 0 || errno != EAGAIN) close_connection(fd);
        continue;
      }
      const ssize_t sent = write(fd, buffer.data(), static_cast<std::size_t>(received));
      if (sent < 0 && errno != EAGAIN) {
        close_connection(fd);
        continue;
      }
      const std::size_t taken = sent > 0 ? static_cast<std::size_t>(sent) : 0;
      if (taken < static_cast<std::size_t>(received)) {
        connection.backlog.assign(buffer.data() + taken, received - taken);
        epoll_event out{};
        out.events = EPOLLOUT;
        out.data.fd = fd;
        epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &out);
      }
    }
  }
}
