// libFuzzer target for src/http/request_parser.hpp and src/http/response_parser.hpp.
//
// Input layout: byte 0 picks the limits (default, or small ones so that every limit is reached),
// byte 1 seeds the chunk-split pattern; the rest is the wire bytes, given to both parsers. Checks:
// consumed <= bytes given, every view inside the buffer (inside the message on done), header
// count within the limit, error statuses from the documented set, the result repeated after a
// terminal outcome, and that the outcome and the parsed message do not depend on how the input is
// split (each chunked call sees the bytes in a new heap block, the old one freed, so a parser that
// kept a pointer reads freed memory under ASan).
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_parser.hpp"
#include "http/response_parser.hpp"
#include "splitter.hpp"

namespace {

using namespace pylon::http;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

bool inside(std::string_view view, std::string_view buffer) {
  if (view.empty()) return true;
  const auto begin = reinterpret_cast<std::uintptr_t>(buffer.data());
  const auto first = reinterpret_cast<std::uintptr_t>(view.data());
  return first >= begin && first + view.size() <= begin + buffer.size();
}

void check_result(const ParseResult& result, std::size_t size) {
  check(result.consumed <= size);
  switch (result.status) {
    case ParseStatus::need_more:
      check(result.consumed == 0 && result.error == ParseError::none);
      break;
    case ParseStatus::done:
      check(result.consumed > 0 && result.error == ParseError::none);
      break;
    case ParseStatus::error: {
      const int s = result.error_status;
      check(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
      check(result.error != ParseError::none && !result.error_reason.empty());
      check(describe(result.error).status == s);
      break;
    }
  }
}

bool same(const ParseResult& a, const ParseResult& b) {
  return a.status == b.status && a.consumed == b.consumed && a.error == b.error &&
         a.error_status == b.error_status && a.error_reason == b.error_reason;
}

// The parsed message as plain strings, to compare parses of different buffers.
std::vector<std::string> flatten(const Request& r) {
  std::vector<std::string> out = {
      std::string(r.method), std::string(r.target),           std::string(r.path),
      std::string(r.query),  std::to_string(r.version_minor), std::string(r.body)};
  for (std::size_t i = 0; i < r.header_count; ++i) {
    out.emplace_back(r.headers[i].name);
    out.emplace_back(r.headers[i].value);
  }
  return out;
}

std::vector<std::string> flatten(const Response& r) {
  std::vector<std::string> out = {std::to_string(r.status), std::string(r.reason),
                                  std::to_string(r.version_minor)};
  for (std::size_t i = 0; i < r.header_count; ++i) {
    out.emplace_back(r.headers[i].name);
    out.emplace_back(r.headers[i].value);
  }
  return out;
}

void check_message(const Request& r, std::string_view message, const Limits& limits) {
  check(r.header_count <= limits.max_headers && r.header_count <= kMaxHeaders);
  for (std::string_view view : {r.method, r.target, r.path, r.query, r.body}) {
    check(inside(view, message));
  }
  for (std::size_t i = 0; i < r.header_count; ++i) {
    check(!r.headers[i].name.empty());
    check(inside(r.headers[i].name, message) && inside(r.headers[i].value, message));
  }
  check(!r.method.empty() && !r.target.empty());
  check(r.version_minor == 0 || r.version_minor == 1);
  check(r.body.size() <= limits.max_body);
  check(r.version_minor == 0 || r.count("host") == 1);
  check(r.find("transfer-encoding") == nullptr);
}

void check_message(const Response& r, std::string_view message, const Limits& limits) {
  check(r.header_count <= limits.max_headers && r.header_count <= kMaxHeaders);
  check(inside(r.reason, message));
  for (std::size_t i = 0; i < r.header_count; ++i) {
    check(!r.headers[i].name.empty());
    check(inside(r.headers[i].name, message) && inside(r.headers[i].value, message));
  }
  check(r.status >= 100 && r.status <= 599);
  check(r.version_minor == 0 || r.version_minor == 1);
}

template <typename Parser, typename Message>
void run(std::string_view input, const Limits& limits, std::uint8_t seed) {
  // One shot.
  Parser whole_parser(limits);
  Message whole;
  const ParseResult expected = whole_parser.parse(input, whole);
  check_result(expected, input.size());
  if (expected.status == ParseStatus::done) {
    check_message(whole, input.substr(0, expected.consumed), limits);
  }
  // A terminal outcome repeats until reset().
  if (expected.status != ParseStatus::need_more) {
    Message again;
    check(same(whole_parser.parse(input, again), expected));
  }

  // Chunked, the bytes moving to a new block before every call.
  Parser parser(limits);
  Message chunked;
  pylon::fuzz::Splitter splitter(seed);
  std::unique_ptr<char[]> block;
  std::size_t size = 0;
  ParseResult result;
  do {
    size += splitter.next(input.size() - size, input.size());
    auto grown = std::make_unique<char[]>(size + 1);
    std::memcpy(grown.get(), input.data(), size);
    block = std::move(grown);
    result = parser.parse(std::string_view(block.get(), size), chunked);
    check_result(result, size);
  } while (result.status == ParseStatus::need_more && size < input.size());
  check(same(result, expected));
  if (result.status == ParseStatus::done) {
    const std::string_view buffer(block.get(), size);
    check_message(chunked, buffer.substr(0, result.consumed), limits);
    check(flatten(chunked) == flatten(whole));
  }

  // A pipelined second message after reset().
  if (expected.status == ParseStatus::done) {
    whole_parser.reset();
    Message next;
    const std::string_view rest = input.substr(expected.consumed);
    const ParseResult second = whole_parser.parse(rest, next);
    check_result(second, rest.size());
    if (second.status == ParseStatus::done) {
      check_message(next, rest.substr(0, second.consumed), limits);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t mode = data[0];
  const std::uint8_t seed = data[1];
  const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);

  Limits limits;
  if (mode & 1) {  // small limits, so that inputs of a few hundred bytes reach every one
    limits.max_request_line = 8 + ((mode >> 1) & 7) * 8;
    limits.max_header_bytes = 16 + ((mode >> 4) & 3) * 32;
    limits.max_headers = (mode >> 6) & 3;
    limits.max_body = (mode >> 3) & 1 ? 0 : 16;
  }
  run<RequestParser, Request>(input, limits, seed);
  run<ResponseParser, Response>(input, limits, seed);
  return 0;
}
