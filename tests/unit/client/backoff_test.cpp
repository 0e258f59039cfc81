#include "client/backoff.hpp"

#include <gtest/gtest.h>

namespace pylon::client {
namespace {

TEST(Backoff, GrowsByTheMultiplierUpToTheMaximum) {
  const ReconnectOptions options{
      .enabled = true, .initial_delay = 0.1, .max_delay = 1, .multiplier = 2, .jitter = 0};
  EXPECT_EQ(reconnect_delay_ms(options, 0, 0.5), 100u);
  EXPECT_EQ(reconnect_delay_ms(options, 1, 0.5), 200u);
  EXPECT_EQ(reconnect_delay_ms(options, 3, 0.5), 800u);
  EXPECT_EQ(reconnect_delay_ms(options, 4, 0.5), 1000u);
  EXPECT_EQ(reconnect_delay_ms(options, 1000000, 0.5), 1000u);  // no overflow after a long outage
}

TEST(Backoff, JitterOnlyShortensUpToItsFraction) {
  const ReconnectOptions options{
      .enabled = true, .initial_delay = 1, .max_delay = 10, .multiplier = 2, .jitter = 0.25};
  EXPECT_EQ(reconnect_delay_ms(options, 0, 0.0), 1000u);
  EXPECT_EQ(reconnect_delay_ms(options, 0, 0.999999), 750u);
  EXPECT_EQ(reconnect_delay_ms(options, 0, 0.5), 875u);
}

TEST(Backoff, NeverZero) {
  const ReconnectOptions options{
      .enabled = true, .initial_delay = 0, .max_delay = 0, .multiplier = 0, .jitter = 1};
  EXPECT_EQ(reconnect_delay_ms(options, 5, 0.9), 1u);
}

TEST(RetryAfter, DeltaSecondsOnly) {
  EXPECT_EQ(parse_retry_after("10"), 10u);
  EXPECT_EQ(parse_retry_after(" 0 "), 0u);
  EXPECT_EQ(parse_retry_after("120"), 120u);
  EXPECT_EQ(parse_retry_after(""), std::nullopt);
  EXPECT_EQ(parse_retry_after("-1"), std::nullopt);
  EXPECT_EQ(parse_retry_after("1.5"), std::nullopt);
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT"), std::nullopt);  // an HTTP-date
}

TEST(RetryAfter, AServerCannotParkAClient) {
  EXPECT_EQ(parse_retry_after("86400"), kMaxRetryAfterSeconds);
  EXPECT_EQ(parse_retry_after("99999999999999999999999"), kMaxRetryAfterSeconds);
}

}  // namespace
}  // namespace pylon::client
