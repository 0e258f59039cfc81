// Tests for src/auth/error.*: one row per enumerator, stable unique names.
#include "auth/error.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace pylon::auth {
namespace {

TEST(TokenErrorTest, OneRowPerEnumerator) {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kTokenErrorCount; ++i) {
    const auto error = static_cast<TokenError>(i);
    EXPECT_FALSE(describe(error).empty());
    EXPECT_LE(describe(error).size(), 40u);  // fits a close reason with room to spare
    // Names are metric labels: lower case, digits, underscores.
    EXPECT_EQ(name(error).find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"),
              std::string::npos);
    EXPECT_TRUE(names.insert(name(error)).second) << name(error);
  }
  EXPECT_EQ(name(TokenError::none), "none");
  EXPECT_EQ(name(TokenError::expired), "expired");
  EXPECT_EQ(name(TokenError::algorithm_not_allowed_for_key), "algorithm_not_allowed_for_key");
  EXPECT_EQ(name(TokenError::wrong_token_kind), "wrong_token_kind");
  EXPECT_EQ(describe(TokenError::expired), "token expired");
  EXPECT_EQ(name(static_cast<TokenError>(kTokenErrorCount)), "unknown");
}

}  // namespace
}  // namespace pylon::auth
