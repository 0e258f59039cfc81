#include "ws/error.hpp"

#include <cstring>

#include "ws/utf8.hpp"

namespace pylon::ws {

bool is_valid_close_code(std::uint16_t code) noexcept {
  // RFC 6455 §7.4.1/§7.4.2 and the IANA registry: 1004 is reserved, 1005, 1006 and 1015 are for
  // reporting locally and MUST NOT be sent; 1016-2999 are unassigned; 3000-4999 belong to
  // libraries, frameworks and applications.
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return code >= 3000 && code <= 4999;
}

namespace {

struct ErrorInfo {
  std::uint16_t close_code;
  std::string_view text;
  std::string_view name;  // the enumerator, for logs and metric labels
};

// Indexed by ProtocolError; the order must follow the enum (checked below).
constexpr ErrorInfo kErrorTable[] = {
    {close_code::kNormal, "no error", "none"},
    {close_code::kProtocolError, "reserved bits set", "reserved_bits_set"},
    {close_code::kProtocolError, "reserved opcode", "reserved_opcode"},
    {close_code::kProtocolError, "fragmented control frame", "fragmented_control_frame"},
    {close_code::kProtocolError, "control frame too large", "control_frame_too_large"},
    {close_code::kProtocolError, "non-minimal length", "non_minimal_length"},
    {close_code::kProtocolError, "length too large", "length_too_large"},
    {close_code::kProtocolError, "unmasked frame", "unmasked_frame"},
    {close_code::kProtocolError, "masked frame", "masked_frame"},
    {close_code::kProtocolError, "unexpected continuation", "unexpected_continuation"},
    {close_code::kProtocolError, "expected continuation", "expected_continuation"},
    {close_code::kInvalidPayload, "invalid UTF-8", "invalid_utf8"},
    {close_code::kProtocolError, "invalid close payload", "invalid_close_payload"},
    {close_code::kProtocolError, "invalid close code", "invalid_close_code"},
    {close_code::kInvalidPayload, "invalid close reason", "invalid_close_reason"},
    {close_code::kMessageTooBig, "message too large", "message_too_large"},
    {close_code::kInvalidPayload, "invalid compressed data", "invalid_compressed_data"},
};
static_assert(std::size(kErrorTable) == kProtocolErrorCount);

}  // namespace

std::uint16_t close_code_for(ProtocolError error) noexcept {
  const auto index = static_cast<std::size_t>(error);
  return index < kProtocolErrorCount ? kErrorTable[index].close_code : close_code::kProtocolError;
}

std::string_view name(ProtocolError error) noexcept {
  const auto index = static_cast<std::size_t>(error);
  return index < kProtocolErrorCount ? kErrorTable[index].name : std::string_view("unknown");
}

std::string_view describe(ProtocolError error) noexcept {
  const auto index = static_cast<std::size_t>(error);
  return index < kProtocolErrorCount ? kErrorTable[index].text : std::string_view("unknown error");
}

ProtocolError parse_close_payload(std::span<const std::uint8_t> payload,
                                  ClosePayload& out) noexcept {
  out = ClosePayload{};
  if (payload.empty()) return ProtocolError::none;  // §7.1.5: no status code present
  // §5.5.1: if there is a body, its first two bytes are the status code.
  if (payload.size() == 1) return ProtocolError::invalid_close_payload;
  const auto code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
  if (!is_valid_close_code(code)) return ProtocolError::invalid_close_code;
  const auto reason = payload.subspan(2);
  if (!is_valid_utf8(reason)) return ProtocolError::invalid_close_reason;
  out.code = code;
  out.reason = std::string_view(reinterpret_cast<const char*>(reason.data()), reason.size());
  return ProtocolError::none;
}

std::size_t write_close_payload(std::uint8_t* out, std::uint16_t code,
                                std::string_view reason) noexcept {
  if (code == close_code::kNoStatus) return 0;
  out[0] = static_cast<std::uint8_t>(code >> 8);
  out[1] = static_cast<std::uint8_t>(code);
  std::size_t size = reason.size();
  if (size > kMaxCloseReason) {
    // Cut before the code point that straddles the limit: back off over continuation bytes
    // (10xxxxxx) so the reason stays valid UTF-8 (§5.5.1 requires it).
    size = kMaxCloseReason;
    while (size > 0 && (static_cast<std::uint8_t>(reason[size]) & 0xC0) == 0x80) --size;
  }
  if (size > 0) std::memcpy(out + 2, reason.data(), size);  // data() may be null when empty
  return 2 + size;
}

}  // namespace pylon::ws
