#include "net/socket.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string_view>

namespace pylon::net {
namespace {

TEST(ParseEndpoint, AcceptsIpv4Ipv6AndLocalhost) {
  EXPECT_EQ(parse_endpoint("127.0.0.1:8080").to_string(), "127.0.0.1:8080");
  EXPECT_EQ(parse_endpoint("[::1]:9000").to_string(), "[::1]:9000");
  EXPECT_EQ(parse_endpoint("localhost:0").host, "127.0.0.1");
}

TEST(ParseEndpoint, RejectsBadInputWithAReason) {
  EXPECT_THROW(parse_endpoint("127.0.0.1"), std::invalid_argument);
  EXPECT_THROW(parse_endpoint("127.0.0.1:99999"), std::invalid_argument);
  EXPECT_THROW(parse_endpoint("127.0.0.1:80x"), std::invalid_argument);
  EXPECT_THROW(parse_endpoint("example.com:80"), std::invalid_argument);
}

TEST(ListenOn, TwoListenersShareOnePortWithReusePort) {
  const int first = listen_on(parse_endpoint("127.0.0.1:0"));
  const std::uint16_t port = local_port(first);
  ASSERT_NE(port, 0);
  const int second = listen_on(Endpoint{"127.0.0.1", port});
  EXPECT_EQ(local_port(second), port);
  ::close(first);
  ::close(second);
}

sockaddr_in address_of(int listener) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(local_port(listener));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// A blocking client connected to listener.
int connect_to(int listener) {
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_in address = address_of(listener);
  EXPECT_EQ(::connect(client, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
  return client;
}

bool acceptable(int listener, int timeout_ms) {
  pollfd ready{.fd = listener, .events = POLLIN, .revents = 0};
  return ::poll(&ready, 1, timeout_ms) == 1;
}

// Workers do not set TCP_NODELAY on each accepted socket: it must come from the listener.
TEST(ListenOn, AcceptedSocketsInheritTcpNodelay) {
  const int listener = listen_on(parse_endpoint("127.0.0.1:0"));
  const int client = connect_to(listener);
  ASSERT_EQ(::send(client, "x", 1, 0), 1);
  ASSERT_TRUE(acceptable(listener, 5000));
  const int accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  int nodelay = 0;
  socklen_t length = sizeof nodelay;
  ASSERT_EQ(::getsockopt(accepted, IPPROTO_TCP, TCP_NODELAY, &nodelay, &length), 0);
  EXPECT_NE(nodelay, 0);
  ::close(accepted);
  ::close(client);
  ::close(listener);
}

// TCP_DEFER_ACCEPT: a connection is handed to accept() with its first bytes, so the worker reads
// them right after accepting (Worker::accept_ready); until they come it is not acceptable.
TEST(ListenOn, AConnectionIsAcceptableOnceItsFirstBytesAreIn) {
  const int listener = listen_on(parse_endpoint("127.0.0.1:0"));
  const int client = connect_to(listener);
  EXPECT_FALSE(acceptable(listener, 0));  // connected, silent: still in the kernel's hands
  ASSERT_EQ(::send(client, "GET", 3, 0), 3);
  ASSERT_TRUE(acceptable(listener, 5000));
  const int accepted = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  std::array<std::uint8_t, 8> buffer{};
  EXPECT_EQ(read_some(accepted, buffer), 3);  // no wait: the bytes came with the connection
  ::close(accepted);
  ::close(client);
  ::close(listener);
}

// A draining worker's listener (Worker::drain_tick): after drop_new_handshakes a new client's
// connect does not complete, and once the listener is closed its SYN, sent again, is refused. It
// is never handed a connection that the close then resets.
TEST(DropNewHandshakes, ANewClientIsRefusedNotResetWhenTheListenerCloses) {
  const int listener = listen_on(parse_endpoint("127.0.0.1:0"));
  drop_new_handshakes(listener);
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const sockaddr_in address = address_of(listener);
  ASSERT_EQ(::connect(client, reinterpret_cast<const sockaddr*>(&address), sizeof address), -1);
  ASSERT_EQ(errno, EINPROGRESS);
  pollfd connected{.fd = client, .events = POLLOUT, .revents = 0};
  EXPECT_EQ(::poll(&connected, 1, 300), 0);  // no SYN-ACK: the handshake waits
  ::close(listener);
  // The SYN goes again about a second after the first.
  ASSERT_EQ(::poll(&connected, 1, 5000), 1);
  int error = 0;
  socklen_t length = sizeof error;
  ASSERT_EQ(::getsockopt(client, SOL_SOCKET, SO_ERROR, &error, &length), 0);
  EXPECT_EQ(error, ECONNREFUSED);
  ::close(client);
}

// The first bytes of a connection the kernel held for them (TCP_DEFER_ACCEPT) are no handshake:
// they still complete it after drop_new_handshakes, and accept() hands it over with them.
TEST(DropNewHandshakes, AConnectionHeldForItsFirstBytesStillCompletes) {
  const int listener = listen_on(parse_endpoint("127.0.0.1:0"));
  const int client = connect_to(listener);
  EXPECT_FALSE(acceptable(listener, 0));
  stop_deferring_accepts(listener);
  drop_new_handshakes(listener);
  ASSERT_EQ(::send(client, "GET", 3, 0), 3);
  ASSERT_TRUE(acceptable(listener, 5000));
  const int accepted = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  std::array<std::uint8_t, 8> buffer{};
  EXPECT_EQ(read_some(accepted, buffer), 3);
  ::close(accepted);
  ::close(client);
  ::close(listener);
}

// The loops' bare system calls keep the wrappers' contract: bytes, or -1 with errno.
TEST(SocketIo, ReadSomeSendSomeAndSendVectorMoveBytes) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair), 0);
  std::array<std::uint8_t, 64> buffer{};
  EXPECT_EQ(read_some(pair[0], buffer), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(send_some(pair[1], "ab", 2), 2);
  const std::string_view parts[] = {"cd", "", "efg"};
  iovec iov[3];
  for (int i = 0; i < 3; ++i) iov[i] = {const_cast<char*>(parts[i].data()), parts[i].size()};
  EXPECT_EQ(send_vector(pair[1], iov, 3), 5);
  ASSERT_EQ(read_some(pair[0], buffer), 7);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(buffer.data()), 7), "abcdefg");
  ::close(pair[1]);
  EXPECT_EQ(read_some(pair[0], buffer), 0);  // EOF
  ::close(pair[0]);
}

// A send to a peer that is gone must fail with EPIPE: with SIGPIPE at its default action a
// missing MSG_NOSIGNAL would kill this test process.
TEST(SocketIo, SendingToAClosedPeerIsEpipeNotSigpipe) {
  const auto previous = ::signal(SIGPIPE, SIG_DFL);
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair), 0);
  ::close(pair[0]);
  EXPECT_EQ(send_some(pair[1], "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
  const iovec part{const_cast<char*>("y"), 1};
  EXPECT_EQ(send_vector(pair[1], &part, 1), -1);
  EXPECT_EQ(errno, EPIPE);
  ::close(pair[1]);
  ::signal(SIGPIPE, previous);
}

}  // namespace
}  // namespace pylon::net
