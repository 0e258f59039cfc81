#include "net/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace pylon::net {

std::string Endpoint::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Endpoint parse_endpoint(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) throw std::invalid_argument("expected HOST:PORT");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  unsigned port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc{} || end != port_text.data() + port_text.size() || port > 65535)
    throw std::invalid_argument("port must be a number from 0 to 65535");
  Endpoint endpoint{std::string(host), static_cast<std::uint16_t>(port)};
  in6_addr scratch{};
  const int family = endpoint.host.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (inet_pton(family, endpoint.host.c_str(), &scratch) != 1)
    throw std::invalid_argument("host must be a numeric IPv4 or IPv6 address or localhost");
  return endpoint;
}

int listen_on(const Endpoint& endpoint, int backlog) {
  sockaddr_storage address{};
  socklen_t length = 0;
  int family = AF_INET;
  if (endpoint.host.find(':') != std::string::npos) {
    family = AF_INET6;
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(endpoint.port);
    inet_pton(AF_INET6, endpoint.host.c_str(), &v6->sin6_addr);
    length = sizeof(sockaddr_in6);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(endpoint.port);
    inet_pton(AF_INET, endpoint.host.c_str(), &v4->sin_addr);
    length = sizeof(sockaddr_in);
  }
  const int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  // Frames go out as soon as they are written (the loop batches its writes itself): Nagle would
  // hold a small answer until the peer's ACK.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Every client of this server speaks first (an HTTP request, a TLS ClientHello): the kernel
  // hands a connection to accept() once its first bytes are in, so accepting and reading it take
  // one wake-up instead of two. A connection that sends nothing waits in the kernel for about a
  // second (one SYN-ACK retransmission), then is accepted all the same.
  setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(fd, backlog) != 0) {
    const int error = errno;
    close(fd);
    throw std::system_error(error, std::generic_category(),
                            "cannot listen on " + endpoint.to_string());
  }
  return fd;
}

void stop_deferring_accepts(int listen_fd) noexcept {
  const int zero = 0;
  setsockopt(listen_fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &zero, sizeof zero);
}

void drop_new_handshakes(int listen_fd) noexcept {
  // Classic BPF over the TCP header (a TCP socket's filter sees the segment from its header):
  // byte 13 holds the flags; a SYN without ACK is dropped (0 bytes kept), anything else kept.
  constexpr std::uint32_t kSyn = 0x02;
  constexpr std::uint32_t kAck = 0x10;
  std::array<sock_filter, 5> program{{
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, kSyn | kAck),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kSyn, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
  }};
  const sock_fprog filter{.len = static_cast<unsigned short>(program.size()),
                          .filter = program.data()};
  setsockopt(listen_fd, SOL_SOCKET, SO_ATTACH_FILTER, &filter, sizeof filter);
}

std::uint16_t local_port(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  if (address.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

PeerAddress PeerAddress::from(const sockaddr_storage& address) noexcept {
  PeerAddress peer;
  peer.family = static_cast<std::uint8_t>(address.ss_family);
  if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    std::memcpy(peer.bytes.data(), &v6->sin6_addr, 16);
    peer.port = ntohs(v6->sin6_port);
  } else {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    std::memcpy(peer.bytes.data(), &v4->sin_addr, 4);
    peer.port = ntohs(v4->sin_port);
  }
  return peer;
}

std::string PeerAddress::host() const {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, bytes.data(), text, sizeof text);
  return text;
}

std::string PeerAddress::to_string() const {
  std::string text;
  if (family == AF_INET6) text += '[';
  text += host();
  if (family == AF_INET6) text += ']';
  text += ':';
  text += std::to_string(port);
  return text;
}

std::uint64_t raise_open_file_limit() noexcept {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

}  // namespace pylon::net
