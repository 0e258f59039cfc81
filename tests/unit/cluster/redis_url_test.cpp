#include "cluster/redis_url.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace pylon::cluster {
namespace {

std::string url_error(std::string_view url) {
  try {
    parse_redis_url(url);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "";
}

TEST(RedisUrl, HostPortDbAndDefaults) {
  const auto plain = parse_redis_url("redis://127.0.0.1");
  EXPECT_EQ(plain.kind, RedisAddress::Kind::tcp);
  EXPECT_EQ(plain.host, "127.0.0.1");
  EXPECT_EQ(plain.port, 6379);
  EXPECT_EQ(plain.db, 0u);
  EXPECT_TRUE(plain.password.empty());

  const auto full = parse_redis_url("redis://:s3cret@redis.internal:6380/2");
  EXPECT_EQ(full.host, "redis.internal");
  EXPECT_EQ(full.port, 6380);
  EXPECT_EQ(full.db, 2u);
  EXPECT_EQ(full.password, "s3cret");
  EXPECT_TRUE(full.user.empty());

  const auto trailing_slash = parse_redis_url("redis://localhost:7000/");
  EXPECT_EQ(trailing_slash.port, 7000);
  EXPECT_EQ(trailing_slash.db, 0u);
}

TEST(RedisUrl, UserPasswordEscapesAndIpv6) {
  const auto acl = parse_redis_url("redis://pylon:p%40ss:w@rd@[::1]:6390/1");
  EXPECT_EQ(acl.user, "pylon");
  EXPECT_EQ(acl.password, "p@ss:w@rd");  // the last '@' ends the credentials
  EXPECT_EQ(acl.host, "::1");
  EXPECT_EQ(acl.port, 6390);
  EXPECT_EQ(acl.db, 1u);
  EXPECT_EQ(parse_redis_url("redis://[::1]").port, 6379);
  EXPECT_EQ(parse_redis_url("redis://onlypassword@h").password, "onlypassword");
}

TEST(RedisUrl, UnixSocket) {
  const auto address = parse_redis_url("unix:///run/redis/redis.sock?db=3&password=x%26y&user=u");
  EXPECT_EQ(address.kind, RedisAddress::Kind::unix_socket);
  EXPECT_EQ(address.path, "/run/redis/redis.sock");
  EXPECT_EQ(address.db, 3u);
  EXPECT_EQ(address.password, "x&y");
  EXPECT_EQ(address.user, "u");
  EXPECT_EQ(parse_redis_url("unix:///tmp/r.sock").db, 0u);
}

TEST(RedisUrl, RedactedHidesThePassword) {
  EXPECT_EQ(parse_redis_url("redis://:secret@h:1/2").redacted(), "redis://:***@h:1/2");
  EXPECT_EQ(parse_redis_url("redis://u:secret@[::1]").redacted(), "redis://u:***@[::1]:6379");
  EXPECT_EQ(parse_redis_url("unix:///s?password=secret&db=1").redacted(),
            "unix:///s?db=1&password=***");
  EXPECT_EQ(url_error("redis://:secret@h:99999").find("secret"), std::string::npos);
}

TEST(RedisUrl, ErrorsNameWhatIsWrong) {
  EXPECT_EQ(url_error(""), "redis_url: empty URL");
  EXPECT_EQ(url_error("http://h"),
            "redis_url: must start with redis:// or unix:// (in a http:// URL)");
  EXPECT_EQ(
      url_error("rediss://h"),
      "redis_url: TLS (rediss://) is not supported; use redis:// or unix:// (in a rediss:// URL)");
  EXPECT_EQ(url_error("redis://"), "redis_url: host is missing (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://:pw@:6379"), "redis_url: host is missing (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://h:"), "redis_url: port is empty (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://h:http"),
            "redis_url: port 'http' is not a number (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://h:65536"),
            "redis_url: port 65536 is out of range (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://h:0"), "redis_url: port 0 is out of range (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://h/x"), "redis_url: db 'x' is not a number (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://h/-1"), "redis_url: db '-1' is not a number (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://h?db=1"),
            "redis_url: query parameters are only supported in unix:// URLs (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://[::1"),
            "redis_url: '[' of an IPv6 host without ']' (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://u:@h"), "redis_url: a user without a password (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://:p%4@h"),
            "redis_url: password: incomplete %-escape (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://:p%zz@h"), "redis_url: password: bad %-escape (in a redis:// URL)");
  EXPECT_EQ(url_error("redis://:p%4"), "redis_url: host is missing (in a redis:// URL)");
  EXPECT_EQ(url_error("unix://relative.sock"),
            "redis_url: unix socket path must be absolute (unix:///path/to/redis.sock) (in a "
            "unix:// URL)");
  EXPECT_EQ(
      url_error("unix:///s?database=1"),
      "redis_url: unknown query parameter 'database' (db, password, user) (in a unix:// URL)");
  EXPECT_EQ(url_error("unix:///s?db"),
            "redis_url: query parameter 'db' has no value (in a unix:// URL)");
  EXPECT_EQ(url_error("unix:///s%2"), "redis_url: path: incomplete %-escape (in a unix:// URL)");
}

}  // namespace
}  // namespace pylon::cluster
