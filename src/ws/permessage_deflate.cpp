#include "ws/permessage_deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <new>
#include <utility>

namespace pylon::ws {

namespace {

// ---------------------------------------------------------------------------------------------
// Header grammar (RFC 6455 §9.1 on RFC 9110 lists):
//   extension-list = 1#element ; element = name *( ";" param )
//   param = token [ "=" ( token | quoted-string ) ]  -- a quoted value, unescaped, must be a token

constexpr bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

constexpr bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool equals_ignore_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Calls f(element) for each non-empty element of a comma list; commas inside quoted strings do
// not split (an unclosed quote makes the rest one element, which then fails to parse).
template <typename F>
void for_each_element(std::string_view list, F&& f) {
  std::size_t start = 0;
  bool quoted = false;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const char c = list[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      const std::string_view element = trim_ows(list.substr(start, i - start));
      if (!element.empty()) f(element);
      start = i + 1;
    }
  }
  const std::string_view element = trim_ows(list.substr(std::min(start, list.size())));
  if (!element.empty()) f(element);
}

struct Param {
  std::string_view name;
  std::string_view value;  // raw: the token, or the inside of the quotes with escapes kept
  bool has_value = false;
  bool quoted = false;
};

// Parses one element: the extension name into `name`, then on_param(const Param&) for each
// parameter in order, stopping when it returns false. False on a syntax error or a refused param.
template <typename F>
bool parse_element(std::string_view element, std::string_view& name, F&& on_param) {
  std::size_t i = 0;
  const std::size_t size = element.size();
  auto skip_ows = [&] {
    while (i < size && is_ows(element[i])) ++i;
  };
  auto read_token = [&]() -> std::string_view {
    const std::size_t start = i;
    while (i < size && is_tchar(element[i])) ++i;
    return element.substr(start, i - start);
  };
  name = read_token();
  if (name.empty()) return false;
  for (;;) {
    skip_ows();
    if (i == size) return true;
    if (element[i] != ';') return false;
    ++i;
    skip_ows();
    Param param;
    param.name = read_token();
    if (param.name.empty()) return false;
    skip_ows();
    if (i < size && element[i] == '=') {
      ++i;
      skip_ows();
      param.has_value = true;
      if (i < size && element[i] == '"') {
        param.quoted = true;
        const std::size_t start = ++i;
        bool closed = false;
        bool token = true;  // RFC 6455 §9.1: the unescaped quoted value must be a token
        std::size_t chars = 0;
        for (; i < size; ++i) {
          char c = element[i];
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\') {
            if (++i == size) break;
            c = element[i];
          }
          token = token && is_tchar(c);
          ++chars;
        }
        if (!closed || !token || chars == 0) return false;
        param.value = element.substr(start, i - start);
        ++i;  // the closing quote
      } else {
        param.value = read_token();
        if (param.value.empty()) return false;
      }
    }
    if (!on_param(param)) return false;
  }
}

// RFC 7692 §7.1.2: a decimal integer 8..15 without leading zeroes; 0 when invalid.
std::uint8_t parse_window_bits(const Param& param) noexcept {
  if (!param.has_value) return 0;
  unsigned value = 0;
  std::size_t digits = 0;
  for (std::size_t i = 0; i < param.value.size(); ++i) {
    char c = param.value[i];
    if (param.quoted && c == '\\') c = param.value[++i];  // the parser guarantees a next char
    if (c < '0' || c > '9' || digits == 2 || (digits == 1 && value == 0)) return 0;
    value = value * 10 + static_cast<unsigned>(c - '0');
    ++digits;
  }
  return value >= kMinWindowBits && value <= kMaxWindowBits ? static_cast<std::uint8_t>(value) : 0;
}

// The permessage-deflate parameters of one offer or response, validated per §7.1.
struct ParsedParams {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  bool has_server_max_window_bits = false;
  bool has_client_max_window_bits = false;
  std::uint8_t server_max_window_bits = kMaxWindowBits;
  std::uint8_t client_max_window_bits = kMaxWindowBits;  // kMaxWindowBits also when no value
};

enum class Side : std::uint8_t { offer, response };

// Reads the parameters of a permessage-deflate element (its name already matched). Returns
// nullptr when valid, else why not.
const char* read_params(std::string_view element, Side side, ParsedParams& out) {
  const char* why = nullptr;
  std::string_view name;
  const bool parsed = parse_element(element, name, [&](const Param& param) {
    bool* seen = nullptr;
    if (equals_ignore_case(param.name, "server_no_context_takeover")) {
      seen = &out.server_no_context_takeover;  // §7.1.1.1: no value
      if (param.has_value) why = "server_no_context_takeover with a value";
    } else if (equals_ignore_case(param.name, "client_no_context_takeover")) {
      seen = &out.client_no_context_takeover;  // §7.1.1.2: no value
      if (param.has_value) why = "client_no_context_takeover with a value";
    } else if (equals_ignore_case(param.name, "server_max_window_bits")) {
      seen = &out.has_server_max_window_bits;  // §7.1.2.1: a value, in offer and response
      out.server_max_window_bits = parse_window_bits(param);
      if (out.server_max_window_bits == 0) why = "invalid server_max_window_bits";
    } else if (equals_ignore_case(param.name, "client_max_window_bits")) {
      seen = &out.has_client_max_window_bits;  // §7.1.2.2: optional value in an offer only
      if (param.has_value || side == Side::response) {
        out.client_max_window_bits = parse_window_bits(param);
        if (out.client_max_window_bits == 0) why = "invalid client_max_window_bits";
      }
    } else {
      why = "unknown parameter";
      return false;
    }
    if (*seen) why = "duplicate parameter";  // §7.1: declined / failed
    *seen = true;
    return why == nullptr;
  });
  if (why != nullptr) return why;
  return parsed ? nullptr : "syntax error";
}

std::uint8_t clamp_window_bits(std::uint8_t bits) noexcept {
  return std::clamp(bits, kMinWindowBits, kMaxWindowBits);
}

void append_window_bits(std::string& out, std::string_view name, std::uint8_t bits) {
  out += "; ";
  out += name;
  out += '=';
  if (bits >= 10) out += '1';
  out += static_cast<char>('0' + bits % 10);
}

// ---------------------------------------------------------------------------------------------
// zlib allocation: counted, so the memory per connection is measured rather than guessed. The
// size is kept in front of the block (max_align_t keeps the block aligned).

constexpr std::size_t kAllocationHeader = alignof(std::max_align_t);

voidpf counted_alloc(voidpf opaque, uInt items, uInt size) {
  const std::size_t bytes = static_cast<std::size_t>(items) * size;
  auto* block = static_cast<unsigned char*>(std::malloc(bytes + kAllocationHeader));
  if (block == nullptr) return Z_NULL;
  *reinterpret_cast<std::size_t*>(block) = bytes;
  *static_cast<std::size_t*>(opaque) += bytes;
  return block + kAllocationHeader;
}

void counted_free(voidpf opaque, voidpf address) {
  if (address == Z_NULL) return;
  auto* block = static_cast<unsigned char*>(address) - kAllocationHeader;
  *static_cast<std::size_t*>(opaque) -= *reinterpret_cast<std::size_t*>(block);
  std::free(block);
}

// zlib refuses raw deflate with 8 bits ("until 256-byte window bug fixed"), so an agreed 8 is
// compressed with 9. That stays within 8: zlib's matches reach at most the window size minus
// MIN_LOOKAHEAD (262) back, 250 bytes with 9 bits, so a peer inflating with a true 256-byte
// window (Python's zlib with -8) reads everything (tested).
int effective_window_bits(std::uint8_t bits) noexcept {
  return std::max<int>(clamp_window_bits(bits), 9);
}

constexpr std::uint8_t kTail[4] = {0x00, 0x00, 0xff, 0xff};  // RFC 7692 §7.2.1 / §7.2.2

// inflate()'s avail_in is an uInt: feed huge pieces in slices.
constexpr std::size_t kMaxSlice = std::size_t{1} << 30;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Negotiation

std::optional<DeflateParams> negotiate_deflate(std::string_view offers,
                                               const DeflateServerPolicy& policy,
                                               std::string& response) {
  response.clear();
  std::optional<DeflateParams> agreed;
  for_each_element(offers, [&](std::string_view element) {
    if (agreed) return;
    std::string_view name;
    if (!parse_element(element, name, [](const Param&) { return true; }) ||
        !equals_ignore_case(name, kPermessageDeflate)) {
      return;  // another extension (or garbage): not ours to judge
    }
    ParsedParams offer;
    if (read_params(element, Side::offer, offer) != nullptr) return;  // §7.1: declined

    const bool shared = !policy.context_takeover;
    DeflateParams params;
    // §7.1.1.1: an offered server_no_context_takeover MUST be accepted; shared mode always adds
    // both (§7.1.1.1 and §7.1.1.2 let the server include them unasked).
    params.server_no_context_takeover = offer.server_no_context_takeover || shared;
    params.client_no_context_takeover = offer.client_no_context_takeover || shared;
    // §7.1.2.1: respond with the offered value or smaller; the server may also limit its own
    // window unasked.
    params.server_max_window_bits = clamp_window_bits(policy.max_window_bits);
    if (offer.has_server_max_window_bits) {
      params.server_max_window_bits =
          std::min(params.server_max_window_bits, offer.server_max_window_bits);
    }
    const bool send_server_bits =
        offer.has_server_max_window_bits || params.server_max_window_bits < kMaxWindowBits;
    // §7.1.2.2: client_max_window_bits only when offered; not above an offered value (the client
    // said it would not use more).
    if (offer.has_client_max_window_bits) {
      params.client_max_window_bits =
          std::min(clamp_window_bits(policy.client_max_window_bits), offer.client_max_window_bits);
    }

    response = kPermessageDeflate;
    if (params.server_no_context_takeover) response += "; server_no_context_takeover";
    if (params.client_no_context_takeover) response += "; client_no_context_takeover";
    if (send_server_bits) {
      append_window_bits(response, "server_max_window_bits", params.server_max_window_bits);
    }
    if (offer.has_client_max_window_bits) {
      append_window_bits(response, "client_max_window_bits", params.client_max_window_bits);
    }
    agreed = params;
  });
  return agreed;
}

std::string deflate_offer(const DeflateClientOptions& options) {
  std::string offer(kPermessageDeflate);
  if (options.request_no_context_takeover) {
    offer += "; server_no_context_takeover; client_no_context_takeover";
  }
  const std::uint8_t bits = clamp_window_bits(options.max_window_bits);
  if (bits < kMaxWindowBits) append_window_bits(offer, "server_max_window_bits", bits);
  offer += "; client_max_window_bits";
  return offer;
}

std::optional<DeflateParams> accept_deflate_response(std::string_view response,
                                                     const DeflateClientOptions& options,
                                                     std::string& error) {
  error.clear();
  std::string_view accepted;
  std::size_t elements = 0;
  for_each_element(response, [&](std::string_view element) {
    if (!error.empty()) return;
    ++elements;
    std::string_view name;
    if (!parse_element(element, name, [](const Param&) { return true; })) {
      error = "permessage-deflate: malformed Sec-WebSocket-Extensions response";
    } else if (!equals_ignore_case(name, kPermessageDeflate)) {
      // RFC 6455 §4.1: an extension the client did not offer fails the connection.
      error = "Sec-WebSocket-Extensions: the server accepted an extension not offered: ";
      error += name;
    } else if (!accepted.empty()) {
      error = "permessage-deflate: accepted twice";
    } else {
      accepted = element;
    }
  });
  if (!error.empty()) return std::nullopt;
  if (elements == 0) return std::nullopt;  // declined: no compression

  ParsedParams reply;
  if (const char* why = read_params(accepted, Side::response, reply)) {
    error = "permessage-deflate: ";
    error += why;
    return std::nullopt;
  }
  const std::uint8_t offered_bits = clamp_window_bits(options.max_window_bits);
  if (options.request_no_context_takeover && !reply.server_no_context_takeover) {
    // §7.1.1.1: a server accepting an offer with it MUST include it.
    error = "permessage-deflate: server_no_context_takeover requested but not accepted";
    return std::nullopt;
  }
  // §7.1.2.1: same or smaller than offered; absent means 15, larger than an offered limit.
  if (offered_bits < kMaxWindowBits &&
      (!reply.has_server_max_window_bits || reply.server_max_window_bits > offered_bits)) {
    error = "permessage-deflate: server_max_window_bits larger than offered";
    return std::nullopt;
  }
  // client_max_window_bits is always offered (deflate_offer), so any valid value is acceptable.
  DeflateParams params;
  params.server_no_context_takeover = reply.server_no_context_takeover;
  params.client_no_context_takeover =
      reply.client_no_context_takeover || options.request_no_context_takeover;
  params.server_max_window_bits = reply.server_max_window_bits;
  params.client_max_window_bits = reply.client_max_window_bits;
  return params;
}

// ---------------------------------------------------------------------------------------------
// MessageDeflater

struct MessageDeflater::Stream {
  z_stream z{};
  std::size_t allocated = 0;
};

MessageDeflater::MessageDeflater(std::uint8_t window_bits, int memory_level,
                                 bool no_context_takeover, int compression_level)
    : stream_(std::make_unique<Stream>()), no_context_takeover_(no_context_takeover) {
  z_stream& z = stream_->z;
  z.zalloc = counted_alloc;
  z.zfree = counted_free;
  z.opaque = &stream_->allocated;
  if (deflateInit2(&z, std::clamp(compression_level, 0, 9), Z_DEFLATED,
                   -effective_window_bits(window_bits), std::clamp(memory_level, 1, 9),
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::bad_alloc();  // parameters are clamped valid: only memory can fail
  }
}

MessageDeflater::~MessageDeflater() {
  if (stream_) deflateEnd(&stream_->z);
}

MessageDeflater::MessageDeflater(MessageDeflater&& other) noexcept = default;

MessageDeflater& MessageDeflater::operator=(MessageDeflater&& other) noexcept {
  if (this != &other) {
    if (stream_) deflateEnd(&stream_->z);
    stream_ = std::move(other.stream_);
    no_context_takeover_ = other.no_context_takeover_;
  }
  return *this;
}

void MessageDeflater::compress(std::span<const std::uint8_t> message, std::string& out) {
  z_stream& z = stream_->z;
  const std::size_t start = out.size();
  std::size_t used = start;
  std::size_t offset = 0;
  // Slices keep avail_in within uInt; the flush is only requested with the last slice.
  for (;;) {
    const std::size_t slice = std::min(message.size() - offset, kMaxSlice);
    const bool final_slice = offset + slice == message.size();
    z.next_in = const_cast<Bytef*>(message.data() + offset);  // zlib's API is not const
    z.avail_in = static_cast<uInt>(slice);
    offset += slice;
    for (;;) {
      // deflateBound covers the data; the sync flush adds at most ~10 bytes.
      const std::size_t room =
          std::max<std::size_t>(deflateBound(&z, static_cast<uLong>(z.avail_in)) + 16, 64);
      const std::size_t chunk = std::min(room, kMaxSlice);
      out.resize(used + chunk);
      z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
      z.avail_out = static_cast<uInt>(chunk);
      const int result = deflate(&z, final_slice ? Z_SYNC_FLUSH : Z_NO_FLUSH);
      used += chunk - z.avail_out;
      // Z_BUF_ERROR: no progress possible, i.e. everything has been flushed already.
      if (result != Z_OK && result != Z_BUF_ERROR) {
        out.resize(start);
        deflateReset(&z);
        throw std::bad_alloc();  // a valid stream only fails for lack of memory
      }
      if (z.avail_out != 0 && z.avail_in == 0) break;  // all input taken, all output written
    }
    if (final_slice) break;
  }
  out.resize(used);
  // §7.2.1: Z_SYNC_FLUSH ends with an empty stored block 00 00 ff ff; the sender removes it.
  // zlib writes nothing for an empty message right after a flush (Z_BUF_ERROR): 0x00 is the
  // empty message then (§7.2.3.6), the stored-block header the receiver's tail completes.
  if (used - start >= 4) {
    out.resize(used - 4);
  } else {
    out.resize(start);
    out.push_back('\0');
  }
  if (no_context_takeover_) deflateReset(&z);
}

std::size_t MessageDeflater::memory_estimate(std::uint8_t window_bits, int memory_level) {
  const int bits = effective_window_bits(window_bits);
  const int level = std::clamp(memory_level, 1, 9);
  // zconf.h's formula plus sizeof(deflate_state) (~5.9 KiB on 64-bit zlib 1.2.13, rounded up).
  return (std::size_t{1} << (bits + 2)) + (std::size_t{1} << (level + 9)) + 6 * 1024;
}

std::size_t MessageDeflater::allocated_bytes() const noexcept {
  return stream_ ? stream_->allocated : 0;
}

// ---------------------------------------------------------------------------------------------
// MessageInflater

struct MessageInflater::Stream {
  z_stream z{};
  std::size_t allocated = 0;
};

MessageInflater::MessageInflater(std::uint8_t window_bits, bool no_context_takeover)
    : stream_(std::make_unique<Stream>()), no_context_takeover_(no_context_takeover) {
  z_stream& z = stream_->z;
  z.zalloc = counted_alloc;
  z.zfree = counted_free;
  z.opaque = &stream_->allocated;
  if (inflateInit2(&z, -effective_window_bits(window_bits)) != Z_OK) throw std::bad_alloc();
}

MessageInflater::~MessageInflater() {
  if (stream_) inflateEnd(&stream_->z);
}

MessageInflater::MessageInflater(MessageInflater&& other) noexcept = default;

MessageInflater& MessageInflater::operator=(MessageInflater&& other) noexcept {
  if (this != &other) {
    if (stream_) inflateEnd(&stream_->z);
    stream_ = std::move(other.stream_);
    message_size_ = other.message_size_;
    no_context_takeover_ = other.no_context_takeover_;
    at_block_boundary_ = other.at_block_boundary_;
  }
  return *this;
}

void MessageInflater::reset() noexcept {
  inflateReset(&stream_->z);
  message_size_ = 0;
  at_block_boundary_ = true;
}

MessageInflater::Status MessageInflater::fail(Status status) noexcept {
  reset();
  return status;
}

MessageInflater::Status MessageInflater::inflate(std::span<const std::uint8_t> compressed,
                                                 bool last, std::uint64_t limit, std::string& out) {
  for (std::size_t offset = 0; offset < compressed.size();) {
    const std::size_t slice = std::min(compressed.size() - offset, kMaxSlice);
    if (const Status status = run(compressed.data() + offset, slice, limit, out);
        status != Status::ok) {
      return status;
    }
    offset += slice;
  }
  if (!last) return Status::ok;
  // §7.2.2: append 00 00 ff ff before inflating the end of the message. Not when the stream is
  // at a byte-aligned block boundary: an empty payload, a message ended by a BFINAL block, or a
  // peer that sent the flush marker itself (not per RFC, but seen): the extra bytes would leave
  // the stream inside a stored-block header and break the next message.
  if (!at_block_boundary_) {
    if (const Status status = run(kTail, sizeof kTail, limit, out); status != Status::ok) {
      return status;
    }
  }
  message_size_ = 0;
  if (no_context_takeover_) {
    inflateReset(&stream_->z);
    at_block_boundary_ = true;
  }
  return Status::ok;
}

MessageInflater::Status MessageInflater::run(const std::uint8_t* data, std::size_t size,
                                             std::uint64_t limit, std::string& out) {
  z_stream& z = stream_->z;
  z.next_in = const_cast<Bytef*>(data);  // zlib's API is not const
  z.avail_in = static_cast<uInt>(size);
  for (;;) {
    if (message_size_ > limit) return fail(Status::too_large);
    const std::uint64_t room = limit - message_size_;
    // With no room left, a one-byte probe tells whether the input inflates to anything more:
    // the output never holds a byte past the limit.
    std::uint8_t probe;
    const std::size_t used = out.size();
    std::size_t chunk = 1;
    if (room == 0) {
      z.next_out = &probe;
    } else {
      // Grow with what is known (input size, output so far), never past the limit: a bomb gets
      // at most `limit` bytes of buffer.
      const std::uint64_t want = std::max<std::uint64_t>(
          {std::uint64_t{4096}, std::uint64_t{z.avail_in} * 4, message_size_});
      chunk = static_cast<std::size_t>(std::min({want, room, std::uint64_t{kMaxSlice}}));
      out.resize(used + chunk);
      z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    }
    z.avail_out = static_cast<uInt>(chunk);
    const uInt in_before = z.avail_in;
    // Z_BLOCK: stop at block boundaries so data_type tells whether the stream is at one.
    int result = ::inflate(&z, Z_BLOCK);
    const std::size_t produced = chunk - z.avail_out;
    if (room == 0) {
      if (produced != 0) return fail(Status::too_large);
    } else {
      out.resize(used + produced);
    }
    message_size_ += produced;
    // data_type (with Z_BLOCK): +128 at a block boundary, +64 when the block was the final one
    // (BFINAL: the stream is over, its padding bits are dropped), low bits = bits held.
    at_block_boundary_ =
        (z.data_type & 128) != 0 && ((z.data_type & 64) != 0 || (z.data_type & 0x3f) == 0);
    if (result == Z_STREAM_END) {
      at_block_boundary_ = true;
      // A block with BFINAL = 1 (§7.2.3.3 allows it). zlib stops there; start a new stream that
      // keeps the window so context takeover goes on (rare: the dictionary copy allocates).
      std::string window(std::size_t{1} << kMaxWindowBits, '\0');
      uInt window_size = 0;
      inflateGetDictionary(&z, reinterpret_cast<Bytef*>(window.data()), &window_size);
      const Bytef* next_in = z.next_in;
      const uInt avail_in = z.avail_in;
      inflateReset(&z);
      if (window_size != 0) {
        inflateSetDictionary(&z, reinterpret_cast<const Bytef*>(window.data()), window_size);
      }
      z.next_in = const_cast<Bytef*>(next_in);
      z.avail_in = avail_in;
      result = Z_OK;
    }
    if (result == Z_BUF_ERROR) {
      // No progress possible: fine when all input is consumed (more of the message to come).
      if (z.avail_in == 0) return Status::ok;
      if (produced == 0 && z.avail_in == in_before) return fail(Status::corrupt);
      continue;
    }
    // Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR, Z_STREAM_ERROR: the message cannot be inflated.
    if (result != Z_OK) return fail(Status::corrupt);
    if (z.avail_in == 0 && z.avail_out != 0) return Status::ok;
  }
}

std::size_t MessageInflater::memory_estimate(std::uint8_t window_bits) {
  // zconf.h: 1 << windowBits for the window (allocated on first output) + sizeof(inflate_state)
  // (~7.1 KiB on 64-bit zlib 1.2.13, rounded up).
  return (std::size_t{1} << effective_window_bits(window_bits)) + 7 * 1024 + 512;
}

std::size_t MessageInflater::allocated_bytes() const noexcept {
  return stream_ ? stream_->allocated : 0;
}

}  // namespace pylon::ws
