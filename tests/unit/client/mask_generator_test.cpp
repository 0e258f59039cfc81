#include "client/mask_generator.hpp"

#include <gtest/gtest.h>

#include <set>

namespace pylon::client {
namespace {

TEST(MaskGenerator, FreshKeyPerFrame) {
  MaskGenerator generator;
  generator.reseed();
  std::set<std::uint32_t> keys;
  for (int i = 0; i < 10000; ++i) {
    const ws::MaskingKey key = generator.next_key();
    keys.insert(static_cast<std::uint32_t>(key[0]) << 24 | key[1] << 16 | key[2] << 8 | key[3]);
  }
  EXPECT_GT(keys.size(), 9990u);  // 32-bit keys: a handful of birthday collisions at most
}

TEST(MaskGenerator, ConnectionsAreSeededApart) {
  MaskGenerator a;
  MaskGenerator b;
  a.reseed();
  b.reseed();
  EXPECT_NE(a.next(), b.next());
}

TEST(MaskGenerator, UnitIsInRange) {
  MaskGenerator generator;
  generator.reseed();
  for (int i = 0; i < 1000; ++i) {
    const double u = generator.next_unit();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

}  // namespace
}  // namespace pylon::client
