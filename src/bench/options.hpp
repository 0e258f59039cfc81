// What `pylon bench` was asked to do (docs/bench.md): the scenario, where to connect, how many
// connections and how hard to push. Filled by the command line (src/cli/bench_command.cpp),
// checked by validate(), then read-only for the whole run (any thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/payload.hpp"

namespace pylon::bench {

enum class Scenario : std::uint8_t {
  echo,     // closed loop: send, wait for the echo, send again
  rate,     // open loop: a fixed total rate, latency from the intended send time
  fanout,   // publishers -> topic -> subscribers on /ws, delivery latency at every subscriber
  connect,  // ramp to N connections, hold them; handshake latency, server memory
};

std::string_view scenario_name(Scenario scenario) noexcept;
// False when `name` is not a scenario.
bool parse_scenario(std::string_view name, Scenario& scenario) noexcept;

struct Options {
  Scenario scenario = Scenario::echo;
  std::vector<std::string> urls;  // connection k goes to urls[k % size]
  std::size_t connections = 10;
  double duration = 10;       // seconds measured (after warmup)
  double warmup = 0;          // seconds run but not measured
  std::size_t size = 16;      // message bytes
  double rate = 0;            // rate, fanout: messages per second in total
  std::size_t in_flight = 1;  // echo: messages in flight per connection
  double ramp_rate = 0;       // new connections per second; 0: as fast as the server answers
  bool binary = false;
  bool compression = false;  // offer permessage-deflate (ClientOptions::compression defaults)
  std::string ca_file;       // wss://: trust these CAs instead of the system store
  bool insecure = false;     // wss://: no certificate verification (test rigs only)
  PayloadKind payload = PayloadKind::filler;  // what fills the messages (bench/payload.hpp)
  unsigned threads = 0;                       // 0: one per core
  std::vector<std::string> source_addresses;  // connection k binds source_addresses[k % size]
  std::vector<std::pair<std::string, std::string>> headers;
  double max_error_rate = 0;    // exit 1 when errors / operations is above this
  std::vector<int> pids;        // server processes to sample (RSS, CPU time), summed; empty: none
  std::size_t subscribers = 0;  // fanout (0: --connections)
  std::size_t publishers = 1;   // fanout
  std::string topic = "bench";  // fanout
  std::string json_path;
  std::string report_path;
};

// Parses "Name: value" (the --header form). Returns an empty string on success, else the reason.
std::string parse_header(std::string_view text, std::pair<std::string, std::string>& header);

// Fills in defaults that depend on other options and returns an empty string, or the reason the
// options cannot run ("--rate is required for the rate scenario").
std::string validate(Options& options);

// Connections the run opens in total (fanout: subscribers + publishers).
std::size_t total_connections(const Options& options) noexcept;

}  // namespace pylon::bench
