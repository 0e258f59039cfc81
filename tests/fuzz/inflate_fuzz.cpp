// libFuzzer target for the codec half of src/ws/permessage_deflate.*.
//
// Input layout: byte 0 picks the window bits, context takeover and the mode; byte 1 the message
// size limit (small, so the limit path is hot); byte 2 seeds the split of the rest into messages
// and of each message into pieces. Mode "inflate": the rest is compressed data from a peer; the
// verdicts and outputs must not depend on the pieces, and no message ever passes the limit. Mode
// "round trip": the rest is plain data; compressing and inflating gives it back.
//
// One dependence on the pieces is zlib's and allowed: a match may reach back as far as the window
// plus what the current inflate call has produced, so a stream that reaches past the agreed window
// (RFC 7692 §7.1.2.2 forbids it) is refused as corrupt or not depending on where the calls split.
// Then each outcome must be either that of a full 32 KiB window (where no split matters) or
// corrupt after a prefix of its messages.
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "ws/permessage_deflate.hpp"

namespace {

using namespace pylon::ws;
using Status = MessageInflater::Status;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

struct Outcome {
  std::vector<std::string> messages;
  Status status = Status::ok;
};

// Inflates the messages in order, each in pieces drawn from rng (a single piece when rng is null),
// stopping at the first error.
Outcome inflate_messages(const std::vector<std::string_view>& messages, std::uint8_t bits,
                         bool no_context_takeover, std::uint64_t limit, std::mt19937* rng) {
  MessageInflater inflater(bits, no_context_takeover);
  Outcome outcome;
  for (std::string_view message : messages) {
    std::string out;
    std::size_t offset = 0;
    Status status = Status::ok;
    do {
      std::size_t piece = message.size() - offset;
      if (rng != nullptr && piece > 0) piece = std::min<std::size_t>(piece, (*rng)() % 16);
      const bool last = offset + piece == message.size() && (rng == nullptr || (*rng)() % 4 != 0);
      status = inflater.inflate(message.substr(offset, piece), last, limit, out);
      check(out.size() <= limit);
      offset += piece;
      if (last) break;
    } while (status == Status::ok);
    if (status != Status::ok) {
      outcome.status = status;
      return outcome;
    }
    outcome.messages.push_back(std::move(out));
  }
  return outcome;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const std::uint8_t bits = static_cast<std::uint8_t>(8 + (data[0] & 7));
  const bool no_context_takeover = (data[0] & 8) != 0;
  const bool round_trip = (data[0] & 16) != 0;
  const std::uint64_t limit = std::uint64_t{data[1]} * 64;
  std::mt19937 rng(data[2]);
  const std::string_view rest(reinterpret_cast<const char*>(data + 3), size - 3);

  // Split into up to 4 messages.
  std::vector<std::string_view> messages;
  std::size_t offset = 0;
  const int count = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < count; ++i) {
    const std::size_t length = i + 1 == count
                                   ? rest.size() - offset
                                   : std::min<std::size_t>(rest.size() - offset, rng() % 64);
    messages.push_back(rest.substr(offset, length));
    offset += length;
  }

  if (round_trip) {
    MessageDeflater deflater(bits, 1 + (data[1] % 9), no_context_takeover, data[2] % 10);
    std::vector<std::string> compressed(messages.size());
    for (std::size_t i = 0; i < messages.size(); ++i) deflater.compress(messages[i], compressed[i]);
    const std::vector<std::string_view> views(compressed.begin(), compressed.end());
    const Outcome outcome =
        inflate_messages(views, bits, no_context_takeover, ~std::uint64_t{0}, &rng);
    check(outcome.status == Status::ok && outcome.messages.size() == messages.size());
    for (std::size_t i = 0; i < messages.size(); ++i) check(outcome.messages[i] == messages[i]);
    return 0;
  }

  const Outcome whole = inflate_messages(messages, bits, no_context_takeover, limit, nullptr);
  const Outcome pieces = inflate_messages(messages, bits, no_context_takeover, limit, &rng);
  if (whole.status == pieces.status && whole.messages == pieces.messages) return 0;
  check(bits < 15);  // with the full window, splits never matter
  const Outcome wide = inflate_messages(messages, 15, no_context_takeover, limit, nullptr);
  for (const Outcome* outcome : {&whole, &pieces}) {
    if (outcome->status == wide.status && outcome->messages == wide.messages) continue;
    check(outcome->status == Status::corrupt && outcome->messages.size() <= wide.messages.size() &&
          std::equal(outcome->messages.begin(), outcome->messages.end(), wide.messages.begin()));
  }
  return 0;
}
