// `pylon`: serve, check-config, version. Configuration errors print one line naming the key and
// exit 2 (DESIGN.md "Configuration").
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "pylon/app.hpp"
#include "pylon/config.hpp"
#include "server/dashboard.hpp"
#include "server/topic_protocol.hpp"

namespace {

constexpr int kExitConfigError = 2;

// The endpoints of `pylon serve`, built on the public API like any embedding application.
int serve(const pylon::Config& config) {
  pylon::App app(config);
  app.ws("/ws/echo", pylon::WebSocketBehavior<>{
                         .message =
                             [](auto& socket, std::string_view message, pylon::MessageKind kind) {
                               if (socket.send(message, kind) == pylon::SendStatus::dropped)
                                 socket.close(1008, "slow consumer");
                             },
                     });
  pylon::add_topic_routes(app);
  app.get("/healthz", [](const pylon::HttpRequest&) { return pylon::HttpResponse{.body = "ok\n"}; });
  app.get("/readyz", [&app](const pylon::HttpRequest&) {
    if (app.draining()) return pylon::HttpResponse{.status = 503, .body = "draining\n"};
    return pylon::HttpResponse{.body = "ready\n"};
  });
  pylon::Dashboard dashboard(app);  // GET / and the stats on pylon/stats (docs/dashboard.md)
  return app.run();
}

void configure_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("pylon");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli("pylon: a WebSocket server, library and operations kit");
  cli.require_subcommand(1);

  auto* serve_command = cli.add_subcommand("serve", "run the server");
  std::string config_path;
  serve_command->add_option("-c,--config", config_path, "TOML configuration file")->check(CLI::ExistingFile);
  // One flag per configuration key, in both spellings (--max-connections, --max_connections).
  std::map<std::string, std::vector<std::string>> flags;
  for (const pylon::ConfigKey& key : pylon::config_keys()) {
    std::string name(key.name);
    std::string dashed = name;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    std::string names = "--" + dashed;
    if (dashed != name) names += ",--" + name;
    auto* option = serve_command->add_option(names, flags[name], std::string(key.help));
    if (key.kind != pylon::ConfigKind::text_list) option->expected(1);
  }

  auto* check_command = cli.add_subcommand("check-config", "validate a configuration file and exit");
  std::string check_path;
  check_command->add_option("file", check_path, "TOML configuration file")->required();

  cli.add_subcommand("version", "print the version");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = cli.exit(error);
    return code == 0 ? 0 : kExitConfigError;
  }

  if (cli.got_subcommand("version")) {
    std::printf("pylon %s\n", PYLON_VERSION);
    return 0;
  }

  pylon::Config config;
  try {
    if (cli.got_subcommand("check-config")) {
      pylon::load_config_file(config, check_path);
      pylon::validate_config(config);
      std::printf("%s: ok\n", check_path.c_str());
      return 0;
    }
    if (!config_path.empty()) pylon::load_config_file(config, config_path);
    for (const auto& [key, values] : flags) {
      if (values.empty()) continue;
      if (key == "allowed_origins") {
        config.allowed_origins = values;
        continue;
      }
      pylon::set_config_text(config, key, values.back());
    }
    pylon::validate_config(config);
  } catch (const pylon::ConfigError& error) {
    std::fprintf(stderr, "pylon: configuration error: %s\n", error.what());
    return kExitConfigError;
  }

  configure_logging(config.log_level);
  try {
    return serve(config);
  } catch (const std::exception& error) {
    spdlog::critical("cannot start: {}", error.what());
    return 1;
  }
}
