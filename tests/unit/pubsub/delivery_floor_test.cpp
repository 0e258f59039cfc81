#include "pubsub/delivery_floor.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace pylon::pubsub {
namespace {

struct Topic {};

std::vector<MessageRef> run_of(std::uint64_t first, std::uint64_t last) {
  std::vector<MessageRef> run;
  const std::string_view parts[] = {"x"};
  for (std::uint64_t offset = first; offset <= last; ++offset)
    run.push_back(make_message("t:1", ws::Opcode::text, parts, offset));
  return run;
}

TEST(DeliveryFloors, SkipsWhatIsAtOrBelowTheFloorThenEnds) {
  Topic topic;
  DeliveryFloors<Topic> floors;
  floors.set(&topic, 5);
  EXPECT_EQ(floors.skip(&topic, run_of(3, 5)), 3u);  // all queued before the subscribe
  EXPECT_FALSE(floors.empty());
  EXPECT_EQ(floors.skip(&topic, run_of(5, 8)), 1u);  // the seam inside one run
  EXPECT_TRUE(floors.empty());                       // 6 went out: later ones are above too
}

TEST(DeliveryFloors, TopicsHaveTheirOwnFloors) {
  Topic a, b;
  DeliveryFloors<Topic> floors;
  floors.set(&a, 2);
  floors.set(&b, 9);
  EXPECT_EQ(floors.skip(&a, run_of(3, 3)), 0u);
  EXPECT_EQ(floors.skip(&b, run_of(8, 9)), 2u);
  EXPECT_FALSE(floors.empty());
  floors.erase(&b);  // unsubscribed
  EXPECT_TRUE(floors.empty());
}

TEST(DeliveryFloors, ANewFloorReplacesTheOld) {
  Topic topic;
  DeliveryFloors<Topic> floors;
  floors.set(&topic, 2);
  floors.set(&topic, 7);
  EXPECT_EQ(floors.skip(&topic, run_of(3, 8)), 5u);
  EXPECT_TRUE(floors.empty());
}

TEST(DeliveryFloors, ATopicWithoutFloorSkipsNothing) {
  Topic topic, other;
  DeliveryFloors<Topic> floors;
  floors.set(&other, 100);
  EXPECT_EQ(floors.skip(&topic, run_of(1, 3)), 0u);
  EXPECT_FALSE(floors.empty());
}

}  // namespace
}  // namespace pylon::pubsub
