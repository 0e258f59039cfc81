#include "bench/options.hpp"

#include <gtest/gtest.h>

namespace pylon::bench {
namespace {

std::pair<std::string, std::string> header_of(std::string_view text) {
  std::pair<std::string, std::string> header;
  EXPECT_EQ(parse_header(text, header), "") << text;
  return header;
}

std::string error_of(std::string_view text) {
  std::pair<std::string, std::string> header;
  return parse_header(text, header);
}

TEST(ParseHeader, NameAndValueTrimmed) {
  // The issue 13 benchmark's form: a bearer token, the value split at the first colon only.
  EXPECT_EQ(header_of("Authorization: Bearer a.b.c"),
            (std::pair<std::string, std::string>{"Authorization", "Bearer a.b.c"}));
  EXPECT_EQ(header_of(" X-Time :\t12:30:00 "),
            (std::pair<std::string, std::string>{"X-Time", "12:30:00"}));
  EXPECT_EQ(header_of("X-Empty:"), (std::pair<std::string, std::string>{"X-Empty", ""}));
}

TEST(ParseHeader, RefusalsNameTheOption) {
  EXPECT_EQ(error_of("Authorization Bearer x"),
            "--header: expected 'Name: value': Authorization Bearer x");
  EXPECT_EQ(error_of(" : value"), "--header: empty name:  : value");
}

TEST(Validate, ConnectNeedsAUrlAndConnections) {
  Options options{.scenario = Scenario::connect};
  EXPECT_EQ(validate(options), "--url is required");
  options.urls = {"ws://127.0.0.1:8080/ws"};
  options.connections = 0;
  EXPECT_EQ(validate(options), "--connections must be at least 1");
  options.connections = 1;
  options.size = 0;  // connect sends no messages
  EXPECT_EQ(validate(options), "");
  EXPECT_EQ(options.threads, 1u);  // never more threads than connections
}

}  // namespace
}  // namespace pylon::bench
