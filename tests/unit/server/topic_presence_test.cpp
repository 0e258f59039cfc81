// The client ids presence lists connections by (server/topic_presence.hpp); the rest of presence
// runs against real servers in tests/integration/test_presence.py.
#include "server/topic_presence.hpp"

#include <gtest/gtest.h>

#include <set>

namespace pylon {
namespace {

TEST(TopicPresence, ClientIdsAreSixteenHexDigits) {
  EXPECT_EQ(client_id_text(0), "0000000000000000");
  EXPECT_EQ(client_id_text(0x0123456789abcdefULL), "0123456789abcdef");
  EXPECT_EQ(client_id_text(~0ULL), "ffffffffffffffff");
}

TEST(TopicPresence, NewClientIdsDoNotRepeat) {
  std::set<std::uint64_t> seen;
  for (int index = 0; index < 10000; ++index) EXPECT_TRUE(seen.insert(new_client_id()).second);
}

}  // namespace
}  // namespace pylon
