#include "ws/permessage_deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <new>
#include <utility>

namespace pylon::ws {

namespace {

// ---------------------------------------------------------------------------------------------
// zlib allocation: counted, so the memory per connection is measured rather than guessed. The
// size is kept in front of the block (max_align_t keeps the block aligned).

constexpr std::size_t kAllocationHeader = alignof(std::max_align_t);

voidpf counted_alloc(voidpf opaque, uInt items, uInt size) {
  const std::size_t bytes = static_cast<std::size_t>(items) * size;
  auto* block = static_cast<unsigned char*>(std::malloc(bytes + kAllocationHeader));
  if (block == nullptr) return Z_NULL;
  *reinterpret_cast<std::size_t*>(block) = bytes;
  *static_cast<std::size_t*>(opaque) += bytes;
  return block + kAllocationHeader;
}

void counted_free(voidpf opaque, voidpf address) {
  if (address == Z_NULL) return;
  auto* block = static_cast<unsigned char*>(address) - kAllocationHeader;
  *static_cast<std::size_t*>(opaque) -= *reinterpret_cast<std::size_t*>(block);
  std::free(block);
}

// zlib refuses raw deflate with 8 bits ("until 256-byte window bug fixed"), so an agreed 8 is
// compressed with 9. That stays within 8: zlib's matches reach at most the window size minus
// MIN_LOOKAHEAD (262) back, 250 bytes with 9 bits, so a peer inflating with a true 256-byte
// window (Python's zlib with -8) reads everything (tested).
int effective_window_bits(std::uint8_t bits) noexcept {
  return std::max<int>(clamp_window_bits(bits), 9);
}

constexpr std::uint8_t kTail[4] = {0x00, 0x00, 0xff, 0xff};  // RFC 7692 §7.2.1 / §7.2.2

// inflate()'s avail_in is an uInt: feed huge pieces in slices.
constexpr std::size_t kMaxSlice = std::size_t{1} << 30;

// Gives `out` a capacity of exactly `capacity` bytes. std::string's own growth doubles the old
// capacity whenever asked for less than twice it, so a message growing to its limit ended in a
// block up to twice the limit: a bomb stopped at 16 MiB grew the server by 32 MiB (issue 17).
void grow_to(std::string& out, std::size_t capacity) {
  std::string grown;
  grown.reserve(capacity);  // from an empty string: exactly this much
  grown.append(out);
  out.swap(grown);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// MessageDeflater

struct MessageDeflater::Stream {
  z_stream z{};
  std::size_t allocated = 0;
};

MessageDeflater::MessageDeflater(std::uint8_t window_bits, int memory_level,
                                 bool no_context_takeover, int compression_level)
    : stream_(std::make_unique<Stream>()), no_context_takeover_(no_context_takeover) {
  z_stream& z = stream_->z;
  z.zalloc = counted_alloc;
  z.zfree = counted_free;
  z.opaque = &stream_->allocated;
  if (deflateInit2(&z, std::clamp(compression_level, 0, 9), Z_DEFLATED,
                   -effective_window_bits(window_bits), std::clamp(memory_level, 1, 9),
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::bad_alloc();  // parameters are clamped valid: only memory can fail
  }
}

MessageDeflater::~MessageDeflater() {
  if (stream_) deflateEnd(&stream_->z);
}

MessageDeflater::MessageDeflater(MessageDeflater&& other) noexcept = default;

MessageDeflater& MessageDeflater::operator=(MessageDeflater&& other) noexcept {
  if (this != &other) {
    if (stream_) deflateEnd(&stream_->z);
    stream_ = std::move(other.stream_);
    no_context_takeover_ = other.no_context_takeover_;
  }
  return *this;
}

void MessageDeflater::compress(std::span<const std::uint8_t> message, std::string& out) {
  z_stream& z = stream_->z;
  const std::size_t start = out.size();
  std::size_t used = start;
  std::size_t offset = 0;
  // Slices keep avail_in within uInt; the flush is only requested with the last slice.
  for (;;) {
    const std::size_t slice = std::min(message.size() - offset, kMaxSlice);
    const bool final_slice = offset + slice == message.size();
    z.next_in = const_cast<Bytef*>(message.data() + offset);  // zlib's API is not const
    z.avail_in = static_cast<uInt>(slice);
    offset += slice;
    for (;;) {
      // deflateBound covers the data; the sync flush adds at most ~10 bytes.
      const std::size_t room =
          std::max<std::size_t>(deflateBound(&z, static_cast<uLong>(z.avail_in)) + 16, 64);
      const std::size_t chunk = std::min(room, kMaxSlice);
      out.resize(used + chunk);
      z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
      z.avail_out = static_cast<uInt>(chunk);
      const int result = deflate(&z, final_slice ? Z_SYNC_FLUSH : Z_NO_FLUSH);
      used += chunk - z.avail_out;
      // Z_BUF_ERROR: no progress possible, i.e. everything has been flushed already.
      if (result != Z_OK && result != Z_BUF_ERROR) {
        out.resize(start);
        deflateReset(&z);
        throw std::bad_alloc();  // a valid stream only fails for lack of memory
      }
      if (z.avail_out != 0 && z.avail_in == 0) break;  // all input taken, all output written
    }
    if (final_slice) break;
  }
  out.resize(used);
  // §7.2.1: Z_SYNC_FLUSH ends with an empty stored block 00 00 ff ff; the sender removes it.
  // zlib writes nothing for an empty message right after a flush (Z_BUF_ERROR): 0x00 is the
  // empty message then (§7.2.3.6), the stored-block header the receiver's tail completes.
  if (used - start >= 4) {
    out.resize(used - 4);
  } else {
    out.resize(start);
    out.push_back('\0');
  }
  if (no_context_takeover_) deflateReset(&z);
}

std::size_t MessageDeflater::memory_estimate(std::uint8_t window_bits, int memory_level) {
  const int bits = effective_window_bits(window_bits);
  const int level = std::clamp(memory_level, 1, 9);
  // zconf.h's formula plus sizeof(deflate_state) (~5.9 KiB on 64-bit zlib 1.2.13, rounded up).
  return (std::size_t{1} << (bits + 2)) + (std::size_t{1} << (level + 9)) + 6 * 1024;
}

std::size_t MessageDeflater::allocated_bytes() const noexcept {
  return stream_ ? stream_->allocated : 0;
}

// ---------------------------------------------------------------------------------------------
// MessageInflater

struct MessageInflater::Stream {
  z_stream z{};
  std::size_t allocated = 0;
};

MessageInflater::MessageInflater(std::uint8_t window_bits, bool no_context_takeover)
    : stream_(std::make_unique<Stream>()), no_context_takeover_(no_context_takeover) {
  z_stream& z = stream_->z;
  z.zalloc = counted_alloc;
  z.zfree = counted_free;
  z.opaque = &stream_->allocated;
  if (inflateInit2(&z, -effective_window_bits(window_bits)) != Z_OK) throw std::bad_alloc();
}

MessageInflater::~MessageInflater() {
  if (stream_) inflateEnd(&stream_->z);
}

MessageInflater::MessageInflater(MessageInflater&& other) noexcept = default;

MessageInflater& MessageInflater::operator=(MessageInflater&& other) noexcept {
  if (this != &other) {
    if (stream_) inflateEnd(&stream_->z);
    stream_ = std::move(other.stream_);
    message_size_ = other.message_size_;
    no_context_takeover_ = other.no_context_takeover_;
    at_block_boundary_ = other.at_block_boundary_;
  }
  return *this;
}

void MessageInflater::reset() noexcept {
  inflateReset(&stream_->z);
  message_size_ = 0;
  at_block_boundary_ = true;
}

MessageInflater::Status MessageInflater::fail(Status status) noexcept {
  reset();
  return status;
}

MessageInflater::Status MessageInflater::inflate(std::span<const std::uint8_t> compressed,
                                                 bool last, std::uint64_t limit, std::string& out) {
  for (std::size_t offset = 0; offset < compressed.size();) {
    const std::size_t slice = std::min(compressed.size() - offset, kMaxSlice);
    if (const Status status = run(compressed.data() + offset, slice, limit, out);
        status != Status::ok) {
      return status;
    }
    offset += slice;
  }
  if (!last) return Status::ok;
  // §7.2.2: append 00 00 ff ff before inflating the end of the message. Not when the stream is
  // at a byte-aligned block boundary: an empty payload, a message ended by a BFINAL block, or a
  // peer that sent the flush marker itself (not per RFC, but seen): the extra bytes would leave
  // the stream inside a stored-block header and break the next message.
  if (!at_block_boundary_) {
    if (const Status status = run(kTail, sizeof kTail, limit, out); status != Status::ok) {
      return status;
    }
  }
  message_size_ = 0;
  if (no_context_takeover_) {
    inflateReset(&stream_->z);
    at_block_boundary_ = true;
  }
  return Status::ok;
}

MessageInflater::Status MessageInflater::run(const std::uint8_t* data, std::size_t size,
                                             std::uint64_t limit, std::string& out) {
  z_stream& z = stream_->z;
  z.next_in = const_cast<Bytef*>(data);  // zlib's API is not const
  z.avail_in = static_cast<uInt>(size);
  for (;;) {
    if (message_size_ > limit) return fail(Status::too_large);
    const std::uint64_t room = limit - message_size_;
    // With no room left, a one-byte probe tells whether the input inflates to anything more:
    // the output never holds a byte past the limit.
    std::uint8_t probe;
    const std::size_t used = out.size();
    std::size_t chunk = 1;
    if (room == 0) {
      z.next_out = &probe;
    } else {
      // Grow with what is known (input size, output so far), never past the limit: a bomb gets
      // at most `limit` bytes of buffer.
      const std::uint64_t want = std::max<std::uint64_t>(
          {std::uint64_t{4096}, std::uint64_t{z.avail_in} * 4, message_size_});
      chunk = static_cast<std::size_t>(std::min({want, room, std::uint64_t{kMaxSlice}}));
      if (used + chunk > out.capacity()) {
        // The block doubles, and once past half of this message at its limit goes straight to
        // that: a copy then holds at most half of it beside the new block (the old one is freed
        // right after), so even a bomb's peak stays within the limit.
        const std::uint64_t most = room > UINT64_MAX - used ? UINT64_MAX : used + room;
        const std::uint64_t capacity =
            std::max<std::uint64_t>(used + chunk, std::uint64_t{2} * out.capacity());
        grow_to(out, static_cast<std::size_t>(capacity > most / 2 ? most : capacity));
      }
      out.resize(used + chunk);
      z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    }
    z.avail_out = static_cast<uInt>(chunk);
    const uInt in_before = z.avail_in;
    // Z_BLOCK: stop at block boundaries so data_type tells whether the stream is at one.
    int result = ::inflate(&z, Z_BLOCK);
    const std::size_t produced = chunk - z.avail_out;
    if (room == 0) {
      if (produced != 0) return fail(Status::too_large);
    } else {
      out.resize(used + produced);
    }
    message_size_ += produced;
    // data_type (with Z_BLOCK): +128 at a block boundary, +64 when the block was the final one
    // (BFINAL: the stream is over, its padding bits are dropped), low bits = bits held.
    at_block_boundary_ =
        (z.data_type & 128) != 0 && ((z.data_type & 64) != 0 || (z.data_type & 0x3f) == 0);
    if (result == Z_STREAM_END) {
      at_block_boundary_ = true;
      // A block with BFINAL = 1 (§7.2.3.3 allows it). zlib stops there; start a new stream that
      // keeps the window so context takeover goes on (rare: the dictionary copy allocates).
      std::string window(std::size_t{1} << kMaxWindowBits, '\0');
      uInt window_size = 0;
      inflateGetDictionary(&z, reinterpret_cast<Bytef*>(window.data()), &window_size);
      const Bytef* next_in = z.next_in;
      const uInt avail_in = z.avail_in;
      inflateReset(&z);
      if (window_size != 0) {
        inflateSetDictionary(&z, reinterpret_cast<const Bytef*>(window.data()), window_size);
      }
      z.next_in = const_cast<Bytef*>(next_in);
      z.avail_in = avail_in;
      result = Z_OK;
    }
    if (result == Z_BUF_ERROR) {
      // No progress possible: fine when all input is consumed (more of the message to come).
      if (z.avail_in == 0) return Status::ok;
      if (produced == 0 && z.avail_in == in_before) return fail(Status::corrupt);
      continue;
    }
    // Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR, Z_STREAM_ERROR: the message cannot be inflated.
    if (result != Z_OK) return fail(Status::corrupt);
    if (z.avail_in == 0 && z.avail_out != 0) return Status::ok;
  }
}

std::size_t MessageInflater::memory_estimate(std::uint8_t window_bits) {
  // zconf.h: 1 << windowBits for the window (allocated on first output) + sizeof(inflate_state)
  // (~7.1 KiB on 64-bit zlib 1.2.13, rounded up).
  return (std::size_t{1} << effective_window_bits(window_bits)) + 7 * 1024 + 512;
}

std::size_t MessageInflater::allocated_bytes() const noexcept {
  return stream_ ? stream_->allocated : 0;
}

}  // namespace pylon::ws
