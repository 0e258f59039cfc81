// Tests for src/auth/base64url.*: RFC 4648 §10 vectors in the URL alphabet, strictness.
#include "auth/base64url.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace pylon::auth {
namespace {

std::optional<std::string> decode(std::string_view text) {
  std::string out(base64url_decoded_size(text.size()), '\0');
  if (!base64url_decode(text, reinterpret_cast<std::uint8_t*>(out.data()))) return std::nullopt;
  return out;
}

TEST(Base64urlTest, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [bytes, text] : vectors) {
    EXPECT_EQ(base64url_encode(bytes), text);
    EXPECT_EQ(decode(text), bytes) << text;
  }
}

TEST(Base64urlTest, UrlAlphabet) {
  EXPECT_EQ(base64url_encode("\xFB\xFF\xBF"), "-_-_");
  EXPECT_EQ(decode("-_-_"), "\xFB\xFF\xBF");
  EXPECT_EQ(decode("+/+/"), std::nullopt);  // the standard alphabet is refused
}

TEST(Base64urlTest, EveryByteRoundTrips) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t size = 0; size <= all.size(); size += 7)
    EXPECT_EQ(decode(base64url_encode(all.substr(0, size))), all.substr(0, size));
}

TEST(Base64urlTest, StrictDecoding) {
  EXPECT_EQ(decode("Zg=="), std::nullopt);  // padding
  EXPECT_EQ(decode("Zm8="), std::nullopt);
  EXPECT_EQ(decode("Z"), std::nullopt);      // 4k+1
  EXPECT_EQ(decode("Zm9vY"), std::nullopt);  // 4k+1
  EXPECT_EQ(decode("Zh"), std::nullopt);     // unused bits set ("Zg" is the one spelling)
  EXPECT_EQ(decode("Zm9"), std::nullopt);    // unused bits set ("Zm8")
  EXPECT_EQ(decode("Zm 9v"), std::nullopt);
  EXPECT_EQ(decode("Zm9\n"), std::nullopt);
  EXPECT_EQ(decode(std::string("Zm\0v", 4)), std::nullopt);
  EXPECT_EQ(decode("Zm9\xC3"), std::nullopt);
  EXPECT_EQ(base64url_decoded_size(43), 32u);
  EXPECT_EQ(base64url_decoded_size(86), 64u);
}

}  // namespace
}  // namespace pylon::auth
