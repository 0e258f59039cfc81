// fanout_floor: the floor under any fan-out on this machine. One thread writes the same small
// message to N loopback TCP sockets, one write() each, as a fan-out server must at best; a
// second process (the "subscribers") reads them all with epoll. Reports, per message, the time
// until the last socket had its write, and the writer's CPU time per write: what one core can
// do with one system call per subscriber and no WebSocket work at all.
//
//   fanout_floor [--connections N] [--messages M] [--size BYTES] [--interval-ms MS] [--json FILE]
//
// The writer runs on core 0 and the reader on core 1, like the servers and clients of
// bench/run.py. Both need N descriptors (the reader is a forked child).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void pin(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  sched_setaffinity(0, sizeof set, &set);
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// The subscribers: connect N sockets, then read until every byte of every message has come.
[[noreturn]] void read_all(std::uint16_t port, std::size_t connections, std::size_t total_bytes) {
  pin(1);
  const int epoll_fd = epoll_create1(0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (std::size_t i = 0; i < connections; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      die("connect");
    epoll_event event{EPOLLIN, {.fd = fd}};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
  }
  std::vector<epoll_event> events(1024);
  char buffer[65536];
  std::size_t received = 0;
  while (received < total_bytes) {
    const int ready = epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), 10000);
    if (ready <= 0) die("epoll_wait (the writer stopped?)");
    for (int i = 0; i < ready; ++i) {
      const ssize_t got = read(events[i].data.fd, buffer, sizeof buffer);
      if (got > 0) received += static_cast<std::size_t>(got);
    }
  }
  std::_Exit(0);
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1,
                         static_cast<std::size_t>(p * static_cast<double>(values.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t connections = 10000, messages = 50, size = 64;
  int interval_ms = 100;
  std::string json_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string option = argv[i];
    if (option == "--connections")
      connections = std::stoul(argv[i + 1]);
    else if (option == "--messages")
      messages = std::stoul(argv[i + 1]);
    else if (option == "--size")
      size = std::stoul(argv[i + 1]);
    else if (option == "--interval-ms")
      interval_ms = std::stoi(argv[i + 1]);
    else if (option == "--json")
      json_path = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown option %s\n", option.c_str());
      return 2;
    }
  }
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener, 4096) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    die("listen");
  const pid_t reader = fork();
  if (reader == 0) read_all(ntohs(address.sin_port), connections, connections * messages * size);
  pin(0);
  std::vector<int> sockets;
  sockets.reserve(connections);
  const int one = 1;
  while (sockets.size() < connections) {
    const int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) die("accept");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as WebSocket servers do
    sockets.push_back(fd);
  }
  const std::string message(size, 'x');
  std::vector<double> last_ms;
  double cpu = 0;
  for (std::size_t m = 0; m < messages; ++m) {
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    const double cpu_before = cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    for (const int fd : sockets)
      if (write(fd, message.data(), size) != static_cast<ssize_t>(size)) die("write");
    last_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
    cpu += cpu_seconds() - cpu_before;
  }
  int status = 0;
  waitpid(reader, &status, 0);
  const double us_per_write = cpu * 1e6 / static_cast<double>(connections * messages);
  char json[512];
  std::snprintf(
      json, sizeof json,
      "{\"connections\":%zu,\"messages\":%zu,\"size\":%zu,\"interval_ms\":%d,\"last_write_ms\":"
      "{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},\"writer_cpu_us_per_write\":%.3f,\"reader_ok\":%s}"
      "\n",
      connections, messages, size, interval_ms, percentile(last_ms, 0.5), percentile(last_ms, 0.99),
      percentile(last_ms, 1.0), us_per_write,
      WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "true" : "false");
  std::fputs(json, stdout);
  if (!json_path.empty()) {
    if (FILE* file = std::fopen(json_path.c_str(), "w")) {
      std::fputs(json, file);
      std::fclose(file);
    }
  }
  return 0;
}
