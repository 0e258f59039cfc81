#include "net/cidr.hpp"

#include <gtest/gtest.h>

namespace pylon::net {
namespace {

TEST(Cidr, Ipv4Ranges) {
  const auto range = parse_cidr("10.1.0.0/16");
  ASSERT_TRUE(range);
  EXPECT_TRUE(range->contains("10.1.200.3"));
  EXPECT_FALSE(range->contains("10.2.0.1"));
  EXPECT_FALSE(range->contains("::1"));
  const auto odd = parse_cidr("192.168.1.128/25");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains("192.168.1.200"));
  EXPECT_FALSE(odd->contains("192.168.1.100"));
}

TEST(Cidr, BareAddressesAndIpv6) {
  const auto one = parse_cidr("127.0.0.1");
  ASSERT_TRUE(one);
  EXPECT_TRUE(one->contains("127.0.0.1"));
  EXPECT_FALSE(one->contains("127.0.0.2"));
  const auto v6 = parse_cidr("fd00::/8");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains("fd12:3456::1"));
  EXPECT_FALSE(v6->contains("fe80::1"));
  EXPECT_TRUE(parse_cidr("0.0.0.0/0")->contains("8.8.8.8"));
}

TEST(Cidr, RejectsMalformedRanges) {
  for (const char* bad :
       {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "::1/129", "host/8", "10.0.0.0/8x"})
    EXPECT_FALSE(parse_cidr(bad)) << bad;
}

TEST(Cidr, HostOfStripsThePort) {
  EXPECT_EQ(host_of("1.2.3.4:5678"), "1.2.3.4");
  EXPECT_EQ(host_of("[::1]:80"), "::1");
}

}  // namespace
}  // namespace pylon::net
