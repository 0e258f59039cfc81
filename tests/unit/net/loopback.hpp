// Real TCP sockets on 127.0.0.1 for the net/ tests (event_loop_test.cpp, outbox_test.cpp).
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <utility>

#include "net/socket.hpp"

namespace pylon::net {

// A connected TCP pair: {the side the loop watches, the peer the test writes from}.
inline std::pair<int, int> tcp_pair() {
  const int listener = listen_on(parse_endpoint("127.0.0.1:0"));
  // The pair is accepted before anything is written: TCP_DEFER_ACCEPT (listen_on sets it) would
  // hold a silent connection back for about a second.
  stop_deferring_accepts(listener);
  const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(local_port(listener));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  int accepted = -1;
  while (accepted < 0) accepted = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  close(listener);
  return {accepted, client};
}

inline void write_all(int fd, const std::string& bytes) {
  for (std::size_t done = 0; done < bytes.size();) {
    const ssize_t written = write(fd, bytes.data() + done, bytes.size() - done);
    ASSERT_GT(written, 0);
    done += static_cast<std::size_t>(written);
  }
}

inline std::string pattern(std::size_t size) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>('a' + i * 7 % 26);
  return bytes;
}

}  // namespace pylon::net
