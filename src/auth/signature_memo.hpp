// Public-key signatures already verified, so that a client reconnecting with the same token does
// not pay for RSA/ECDSA/EdDSA again (20 µs to 600 µs a verification here, against ~32 µs for a
// whole connection: docs/benchmarks.md "Handshake cost per algorithm").
//
// Only the signature is remembered, never a verdict: verify() still decodes the token and checks
// its times, issuer, audience and kind on every call, so a remembered token expires like any
// other. The key is SHA-256 over the token's signing input and signature: a collision would be
// a forgery, so the hash must be cryptographic. A memo belongs to one key set (a reload makes a
// new one), is bounded (the oldest entry goes first), and any thread may use it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace pylon::auth {

class SignatureMemo {
 public:
  using Digest = std::array<std::uint8_t, 32>;

  explicit SignatureMemo(std::size_t capacity = kDefaultCapacity);
  SignatureMemo(const SignatureMemo&) = delete;
  SignatureMemo& operator=(const SignatureMemo&) = delete;

  static Digest digest(std::string_view signed_token);
  // Whether this token's signature verified before.
  bool contains(const Digest& digest) const;
  // A signature that verified.
  void remember(const Digest& digest);
  std::size_t size() const;

  // About 100 bytes an entry: 10,000 reconnecting users' tokens in ~1 MiB.
  static constexpr std::size_t kDefaultCapacity = 10000;

 private:
  struct DigestHash {
    std::size_t operator()(const Digest& digest) const noexcept;
  };
  mutable std::mutex mutex_;
  std::unordered_set<Digest, DigestHash> known_;
  std::vector<Digest> order_;  // a ring, oldest at next_ once full; grows as entries come
  std::size_t next_ = 0;
  std::size_t capacity_;
};

}  // namespace pylon::auth
