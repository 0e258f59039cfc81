// `pylon bench SCENARIO ...` (docs/bench.md): registered on the command line by main.cpp.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace pylon::cli {

// Adds the `bench` subcommand to `app`. After parsing, call the returned function when the
// subcommand was given: it runs the benchmark and returns the process exit code.
std::function<int()> add_bench_command(CLI::App& app);

}  // namespace pylon::cli
