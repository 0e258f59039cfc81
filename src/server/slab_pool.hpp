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
// Single-threaded: a pool is owned and used by one worker's loop thread.
#pragma once

#include <cstddef>

namespace pylon::detail {

class SlabPool {
 public:
  static constexpr std::size_t kBlockSize = 64 * 1024;

  // slot_align: a power of two, at most alignof(std::max_align_t).
  SlabPool(std::size_t slot_size, std::size_t slot_align);
  ~SlabPool();  // every slot must have been deallocated
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  // Uninitialised storage for one object; throws std::bad_alloc when no block can be mapped.
  void* allocate();
  void deallocate(void* slot) noexcept;

  std::size_t slots_per_block() const noexcept { return slots_per_block_; }
  std::size_t blocks() const noexcept { return blocks_; }  // mapped now

 private:
  struct Block;
  Block* map_block();
  void unmap_block(Block* block) noexcept;
  void link_available(Block* block) noexcept;
  void unlink_available(Block* block) noexcept;

  std::size_t slot_size_;
  std::size_t first_slot_offset_;  // the block header comes first
  std::size_t slots_per_block_;
  Block* available_ = nullptr;  // blocks with at least one free slot; allocation takes the first
  std::size_t blocks_ = 0;
};

}  // namespace pylon::detail
