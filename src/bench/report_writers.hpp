// The three views of a BenchResult: the summary on stdout, the --json document and the --report
// HTML page (which embeds the JSON and draws its charts from it). docs/bench.md describes them.
#pragma once

#include <cstdio>
#include <string>

#include "bench/result.hpp"

namespace pylon::bench {

void print_summary(const BenchResult& result, std::FILE* out);
std::string to_json(const BenchResult& result);
std::string to_html(const BenchResult& result);

}  // namespace pylon::bench
