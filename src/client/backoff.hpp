// Reconnect delays: exponential backoff with jitter, so that thousands of clients dropped by
// the same server restart do not all come back in the same tick, and the server's Retry-After.
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "pylon/client.hpp"

namespace pylon::client {

// Delay before reconnect attempt `attempt` (0 for the first after a drop or failure):
// min(max_delay, initial_delay * multiplier^attempt), then reduced by up to `jitter` of itself
// (unit_random in [0, 1) chooses how much). Milliseconds, at least 1.
std::uint64_t reconnect_delay_ms(const ReconnectOptions& options, unsigned attempt,
                                 double unit_random) noexcept;

// A server that refuses the handshake with 429 or 503 may say when to come back (RFC 6585 §4,
// RFC 9110 §10.2.3): pylon's abuse limits do, and the admission pace spreads a reconnect storm by
// telling each client its own time. The reconnect waits at least that long, whatever the backoff
// says. Only the delta-seconds form (pylon and the proxies in front of it send no HTTP-date);
// nullopt for anything else. At most kMaxRetryAfterSeconds: a server cannot park a client.
inline constexpr std::uint32_t kMaxRetryAfterSeconds = 3600;
std::optional<std::uint32_t> parse_retry_after(std::string_view value) noexcept;

}  // namespace pylon::client
