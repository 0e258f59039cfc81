// A small closed-loop echo client for the benchmark suite (bench/run.py), for the cases that
// `pylon bench` does not cover: the raw TCP ceiling, and holding idle connections.
//
//   echo_client --port P [--mode ws|raw] [--connections N] [--duration S] [--warmup S]
//               [--size B] [--pid PID[,PID...]] [--json FILE] [--sources 127.0.0.1,127.0.0.2]
//               [--path /ws/echo] [--hold]
//
// Every connection sends one binary WebSocket frame (masked, as a client must), waits until the
// whole answer is back, and sends the next: the same closed loop as `pylon bench echo`. In ws mode
// it first performs the HTTP upgrade and expects the unmasked echo frame (4 bytes shorter); in raw
// mode it sends the very same frame bytes to a plain TCP echo and expects them back unchanged, so
// the kernel work per message is the same and only the protocol work differs.
// With --pid it reads utime + stime of those processes from /proc/PID/stat at the start and end of
// the measured window (after the warm-up) and reports server CPU per message.
// --hold connects, reports {"connected": N}, then keeps the connections idle until SIGTERM or the
// duration ends (for the memory-per-connection cases).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/ws/echo";
  bool raw = false;
  bool hold = false;
  int connections = 100;
  double duration = 10;
  double warmup = 1;
  std::size_t size = 16;
  std::vector<int> pids;
  std::vector<std::string> sources;
  std::string json;
};

enum class State { kConnecting, kHandshake, kRunning, kClosed };

struct Connection {
  int fd = -1;
  State state = State::kConnecting;
  std::string handshake;     // response bytes until the end of the headers
  std::size_t awaiting = 0;  // bytes of the current echo still to come
  std::size_t written = 0;   // bytes of the current frame taken by the kernel
  Clock::time_point sent_at;
};

// Log-linear latency histogram in nanoseconds: 16 sub-buckets per power of two (about 6 %).
class Histogram {
 public:
  void record(uint64_t ns) {
    ++counts_[index(ns)];
    ++total_;
    max_ = std::max(max_, ns);
  }
  double percentile_us(double q) const {
    if (total_ == 0) return 0;
    const uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_)));
    uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank && counts_[i] > 0) return static_cast<double>(upper(i)) / 1000.0;
    }
    return static_cast<double>(max_) / 1000.0;
  }
  double max_us() const { return static_cast<double>(max_) / 1000.0; }

 private:
  static std::size_t index(uint64_t ns) {
    if (ns < 16) return static_cast<std::size_t>(ns);
    const int bits = 63 - __builtin_clzll(ns);
    const uint64_t sub = (ns >> (bits - 4)) & 15;
    return static_cast<std::size_t>((bits - 3) * 16 + sub);
  }
  static uint64_t upper(std::size_t i) {
    if (i < 16) return i;
    const int bits = static_cast<int>(i / 16) + 3;
    const uint64_t sub = i % 16;
    return ((16 + sub + 1) << (bits - 4)) - 1;
  }
  std::array<uint64_t, 64 * 16> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

volatile sig_atomic_t stop_requested = 0;

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, separator);)
    if (!part.empty()) parts.push_back(part);
  return parts;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "echo_client: %s\n(see the comment at the top of echo_client.cpp)\n", why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (name == "--raw") {
      options.raw = true;
      continue;
    }
    if (name == "--hold") {
      options.hold = true;
      continue;
    }
    if (i + 1 >= argc) usage(("missing value for " + name).c_str());
    const std::string value = argv[++i];
    if (name == "--host")
      options.host = value;
    else if (name == "--port")
      options.port = std::atoi(value.c_str());
    else if (name == "--path")
      options.path = value;
    else if (name == "--mode")
      options.raw = (value == "raw");
    else if (name == "--connections")
      options.connections = std::atoi(value.c_str());
    else if (name == "--duration")
      options.duration = std::atof(value.c_str());
    else if (name == "--warmup")
      options.warmup = std::atof(value.c_str());
    else if (name == "--size")
      options.size = std::strtoull(value.c_str(), nullptr, 10);
    else if (name == "--json")
      options.json = value;
    else if (name == "--sources")
      options.sources = split(value, ',');
    else if (name == "--pid")
      for (const auto& pid : split(value, ',')) options.pids.push_back(std::atoi(pid.c_str()));
    else
      usage(("unknown option " + name).c_str());
  }
  if (options.port <= 0) usage("--port is required");
  if (options.sources.empty()) options.sources.push_back("127.0.0.1");
  return options;
}

// utime + stime of the processes, in seconds (fields 14 and 15 of /proc/PID/stat).
double cpu_seconds(const std::vector<int>& pids) {
  double total = 0;
  for (int pid : pids) {
    std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(text.substr(paren + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int index = 3; fields >> field; ++index) {
      if (index == 14) utime = std::stoull(field);
      if (index == 15) {
        stime = std::stoull(field);
        break;
      }
    }
    total += static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return total;
}

// A binary frame as a client sends it: FIN + opcode 2, mask bit, length, mask key, payload.
std::string client_frame(std::size_t size) {
  std::string frame;
  frame.push_back(static_cast<char>(0x82));
  if (size < 126) {
    frame.push_back(static_cast<char>(0x80 | size));
  } else if (size < 65536) {
    frame.push_back(static_cast<char>(0x80 | 126));
    frame.push_back(static_cast<char>(size >> 8));
    frame.push_back(static_cast<char>(size & 0xff));
  } else {
    frame.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) frame.push_back(static_cast<char>(size >> shift));
  }
  const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  frame.append(reinterpret_cast<const char*>(mask), 4);
  for (std::size_t i = 0; i < size; ++i) frame.push_back(static_cast<char>('x' ^ mask[i % 4]));
  return frame;
}

void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  raise_open_file_limit();
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, [](int) { stop_requested = 1; });
  signal(SIGINT, [](int) { stop_requested = 1; });

  const std::string frame = client_frame(options.size);
  // The server's echo has no mask key; the raw echo returns the frame as it came.
  const std::size_t answer_size = options.raw ? frame.size() : frame.size() - 4;
  const std::string request = "GET " + options.path + " HTTP/1.1\r\nHost: " + options.host + ":" +
                              std::to_string(options.port) +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(static_cast<uint16_t>(options.port));
  inet_pton(AF_INET, options.host.c_str(), &server.sin_addr);

  const int epoll = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Connection> connections(options.connections);
  std::map<std::string, uint64_t> errors;
  Histogram latency;
  std::vector<char> buffer(1 << 20);

  int next_to_open = 0, in_progress = 0, ready = 0, closed = 0;
  constexpr int kMaxInProgress = 256;  // stay under the listen backlog while connecting

  auto fail = [&](Connection& connection, const char* kind) {
    ++errors[kind];
    if (connection.state == State::kConnecting || connection.state == State::kHandshake)
      --in_progress;
    if (connection.state == State::kRunning) --ready;
    connection.state = State::kClosed;
    ++closed;
    epoll_ctl(epoll, EPOLL_CTL_DEL, connection.fd, nullptr);
    close(connection.fd);
  };

  auto open_more = [&] {
    while (next_to_open < options.connections && in_progress < kMaxInProgress) {
      Connection& connection = connections[next_to_open];
      const int index = next_to_open++;
      connection.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (connection.fd < 0) {
        ++errors["socket"];
        connection.state = State::kClosed;
        ++closed;
        continue;
      }
      int one = 1;
      setsockopt(connection.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (options.sources.size() > 1 || options.sources[0] != "127.0.0.1") {
        setsockopt(connection.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sockaddr_in local{};
        local.sin_family = AF_INET;
        inet_pton(AF_INET, options.sources[index % options.sources.size()].c_str(),
                  &local.sin_addr);
        bind(connection.fd, reinterpret_cast<sockaddr*>(&local), sizeof local);
      }
      ++in_progress;
      if (connect(connection.fd, reinterpret_cast<sockaddr*>(&server), sizeof server) != 0 &&
          errno != EINPROGRESS) {
        ++errors[errno == ECONNREFUSED ? "refused" : "connect"];
        close(connection.fd);
        connection.state = State::kClosed;
        --in_progress;
        ++closed;
        continue;
      }
      epoll_event event{};
      event.events = EPOLLOUT;
      event.data.u32 = static_cast<uint32_t>(index);
      epoll_ctl(epoll, EPOLL_CTL_ADD, connection.fd, &event);
    }
  };

  bool measuring = false, loaded = false;
  uint64_t messages = 0;

  auto send_frame = [&](Connection& connection, uint32_t index) {
    connection.sent_at = Clock::now();
    connection.awaiting = answer_size;
    const ssize_t sent = write(connection.fd, frame.data(), frame.size());
    if (sent < 0 && errno != EAGAIN) return fail(connection, "write");
    connection.written = sent > 0 ? static_cast<std::size_t>(sent) : 0;
    if (connection.written < frame.size()) {
      epoll_event event{};
      event.events = EPOLLIN | EPOLLOUT;
      event.data.u32 = index;
      epoll_ctl(epoll, EPOLL_CTL_MOD, connection.fd, &event);
    }
  };

  auto start_running = [&](Connection& connection, uint32_t index) {
    --in_progress;
    ++ready;
    connection.state = State::kRunning;
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u32 = index;
    epoll_ctl(epoll, EPOLL_CTL_MOD, connection.fd, &event);
    std::string().swap(connection.handshake);
    if (loaded) send_frame(connection, index);
  };

  const auto started = Clock::now();
  Clock::time_point connected_at{}, window_start{}, window_end{};
  double cpu_start = 0, cpu_end = 0;
  constexpr double kConnectTimeout = 120;  // 100,000 handshakes on one shared core take a while
  std::vector<epoll_event> events(1024);

  open_more();
  for (;;) {
    const int count = epoll_wait(epoll, events.data(), static_cast<int>(events.size()), 50);
    for (int i = 0; i < count; ++i) {
      const uint32_t index = events[i].data.u32;
      Connection& connection = connections[index];
      if (connection.state == State::kClosed) continue;
      if (connection.state == State::kConnecting) {
        int error = 0;
        socklen_t length = sizeof error;
        getsockopt(connection.fd, SOL_SOCKET, SO_ERROR, &error, &length);
        if (error != 0) {
          fail(connection, error == ECONNREFUSED ? "refused" : "connect");
          continue;
        }
        if (options.raw) {
          start_running(connection, index);
          continue;
        }
        if (write(connection.fd, request.data(), request.size()) !=
            static_cast<ssize_t>(request.size())) {
          fail(connection, "handshake_write");
          continue;
        }
        connection.state = State::kHandshake;
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.u32 = index;
        epoll_ctl(epoll, EPOLL_CTL_MOD, connection.fd, &event);
        continue;
      }
      if (connection.state == State::kRunning && (events[i].events & EPOLLOUT) &&
          connection.written < frame.size()) {
        const ssize_t sent = write(connection.fd, frame.data() + connection.written,
                                   frame.size() - connection.written);
        if (sent < 0 && errno != EAGAIN) {
          fail(connection, "write");
          continue;
        }
        if (sent > 0) connection.written += static_cast<std::size_t>(sent);
        if (connection.written == frame.size()) {
          epoll_event event{};
          event.events = EPOLLIN;
          event.data.u32 = index;
          epoll_ctl(epoll, EPOLL_CTL_MOD, connection.fd, &event);
        }
      }
      if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      const ssize_t received = read(connection.fd, buffer.data(), buffer.size());
      if (received == 0 || (received < 0 && errno != EAGAIN)) {
        fail(connection, "closed_by_server");
        continue;
      }
      if (received < 0) continue;
      if (connection.state == State::kHandshake) {
        connection.handshake.append(buffer.data(), static_cast<std::size_t>(received));
        const auto end = connection.handshake.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        if (connection.handshake.compare(0, 12, "HTTP/1.1 101") != 0) {
          fail(connection, "handshake_status");
          continue;
        }
        start_running(connection, index);
        continue;
      }
      if (options.hold) continue;  // idle connections: whatever the server sends is ignored
      if (static_cast<std::size_t>(received) > connection.awaiting) {
        fail(connection, "unexpected_bytes");
        continue;
      }
      connection.awaiting -= static_cast<std::size_t>(received);
      if (connection.awaiting > 0) continue;
      if (measuring) {
        ++messages;
        latency.record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - connection.sent_at)
                .count()));
      }
      send_frame(connection, index);
    }
    open_more();

    const auto now = Clock::now();
    const double since_start = std::chrono::duration<double>(now - started).count();
    if (connected_at == Clock::time_point{}) {
      if (ready + closed >= options.connections || since_start > kConnectTimeout) {
        if (ready + closed < options.connections)
          errors["connect_timeout"] += static_cast<uint64_t>(options.connections - ready - closed);
        connected_at = now;
        if (options.hold) {
          std::string line = "{\"connected\": " + std::to_string(ready) + ", \"errors\": {";
          for (const auto& [kind, number] : errors)
            line += (line.back() == '{' ? "\"" : ", \"") + kind + "\": " + std::to_string(number);
          std::printf("%s}}\n", line.c_str());
          std::fflush(stdout);
        } else {
          loaded = true;
          for (std::size_t index = 0; index < connections.size(); ++index)
            if (connections[index].state == State::kRunning)
              send_frame(connections[index], static_cast<uint32_t>(index));
        }
      }
      continue;
    }
    const double since_connected = std::chrono::duration<double>(now - connected_at).count();
    if (!options.hold && !measuring && window_start == Clock::time_point{} &&
        since_connected >= options.warmup) {
      measuring = true;
      window_start = Clock::now();
      cpu_start = cpu_seconds(options.pids);
    }
    if (stop_requested || since_connected >= options.warmup + options.duration) {
      if (measuring) {
        cpu_end = cpu_seconds(options.pids);
        window_end = Clock::now();
        measuring = false;
      }
      break;
    }
  }

  const double seconds = window_end > window_start
                             ? std::chrono::duration<double>(window_end - window_start).count()
                             : 0.0;
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(3);
  out << "{\n  \"client\": \"echo_client\",\n  \"scenario\": \"" << (options.hold ? "hold" : "echo")
      << "\",\n  \"mode\": \"" << (options.raw ? "raw" : "ws")
      << "\",\n  \"connections\": " << options.connections << ",\n  \"connected\": " << ready
      << ",\n  \"size\": " << options.size << ",\n  \"duration_s\": " << seconds
      << ",\n  \"messages\": " << messages << ",\n  \"messages_per_second\": "
      << (seconds > 0 ? static_cast<double>(messages) / seconds : 0)
      << ",\n  \"latency_us\": {\"p50\": " << latency.percentile_us(0.5)
      << ", \"p90\": " << latency.percentile_us(0.9) << ", \"p99\": " << latency.percentile_us(0.99)
      << ", \"p999\": " << latency.percentile_us(0.999) << ", \"max\": " << latency.max_us()
      << "},\n  \"errors\": {";
  bool first = true;
  for (const auto& [kind, number] : errors) {
    out << (first ? "" : ", ") << "\"" << kind << "\": " << number;
    first = false;
  }
  out << "}";
  if (!options.pids.empty() && !options.hold) {
    out.precision(4);
    out << ",\n  \"server_cpu_seconds\": " << (cpu_end - cpu_start)
        << ",\n  \"server_cpu_us_per_message\": "
        << (messages > 0 ? (cpu_end - cpu_start) * 1e6 / static_cast<double>(messages) : 0);
  }
  out << "\n}\n";
  if (!options.json.empty()) std::ofstream(options.json) << out.str();
  if (!options.hold) std::fputs(out.str().c_str(), stdout);
  return 0;
}
