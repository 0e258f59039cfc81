// Where the Redis engine connects: the parsed form of `redis_url` (RedisOptions::url).
//
//   redis://[[user]:password@]host[:port][/db]     TCP; host may be [v6-address]; port 6379, db 0
//   unix:///path/to/redis.sock[?db=N&password=P]   a unix socket (user=U too)
//
// Percent-escapes (%40 for '@') are decoded in the user, password and path. Parsing runs at
// start-up: a malformed URL throws std::invalid_argument whose message names the part that is
// wrong. Pure value type, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pylon::cluster {

struct RedisAddress {
  enum class Kind : std::uint8_t { tcp, unix_socket };
  Kind kind = Kind::tcp;
  std::string host;  // tcp: a name or an address, without brackets
  std::uint16_t port = 6379;
  std::string path;      // unix_socket
  std::string user;      // AUTH user password (Redis 6 ACL) when set, else AUTH password
  std::string password;  // empty: no AUTH
  std::uint32_t db = 0;  // SELECT on the publisher connection (pub/sub channels ignore it)

  // The URL without its password, for logs.
  std::string redacted() const;
};

// Throws std::invalid_argument ("redis_url: <what is wrong>") for a malformed URL.
RedisAddress parse_redis_url(std::string_view url);

}  // namespace pylon::cluster
