#include "server/connection.hpp"

#include <gtest/gtest.h>

namespace pylon::detail {
namespace {

// The idle-connection budget (under 0.25 KiB of our memory per connection, malloc's header
// included): an idle WebSocket is one Connection object and nothing else.
TEST(Connection, AnIdleConnectionFitsTheMemoryBudget) {
  constexpr std::size_t kMallocHeader = 16;
  EXPECT_LE(sizeof(Connection) + kMallocHeader, 256u) << "sizeof(Connection) = " << sizeof(Connection);
}

}  // namespace
}  // namespace pylon::detail
