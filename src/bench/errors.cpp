#include "bench/errors.hpp"

#include <charconv>

namespace pylon::bench {
namespace {

// Distinct "other" messages kept; beyond, they are counted under one key.
constexpr std::size_t kMaxOtherKinds = 16;

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Counts `key` in a map of messages that keeps at most kMaxOtherKinds distinct ones.
void count_message(std::map<std::string, std::uint64_t>& counts, std::string_view key) {
  if (counts.size() < kMaxOtherKinds || counts.contains(std::string(key)))
    ++counts[std::string(key)];
  else
    ++counts["(other messages)"];
}

}  // namespace

void ErrorCounts::count_client_error(std::string_view message) {
  // The wording is the client's (src/client/connection.cpp, handshake.cpp).
  constexpr std::string_view kHttp = "handshake: HTTP ";
  constexpr std::string_view kTls = "tls: ";
  if (message.starts_with(kHttp)) {
    int status = 0;
    const std::string_view rest = message.substr(kHttp.size());
    std::from_chars(rest.data(), rest.data() + rest.size(), status);
    ++handshake[status];
  } else if (contains(message, "refused")) {
    ++refused;
  } else if (contains(message, "timed out")) {
    ++timeout;
  } else if (message.starts_with(kTls)) {  // after "timed out": a slow handshake is a timeout
    count_message(tls, message.substr(kTls.size()));
  } else if (message.starts_with("protocol error")) {
    ++protocol;
  } else {
    count_message(other, message);
  }
}

void ErrorCounts::merge(const ErrorCounts& from) {
  refused += from.refused;
  timeout += from.timeout;
  protocol += from.protocol;
  dropped_sends += from.dropped_sends;
  mismatched += from.mismatched;
  for (const auto& [key, count] : from.handshake) handshake[key] += count;
  for (const auto& [key, count] : from.tls) tls[key] += count;
  for (const auto& [key, count] : from.closed) closed[key] += count;
  for (const auto& [key, count] : from.server_errors) server_errors[key] += count;
  for (const auto& [key, count] : from.other) other[key] += count;
}

std::uint64_t ErrorCounts::total() const noexcept {
  std::uint64_t sum = refused + timeout + protocol + dropped_sends + mismatched;
  for (const auto& [key, count] : handshake) sum += count;
  for (const auto& [key, count] : tls) sum += count;
  for (const auto& [key, count] : closed) sum += count;
  for (const auto& [key, count] : server_errors) sum += count;
  for (const auto& [key, count] : other) sum += count;
  return sum;
}

}  // namespace pylon::bench
