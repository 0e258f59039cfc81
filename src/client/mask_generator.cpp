#include "client/mask_generator.hpp"

#include <openssl/rand.h>

#include <stdexcept>

namespace pylon::client {

void MaskGenerator::reseed() {
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&state_), sizeof state_) != 1)
    throw std::runtime_error("RAND_bytes failed while seeding the masking-key generator");
}

}  // namespace pylon::client
