// Tests for src/auth/signature_memo.* and its use by verify(): only public-key signatures that
// verified are remembered, a remembered token is still checked for everything else, and the memo
// stays within its capacity, oldest out first.
#include "auth/signature_memo.hpp"

#include <gtest/gtest.h>

#include <string>

#include "auth/jwt.hpp"
#include "vectors.hpp"

namespace pylon::auth {
namespace {

using test::at;
using test::Vectors;

TokenError check(std::string_view token, const KeySet& keys, SignatureMemo& memo,
                 double now = Vectors::get().now) {
  Claims claims;
  return verify(token, keys, VerifyOptions{.memo = &memo}, at(now), claims);
}

TEST(SignatureMemoTest, RemembersPublicKeySignaturesThatVerified) {
  const auto& v = Vectors::get();
  for (const char* alg : {"RS256", "PS256", "ES256", "ES384", "EdDSA"}) {
    SCOPED_TRACE(alg);
    const auto& vector = v.token(std::string("valid_") + alg);
    const KeySet keys = v.keys(vector.key);
    SignatureMemo memo;
    ASSERT_EQ(check(vector.token, keys, memo), TokenError::none);
    EXPECT_EQ(memo.size(), 1u);
    EXPECT_TRUE(memo.contains(SignatureMemo::digest(vector.token)));
    ASSERT_EQ(check(vector.token, keys, memo), TokenError::none);  // from the memo
    EXPECT_EQ(memo.size(), 1u);
  }
}

TEST(SignatureMemoTest, HmacAndFailedSignaturesAreNotRemembered) {
  const auto& v = Vectors::get();
  SignatureMemo memo;
  EXPECT_EQ(check(v.token("valid_HS256").token, v.keys("hmac"), memo), TokenError::none);
  EXPECT_EQ(check(v.token("rsa_signed_by_other_rsa").token,
                  v.keys(v.token("rsa_signed_by_other_rsa").key), memo),
            TokenError::bad_signature);
  EXPECT_EQ(memo.size(), 0u);
}

TEST(SignatureMemoTest, ARememberedTokenStillExpires) {
  // Only the signature is remembered: exp is checked on every call.
  const auto& v = Vectors::get();
  const auto& vector = v.token("valid_ES256");  // exp = now + 600
  const KeySet keys = v.keys(vector.key);
  SignatureMemo memo;
  ASSERT_EQ(check(vector.token, keys, memo), TokenError::none);
  EXPECT_EQ(check(vector.token, keys, memo, v.now + 600), TokenError::expired);
}

TEST(SignatureMemoTest, ATamperedTokenIsNotTheRememberedOne) {
  const auto& v = Vectors::get();
  const auto& vector = v.token("valid_ES256");
  const KeySet keys = v.keys(vector.key);
  SignatureMemo memo;
  ASSERT_EQ(check(vector.token, keys, memo), TokenError::none);
  std::string flipped = vector.token;
  const std::size_t i = flipped.find('.') + 5;
  flipped[i] = flipped[i] == 'A' ? 'B' : 'A';
  EXPECT_EQ(check(flipped, keys, memo), TokenError::bad_signature);
}

TEST(SignatureMemoTest, KeepsAtMostItsCapacityOldestOutFirst) {
  SignatureMemo memo(3);
  const auto digest = [](int i) { return SignatureMemo::digest("token-" + std::to_string(i)); };
  for (int i = 0; i < 5; ++i) memo.remember(digest(i));
  EXPECT_EQ(memo.size(), 3u);
  EXPECT_FALSE(memo.contains(digest(0)));
  EXPECT_FALSE(memo.contains(digest(1)));
  for (int i = 2; i < 5; ++i) EXPECT_TRUE(memo.contains(digest(i))) << i;
  memo.remember(digest(4));  // known already: nothing moves
  EXPECT_EQ(memo.size(), 3u);
  EXPECT_TRUE(memo.contains(digest(2)));
}

}  // namespace
}  // namespace pylon::auth
