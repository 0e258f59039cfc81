// RFC 6455 protocol errors and close codes. ProtocolError has one enumerator per rule a peer can
// break; close_code_for() and describe() are the single table that turns a violation into the
// close frame we send (STYLE rule 5). The close-payload helpers parse and build the body of a
// close frame (RFC 6455 §5.5.1). Pure functions; callable from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace pylon::ws {

namespace close_code {  // RFC 6455 §7.4.1 + IANA registry
inline constexpr std::uint16_t kNormal = 1000, kGoingAway = 1001, kProtocolError = 1002,
                               kUnsupportedData = 1003, kNoStatus = 1005, kAbnormal = 1006,
                               kInvalidPayload = 1007, kPolicyViolation = 1008,
                               kMessageTooBig = 1009, kMandatoryExtension = 1010,
                               kInternalError = 1011;
}  // namespace close_code

// May this code appear in a close frame on the wire? 1000-1003, 1007-1014, 3000-4999
// (not 1004-1006, 1015, <1000, 1016-2999, >=5000).
bool is_valid_close_code(std::uint16_t code) noexcept;

// One enumerator per rule of RFC 6455 a peer can break (Beast-style checklist).
enum class ProtocolError : std::uint8_t {
  none = 0,
  reserved_bits_set,         // §5.2 RSV1-3 without a negotiated extension -> 1002
  reserved_opcode,           // §5.2 opcodes 3-7, B-F -> 1002
  fragmented_control_frame,  // §5.5 -> 1002
  control_frame_too_large,   // §5.5 payload > 125 -> 1002
  non_minimal_length,        // §5.2 "the minimal number of bytes MUST be used" -> 1002
  length_too_large,          // §5.2 64-bit length with the most significant bit set -> 1002
  unmasked_frame,            // §5.1 server role got an unmasked frame -> 1002
  masked_frame,              // §5.1 client role got a masked frame -> 1002
  unexpected_continuation,   // §5.4 continuation with no message in progress -> 1002
  expected_continuation,     // §5.4 new text/binary while a fragmented message is in progress
  invalid_utf8,              // §8.1 text message payload not UTF-8 -> 1007
  invalid_close_payload,     // §5.5.1 close payload of exactly 1 byte -> 1002
  invalid_close_code,        // §7.4 -> 1002
  invalid_close_reason,      // §5.5.1 close reason not UTF-8 -> 1007
  message_too_large,         // max message size exceeded -> 1009
  invalid_compressed_data,   // RFC 7692 §7.2.2: the compressed payload does not inflate -> 1007
};

// Number of enumerators, for tables and tests (added).
inline constexpr std::size_t kProtocolErrorCount =
    static_cast<std::size_t>(ProtocolError::invalid_compressed_data) + 1;

std::uint16_t close_code_for(ProtocolError error) noexcept;
// Short text that fits a close reason, e.g. "reserved bits set".
std::string_view describe(ProtocolError error) noexcept;
// The enumerator's name, e.g. "reserved_bits_set" (logs, metric labels).
std::string_view name(ProtocolError error) noexcept;

struct ClosePayload {
  std::uint16_t code = close_code::kNoStatus;
  std::string_view reason;  // points into the parsed payload
};

// Parses a complete close payload (empty -> kNoStatus). Checks length != 1, the code, reason UTF-8.
ProtocolError parse_close_payload(std::span<const std::uint8_t> payload,
                                  ClosePayload& out) noexcept;

// Largest close reason: 125-byte control payload minus the 2-byte code (added).
inline constexpr std::size_t kMaxCloseReason = 123;

// Writes code + reason (reason cut to 123 bytes at a UTF-8 boundary) into out (>= 125 bytes);
// returns size. code kNoStatus writes nothing and returns 0: RFC 6455 §7.4.1 forbids 1005 on the
// wire, and an empty close body is how "no status" is said (§7.1.5).
std::size_t write_close_payload(std::uint8_t* out, std::uint16_t code,
                                std::string_view reason) noexcept;

}  // namespace pylon::ws
