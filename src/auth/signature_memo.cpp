#include "auth/signature_memo.hpp"

#include <openssl/sha.h>

#include <cstring>

namespace pylon::auth {

SignatureMemo::SignatureMemo(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

SignatureMemo::Digest SignatureMemo::digest(std::string_view signed_token) {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(signed_token.data()), signed_token.size(),
         digest.data());
  return digest;
}

std::size_t SignatureMemo::DigestHash::operator()(const Digest& digest) const noexcept {
  // Already uniformly distributed: its first bytes are hash enough for the table.
  std::size_t value;
  std::memcpy(&value, digest.data(), sizeof value);
  return value;
}

bool SignatureMemo::contains(const Digest& digest) const {
  std::lock_guard lock(mutex_);
  return known_.contains(digest);
}

void SignatureMemo::remember(const Digest& digest) {
  std::lock_guard lock(mutex_);
  if (!known_.insert(digest).second) return;
  if (order_.size() < capacity_) {
    order_.push_back(digest);
    return;
  }
  known_.erase(order_[next_]);
  order_[next_] = digest;
  next_ = (next_ + 1) % capacity_;
}

std::size_t SignatureMemo::size() const {
  std::lock_guard lock(mutex_);
  return known_.size();
}

}  // namespace pylon::auth
