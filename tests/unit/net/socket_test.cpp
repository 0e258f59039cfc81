#include "net/socket.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <stdexcept>

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

}  // namespace
}  // namespace pylon::net
