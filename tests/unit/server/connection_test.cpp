#include "server/connection.hpp"

#include <gtest/gtest.h>

namespace pylon::detail {
namespace {

// The idle-connection budget: under 0.25 KiB of RSS per connection (docs/benchmarks.md). An idle
// WebSocket is one Connection in a slot of its worker's SlabPool, with no allocator header, at
// every log level (the access log's record is in it: 0.34 KiB at info before issue 17); the
// rest goes to the process's fixed growth spread over its connections (about 11 B each at
// 10,000: a thread arena, libfmt's pages, the last, partly filled block). 184 since the worker,
// the list of live connections, 64-bit times and the TLS pointer left the slot (was 224): 195 B
// per connection at 10,000 at info (docs/benchmarks.md "A 184-byte slot").
TEST(Connection, AnIdleConnectionFitsTheMemoryBudget) {
  EXPECT_LE(sizeof(Connection), 184u) << "sizeof(Connection) = " << sizeof(Connection);
}

}  // namespace
}  // namespace pylon::detail
