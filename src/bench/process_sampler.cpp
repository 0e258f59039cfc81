#include "bench/process_sampler.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace pylon::bench {
namespace {

std::optional<std::uint64_t> read_rss_bytes(int pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return std::nullopt;
  char line[256];
  std::optional<std::uint64_t> rss;
  while (std::fgets(line, sizeof line, file) != nullptr) {
    unsigned long long kib = 0;
    if (std::sscanf(line, "VmRSS: %llu kB", &kib) == 1) {
      rss = static_cast<std::uint64_t>(kib) * 1024;
      break;
    }
  }
  std::fclose(file);
  return rss;
}

struct CpuSeconds {
  double user = 0;
  double system = 0;
};

std::optional<CpuSeconds> read_cpu_seconds(int pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return std::nullopt;
  char line[4096];
  const bool got = std::fgets(line, sizeof line, file) != nullptr;
  std::fclose(file);
  if (!got) return std::nullopt;
  // proc(5): field 2 is "(comm)", which may hold spaces and parentheses; fields 14 and 15
  // (utime, stime, in clock ticks) are counted from the last ')'.
  const char* end_of_comm = std::strrchr(line, ')');
  if (end_of_comm == nullptr) return std::nullopt;
  unsigned long long utime = 0, stime = 0;
  // After ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime
  // stime
  if (std::sscanf(end_of_comm + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                  &stime) != 2)
    return std::nullopt;
  const long ticks = sysconf(_SC_CLK_TCK);
  const double per_second = static_cast<double>(ticks > 0 ? ticks : 100);
  return CpuSeconds{.user = static_cast<double>(utime) / per_second,
                    .system = static_cast<double>(stime) / per_second};
}

}  // namespace

std::optional<ProcessSample> sample_process(int pid) {
  const auto rss = read_rss_bytes(pid);
  const auto cpu = read_cpu_seconds(pid);
  if (!rss || !cpu) return std::nullopt;
  return ProcessSample{
      .rss_bytes = *rss, .cpu_seconds = cpu->user + cpu->system, .cpu_user_seconds = cpu->user};
}

std::optional<ProcessSample> sample_processes(const std::vector<int>& pids) {
  ProcessSample sum;
  for (const int pid : pids) {
    const auto one = sample_process(pid);
    if (!one) return std::nullopt;
    sum.rss_bytes += one->rss_bytes;
    sum.cpu_seconds += one->cpu_seconds;
    sum.cpu_user_seconds += one->cpu_user_seconds;
  }
  return sum;
}

}  // namespace pylon::bench
