// `pylon`: serve, check-config, version. Configuration errors print one line naming the key and
// exit 2 (DESIGN.md "Configuration").
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/bench_command.hpp"
#include "obs/log.hpp"
#include "pylon/app.hpp"
#include "pylon/config.hpp"
#include "server/dashboard.hpp"
#include "server/topic_protocol.hpp"

namespace {

constexpr int kExitConfigError = 2;

// The endpoints of `pylon serve` but the dashboard, built on the public API like any embedding
// application.
void add_routes(pylon::App& app) {
  const pylon::WebSocketBehavior<> echo{
      .message =
          [](auto& socket, std::string_view message, pylon::MessageKind kind) {
            if (socket.send(message, kind) == pylon::SendStatus::dropped)
              socket.close(1008, "slow consumer");
          },
  };
  app.ws("/ws/echo", echo);
  // An upgrade of / echoes too, for tools that test the root URL (a plain GET / is the dashboard).
  app.ws("/", echo);
  pylon::add_topic_routes(app);
  app.get("/healthz",
          [](const pylon::HttpRequest&) { return pylon::HttpResponse{.body = "ok\n"}; });
  app.get("/readyz", [&app](const pylon::HttpRequest&) {
    if (app.draining()) return pylon::HttpResponse{.status = 503, .body = "draining\n"};
    if (!app.ready()) return pylon::HttpResponse{.status = 503, .body = "engine unavailable\n"};
    return pylon::HttpResponse{.body = "ready\n"};
  });
}

// `app` has its routes (add_routes) and a checked configuration.
int serve(pylon::App& app, std::function<void()> reload) {
  app.on_reload(std::move(reload));
  std::optional<pylon::Dashboard>
      dashboard;  // GET / and the stats on pylon/stats (docs/dashboard.md)
  if (app.config().dashboard) dashboard.emplace(app);
  return app.run();
}

// Flags win over the file: for each key given on the command line, its last value (all values
// for list keys).
void apply_flags(pylon::Config& config,
                 const std::map<std::string, std::vector<std::string>>& flags) {
  for (const auto& [key, values] : flags) {
    if (values.empty()) continue;
    const auto& keys = pylon::config_keys();
    const auto spec =
        std::find_if(keys.begin(), keys.end(), [&](const auto& k) { return k.name == key; });
    if (spec != keys.end() && spec->kind == pylon::ConfigKind::text_list)
      pylon::set_config_value(config, key, values);
    else
      pylon::set_config_text(config, key, values.back());
  }
}

// What the command line says of the configuration.
struct Flags {
  std::map<std::string, std::vector<std::string>> keys;  // one per configuration key
  std::vector<std::string> endpoints;                    // --endpoint /path:key=value
  std::vector<std::string> namespaces;                   // --namespace NAME:key=value
  std::vector<std::string> api_keys;                     // --api-key NAME:key=value
};

// The file, then the flags (--endpoint, --namespace and --api-key last), checked as a whole
// (App::check_config checks the endpoint tables against the routes).
pylon::Config load_config(const std::string& path, const Flags& flags) {
  pylon::Config config;
  if (!path.empty()) pylon::load_config_file(config, path);
  apply_flags(config, flags.keys);
  for (const std::string& flag : flags.endpoints) pylon::set_endpoint_text(config, flag);
  for (const std::string& flag : flags.namespaces) pylon::set_namespace_text(config, flag);
  for (const std::string& flag : flags.api_keys) pylon::set_api_key_text(config, flag);
  pylon::validate_config(config);
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli("pylon: a WebSocket server, library and operations kit");
  cli.require_subcommand(1);

  auto* serve_command = cli.add_subcommand("serve", "run the server");
  std::string config_path;
  serve_command->add_option("-c,--config", config_path, "TOML configuration file")
      ->check(CLI::ExistingFile);
  // One flag per configuration key, in both spellings (--max-connections, --max_connections).
  Flags flags;
  for (const pylon::ConfigKey& key : pylon::config_keys()) {
    std::string name(key.name);
    std::string dashed = name;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    std::string names = "--" + dashed;
    if (dashed != name) names += ",--" + name;
    auto* option = serve_command->add_option(names, flags.keys[name], std::string(key.help));
    if (key.kind != pylon::ConfigKind::text_list) option->expected(1);
  }
  serve_command->add_option(
      "--endpoint", flags.endpoints,
      "one key of one WebSocket endpoint, /path:key=value (compression keys; repeatable)");
  serve_command->add_option(
      "--namespace", flags.namespaces,
      "one rule of one topic namespace, NAME:subscribe=... or NAME:publish=... (repeatable)");
  serve_command->add_option("--api-key,--api_key", flags.api_keys,
                            "one setting of one backend API key: NAME:key_file=PATH, "
                            "NAME:key_env=VARIABLE or NAME:scopes=publish,disconnect (repeatable)");

  auto* check_command =
      cli.add_subcommand("check-config", "validate a configuration file and exit");
  std::string check_path;
  check_command->add_option("file", check_path, "TOML configuration file")->required();

  cli.add_subcommand("version", "print the version");
  const auto run_bench = pylon::cli::add_bench_command(cli);

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = cli.exit(error);
    return code == 0 ? 0 : kExitConfigError;
  }

  if (cli.got_subcommand("bench")) return run_bench();
  if (cli.got_subcommand("version")) {
    std::printf("pylon %s\n", PYLON_VERSION);
    return 0;
  }

  std::optional<pylon::App> app;  // serve's, built once: the routes check the configuration
  try {
    if (cli.got_subcommand("check-config")) {
      pylon::App checked(load_config(check_path, {}));
      add_routes(checked);
      checked.check_config();
      std::printf("%s: ok\n", check_path.c_str());
      return 0;
    }
    app.emplace(load_config(config_path, flags));
    add_routes(*app);
    app->check_config();
  } catch (const pylon::ConfigError& error) {
    std::fprintf(stderr, "pylon: configuration error: %s\n", error.what());
    return kExitConfigError;
  }

  const pylon::Config& config = app->config();
  using pylon::obs::LogLevel;
  // The log writer is a thread: it must start with the signals that App::run() waits for already
  // blocked, or the kernel may deliver SIGTERM to it and kill the process without a drain.
  pylon::block_shutdown_signals();
  pylon::obs::start_logging(config.log_format, config.log_level);
  const std::string_view host = std::string_view(config.listen).substr(0, config.listen.rfind(':'));
  if (!pylon::auth_enabled(config) && !host.starts_with("127.") && host != "[::1]" &&
      host != "localhost")
    pylon::obs::log(LogLevel::warn,
                    "no authentication (development mode) while listening beyond loopback: any "
                    "client may subscribe and publish anywhere (docs/security.md)",
                    {{"listen", std::string_view(config.listen)}});
  // SIGHUP: read the file again (flags still win) and apply what can change while running.
  const auto reload = [&config_path, &flags] {
    try {
      const pylon::Config fresh = load_config(config_path, flags);
      // Said at the old level, so that a switch to "warn" is still announced.
      pylon::obs::log(LogLevel::info, "configuration reloaded",
                      {{"log_level", pylon::log_level_name(fresh.log_level)}});
      pylon::obs::set_log_level(fresh.log_level);
    } catch (const pylon::ConfigError& error) {
      pylon::obs::log(LogLevel::error, "configuration reload failed; keeping the running one",
                      {{"error", std::string_view(error.what())}});
    }
  };
  int status = 1;
  try {
    status = serve(*app, reload);
  } catch (const std::exception& error) {
    pylon::obs::log(LogLevel::error, "cannot start", {{"error", std::string_view(error.what())}});
  }
  app.reset();  // its shutdown may still log
  pylon::obs::stop_logging();
  return status;
}
