// A pool of equal-sized slots for objects that are many and long-lived: a worker's connections
// (DESIGN.md: an idle connection costs a few hundred bytes of user memory).
//
// Why not malloc: every handshake also makes short-lived allocations (the HTTP parser state, the
// 101 response). In malloc's heap they land between the long-lived connections, and once freed
// they are holes that malloc can neither return nor fill with a connection-sized chunk; each
// chunk also carries a 16-byte header. Here slots sit back to back in 64 KiB blocks mapped from
// the kernel; a slot's pages are touched only when it is first handed out, and a block whose
// slots are all free is unmapped, except the last block with free slots, so that a connection
// coming and going at a block boundary does not map and unmap a block every time.
//
// A block's header also holds the pool's owner, so that an object in a slot finds its owner (a
// connection its worker) from its own address instead of a pointer of its own, and one bit per
// slot saying whether it is handed out, so that the owner can visit its live objects without a
// list of its own through them (for_each).
//
// Single-threaded: a pool is owned and used by one worker's loop thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pylon::detail {

class SlabPool {
 public:
  static constexpr std::size_t kBlockSize = 64 * 1024;

  // slot_align: a power of two, at most alignof(std::max_align_t). owner: what owner_of gives.
  SlabPool(std::size_t slot_size, std::size_t slot_align, void* owner = nullptr);
  ~SlabPool();  // every slot must have been deallocated
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  // Uninitialised storage for one object; throws std::bad_alloc when no block can be mapped.
  void* allocate();
  void deallocate(void* slot) noexcept;

  std::size_t slots_per_block() const noexcept { return slots_per_block_; }
  std::size_t blocks() const noexcept { return blocks_; }  // mapped now

  // The owner of the pool that handed out slot (its constructor's argument).
  static void* owner_of(const void* slot) noexcept { return block_of(slot)->owner; }

  // Calls visit(slot) for every slot handed out and not yet deallocated, in address order within
  // a block. visit may allocate (a slot it makes may or may not be visited) but not deallocate.
  template <typename Visit>
  void for_each(Visit&& visit) {
    for (Block* block = blocks_list_; block != nullptr; block = block->all_next) {
      const std::uint64_t* live = block->live();
      for (std::size_t word = 0; word * 64 < block->carved; ++word) {
        for (std::uint64_t bits = live[word]; bits != 0; bits &= bits - 1) {
          const std::size_t index = word * 64 + static_cast<std::size_t>(__builtin_ctzll(bits));
          visit(reinterpret_cast<char*>(block) + first_slot_offset_ + index * slot_size_);
        }
      }
    }
  }

 private:
  // At the start of every block. Blocks are kBlockSize-aligned, so a slot finds its block by
  // rounding its address down. The live bits follow it.
  struct Block {
    Block* prev = nullptr;  // in available_
    Block* next = nullptr;
    Block* all_prev = nullptr;  // in blocks_list_
    Block* all_next = nullptr;
    void* owner = nullptr;
    void* free_slots = nullptr;  // slots given back; each holds the address of the next
    std::size_t used = 0;
    std::size_t carved = 0;  // slots handed out at least once; the pages past them are untouched
    std::uint64_t* live() noexcept { return reinterpret_cast<std::uint64_t*>(this + 1); }
  };
  static Block* block_of(const void* slot) noexcept {
    return reinterpret_cast<Block*>(reinterpret_cast<std::uintptr_t>(slot) & ~(kBlockSize - 1));
  }
  void mark(Block* block, const void* slot, bool live) noexcept;  // its live bit
  Block* map_block();
  void unmap_block(Block* block) noexcept;
  void link_available(Block* block) noexcept;
  void unlink_available(Block* block) noexcept;

  std::size_t slot_size_;
  void* owner_;
  std::size_t first_slot_offset_;  // the block header and its live bits come first
  std::size_t slots_per_block_;
  Block* available_ = nullptr;    // blocks with at least one free slot; allocation takes the first
  Block* blocks_list_ = nullptr;  // every mapped block
  std::size_t blocks_ = 0;
};

}  // namespace pylon::detail
