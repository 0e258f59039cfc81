#include "server/slab_pool.hpp"

#include <sys/mman.h>

#include <cassert>
#include <cstdint>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace pylon::detail {

namespace {

std::size_t round_up(std::size_t value, std::size_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// Under AddressSanitizer a slot that is not handed out is poisoned, so that touching a freed
// connection is reported as malloc's use-after-free would be (make test-asan).
void poison(void* address, std::size_t size) noexcept {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_POISON_MEMORY_REGION(address, size);
#else
  (void)address, (void)size;
#endif
}

void unpoison(void* address, std::size_t size) noexcept {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_UNPOISON_MEMORY_REGION(address, size);
#else
  (void)address, (void)size;
#endif
}

}  // namespace

SlabPool::SlabPool(std::size_t slot_size, std::size_t slot_align, void* owner)
    : slot_size_(round_up(slot_size < sizeof(void*) ? sizeof(void*) : slot_size, slot_align)),
      owner_(owner),
      // One live bit per slot that would fit without them, so there are enough.
      first_slot_offset_(round_up(
          sizeof(Block) + round_up((kBlockSize - sizeof(Block)) / slot_size_, 64) / 8, slot_align)),
      slots_per_block_((kBlockSize - first_slot_offset_) / slot_size_) {
  assert((slot_align & (slot_align - 1)) == 0 && slot_align <= alignof(std::max_align_t));
  assert(slots_per_block_ > 0);
}

SlabPool::~SlabPool() {
  assert(available_ == nullptr || (available_->used == 0 && available_->next == nullptr));
  if (available_ != nullptr) unmap_block(available_);
}

void* SlabPool::allocate() {
  if (available_ == nullptr) link_available(map_block());
  Block* block = available_;
  void* slot = block->free_slots;
  if (slot != nullptr) {
    unpoison(slot, slot_size_);
    block->free_slots = *static_cast<void**>(slot);
  } else {
    slot = reinterpret_cast<char*>(block) + first_slot_offset_ + block->carved * slot_size_;
    unpoison(slot, slot_size_);
    ++block->carved;
  }
  mark(block, slot, true);
  if (++block->used == slots_per_block_) unlink_available(block);
  return slot;
}

void SlabPool::deallocate(void* slot) noexcept {
  Block* block = block_of(slot);
  mark(block, slot, false);
  if (block->used == slots_per_block_) link_available(block);
  *static_cast<void**>(slot) = block->free_slots;
  block->free_slots = slot;
  poison(slot, slot_size_);
  if (--block->used > 0) return;
  if (block == available_ && block->next == nullptr) return;  // the last one with room: kept
  unlink_available(block);
  unmap_block(block);
}

void SlabPool::mark(Block* block, const void* slot, bool live) noexcept {
  const std::size_t index =
      static_cast<std::size_t>(static_cast<const char*>(slot) -
                               reinterpret_cast<const char*>(block) - first_slot_offset_) /
      slot_size_;
  const std::uint64_t bit = std::uint64_t{1} << (index % 64);
  if (live)
    block->live()[index / 64] |= bit;
  else
    block->live()[index / 64] &= ~bit;
}

SlabPool::Block* SlabPool::map_block() {
  // mmap aligns to pages only. The kernel usually places a mapping right below the previous one,
  // so once one block is aligned the next ones are too, and they merge into one kernel mapping;
  // otherwise map twice the size and give back what lies outside the aligned block.
  const auto map = [](std::size_t size) {
    void* mapped = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) throw std::bad_alloc();
    return reinterpret_cast<std::uintptr_t>(mapped);
  };
  std::uintptr_t block = map(kBlockSize);
  if (block % kBlockSize != 0) {
    munmap(reinterpret_cast<void*>(block), kBlockSize);
    const std::uintptr_t start = map(2 * kBlockSize);
    block = round_up(start, kBlockSize);
    if (block > start) munmap(reinterpret_cast<void*>(start), block - start);
    munmap(reinterpret_cast<void*>(block + kBlockSize), start + kBlockSize - block);
  }
  ++blocks_;
  poison(reinterpret_cast<void*>(block + first_slot_offset_), kBlockSize - first_slot_offset_);
  auto* header = new (reinterpret_cast<void*>(block)) Block();  // the live bits are zero (mmap)
  header->owner = owner_;
  header->all_next = blocks_list_;
  if (blocks_list_ != nullptr) blocks_list_->all_prev = header;
  blocks_list_ = header;
  return header;
}

void SlabPool::unmap_block(Block* block) noexcept {
  if (block->all_prev != nullptr)
    block->all_prev->all_next = block->all_next;
  else
    blocks_list_ = block->all_next;
  if (block->all_next != nullptr) block->all_next->all_prev = block->all_prev;
  unpoison(block, kBlockSize);  // the address range may be mapped again for anything
  munmap(block, kBlockSize);
  --blocks_;
}

void SlabPool::link_available(Block* block) noexcept {
  block->prev = nullptr;
  block->next = available_;
  if (available_ != nullptr) available_->prev = block;
  available_ = block;
}

void SlabPool::unlink_available(Block* block) noexcept {
  if (block->prev != nullptr)
    block->prev->next = block->next;
  else
    available_ = block->next;
  if (block->next != nullptr) block->next->prev = block->prev;
  block->prev = block->next = nullptr;
}

}  // namespace pylon::detail
