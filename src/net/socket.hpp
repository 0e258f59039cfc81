// Socket helpers for the loops: listening sockets with SO_REUSEPORT (one per loop, the kernel
// spreads new connections among them), accepted-socket set-up, and address formatting.
// Plain functions over file descriptors; any thread may call them.
#pragma once

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pylon::net {

struct Endpoint {
  std::string host;  // numeric IPv4 or IPv6 (without brackets)
  std::uint16_t port = 0;
  std::string to_string() const;  // "127.0.0.1:8080", "[::1]:8080"
};

// Parses "HOST:PORT" or "[IPv6]:PORT"; "localhost" means 127.0.0.1. Throws std::invalid_argument
// with a reason.
Endpoint parse_endpoint(std::string_view text);

// A non-blocking listening socket with SO_REUSEADDR and SO_REUSEPORT, and TCP_NODELAY, which
// every socket accepted from it inherits (Linux copies the listener's options into the accepted
// socket): no setsockopt per connection. TCP_DEFER_ACCEPT: accept() returns a connection once
// its first bytes are in (or after about a second without any), so the acceptor reads at once.
// Throws std::system_error naming the address on failure. Port 0 binds an ephemeral port: read
// it back with local_port().
int listen_on(const Endpoint& endpoint, int backlog = 4096);
// Turns TCP_DEFER_ACCEPT off on a listener from now on: a handshake that completes goes to the
// backlog at once, and one the kernel held for its first bytes goes there when they come.
void stop_deferring_accepts(int listen_fd) noexcept;
// Drops every new handshake's SYN at a listener from now on (a socket filter), before the
// listener is closed: a connection the kernel completes after the last accept() would be reset
// by the close, request and all, while a client whose SYN is dropped sends it again a second
// later and is refused (a proxy tries the next instance). Handshakes already under way, and the
// first bytes of connections held by TCP_DEFER_ACCEPT, still complete: give them a moment, then
// take the backlog and close. (A connection accepted after this inherits the filter; an
// established connection is never sent a SYN without ACK.)
void drop_new_handshakes(int listen_fd) noexcept;
std::uint16_t local_port(int fd);

// An accepted peer's address in 20 bytes (sockaddr_storage takes 128), formatted only when a log
// line or the application asks for it.
struct PeerAddress {
  std::array<std::uint8_t, 16> bytes{};
  std::uint16_t port = 0;
  std::uint8_t family = 0;  // AF_INET or AF_INET6

  static PeerAddress from(const sockaddr_storage& address) noexcept;
  std::string host() const;       // "1.2.3.4", "::1"
  std::string to_string() const;  // "1.2.3.4:5678", "[::1]:5678"
};

// Socket I/O on a loop's hot path, as bare system calls: the results of recv, and of send and
// sendmsg with MSG_NOSIGNAL (a peer that is gone is EPIPE, never SIGPIPE): bytes, or -1 with
// errno. Not glibc's wrappers: they are cancellation points, and in a multi-threaded process
// (every pylon server is one) each call turns asynchronous cancellation on and off around the
// system call, two locked instructions that took 1.5 % of the server's CPU per echoed message
// (perf, docs/benchmarks.md 2026-11-26). pylon never cancels a thread. recvfrom rather than
// read: read goes through the VFS layer first, about 2 % more of the server's CPU at 10,000
// connections in the same profiles.
inline ssize_t read_some(int fd, std::span<std::uint8_t> buffer) noexcept {
  return ::syscall(SYS_recvfrom, fd, buffer.data(), buffer.size(), 0, nullptr, nullptr);
}
// flags: added to MSG_NOSIGNAL (MSG_MORE: outbox.hpp's SocketTransport).
inline ssize_t send_some(int fd, const void* data, std::size_t size, int flags = 0) noexcept {
  return ::syscall(SYS_sendto, fd, data, size, MSG_NOSIGNAL | flags, nullptr, 0);
}
inline ssize_t send_vector(int fd, const iovec* parts, std::size_t count) noexcept {
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(parts);
  message.msg_iovlen = count;
  return ::syscall(SYS_sendmsg, fd, &message, MSG_NOSIGNAL);
}

// Raises the soft open-file limit to the hard limit; returns the resulting soft limit.
std::uint64_t raise_open_file_limit() noexcept;

}  // namespace pylon::net
