// Tests for src/ws/sha1.*: FIPS 180-4's examples, and every length around the padding's block
// boundaries against OpenSSL's SHA-1.
#include "ws/sha1.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdio>
#include <string>

namespace pylon::ws {
namespace {

std::string hex(std::string_view message, std::size_t piece = 0) {
  Sha1 sha1;
  if (piece == 0) {
    sha1.update(message);
  } else {
    for (std::size_t at = 0; at < message.size(); at += piece)
      sha1.update(message.substr(at, piece));
  }
  std::string out;
  char byte[3];
  for (const std::uint8_t value : sha1.digest()) {
    std::snprintf(byte, sizeof byte, "%02x", value);
    out += byte;
  }
  return out;
}

std::string openssl_hex(std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EXPECT_EQ(EVP_Digest(message.data(), message.size(), digest, &size, EVP_sha1(), nullptr), 1);
  std::string out;
  char byte[3];
  for (unsigned int i = 0; i < size; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", digest[i]);
    out += byte;
  }
  return out;
}

TEST(Sha1, FipsExamples) {
  EXPECT_EQ(hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  // 56 bytes: the padding spills into a second block.
  EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(hex(std::string(1000000, 'a'), 4093), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(Sha1, EveryLengthAroundTheBlockBoundariesMatchesOpenSsl) {
  std::string message;
  for (std::size_t size = 0; size <= 200; ++size) {
    EXPECT_EQ(hex(message), openssl_hex(message)) << size << " bytes";
    EXPECT_EQ(hex(message, 7), openssl_hex(message)) << size << " bytes in pieces of 7";
    message += static_cast<char>('0' + size % 75);
  }
}

}  // namespace
}  // namespace pylon::ws
