#include "server/admission.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>

namespace pylon::detail {
namespace {

using ws::UpgradeError;

ClientKey ipv4(const char* text) {
  ClientKey key{.family = AF_INET};
  EXPECT_EQ(inet_pton(AF_INET, text, key.bytes.data()), 1) << text;
  return key;
}

net::PeerAddress peer_of(const char* text) {
  net::PeerAddress peer;
  const bool v6 = std::string(text).find(':') != std::string::npos;
  peer.family = v6 ? AF_INET6 : AF_INET;
  EXPECT_EQ(inet_pton(peer.family, text, peer.bytes.data()), 1) << text;
  peer.port = 40000;
  return peer;
}

http::Request forwarded_for(std::string_view value) {
  http::Request request;
  request.headers[0] = {"X-Forwarded-For", value};
  request.header_count = 1;
  return request;
}

Config limits(void (*edit)(Config&)) {
  Config config;
  edit(config);
  return config;
}

// --- Which client a limit applies to -----------------------------------------------------------

TEST(ClientKey, IsThePeerUnlessATrustedProxyNamesTheClient) {
  const std::vector<net::Cidr> trusted = {*net::parse_cidr("127.0.0.1")};
  const http::Request request = forwarded_for("203.0.113.7");
  EXPECT_EQ(client_key(peer_of("127.0.0.1"), trusted, request), ipv4("203.0.113.7"));
  // Anyone else may write the header too: it is not believed.
  EXPECT_EQ(client_key(peer_of("198.51.100.1"), trusted, request), ipv4("198.51.100.1"));
  EXPECT_EQ(client_key(peer_of("127.0.0.1"), {}, request), ipv4("127.0.0.1"));
}

TEST(ClientKey, AProxysGarbageLeavesTheProxyAsTheClient) {
  const std::vector<net::Cidr> trusted = {*net::parse_cidr("127.0.0.0/8")};
  EXPECT_EQ(client_key(peer_of("127.0.0.1"), trusted, forwarded_for("unknown")), ipv4("127.0.0.1"));
  EXPECT_EQ(client_key(peer_of("127.0.0.1"), trusted, forwarded_for("10.0.0.0/8")),
            ipv4("127.0.0.1"));
}

TEST(ClientKey, IPv6IsKeyedByItsSlash64AndMappedIPv4ByTheIPv4) {
  const http::Request none;
  EXPECT_EQ(client_key(peer_of("2001:db8:1:2:aaaa::1"), {}, none),
            client_key(peer_of("2001:db8:1:2:bbbb::9"), {}, none));
  EXPECT_NE(client_key(peer_of("2001:db8:1:2::1"), {}, none),
            client_key(peer_of("2001:db8:1:3::1"), {}, none));
  EXPECT_EQ(client_key(peer_of("::ffff:192.0.2.1"), {}, none), ipv4("192.0.2.1"));
  EXPECT_NE(client_key(peer_of("::ffff:192.0.2.1"), {}, none), ipv4("192.0.2.2"));
}

// --- Token buckets -----------------------------------------------------------------------------

TEST(TokenBucket, RefillsAtItsRateUpToItsCapacity) {
  TokenBucket bucket{.tokens = 0, .updated_ms = 1000};
  EXPECT_EQ(bucket.wait_ms(4), 250u);
  bucket.refill(4, 10, 1500);
  EXPECT_DOUBLE_EQ(bucket.tokens, 2);
  EXPECT_EQ(bucket.wait_ms(4), 0u);
  bucket.refill(4, 10, 1400);  // another loop's clock, a little behind: no time passed
  EXPECT_DOUBLE_EQ(bucket.tokens, 2);
  bucket.refill(4, 10, 100000);
  EXPECT_DOUBLE_EQ(bucket.tokens, 10);
}

// --- Per-IP limits -----------------------------------------------------------------------------

TEST(Admission, EverythingIsOffByDefault) {
  Admission admission{Config{}};
  EXPECT_FALSE(admission.enabled());
  EXPECT_FALSE(admission.counts_connections());
}

TEST(Admission, CapsOpenConnectionsPerIP) {
  Admission admission(limits([](Config& c) { c.max_connections_per_ip = 2; }));
  ASSERT_TRUE(admission.counts_connections());
  const ClientKey one = ipv4("192.0.2.1");
  EXPECT_FALSE(admission.admit(one, 0));
  EXPECT_FALSE(admission.admit(one, 0));
  const auto refused = admission.admit(one, 0);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->reason, UpgradeError::ip_connection_limit);
  EXPECT_EQ(refused->retry_after_s, Admission::kConnectionCapRetryAfterS);
  EXPECT_FALSE(admission.admit(ipv4("192.0.2.2"), 0)) << "another IP has its own cap";
  admission.release(one);
  EXPECT_FALSE(admission.admit(one, 0)) << "a closed connection gives its place back";
}

TEST(Admission, LimitsTheHandshakeRatePerIPWithABurst) {
  Admission admission(limits([](Config& c) {
    c.handshake_rate_per_ip = 2;
    c.handshake_burst_per_ip = 3;
  }));
  const ClientKey one = ipv4("192.0.2.1");
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(admission.admit(one, 1000)) << i;
  const auto refused = admission.admit(one, 1000);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->reason, UpgradeError::ip_handshake_rate);
  EXPECT_EQ(refused->retry_after_s, 1u);  // 500 ms, rounded up to a whole second
  EXPECT_TRUE(admission.admit(one, 1400)) << "refusals take no token; 0.8 of one refilled";
  EXPECT_FALSE(admission.admit(one, 1500));
  EXPECT_TRUE(admission.admit(one, 1500));
  EXPECT_FALSE(admission.admit(ipv4("192.0.2.2"), 1500)) << "another IP has its own bucket";
  EXPECT_FALSE(admission.counts_connections());
}

TEST(Admission, LocksOutAnIPAfterFailedAuthenticationsUntilTheLockoutEnds) {
  Admission admission(limits([](Config& c) {
    c.auth_failures_per_minute = 3;
    c.auth_lockout = 30;
  }));
  const ClientKey one = ipv4("192.0.2.1");
  EXPECT_FALSE(admission.authentication_failed(one, 1000));
  EXPECT_FALSE(admission.authentication_failed(one, 1000));
  EXPECT_FALSE(admission.admit(one, 1000)) << "two failures: not yet";
  EXPECT_TRUE(admission.authentication_failed(one, 1000)) << "the third locks it out";
  EXPECT_EQ(admission.lockouts(), 1u);
  EXPECT_EQ(admission.locked_out_ips(1000), 1u);
  const auto refused = admission.admit(one, 1000);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->reason, UpgradeError::ip_locked_out);
  EXPECT_EQ(refused->retry_after_s, 30u);
  EXPECT_EQ(admission.admit(one, 20500)->retry_after_s, 11u);  // what is left, rounded up
  EXPECT_FALSE(admission.admit(ipv4("192.0.2.2"), 1000)) << "other IPs are served meanwhile";
  EXPECT_FALSE(admission.admit(one, 31000)) << "the lockout lifts";
  EXPECT_EQ(admission.locked_out_ips(31000), 0u);
}

TEST(Admission, FailuresSpreadBelowTheRateNeverLockOut) {
  Admission admission(limits([](Config& c) { c.auth_failures_per_minute = 3; }));
  const ClientKey one = ipv4("192.0.2.1");
  for (std::uint64_t minute = 0; minute < 10; ++minute)
    EXPECT_FALSE(admission.authentication_failed(one, minute * 60000)) << minute;
}

// --- The admission pace ------------------------------------------------------------------------

TEST(Admission, PacesNewConnectionsOfAllClients) {
  Admission admission(limits([](Config& c) {
    c.admission_rate = 100;
    c.admission_burst = 50;
  }));
  ASSERT_TRUE(admission.enabled());
  // A storm of 20 connects per millisecond for 2 s: admitted are the burst plus the rate.
  std::size_t admitted = 0;
  std::uint32_t last_retry_after = 0;
  for (std::uint64_t now = 0; now < 2000; ++now) {
    for (int i = 0; i < 20; ++i) {
      const auto refused = admission.admit(ipv4("192.0.2.1"), now);
      if (!refused) {
        ++admitted;
        continue;
      }
      EXPECT_EQ(refused->reason, UpgradeError::admission_rate);
      EXPECT_GE(refused->retry_after_s, 1u);
      EXPECT_LE(refused->retry_after_s, Admission::kMaxQueueRetryAfterS);
      last_retry_after = refused->retry_after_s;
    }
  }
  EXPECT_GE(admitted, 50u + 198u);  // rounding of the refills
  EXPECT_LE(admitted, 50u + 200u);
  EXPECT_EQ(last_retry_after, Admission::kMaxQueueRetryAfterS) << "the queue's promise is capped";
}

TEST(Admission, ThePaceSpreadsRefusedClientsOverTheQueue) {
  Admission admission(limits([](Config& c) {
    c.admission_rate = 10;
    c.admission_burst = 1;
  }));
  EXPECT_FALSE(admission.admit(ipv4("192.0.2.1"), 0));
  // Each refused client is told a place one interval (100 ms) behind the previous one.
  std::vector<std::uint32_t> retry_after;
  for (int i = 0; i < 30; ++i)
    retry_after.push_back(admission.admit(ipv4("192.0.2.1"), 0)->retry_after_s);
  EXPECT_EQ(retry_after.front(), 1u);
  EXPECT_EQ(retry_after[9], 1u);
  EXPECT_EQ(retry_after[10], 2u);
  EXPECT_EQ(retry_after.back(), 3u);
}

TEST(Admission, ThePlacesOfAFastPaceAreFractionsOfAMillisecond) {
  Admission admission(limits([](Config& c) {
    c.admission_rate = 5000;
    c.admission_burst = 1;
  }));
  EXPECT_FALSE(admission.admit(ipv4("192.0.2.1"), 0));
  std::uint32_t last = 0;
  for (int i = 0; i < 9000; ++i) last = admission.admit(ipv4("192.0.2.1"), 0)->retry_after_s;
  EXPECT_EQ(last, 2u) << "9,000 places at 0.2 ms: 1.8 s";
}

TEST(Admission, AClientItsOwnLimitsRefuseTakesNoPlaceOfThePace) {
  Admission admission(limits([](Config& c) {
    c.max_connections_per_ip = 1;
    c.admission_rate = 1;
    c.admission_burst = 2;
  }));
  EXPECT_FALSE(admission.admit(ipv4("192.0.2.1"), 0));
  EXPECT_EQ(admission.admit(ipv4("192.0.2.1"), 0)->reason, UpgradeError::ip_connection_limit);
  EXPECT_FALSE(admission.admit(ipv4("192.0.2.2"), 0));
  EXPECT_EQ(admission.admit(ipv4("192.0.2.3"), 0)->reason, UpgradeError::admission_rate);
}

// --- Memory ------------------------------------------------------------------------------------

ClientKey numbered(std::uint32_t n) {
  ClientKey key{.family = AF_INET};
  key.bytes[0] = 10;
  key.bytes[1] = static_cast<std::uint8_t>(n >> 16);
  key.bytes[2] = static_cast<std::uint8_t>(n >> 8);
  key.bytes[3] = static_cast<std::uint8_t>(n);
  return key;
}

TEST(Admission, ForgetsIPsThatHoldNothing) {
  Admission admission(limits([](Config& c) {
    c.max_connections_per_ip = 5;
    c.handshake_rate_per_ip = 10;
    c.handshake_burst_per_ip = 10;
  }));
  for (std::uint32_t n = 0; n < 1000; ++n) ASSERT_FALSE(admission.admit(numbered(n), 0));
  for (std::uint32_t n = 0; n < 1000; ++n) admission.release(numbered(n));
  EXPECT_EQ(admission.tracked_ips(), 1000u) << "their buckets are not full yet";
  // A second later every bucket is full again: each shard sweeps at its next use.
  ASSERT_FALSE(admission.admit(numbered(0), 1000));
  EXPECT_LT(admission.tracked_ips(), 1000u);
  EXPECT_GE(admission.tracked_ips(), 1u);
}

TEST(Admission, NeverTracksMoreThanMaxTrackedIPs) {
  Admission admission(limits([](Config& c) {
    c.handshake_rate_per_ip = 1;
    c.max_tracked_ips = 64;
  }));
  // Buckets still refilling do not stop a new IP: the oldest idle ones are forgotten for it.
  for (std::uint32_t n = 0; n < 10000; ++n) ASSERT_FALSE(admission.admit(numbered(n), 0)) << n;
  EXPECT_LE(admission.tracked_ips(), 64u);
}

TEST(Admission, RefusesNewIPsWhenEveryTrackedOneHoldsAConnection) {
  Admission admission(limits([](Config& c) {
    c.max_connections_per_ip = 1;
    c.max_tracked_ips = 16;  // one per shard
  }));
  std::size_t full = 0;
  for (std::uint32_t n = 0; n < 1000; ++n) {
    const auto refused = admission.admit(numbered(n), 0);
    if (!refused) continue;
    EXPECT_EQ(refused->reason, UpgradeError::ip_table_full);
    EXPECT_EQ(refused->retry_after_s, Admission::kTableFullRetryAfterS);
    ++full;
  }
  EXPECT_EQ(admission.tracked_ips(), 16u);
  EXPECT_EQ(full, 1000u - 16u);
}

}  // namespace
}  // namespace pylon::detail
