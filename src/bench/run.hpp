// `pylon bench`: runs a scenario (docs/bench.md) and reports it. Called by
// src/cli/bench_command.cpp on the main thread, which coordinates: it starts one worker thread per
// --threads, moves the run through its phases (connect, warmup, measure, drain), samples the
// timeline every second and writes the summary, --json and --report at the end.
#pragma once

#include "bench/options.hpp"

namespace pylon::bench {

constexpr int kExitOk = 0;
constexpr int kExitTooManyErrors = 1;  // errors / operations above --max-error-rate
constexpr int kExitUsage = 2;          // bad options, unreadable --pid, unwritable output file

int run(Options options);

}  // namespace pylon::bench
