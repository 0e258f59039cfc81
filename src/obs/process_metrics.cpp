#include "obs/process_metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace pylon::obs {
namespace {

using Values = std::vector<std::pair<Labels, double>>;

// Fields of /proc/self/stat after the command name (which may contain spaces).
std::vector<std::string> stat_fields() {
  std::ifstream file("/proc/self/stat");
  std::string line;
  std::getline(file, line);
  std::vector<std::string> fields;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 2));
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;  // fields[0] is field 3 (state)
}

double boot_time_seconds() {
  std::ifstream file("/proc/stat");
  for (std::string key; file >> key;) {
    if (key == "btime") {
      double value = 0;
      file >> value;
      return value;
    }
    file.ignore(1 << 20, '\n');
  }
  return 0;
}

std::size_t count_open_fds() {
  std::size_t count = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (const dirent* entry = readdir(dir))
      if (entry->d_name[0] != '.') ++count;
    closedir(dir);
    if (count > 0) --count;  // the directory stream's own descriptor
  }
  return count;
}

}  // namespace

void register_process_metrics(MetricsRegistry& registry) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  registry.computed(
      "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter",
      [ticks]() -> Values {
        const auto fields = stat_fields();
        if (fields.size() < 13) return {};
        return {{{}, (std::stod(fields[11]) + std::stod(fields[12])) / ticks}};  // utime, stime
      });
  registry.computed("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
                    [page]() -> Values {
                      const auto fields = stat_fields();
                      if (fields.size() < 22) return {};
                      return {{{}, std::stod(fields[21]) * page}};  // rss
                    });
  registry.computed("process_open_fds", "Number of open file descriptors.", "gauge",
                    []() -> Values {
                      return {{{}, static_cast<double>(count_open_fds())}};
                    });
  registry.computed("process_max_fds", "Maximum number of open file descriptors.", "gauge",
                    []() -> Values {
                      rlimit limit{};
                      getrlimit(RLIMIT_NOFILE, &limit);
                      return {{{}, static_cast<double>(limit.rlim_cur)}};
                    });
  const double boot = boot_time_seconds();
  registry.computed("process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.", "gauge",
                    [ticks, boot]() -> Values {
                      const auto fields = stat_fields();
                      if (fields.size() < 20) return {};
                      return {{{}, boot + std::stod(fields[19]) / ticks}};  // starttime
                    });
}

}  // namespace pylon::obs
