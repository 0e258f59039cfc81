#include "server/secret_source.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "pylon/config.hpp"

namespace pylon {
namespace {

TEST(SecretSource, AFileLosesOneTrailingNewlineOnly) {
  char name[] = "/tmp/pylon-secret-XXXXXX";
  const int fd = mkstemp(name);
  std::ofstream(name) << "s3cret\n\n";
  ::close(fd);
  EXPECT_EQ(read_config_file(name, "k"), "s3cret\n\n");
  EXPECT_EQ(read_secret_file(name, "k"), "s3cret\n");
  std::remove(name);
  try {
    read_secret_file(name, "api_keys.a.key_file");
    FAIL() << "a missing file was read";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()), std::string("api_keys.a.key_file: cannot read ") + name);
  }
}

TEST(SecretSource, AnEnvironmentVariable) {
  ::setenv("PYLON_SECRET_SOURCE_TEST", "from env", 1);
  EXPECT_EQ(read_secret_env("PYLON_SECRET_SOURCE_TEST", "k"), "from env");
  ::unsetenv("PYLON_SECRET_SOURCE_TEST");
  EXPECT_THROW(read_secret_env("PYLON_SECRET_SOURCE_TEST", "k"), ConfigError);
}

}  // namespace
}  // namespace pylon
