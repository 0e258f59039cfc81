// The `bench` subcommand: CLI11 options into bench::Options, then bench::run.
#include "cli/bench_command.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "bench/run.hpp"

namespace pylon::cli {

std::function<int()> add_bench_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "bench", "load-test a WebSocket server: echo, rate, fanout or connect (docs/bench.md)");
  struct Parsed {
    bench::Options options;
    std::string scenario;
    std::string payload = "filler";
    std::vector<std::string> headers;
  };
  auto parsed = std::make_shared<Parsed>();
  bench::Options& o = parsed->options;
  command->add_option("scenario", parsed->scenario, "echo, rate, fanout or connect")
      ->required()
      ->check(CLI::IsMember({"echo", "rate", "fanout", "connect"}));
  command->add_option("--url", o.urls, "ws:// or wss:// URL; several spread the connections")
      ->required();
  command->add_option("-c,--connections", o.connections, "connections (fanout: subscribers)")
      ->capture_default_str();
  command->add_option("-d,--duration", o.duration, "seconds measured")->capture_default_str();
  command->add_option("--warmup", o.warmup, "seconds run before measuring")->capture_default_str();
  command->add_option("-s,--size", o.size, "message bytes")->capture_default_str();
  command->add_option("-r,--rate", o.rate, "messages per second in total (rate, fanout)");
  command->add_option("--in-flight", o.in_flight, "echo: messages in flight per connection")
      ->capture_default_str();
  command->add_option("--ramp-rate", o.ramp_rate,
                      "new connections per second (default: as fast as the server answers)");
  command->add_flag("--binary", o.binary, "send binary messages (default: text)");
  command->add_flag("--compression", o.compression, "offer permessage-deflate (RFC 7692)");
  command->add_option("--ca-file", o.ca_file,
                      "wss://: PEM file of CAs to trust instead of the system store");
  command->add_flag("--insecure", o.insecure,
                    "wss://: do not verify the server's certificate (test rigs only)");
  command
      ->add_option(
          "--payload", parsed->payload,
          "message content: filler (x repeated) or json (records; compresses like real data)")
      ->check(CLI::IsMember({"filler", "json"}))
      ->capture_default_str();
  command->add_option("-t,--threads", o.threads, "client threads (default: one per core)");
  command->add_option("--source-address", o.source_addresses,
                      "local addresses to bind, e.g. 127.0.0.2 127.0.0.3 (spreads source ports)");
  command->add_option("-H,--header", parsed->headers, "extra request header 'Name: value'");
  command
      ->add_option("--max-error-rate", o.max_error_rate,
                   "exit 1 when errors / operations is above this")
      ->capture_default_str();
  command
      ->add_option("--pid", o.pids,
                   "server process(es) to sample: RSS and CPU time from /proc (PID[,PID...])")
      ->delimiter(',');
  command->add_option("--subscribers", o.subscribers,
                      "fanout: subscribers (default --connections)");
  command->add_option("--publishers", o.publishers, "fanout: publishers")->capture_default_str();
  command->add_option("--topic", o.topic, "fanout: topic")->capture_default_str();
  command->add_option("--json", o.json_path, "write the results as JSON to FILE");
  command->add_option("--report", o.report_path, "write a self-contained HTML report to FILE");

  return [parsed] {
    bench::Options options = parsed->options;
    bench::parse_scenario(parsed->scenario, options.scenario);
    bench::parse_payload_kind(parsed->payload, options.payload);
    for (const std::string& text : parsed->headers) {
      std::pair<std::string, std::string> header;
      if (const std::string error = bench::parse_header(text, header); !error.empty()) {
        std::fprintf(stderr, "pylon bench: %s\n", error.c_str());
        return bench::kExitUsage;
      }
      options.headers.push_back(std::move(header));
    }
    return bench::run(std::move(options));
  };
}

}  // namespace pylon::cli
