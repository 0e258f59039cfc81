#include "server/secret_source.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "pylon/config.hpp"

namespace pylon {

std::string read_config_file(const std::string& path, std::string_view key) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw ConfigError(std::string(key), "cannot read " + path);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string read_secret_file(const std::string& path, std::string_view key) {
  std::string secret = read_config_file(path, key);
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  return secret;
}

std::string read_secret_env(const std::string& variable, std::string_view key) {
  const char* secret = std::getenv(variable.c_str());
  if (secret == nullptr) throw ConfigError(std::string(key), "the environment has no " + variable);
  return secret;
}

}  // namespace pylon
