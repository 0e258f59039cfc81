#include "bench/options.hpp"

#include <algorithm>
#include <thread>

namespace pylon::bench {
namespace {

constexpr std::string_view kScenarioNames[] = {"echo", "rate", "fanout", "connect"};

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

std::string_view scenario_name(Scenario scenario) noexcept {
  return kScenarioNames[static_cast<std::size_t>(scenario)];
}

bool parse_scenario(std::string_view name, Scenario& scenario) noexcept {
  for (std::size_t i = 0; i < std::size(kScenarioNames); ++i) {
    if (kScenarioNames[i] == name) {
      scenario = static_cast<Scenario>(i);
      return true;
    }
  }
  return false;
}

std::string parse_header(std::string_view text, std::pair<std::string, std::string>& header) {
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos)
    return "--header: expected 'Name: value': " + std::string(text);
  const std::string_view name = trim(text.substr(0, colon));
  if (name.empty()) return "--header: empty name: " + std::string(text);
  header = {std::string(name), std::string(trim(text.substr(colon + 1)))};
  return {};
}

std::size_t total_connections(const Options& options) noexcept {
  if (options.scenario == Scenario::fanout) return options.subscribers + options.publishers;
  return options.connections;
}

std::string validate(Options& options) {
  if (options.urls.empty()) return "--url is required";
  if (options.duration <= 0) return "--duration must be positive";
  if (options.warmup < 0) return "--warmup must not be negative";
  if (options.ramp_rate < 0) return "--ramp-rate must not be negative";
  if (options.max_error_rate < 0) return "--max-error-rate must not be negative";
  if (options.in_flight == 0) return "--in-flight must be at least 1";
  if (options.insecure && !options.ca_file.empty())
    return "--ca-file is of no use with --insecure (nothing is verified)";
  if (options.scenario == Scenario::fanout) {
    if (options.subscribers == 0) options.subscribers = options.connections;
    if (options.subscribers == 0) return "--subscribers must be at least 1";
    if (options.publishers == 0) return "--publishers must be at least 1";
    if (options.topic.empty() || options.topic.size() > 128)
      return "--topic must be 1 to 128 bytes";
    if (options.binary) return "--binary does not apply to fanout (the protocol is JSON text)";
  } else if (options.connections == 0) {
    return "--connections must be at least 1";
  }
  if ((options.scenario == Scenario::rate || options.scenario == Scenario::fanout) &&
      options.rate <= 0)
    return "--rate is required (messages per second in total) for the " +
           std::string(scenario_name(options.scenario)) + " scenario";
  if (options.scenario == Scenario::echo && options.rate > 0)
    return "--rate does not apply to echo (a closed loop); use the rate scenario";
  if (options.size == 0 && options.scenario != Scenario::connect)
    return "--size must be at least 1";
  if (options.threads == 0) options.threads = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t connections = total_connections(options);
  if (options.threads > connections) options.threads = static_cast<unsigned>(connections);
  return {};
}

}  // namespace pylon::bench
