#include "net/cidr.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>
#include <string>

namespace pylon::net {
namespace {

// Parses a numeric address into family + 16 bytes (IPv4 in the first 4).
bool parse_address(std::string_view text, int& family,
                   std::array<std::uint8_t, 16>& bytes) noexcept {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  char buffer[INET6_ADDRSTRLEN];
  text.copy(buffer, text.size());
  buffer[text.size()] = '\0';
  bytes = {};
  if (inet_pton(AF_INET, buffer, bytes.data()) == 1) {
    family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, buffer, bytes.data()) == 1) {
    family = AF_INET6;
    return true;
  }
  return false;
}

}  // namespace

std::optional<Cidr> parse_cidr(std::string_view text) noexcept {
  Cidr cidr;
  const auto slash = text.find('/');
  if (!parse_address(text.substr(0, slash), cidr.family, cidr.address)) return std::nullopt;
  const unsigned bits = cidr.family == AF_INET ? 32 : 128;
  cidr.prefix = bits;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const auto [end, error] =
        std::from_chars(digits.data(), digits.data() + digits.size(), cidr.prefix);
    if (digits.empty() || error != std::errc{} || end != digits.data() + digits.size() ||
        cidr.prefix > bits)
      return std::nullopt;
  }
  return cidr;
}

bool Cidr::contains(std::string_view ip) const noexcept {
  int other_family = 0;
  std::array<std::uint8_t, 16> other{};
  if (!parse_address(ip, other_family, other) || other_family != family) return false;
  const unsigned whole = prefix / 8;
  for (unsigned i = 0; i < whole; ++i)
    if (address[i] != other[i]) return false;
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
  return (address[whole] & mask) == (other[whole] & mask);
}

std::string_view host_of(std::string_view address) noexcept {
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    return close == std::string_view::npos ? address : address.substr(1, close - 1);
  }
  const auto colon = address.rfind(':');
  return colon == std::string_view::npos ? address : address.substr(0, colon);
}

}  // namespace pylon::net
