#include "server/connection.hpp"

#include <gtest/gtest.h>

namespace pylon::detail {
namespace {

// The idle-connection budget: under 0.25 KiB of RSS per connection (docs/benchmarks.md). An idle
// WebSocket is one Connection in a slot of its worker's SlabPool, with no allocator header, at
// every log level (the access log's record is in it: 0.34 KiB at info before issue 17); the
// rest of the budget goes to the process's fixed growth spread over its connections (about 25 B
// each at 10,000: first-use code pages, the last, partly filled block). 192 since the worker,
// the list of live connections and 32-bit timers left the slot (was 224): ~0.21 KiB at info.
TEST(Connection, AnIdleConnectionFitsTheMemoryBudget) {
  EXPECT_LE(sizeof(Connection), 184u) << "sizeof(Connection) = " << sizeof(Connection);
}

}  // namespace
}  // namespace pylon::detail
