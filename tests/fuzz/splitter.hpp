// How the fuzz targets cut their input into the reads a connection could see: a byte at a time,
// small random pieces, large random pieces, or two pieces. Deterministic per input, so a crash
// reproduces from its file.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pylon::fuzz {

class Splitter {
 public:
  explicit Splitter(std::uint8_t seed)
      : pattern_(seed & 3), state_(0x9e3779b9u ^ (seed * 0x10001u)) {}
  std::size_t next(std::size_t remaining, std::size_t total) {
    std::size_t size = 1;
    switch (pattern_) {
      case 0:
        size = 1;
        break;
      case 1:
        size = 1 + random() % 16;
        break;
      case 2:
        size = 1 + random() % 512;
        break;
      default:
        size = first_ ? random() % (total + 1) : remaining;
        break;
    }
    first_ = false;
    return size < remaining ? size : remaining;
  }

 private:
  std::uint32_t random() {  // xorshift32: deterministic per input, so crashes reproduce
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_;
  }
  std::uint8_t pattern_;
  std::uint32_t state_;
  bool first_ = true;
};

}  // namespace pylon::fuzz
