#include "pubsub/json_syntax.hpp"

#include <cstdint>
#include <span>

#include "ws/utf8.hpp"

namespace pylon::pubsub {
namespace {

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Recursive descent over [at, end); each function consumes one construct or returns false.
class Checker {
 public:
  Checker(const char* begin, const char* end) noexcept : at_(begin), end_(end) {}

  bool document() noexcept {
    if (!value()) return false;
    skip_whitespace();
    return at_ == end_;
  }

 private:
  void skip_whitespace() noexcept {
    while (at_ < end_ && (*at_ == ' ' || *at_ == '\t' || *at_ == '\n' || *at_ == '\r')) ++at_;
  }

  bool take(char c) noexcept {
    skip_whitespace();
    if (at_ == end_ || *at_ != c) return false;
    ++at_;
    return true;
  }

  bool value() noexcept {
    skip_whitespace();
    if (at_ == end_) return false;
    switch (*at_) {
      case '{':
        return container('}', true);
      case '[':
        return container(']', false);
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  // An object (members "key": value) or an array (values), with the closing bracket `close`.
  bool container(char close, bool members) noexcept {
    if (++depth_ > kMaxJsonDepth) return false;
    ++at_;
    if (take(close)) {
      --depth_;
      return true;
    }
    for (;;) {
      if (members) {
        skip_whitespace();
        if (!string() || !take(':')) return false;
      }
      if (!value()) return false;
      if (take(',')) continue;
      if (!take(close)) return false;
      --depth_;
      return true;
    }
  }

  bool string() noexcept {
    if (at_ == end_ || *at_ != '"') return false;
    ++at_;
    while (at_ < end_) {
      const char c = *at_++;
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;  // control characters must be escaped
      if (c != '\\') continue;
      if (at_ == end_) return false;
      const char escape = *at_++;
      if (escape == 'u') {
        unsigned unit = 0;
        if (!hex4(unit)) return false;
        // I-JSON (RFC 7493 §2.1): no lone surrogates; a high one must pair with a low one.
        if (unit >= 0xDC00 && unit <= 0xDFFF) return false;
        if (unit >= 0xD800 && unit <= 0xDBFF) {
          unsigned low = 0;
          if (end_ - at_ < 2 || at_[0] != '\\' || at_[1] != 'u') return false;
          at_ += 2;
          if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
        }
      } else if (escape != '"' && escape != '\\' && escape != '/' && escape != 'b' &&
                 escape != 'f' && escape != 'n' && escape != 'r' && escape != 't') {
        return false;
      }
    }
    return false;
  }

  bool hex4(unsigned& unit) noexcept {
    for (int i = 0; i < 4; ++i) {
      if (at_ == end_ || !is_hex(*at_)) return false;
      const char c = *at_++;
      unit = unit * 16 + static_cast<unsigned>(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return true;
  }

  bool literal(std::string_view word) noexcept {
    if (static_cast<std::size_t>(end_ - at_) < word.size() ||
        std::string_view(at_, word.size()) != word)
      return false;
    at_ += word.size();
    return true;
  }

  bool digits() noexcept {
    const char* start = at_;
    while (at_ < end_ && is_digit(*at_)) ++at_;
    return at_ > start;
  }

  // RFC 8259 §6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
  bool number() noexcept {
    if (at_ < end_ && *at_ == '-') ++at_;
    if (at_ == end_) return false;
    if (*at_ == '0')
      ++at_;
    else if (!digits())
      return false;
    if (at_ < end_ && *at_ == '.') {
      ++at_;
      if (!digits()) return false;
    }
    if (at_ < end_ && (*at_ == 'e' || *at_ == 'E')) {
      ++at_;
      if (at_ < end_ && (*at_ == '+' || *at_ == '-')) ++at_;
      if (!digits()) return false;
    }
    return true;
  }

  const char* at_;
  const char* end_;
  std::size_t depth_ = 0;
};

}  // namespace

bool is_valid_json(std::string_view text) noexcept {
  // RFC 8259 §8.1: JSON text exchanged between systems MUST be UTF-8.
  const std::span bytes(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  if (!ws::is_valid_utf8(bytes)) return false;
  return Checker(text.data(), text.data() + text.size()).document();
}

}  // namespace pylon::pubsub
