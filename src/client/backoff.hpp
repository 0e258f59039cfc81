// Reconnect delays: exponential backoff with jitter, so that thousands of clients dropped by
// the same server restart do not all come back in the same tick. Pure function; any thread.
#pragma once

#include <cstdint>

#include "pylon/client.hpp"

namespace pylon::client {

// Delay before reconnect attempt `attempt` (0 for the first after a drop or failure):
// min(max_delay, initial_delay * multiplier^attempt), then reduced by up to `jitter` of itself
// (unit_random in [0, 1) chooses how much). Milliseconds, at least 1.
std::uint64_t reconnect_delay_ms(const ReconnectOptions& options, unsigned attempt,
                                 double unit_random) noexcept;

}  // namespace pylon::client
