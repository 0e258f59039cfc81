// Masking keys for client frames (RFC 6455 §5.3): a fresh key per frame that a proxy cannot
// predict. OpenSSL's RAND_bytes per frame costs more than the rest of a small send, so each
// connection seeds a fast generator (splitmix64, 8 bytes of state) from RAND_bytes once, and draws
// keys from it. The RFC only needs the key to be unpredictable to an intermediary that sees the
// traffic, not cryptographic strength against the endpoints. One generator per connection;
// single-threaded.
#pragma once

#include <cstdint>
#include <cstring>

#include "ws/frame.hpp"

namespace pylon::client {

class MaskGenerator {
 public:
  // Seeds from RAND_bytes; throws std::runtime_error if the system generator fails (connect time).
  void reseed();
  std::uint64_t next() noexcept {
    // splitmix64 (Steele, Lea, Flood 2014): full period, passes BigCrush, one add + 2 multiplies.
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  ws::MaskingKey next_key() noexcept {
    const auto bits = static_cast<std::uint32_t>(next() >> 32);
    ws::MaskingKey key;
    std::memcpy(key.data(), &bits, key.size());
    return key;
  }
  // A number in [0, 1), for reconnect jitter.
  double next_unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t state_ = 0;
};

}  // namespace pylon::client
