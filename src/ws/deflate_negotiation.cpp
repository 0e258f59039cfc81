// permessage-deflate negotiation (RFC 7692 §5, §7.1): the offer a client makes and the answer a
// server gives, over the extension header grammar of RFC 6455 §9.1. The codec is
// permessage_deflate.cpp.
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <new>
#include <utility>

#include "ws/permessage_deflate.hpp"

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

void append_window_bits(std::string& out, std::string_view name, std::uint8_t bits) {
  out += "; ";
  out += name;
  out += '=';
  if (bits >= 10) out += '1';
  out += static_cast<char>('0' + bits % 10);
}

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

}  // namespace pylon::ws
