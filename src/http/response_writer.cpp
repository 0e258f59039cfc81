#include "http/response_writer.hpp"

#include <charconv>

#include "http/status.hpp"

namespace pylon::http {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kSeparator = ": ";

std::size_t headers_size(std::span<const Header> headers) noexcept {
  std::size_t size = 0;
  for (const Header& header : headers) {
    size += header.name.size() + kSeparator.size() + header.value.size() + kCrlf.size();
  }
  return size;
}

void append_headers(std::string& out, std::span<const Header> headers) {
  for (const Header& header : headers) {
    out.append(header.name).append(kSeparator).append(header.value).append(kCrlf);
  }
}

// RFC 9110 §8.6 and §15.3.5: no Content-Length, and no content, in 1xx and 204 responses.
bool has_no_content(int status) noexcept {
  return (status >= 100 && status < 200) || status == 204;
}

}  // namespace

void write_response(std::string& out, int status, std::span<const Header> headers,
                    std::string_view body, bool keep_alive) {
  constexpr std::string_view kContentLength = "Content-Length: ";
  constexpr std::string_view kClose = "Connection: close\r\n";
  // std::to_chars keeps number formatting free of allocation and locale.
  char status_text[16];
  const auto status_end = std::to_chars(status_text, status_text + sizeof status_text, status).ptr;
  char length_text[24];
  const auto length_end =
      std::to_chars(length_text, length_text + sizeof length_text, body.size()).ptr;
  const std::string_view status_digits(status_text, status_end - status_text);
  const std::string_view length_digits(length_text, length_end - length_text);
  const std::string_view reason = reason_phrase(status);
  const bool content = !has_no_content(status);

  std::size_t size = 9 + status_digits.size() + 1 + reason.size() + 2 + headers_size(headers) + 2;
  if (content) size += kContentLength.size() + length_digits.size() + 2 + body.size();
  if (!keep_alive) size += kClose.size();
  out.reserve(out.size() + size);

  out.append("HTTP/1.1 ").append(status_digits).append(" ").append(reason).append(kCrlf);
  append_headers(out, headers);
  if (content) out.append(kContentLength).append(length_digits).append(kCrlf);
  if (!keep_alive) out.append(kClose);
  out.append(kCrlf);
  if (content) out.append(body);
}

void write_request(std::string& out, std::string_view method, std::string_view target,
                   std::span<const Header> headers) {
  constexpr std::string_view kVersion = " HTTP/1.1\r\n";
  out.reserve(out.size() + method.size() + 1 + target.size() + kVersion.size() +
              headers_size(headers) + kCrlf.size());
  out.append(method).append(" ").append(target).append(kVersion);
  append_headers(out, headers);
  out.append(kCrlf);
}

}  // namespace pylon::http
