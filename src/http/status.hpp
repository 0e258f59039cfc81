// HTTP status codes: the reason phrases this server sends (RFC 9110 §15). Pure functions, any
// thread.
#pragma once

#include <string_view>

namespace pylon::http {

// The RFC's reason phrase for `status`, or "Unknown". The view refers to static storage.
std::string_view reason_phrase(int status) noexcept;

}  // namespace pylon::http
