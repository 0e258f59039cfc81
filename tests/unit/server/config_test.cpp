#include "pylon/config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace pylon {
namespace {

std::string write_file(const std::string& text) {
  char name[] = "/tmp/pylon-config-XXXXXX";
  const int fd = mkstemp(name);
  std::ofstream(name) << text;
  ::close(fd);
  return name;
}

std::string error_of(const std::string& toml) {
  Config config;
  const std::string path = write_file(toml);
  try {
    load_config_file(config, path);
    validate_config(config);
  } catch (const ConfigError& error) {
    std::remove(path.c_str());
    return error.what();
  }
  std::remove(path.c_str());
  return {};
}

TEST(Config, LoadsEveryKindOfKey) {
  Config config;
  const std::string path = write_file(
      "listen = \"127.0.0.1:9000\"\nthreads = 3\nmax_connections = 5\nping_interval = 1.5\n"
      "allowed_origins = [\"https://a.example\", \"https://b.example\"]\nlog_level = \"debug\"\n");
  load_config_file(config, path);
  std::remove(path.c_str());
  EXPECT_EQ(config.listen, "127.0.0.1:9000");
  EXPECT_EQ(config.threads, 3u);
  EXPECT_EQ(config.max_connections, 5u);
  EXPECT_DOUBLE_EQ(config.ping_interval, 1.5);
  EXPECT_EQ(config.allowed_origins.size(), 2u);
  EXPECT_EQ(config.log_level, "debug");
}

TEST(Config, ErrorsNameTheKey) {
  EXPECT_EQ(error_of("max_conections = 5\n"), "max_conections: unknown key");
  EXPECT_NE(error_of("max_connections = -1\n").find("max_connections:"), std::string::npos);
  EXPECT_NE(error_of("max_connections = \"abc\"\n").find("max_connections: must be an integer"), std::string::npos);
  EXPECT_NE(error_of("listen = \"nowhere\"\n").find("listen:"), std::string::npos);
  EXPECT_NE(error_of("log_level = \"loud\"\n").find("log_level:"), std::string::npos);
  EXPECT_NE(error_of("ping_interval = -2\n").find("ping_interval:"), std::string::npos);
  EXPECT_NE(error_of("drain_window = 60\n").find("drain_window:"), std::string::npos);
}

TEST(Config, SyntaxErrorsNameTheFileAndLine) {
  const std::string message = error_of("threads = \n");
  EXPECT_NE(message.find("line 1"), std::string::npos) << message;
}

TEST(Config, FlagTextIsParsedPerKind) {
  Config config;
  set_config_text(config, "max_message_size", "65536");
  set_config_text(config, "pong_timeout", "0.5");
  EXPECT_EQ(config.max_message_size, 65536u);
  EXPECT_DOUBLE_EQ(config.pong_timeout, 0.5);
  EXPECT_THROW(set_config_text(config, "threads", "two"), ConfigError);
  EXPECT_THROW(set_config_text(config, "nonsense", "1"), ConfigError);
}

TEST(Config, EveryKeyIsSettable) {
  for (const ConfigKey& key : config_keys()) {
    Config config;
    const char* text = key.kind == ConfigKind::seconds ? "1" :
                       key.kind == ConfigKind::count ? "2" :
                       key.kind == ConfigKind::bytes ? "2048" :
                       key.name == "listen" || key.name == "metrics_listen" ? "127.0.0.1:1" :
                       key.name == "log_level" ? "warn" :
                       key.name == "slow_consumer" ? "drop" : "https://x.example";
    EXPECT_NO_THROW(set_config_text(config, key.name, text)) << key.name;
  }
}

}  // namespace
}  // namespace pylon
