// A small closed-loop client for the benchmark suite (bench/run.py), for the cases that
// `pylon bench` does not cover: the raw TCP ceiling, connection churn, and holding idle
// connections.
//
//   echo_client --port P [--mode ws|raw] [--connections N] [--duration S] [--warmup S]
//               [--size B] [--in-flight K] [--pid PID[,PID...]] [--json FILE]
//               [--sources 127.0.0.1,127.0.0.2] [--path /ws/echo] [--hold | --churn]
//
// Echo (the default): every connection keeps K binary WebSocket frames (masked, as a client must)
// in flight, and sends the next one as each whole answer comes back: the same closed loop as
// `pylon bench echo --in-flight K`. In ws mode it first performs the HTTP upgrade and expects the
// unmasked echo frame (4 bytes shorter); in raw mode it sends the very same frame bytes to a plain
// TCP echo and expects them back unchanged, so the kernel work per message is the same and only
// the protocol work differs.
// --churn: every connection slot runs cycles of connect, upgrade, close handshake: it sends the
// upgrade request, waits for the 101, sends a masked close frame (1000) and reads until the server
// has closed the TCP connection (RFC 6455 §7.1.1: the server closes first, so the TIME_WAIT
// sockets are the server's and this client never runs out of ports), then opens the next. In raw
// mode (the floor: accept and close with the same bytes exchanged) the echo server returns the
// request and the close frame, and the client then resets the connection (SO_LINGER 0: the raw
// echo never closes first). Cycles per second and the cycle time (connect to closed) are reported.
// With --pid it reads utime and stime of those processes from /proc/PID/stat at the start and end
// of the measured window (after the warm-up) and reports server CPU per message (per cycle).
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
  bool churn = false;
  int connections = 100;
  std::size_t in_flight = 1;
  double duration = 10;
  double warmup = 1;
  std::size_t size = 16;
  std::vector<int> pids;
  std::vector<std::string> sources;
  std::string json;
};

// kClosing: churn only, the close frame is sent and the server's close (or its echo) awaited.
enum class State { kConnecting, kHandshake, kRunning, kClosing, kClosed };

struct Connection {
  int fd = -1;
  State state = State::kClosed;
  std::string handshake;         // response bytes until the end of the headers
  std::size_t outstanding = 0;   // frames sent whose whole answer is not back yet
  std::size_t partial = 0;       // bytes of the next answer already received
  std::size_t unwritten = 0;     // bytes of the sent frames the kernel has not taken yet
  std::size_t write_offset = 0;  // where the next unwritten byte is within a frame
  bool watching_out = false;     // EPOLLOUT armed (only while some bytes are unwritten)
  uint64_t sent = 0;             // frames sent so far; their send times are in a ring
  uint64_t answered = 0;         // answers received so far
  Clock::time_point opened_at;   // churn: the start of the cycle
};

constexpr std::size_t kMaxInFlight = 64;

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
    if (name == "--churn") {
      options.churn = true;
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
    else if (name == "--in-flight")
      options.in_flight = std::strtoull(value.c_str(), nullptr, 10);
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
  if (options.in_flight < 1 || options.in_flight > kMaxInFlight) usage("--in-flight: 1 to 64");
  if (options.hold && options.churn) usage("--hold and --churn exclude each other");
  return options;
}

struct CpuSeconds {
  double user = 0;
  double system = 0;
};

// utime and stime of the processes, in seconds (fields 14 and 15 of /proc/PID/stat).
CpuSeconds cpu_seconds(const std::vector<int>& pids) {
  CpuSeconds total;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
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
    total.user += static_cast<double>(utime) / ticks;
    total.system += static_cast<double>(stime) / ticks;
  }
  return total;
}

// A frame as a client sends it: FIN + opcode (binary unless told), mask bit, length, mask key,
// payload.
std::string client_frame(std::size_t size, unsigned char opcode = 0x2,
                         const std::string& payload = {}) {
  std::string frame;
  frame.push_back(static_cast<char>(0x80 | opcode));
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
  for (std::size_t i = 0; i < size; ++i) {
    const char byte = payload.empty() ? 'x' : payload[i];
    frame.push_back(static_cast<char>(byte ^ mask[i % 4]));
  }
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
  // Room for a whole window of frames starting anywhere inside the first one (write_offset).
  std::string frames;
  for (std::size_t i = 0; i <= options.in_flight; ++i) frames += frame;
  // The server's echo has no mask key; the raw echo returns the frame as it came.
  const std::size_t answer_size = options.raw ? frame.size() : frame.size() - 4;
  const std::string request = "GET " + options.path + " HTTP/1.1\r\nHost: " + options.host + ":" +
                              std::to_string(options.port) +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
  const std::string close_frame = client_frame(2, 0x8, std::string("\x03\xe8", 2));  // 1000
  const bool handshake = !options.raw || options.churn;

  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(static_cast<uint16_t>(options.port));
  inet_pton(AF_INET, options.host.c_str(), &server.sin_addr);

  const int epoll = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Connection> connections(options.connections);
  std::vector<Clock::time_point> sent_at(
      options.hold ? 0 : static_cast<std::size_t>(options.connections) * options.in_flight);
  std::map<std::string, uint64_t> errors;
  Histogram latency;
  std::vector<char> buffer(1 << 20);

  int next_to_open = 0, in_progress = 0, ready = 0, closed = 0;
  constexpr int kMaxInProgress = 256;  // stay under the listen backlog while connecting
  bool measuring = false, loaded = options.churn;
  uint64_t messages = 0, cycles = 0;

  auto watch = [&](int fd, uint32_t events, uint32_t index) {
    epoll_event event{};
    event.events = events;
    event.data.u32 = index;
    epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event);
  };

  auto open_connection = [&](uint32_t index) {
    Connection& connection = connections[index];
    connection = Connection{};
    connection.opened_at = Clock::now();
    connection.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connection.fd < 0) {
      ++errors["socket"];
      ++closed;
      return;
    }
    int one = 1;
    // Churn writes only when nothing is unacknowledged (the 101 acknowledges the request), so
    // Nagle never holds its bytes: one system call less per cycle.
    if (!options.churn) setsockopt(connection.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (options.sources.size() > 1 || options.sources[0] != "127.0.0.1") {
      setsockopt(connection.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in local{};
      local.sin_family = AF_INET;
      inet_pton(AF_INET, options.sources[index % options.sources.size()].c_str(), &local.sin_addr);
      bind(connection.fd, reinterpret_cast<sockaddr*>(&local), sizeof local);
    }
    ++in_progress;
    if (connect(connection.fd, reinterpret_cast<sockaddr*>(&server), sizeof server) != 0 &&
        errno != EINPROGRESS) {
      ++errors[errno == ECONNREFUSED ? "refused" : "connect"];
      close(connection.fd);
      --in_progress;
      ++closed;
      return;
    }
    connection.state = State::kConnecting;
    epoll_event event{};
    // Churn: edge-triggered for the whole cycle (connected, 101, close frame, FIN), so a cycle
    // needs no EPOLL_CTL_MOD; EPOLLRDHUP tells a FIN that came with the close frame (no read of
    // the EOF then). The client's system calls per cycle are its ceiling on cycles per second.
    event.events = options.churn ? EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET : EPOLLOUT;
    event.data.u32 = index;
    epoll_ctl(epoll, EPOLL_CTL_ADD, connection.fd, &event);
  };

  auto open_more = [&] {
    while (next_to_open < options.connections && in_progress < kMaxInProgress)
      open_connection(static_cast<uint32_t>(next_to_open++));
  };

  // Ends a connection; in churn mode the slot starts its next cycle (an error too, so that a
  // failing server does not silently leave fewer slots running).
  auto finish = [&](Connection& connection, uint32_t index, const char* error) {
    if (error != nullptr) ++errors[error];
    if (connection.state == State::kConnecting || connection.state == State::kHandshake)
      --in_progress;
    if (connection.state == State::kRunning) --ready;
    connection.state = State::kClosed;
    close(connection.fd);  // leaves the epoll set with it: the fd is this client's alone
    if (options.churn && !stop_requested)
      open_connection(index);
    else
      ++closed;
  };

  // Writes what the kernel takes of the unwritten frames; EPOLLOUT while some are left.
  auto flush = [&](Connection& connection, uint32_t index) {
    const ssize_t sent =
        write(connection.fd, frames.data() + connection.write_offset, connection.unwritten);
    if (sent < 0 && errno != EAGAIN) return finish(connection, index, "write");
    const auto taken = static_cast<std::size_t>(std::max<ssize_t>(sent, 0));
    connection.unwritten -= taken;
    connection.write_offset = (connection.write_offset + taken) % frame.size();
    if ((connection.unwritten > 0) != connection.watching_out) {
      connection.watching_out = connection.unwritten > 0;
      watch(connection.fd, connection.watching_out ? EPOLLIN | EPOLLOUT : EPOLLIN, index);
    }
  };

  auto send_frames = [&](Connection& connection, uint32_t index, std::size_t count) {
    const auto now = Clock::now();
    for (std::size_t i = 0; i < count; ++i)
      sent_at[index * options.in_flight + connection.sent++ % options.in_flight] = now;
    connection.outstanding += count;
    const bool idle = connection.unwritten == 0;
    connection.unwritten += count * frame.size();
    if (idle) flush(connection, index);
  };

  auto start_running = [&](Connection& connection, uint32_t index) {
    --in_progress;
    ++ready;
    connection.state = State::kRunning;
    watch(connection.fd, EPOLLIN, index);
    std::string().swap(connection.handshake);
    if (loaded) send_frames(connection, index, options.in_flight);
  };

  // Churn: the upgrade (or its raw echo) is back; send the close frame.
  auto start_closing = [&](Connection& connection, uint32_t index) {
    --in_progress;
    connection.state = State::kClosing;
    connection.handshake.clear();
    if (write(connection.fd, close_frame.data(), close_frame.size()) !=
        static_cast<ssize_t>(close_frame.size()))
      finish(connection, index, "close_write");
  };

  auto end_cycle = [&](Connection& connection, uint32_t index) {
    if (measuring) {
      ++cycles;
      latency.record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - connection.opened_at)
              .count()));
    }
    if (options.raw) {  // reset: the raw echo never closes first
      const linger abort{.l_onoff = 1, .l_linger = 0};
      setsockopt(connection.fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    }
    finish(connection, index, nullptr);
  };

  auto on_answer_bytes = [&](Connection& connection, uint32_t index, std::size_t received) {
    if (connection.partial + received > connection.outstanding * answer_size)
      return finish(connection, index, "unexpected_bytes");
    const std::size_t bytes = connection.partial + received;
    const std::size_t answers = bytes / answer_size;
    connection.partial = bytes % answer_size;
    if (answers == 0) return;
    connection.outstanding -= answers;
    const auto now = Clock::now();
    for (std::size_t i = 0; i < answers; ++i) {
      const auto sent =
          sent_at[index * options.in_flight + connection.answered++ % options.in_flight];
      if (measuring) {
        ++messages;
        latency.record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent).count()));
      }
    }
    send_frames(connection, index, answers);
  };

  const auto started = Clock::now();
  Clock::time_point connected_at = options.churn ? started : Clock::time_point{};
  Clock::time_point window_start{}, window_end{};
  CpuSeconds cpu_start, cpu_end;
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
        if (events[i].events & (EPOLLERR | EPOLLHUP)) {  // the connect failed: why
          int error = 0;
          socklen_t length = sizeof error;
          getsockopt(connection.fd, SOL_SOCKET, SO_ERROR, &error, &length);
          finish(connection, index, error == ECONNREFUSED ? "refused" : "connect");
          continue;
        }
        if (!(events[i].events & EPOLLOUT)) continue;  // churn's edge-triggered: not yet
        if (!handshake) {
          start_running(connection, index);
          continue;
        }
        if (write(connection.fd, request.data(), request.size()) !=
            static_cast<ssize_t>(request.size())) {
          finish(connection, index, "handshake_write");
          continue;
        }
        connection.state = State::kHandshake;
        if (!options.churn) watch(connection.fd, EPOLLIN, index);
        if (!(events[i].events & EPOLLIN)) continue;  // churn: the 101 may be here already
      }
      if (connection.state == State::kRunning && (events[i].events & EPOLLOUT) &&
          connection.unwritten > 0) {
        flush(connection, index);
        if (connection.state != State::kRunning) continue;
      }
      if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      const ssize_t received = read(connection.fd, buffer.data(), buffer.size());
      if (received == 0 && connection.state == State::kClosing && !options.raw) {
        end_cycle(connection, index);  // the server closed after the close handshake
        continue;
      }
      if (received == 0 || (received < 0 && errno != EAGAIN)) {
        finish(connection, index, "closed_by_server");
        continue;
      }
      if (received < 0) continue;
      const auto bytes = static_cast<std::size_t>(received);
      if (connection.state == State::kClosing) {
        // ws: the server's close frame, then EOF (here already if EPOLLRDHUP came with it);
        // raw: the echo of the close frame.
        connection.handshake.append(buffer.data(), bytes);
        if (options.raw ? connection.handshake.size() >= close_frame.size()
                        : (events[i].events & EPOLLRDHUP) != 0)
          end_cycle(connection, index);
        continue;
      }
      if (connection.state == State::kHandshake) {
        connection.handshake.append(buffer.data(), bytes);
        if (options.raw) {  // churn floor: the request comes back as it was sent
          if (connection.handshake.size() >= request.size()) start_closing(connection, index);
          continue;
        }
        const auto end = connection.handshake.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        if (connection.handshake.compare(0, 12, "HTTP/1.1 101") != 0) {
          finish(connection, index, "handshake_status");
          continue;
        }
        if (options.churn)
          start_closing(connection, index);
        else
          start_running(connection, index);
        continue;
      }
      if (options.hold) continue;  // idle connections: whatever the server sends is ignored
      on_answer_bytes(connection, index, bytes);
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
              send_frames(connections[index], static_cast<uint32_t>(index), options.in_flight);
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
  const uint64_t done = options.churn ? cycles : messages;
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(3);
  out << "{\n  \"client\": \"echo_client\",\n  \"scenario\": \""
      << (options.hold    ? "hold"
          : options.churn ? "churn"
                          : "echo")
      << "\",\n  \"mode\": \"" << (options.raw ? "raw" : "ws")
      << "\",\n  \"connections\": " << options.connections << ",\n  \"connected\": " << ready
      << ",\n  \"size\": " << options.size << ",\n  \"in_flight\": " << options.in_flight
      << ",\n  \"duration_s\": " << seconds;
  if (options.churn)
    out << ",\n  \"cycles\": " << cycles << ",\n  \"cycles_per_second\": ";
  else
    out << ",\n  \"messages\": " << messages << ",\n  \"messages_per_second\": ";
  out << (seconds > 0 ? static_cast<double>(done) / seconds : 0)
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
    const double user = cpu_end.user - cpu_start.user;
    const double system = cpu_end.system - cpu_start.system;
    const auto per = [&](double cpu) {
      return done > 0 ? cpu * 1e6 / static_cast<double>(done) : 0;
    };
    const char* unit = options.churn ? "cycle" : "message";
    out.precision(4);
    out << ",\n  \"server_cpu_seconds\": " << user + system
        << ",\n  \"server_cpu_user_seconds\": " << user
        << ",\n  \"server_cpu_system_seconds\": " << system << ",\n  \"server_cpu_us_per_" << unit
        << "\": " << per(user + system) << ",\n  \"server_cpu_user_us_per_" << unit
        << "\": " << per(user) << ",\n  \"server_cpu_system_us_per_" << unit
        << "\": " << per(system);
  }
  out << "\n}\n";
  if (!options.json.empty()) std::ofstream(options.json) << out.str();
  if (!options.hold) std::fputs(out.str().c_str(), stdout);
  return 0;
}
