// Reading what the configuration points at: key files, and secrets kept out of the command line
// (a file or an environment variable, never a flag, which `ps` shows). Start-up and SIGHUP
// (the signal thread); errors are ConfigError naming the configuration key.
#pragma once

#include <string>
#include <string_view>

namespace pylon {

// The bytes of a file; throws ConfigError(key, "cannot read PATH").
std::string read_config_file(const std::string& path, std::string_view key);
// A secret in a file: its bytes without one trailing newline (a file written by `echo`).
std::string read_secret_file(const std::string& path, std::string_view key);
// A secret in an environment variable; throws ConfigError(key, ...) when it is not set.
std::string read_secret_env(const std::string& variable, std::string_view key);

}  // namespace pylon
