// Samples another process (the server under test, `--pid`) from /proc: resident memory from
// /proc/PID/status (VmRSS) and CPU time from /proc/PID/stat (utime + stime, and utime alone).
// Coordinator thread.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace pylon::bench {

struct ProcessSample {
  std::uint64_t rss_bytes = 0;
  double cpu_seconds = 0;       // user + system since the process started
  double cpu_user_seconds = 0;  // the user part of it (utime)
};

// nullopt when the process is gone or /proc cannot be read.
std::optional<ProcessSample> sample_process(int pid);
// The sum over several processes (a server run as several processes); nullopt if one is gone.
std::optional<ProcessSample> sample_processes(const std::vector<int>& pids);

}  // namespace pylon::bench
