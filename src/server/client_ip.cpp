#include "server/client_ip.hpp"

#include <algorithm>
#include <string_view>

namespace pylon::detail {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

std::string real_client_ip(const net::PeerAddress& peer, std::span<const net::Cidr> trusted,
                           const http::Request& request) {
  std::string host = peer.host();
  const auto is_trusted = [trusted](std::string_view ip) {
    return std::any_of(trusted.begin(), trusted.end(),
                       [ip](const net::Cidr& range) { return range.contains(ip); });
  };
  if (trusted.empty() || !is_trusted(host)) return host;
  if (const http::Header* real_ip = request.find("X-Real-IP");
      real_ip != nullptr && !trim(real_ip->value).empty())
    return std::string(trim(real_ip->value));
  if (const http::Header* forwarded = request.find("X-Forwarded-For")) {
    std::string_view list = forwarded->value;
    while (!list.empty()) {
      const auto comma = list.rfind(',');
      const std::string_view entry =
          trim(comma == std::string_view::npos ? list : list.substr(comma + 1));
      if (!entry.empty() && !is_trusted(entry)) return std::string(entry);
      if (comma == std::string_view::npos) break;
      list = list.substr(0, comma);
    }
  }
  return host;
}

}  // namespace pylon::detail
