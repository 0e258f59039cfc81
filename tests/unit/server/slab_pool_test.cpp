// Tests for src/server/slab_pool.*.
#include "server/slab_pool.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "server/connection.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace pylon::detail {
namespace {

constexpr std::size_t kSlotSize = 224;

std::uintptr_t address(const void* slot) {
  return reinterpret_cast<std::uintptr_t>(slot);
}

TEST(SlabPool, SlotsArePackedBackToBackInBlocks) {
  SlabPool pool(kSlotSize, 8);
  // A block header of a few words, then slots with no per-slot header.
  EXPECT_EQ(pool.slots_per_block(), (SlabPool::kBlockSize - 64) / kSlotSize);
  std::vector<void*> slots;
  for (std::size_t i = 0; i < pool.slots_per_block(); ++i) slots.push_back(pool.allocate());
  EXPECT_EQ(pool.blocks(), 1u);
  for (std::size_t i = 1; i < slots.size(); ++i)
    EXPECT_EQ(address(slots[i]), address(slots[i - 1]) + kSlotSize);
  slots.push_back(pool.allocate());  // the first block is full
  EXPECT_EQ(pool.blocks(), 2u);
  for (void* slot : slots) pool.deallocate(slot);
}

TEST(SlabPool, SlotsAreAlignedAndDoNotOverlap) {
  SlabPool pool(40, 16);  // rounded up to 48 for the alignment
  std::vector<unsigned char*> slots;
  for (int i = 0; i < 3000; ++i) {
    auto* slot = static_cast<unsigned char*>(pool.allocate());
    EXPECT_EQ(address(slot) % 16, 0u);
    std::memset(slot, i & 0xff, 40);
    slots.push_back(slot);
  }
  for (std::size_t i = 0; i < slots.size(); ++i) {
    for (std::size_t byte = 0; byte < 40; ++byte)
      ASSERT_EQ(slots[i][byte], i & 0xff) << "slot " << i;
  }
  for (auto* slot : slots) pool.deallocate(slot);
}

TEST(SlabPool, AFreedSlotIsReusedFirst) {
  SlabPool pool(kSlotSize, 8);
  void* first = pool.allocate();
  void* second = pool.allocate();
  pool.deallocate(first);
  EXPECT_EQ(pool.allocate(), first);
  pool.deallocate(first);
  pool.deallocate(second);
}

TEST(SlabPool, ConnectDisconnectCyclesDoNotGrowIt) {
  SlabPool pool(kSlotSize, 8);
  const std::size_t count = 5 * pool.slots_per_block() + 7;
  std::vector<void*> slots;
  for (int cycle = 0; cycle < 20; ++cycle) {
    for (std::size_t i = 0; i < count; ++i) slots.push_back(pool.allocate());
    EXPECT_EQ(pool.blocks(), 6u) << "cycle " << cycle;
    // Half go away and come back, in an order unlike the allocation's.
    for (std::size_t i = 0; i < slots.size(); i += 2) pool.deallocate(slots[i]);
    for (std::size_t i = 0; i < slots.size(); i += 2) slots[i] = pool.allocate();
    EXPECT_EQ(pool.blocks(), 6u) << "cycle " << cycle;
    for (void* slot : slots) pool.deallocate(slot);
    slots.clear();
    EXPECT_EQ(pool.blocks(), 1u) << "cycle " << cycle
                                 << ": empty blocks go back to the kernel but one";
  }
}

TEST(SlabPool, EverySlotFindsThePoolsOwner) {
  int owner = 0;
  SlabPool pool(kSlotSize, 8, &owner);
  std::vector<void*> slots;
  for (std::size_t i = 0; i < 2 * pool.slots_per_block() + 1; ++i) slots.push_back(pool.allocate());
  for (void* slot : slots) EXPECT_EQ(SlabPool::owner_of(slot), &owner);
  for (void* slot : slots) pool.deallocate(slot);
}

TEST(SlabPool, ForEachVisitsTheLiveSlotsOnce) {
  SlabPool pool(kSlotSize, 8);
  std::vector<void*> slots;
  for (std::size_t i = 0; i < 3 * pool.slots_per_block() + 5; ++i) slots.push_back(pool.allocate());
  // Gaps everywhere, a whole block's worth among them, and a freed slot handed out again.
  std::set<void*> live;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (i % 3 == 0 || (i >= pool.slots_per_block() && i < 2 * pool.slots_per_block())) {
      pool.deallocate(slots[i]);
      slots[i] = nullptr;
    } else {
      live.insert(slots[i]);
    }
  }
  slots[0] = pool.allocate();
  live.insert(slots[0]);
  std::vector<void*> visited;
  pool.for_each([&](void* slot) { visited.push_back(slot); });
  EXPECT_EQ(visited.size(), live.size()) << "each once";
  EXPECT_EQ(std::set<void*>(visited.begin(), visited.end()), live);
  for (void* slot : slots)
    if (slot != nullptr) pool.deallocate(slot);
  visited.clear();
  pool.for_each([&](void* slot) { visited.push_back(slot); });
  EXPECT_TRUE(visited.empty());
}

TEST(SlabPool, PagesAreTouchedOnlyAsSlotsAreUsed) {
  SlabPool pool(kSlotSize, 8);
  void* slot = pool.allocate();
  std::memset(slot, 1, kSlotSize);
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  auto* block = reinterpret_cast<void*>(address(slot) & ~(SlabPool::kBlockSize - 1));
  std::vector<unsigned char> resident(SlabPool::kBlockSize / page);
  ASSERT_EQ(mincore(block, SlabPool::kBlockSize, resident.data()), 0);
  std::size_t resident_pages = 0;
  for (unsigned char flags : resident) resident_pages += flags & 1;
  EXPECT_EQ(resident_pages, 1u);
  pool.deallocate(slot);
}

TEST(SlabPool, HoldsConnectionsWithoutPerObjectOverhead) {
  SlabPool pool(sizeof(Connection), alignof(Connection));
  EXPECT_GE(pool.slots_per_block() * sizeof(Connection),
            SlabPool::kBlockSize - sizeof(Connection) - 64);
}

#if defined(__SANITIZE_ADDRESS__)
// make test-asan: a slot not handed out is poisoned, so a use after free is reported.
TEST(SlabPool, FreeSlotsArePoisonedUnderAddressSanitizer) {
  SlabPool pool(kSlotSize, alignof(std::max_align_t));
  void* first = pool.allocate();
  void* second = pool.allocate();
  EXPECT_EQ(__asan_region_is_poisoned(first, kSlotSize), nullptr);
  EXPECT_NE(__asan_address_is_poisoned(static_cast<char*>(second) + kSlotSize), 0)
      << "never handed out";
  pool.deallocate(first);
  EXPECT_NE(__asan_address_is_poisoned(first), 0);
  EXPECT_NE(__asan_address_is_poisoned(static_cast<char*>(first) + kSlotSize - 1), 0);
  EXPECT_EQ(pool.allocate(), first);
  EXPECT_EQ(__asan_region_is_poisoned(first, kSlotSize), nullptr);
  pool.deallocate(first);
  pool.deallocate(second);
}
#endif

}  // namespace
}  // namespace pylon::detail
