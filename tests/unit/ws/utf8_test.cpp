// Tests for src/ws/utf8.*: the incremental validator against a byte-by-byte reference.
#include "ws/utf8.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace pylon::ws {
namespace {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool valid(std::string_view s) {
  return is_valid_utf8(as_bytes(s));
}

// Feeds s one byte at a time; returns the index of the byte feed() rejected, or -1 if none.
long first_rejected_byte(std::string_view s) {
  Utf8Validator v;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!v.feed(as_bytes(s.substr(i, 1)))) return static_cast<long>(i);
  }
  return -1;
}

TEST(Utf8Test, ValidSamples) {
  EXPECT_TRUE(valid(""));
  EXPECT_TRUE(valid("hello"));
  EXPECT_TRUE(valid("\xc2\x80"));          // U+0080, smallest 2-byte
  EXPECT_TRUE(valid("\xdf\xbf"));          // U+07FF
  EXPECT_TRUE(valid("\xe0\xa0\x80"));      // U+0800, smallest 3-byte
  EXPECT_TRUE(valid("\xed\x9f\xbf"));      // U+D7FF, just below surrogates
  EXPECT_TRUE(valid("\xee\x80\x80"));      // U+E000, just above surrogates
  EXPECT_TRUE(valid("\xef\xbf\xbf"));      // U+FFFF
  EXPECT_TRUE(valid("\xf0\x90\x80\x80"));  // U+10000, smallest 4-byte
  EXPECT_TRUE(valid("\xf4\x8f\xbf\xbf"));  // U+10FFFF, largest code point
  EXPECT_TRUE(valid("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"));  // "kosme" in Greek
  EXPECT_TRUE(valid("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"));
}

TEST(Utf8Test, InvalidSamples) {
  EXPECT_FALSE(valid("\x80"));  // stray continuation
  EXPECT_FALSE(
      valid("a\xbf"
            "b"));                          // stray continuation in text
  EXPECT_FALSE(valid("\xc0\x80"));          // overlong NUL
  EXPECT_FALSE(valid("\xc1\xbf"));          // overlong 2-byte
  EXPECT_FALSE(valid("\xe0\x9f\xbf"));      // overlong 3-byte
  EXPECT_FALSE(valid("\xf0\x8f\xbf\xbf"));  // overlong 4-byte
  EXPECT_FALSE(valid("\xed\xa0\x80"));      // U+D800 surrogate
  EXPECT_FALSE(valid("\xed\xbf\xbf"));      // U+DFFF surrogate
  EXPECT_FALSE(valid("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(valid("\xf5\x80\x80\x80"));  // lead beyond range
  EXPECT_FALSE(valid("\xff"));
  EXPECT_FALSE(valid("\xc3"));          // truncated at end
  EXPECT_FALSE(valid("\xe2\x82"));      // truncated at end
  EXPECT_FALSE(valid("\xf0\x9f\x98"));  // truncated at end
  EXPECT_FALSE(
      valid("\xc3"
            "a"));  // continuation missing
}

TEST(Utf8Test, FailFastPosition) {
  EXPECT_EQ(first_rejected_byte("\xf4\x90"), 1);        // > U+10FFFF known at byte 2
  EXPECT_EQ(first_rejected_byte("\xc0"), 0);            // overlong lead
  EXPECT_EQ(first_rejected_byte("ab\xed\xa0\x80"), 3);  // surrogate known at byte 2 of it
  EXPECT_EQ(first_rejected_byte("\xe0\x80"), 1);        // overlong 3-byte
  EXPECT_EQ(first_rejected_byte("\xf0\x80"), 1);        // overlong 4-byte
  EXPECT_EQ(first_rejected_byte("abc\x80"), 3);
  EXPECT_EQ(first_rejected_byte("\xe2\x82"
                                "a"),
            2);
  EXPECT_EQ(first_rejected_byte("\xe2\x82"), -1);  // only incomplete, not invalid
}

TEST(Utf8Test, StaysFailedUntilReset) {
  Utf8Validator v;
  EXPECT_FALSE(v.feed(as_bytes("\xff")));
  EXPECT_FALSE(v.feed(as_bytes("abc")));
  EXPECT_FALSE(v.complete());
  v.reset();
  EXPECT_TRUE(v.feed(as_bytes("abc")));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8Test, CompleteTracksPartialCodePoint) {
  Utf8Validator v;
  EXPECT_TRUE(v.feed(as_bytes("\xf0\x9f")));
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.feed(as_bytes("\x98")));
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.feed(as_bytes("\x80")));
  EXPECT_TRUE(v.complete());
}

// A text mixing all sequence lengths, split at every position into two chunks, and split into
// single bytes: always valid, always complete at the end.
TEST(Utf8Test, SplitAtEveryPosition) {
  std::string text;
  for (int i = 0; i < 20; ++i) text += "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    Utf8Validator v;
    ASSERT_TRUE(v.feed(as_bytes(std::string_view(text).substr(0, cut)))) << cut;
    ASSERT_TRUE(v.feed(as_bytes(std::string_view(text).substr(cut)))) << cut;
    ASSERT_TRUE(v.complete()) << cut;
  }
  EXPECT_EQ(first_rejected_byte(text), -1);
}

// Reference: decode by the RFC 3629 definition (code point ranges), not by the byte table.
bool reference_valid(const std::vector<std::uint8_t>& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::uint8_t b = s[i];
    std::size_t n;
    std::uint32_t cp;
    if (b < 0x80) {
      n = 1;
      cp = b;
    } else if ((b & 0xE0) == 0xC0) {
      n = 2;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      n = 3;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      n = 4;
      cp = b & 0x07;
    } else
      return false;
    if (i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// Random inputs of mostly-valid text with occasional corruption, long enough to take the simdjson
// path, fed in random chunks: the verdict must match the reference.
TEST(Utf8Test, RandomAgainstReference) {
  std::mt19937 rng(42);
  const char* pieces[] = {
      "a", "Z", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf"};
  for (int round = 0; round < 3000; ++round) {
    std::vector<std::uint8_t> s;
    const int count = static_cast<int>(rng() % 120);
    for (int i = 0; i < count; ++i) {
      const std::string_view p = pieces[rng() % std::size(pieces)];
      s.insert(s.end(), p.begin(), p.end());
    }
    if (rng() % 2 == 0 && !s.empty()) s[rng() % s.size()] = static_cast<std::uint8_t>(rng());
    if (rng() % 4 == 0 && !s.empty()) s.pop_back();
    const bool expected = reference_valid(s);
    EXPECT_EQ(is_valid_utf8(s), expected) << round;
    Utf8Validator v;
    bool ok = true;
    std::size_t pos = 0;
    while (pos < s.size() && ok) {
      const std::size_t n = std::min<std::size_t>(rng() % 100, s.size() - pos);
      ok = v.feed(std::span<const std::uint8_t>(s).subspan(pos, n));
      pos += n;
    }
    EXPECT_EQ(ok && v.complete(), expected) << round;
  }
}

// Exhaustive over all 1-, 2- and 3-byte sequences behind an ASCII prefix long enough for simdjson.
TEST(Utf8Test, ExhaustiveShortSequencesOnBothPaths) {
  for (std::uint32_t v = 0; v < (1u << 24); v += (v < (1u << 16) ? 1 : 251)) {
    std::vector<std::uint8_t> s = {static_cast<std::uint8_t>(v >> 16),
                                   static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
    const bool expected = reference_valid(s);
    ASSERT_EQ(is_valid_utf8(s), expected) << v;
    std::vector<std::uint8_t> long_input(100, 'x');
    long_input.insert(long_input.end(), s.begin(), s.end());
    ASSERT_EQ(is_valid_utf8(long_input), expected) << v;
  }
}

}  // namespace
}  // namespace pylon::ws
