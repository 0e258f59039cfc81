// Address ranges in CIDR notation ("10.0.0.0/8", "::1/128", or a bare address), used to decide
// which peers are trusted proxies whose X-Forwarded-For / X-Real-IP headers may be believed.
// Plain values; any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pylon::net {

struct Cidr {
  int family = 0;  // AF_INET or AF_INET6
  std::array<std::uint8_t, 16> address{};
  unsigned prefix = 0;  // bits

  // A numeric IPv4 or IPv6 address (no port, no brackets) inside this range?
  bool contains(std::string_view ip) const noexcept;
};

// nullopt when text is not ADDRESS[/PREFIX] with a prefix within the family's bits.
std::optional<Cidr> parse_cidr(std::string_view text) noexcept;

// "1.2.3.4:5678" -> "1.2.3.4", "[::1]:80" -> "::1".
std::string_view host_of(std::string_view address_with_port) noexcept;

}  // namespace pylon::net
