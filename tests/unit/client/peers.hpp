// Peers for the client's end-to-end tests, all on 127.0.0.1: subprocesses (the pylon binary of
// this build, the Python `websockets` echo peer) cleaned up by PID, a scripted raw TCP server in
// a thread for the handshake and protocol failures no real server commits, and a runner that
// bounds a ClientLoop's run. Header-only: one test binary uses it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "pylon/client.hpp"
#include "ws/frame.hpp"
#include "ws/handshake.hpp"

namespace pylon::test {

using namespace std::chrono_literals;

inline std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// Blocking connect to 127.0.0.1:port; -1 when refused.
inline int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  timeval timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

// A child process; killed (SIGKILL) and reaped by PID when destroyed.
class Subprocess {
 public:
  // capture_stdout: read it with read_line(); otherwise it goes to /dev/null. stderr is inherited.
  Subprocess(const std::vector<std::string>& argv, bool capture_stdout) {
    int pipe_fds[2] = {-1, -1};
    if (capture_stdout && pipe2(pipe_fds, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      const int out = capture_stdout ? pipe_fds[1] : ::open("/dev/null", O_WRONLY);
      dup2(out, STDOUT_FILENO);
      std::vector<char*> args;
      for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    if (capture_stdout) {
      ::close(pipe_fds[1]);
      out_fd_ = pipe_fds[0];
    }
  }
  ~Subprocess() {
    kill_and_wait();
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const noexcept { return pid_; }
  void kill_and_wait() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  // The next line of the child's stdout, without the newline; nullopt after `timeout` or at EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (const auto newline = buffered_.find('\n'); newline != std::string::npos) {
        std::string line = buffered_.substr(0, newline);
        buffered_.erase(0, newline + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (out_fd_ < 0 || left.count() <= 0) return std::nullopt;
      pollfd poll_fd{out_fd_, POLLIN, 0};
      if (poll(&poll_fd, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char chunk[4096];
      const ssize_t got = ::read(out_fd_, chunk, sizeof chunk);
      if (got <= 0) return std::nullopt;
      buffered_.append(chunk, static_cast<std::size_t>(got));
    }
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffered_;
};

// `pylon serve` of this build on 127.0.0.1:port, ready once GET /healthz answers 200.
class PylonServer {
 public:
  // extra_args: more `pylon serve` options, e.g. {"--compression", "shared"}; port: 0 for a free
  // one, or the port of a server this one replaces (a restart).
  explicit PylonServer(const std::vector<std::string>& extra_args = {}, std::uint16_t port = 0)
      : port_(port != 0 ? port : free_port()), process_(argv(port_, extra_args), false) {}
  std::uint16_t port() const noexcept { return port_; }
  std::string url(const std::string& path) const {
    return "ws://127.0.0.1:" + std::to_string(port_) + path;
  }
  bool wait_ready(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (const int fd = connect_loopback(port_); fd >= 0) {
        const std::string request =
            "GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
        char answer[64] = {};
        const ssize_t got = ::recv(fd, answer, sizeof answer - 1, 0);
        ::close(fd);
        if (got > 12 && std::string(answer, 12) == "HTTP/1.1 200") return true;
      }
      std::this_thread::sleep_for(20ms);  // polling interval, not a wait for a fixed event
    }
    return false;
  }

 private:
  static std::vector<std::string> argv(std::uint16_t port, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {
        PYLON_BIN, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::uint16_t port_;
  Subprocess process_;
};

// tests/unit/client/websockets_peer.py under /usr/bin/python3, on a given port (0: any), with
// permessage-deflate "none" (declined), "deflate" (websockets' default) or "isolated" (no context
// takeover either way); with a TLS directory (LocalCa), it serves wss://.
class PythonPeer {
 public:
  explicit PythonPeer(std::uint16_t port = 0, std::string compression = "none",
                      std::string tls_dir = {})
      : compression_(std::move(compression)), tls_dir_(std::move(tls_dir)) {
    start(port);
  }
  std::uint16_t port() const noexcept { return port_; }
  std::string url(const std::string& path, const std::string& host = "127.0.0.1") const {
    return (tls_dir_.empty() ? "ws://" : "wss://") + host + ":" + std::to_string(port_) + path;
  }
  bool ready() const noexcept { return port_ != 0; }
  void start(std::uint16_t port) {
    std::vector<std::string> argv = {"/usr/bin/python3",
                                     PYLON_CLIENT_TEST_DIR "/websockets_peer.py",
                                     std::to_string(port), compression_};
    if (!tls_dir_.empty()) argv.push_back(tls_dir_);
    process_ = std::make_unique<Subprocess>(argv, true);
    port_ = 0;
    // The peer prints "listening PORT" once bound.
    if (auto line = process_->read_line(10s); line && line->rfind("listening ", 0) == 0)
      port_ = static_cast<std::uint16_t>(std::stoi(line->substr(10)));
  }
  void kill() { process_->kill_and_wait(); }
  // SIGSTOP: a half-open server. Its sockets stay open and the kernel keeps accepting and
  // acknowledging bytes, but nothing answers (as with a frozen host or a proxy that stopped
  // forwarding): the client sees no FIN and no error. resume() (SIGCONT) brings it back.
  void pause() { ::kill(process_->pid(), SIGSTOP); }
  void resume() { ::kill(process_->pid(), SIGCONT); }
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 5s) {
    return process_->read_line(timeout);
  }

 private:
  std::string compression_;
  std::string tls_dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Subprocess> process_;
};

// deploy/tls/local-ca.sh into a fresh temporary directory: ca.pem, and server.pem + server.key
// valid for localhost, 127.0.0.1 and ::1. Removed when destroyed.
class LocalCa {
 public:
  LocalCa() {
    char pattern[] = "/tmp/pylon-client-tls-XXXXXX";
    if (mkdtemp(pattern) == nullptr) return;
    directory_ = pattern;
    const std::string command = "'" PYLON_CLIENT_TEST_DIR "/../../../deploy/tls/local-ca.sh' '" +
                                directory_ + "' >/dev/null";
    if (std::system(command.c_str()) != 0) directory_.clear();
  }
  ~LocalCa() {
    if (!directory_.empty()) std::system(("rm -rf '" + directory_ + "'").c_str());
  }
  LocalCa(const LocalCa&) = delete;
  LocalCa& operator=(const LocalCa&) = delete;
  bool ready() const noexcept { return !directory_.empty(); }
  const std::string& directory() const noexcept { return directory_; }
  std::string ca_file() const { return directory_ + "/ca.pem"; }

 private:
  std::string directory_;
};

// One connection on 127.0.0.1, served by a script in a thread with blocking sockets: it gets the
// connected socket and the request head (for the Sec-WebSocket-Key), and sends what it likes.
class ScriptedServer {
 public:
  using Script = std::function<void(int fd, const std::string& request)>;
  explicit ScriptedServer(Script script) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(listen_fd_, 4);
    socklen_t length = sizeof address;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this, script = std::move(script)] {
      pollfd poll_fd{listen_fd_, POLLIN, 0};
      if (poll(&poll_fd, 1, 5000) <= 0) return;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      timeval timeout{3, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      std::string request;
      char chunk[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
        if (got <= 0) break;
        request.append(chunk, static_cast<std::size_t>(got));
      }
      script(fd, request);
      ::close(fd);
    });
  }
  ~ScriptedServer() {
    wait();
    ::close(listen_fd_);
  }
  // Waits for the script to end: what it recorded (e.g. read_until_eof's bytes) is complete only
  // then, not when the client's loop has stopped.
  void wait() {
    if (thread_.joinable()) thread_.join();
  }
  std::string url(const std::string& path = "/") const {
    return "ws://127.0.0.1:" + std::to_string(port_) + path;
  }

  static std::string header(const std::string& request, const std::string& name) {
    const auto at = request.find(name + ": ");
    if (at == std::string::npos) return {};
    const auto begin = at + name.size() + 2;
    return request.substr(begin, request.find("\r\n", begin) - begin);
  }
  static void send_all(int fd, const std::string& bytes) {
    ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  // Everything the client sends until it closes (or 3 s pass).
  static std::string read_until_eof(int fd) {
    std::string all;
    char chunk[4096];
    while (true) {
      const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
      if (got <= 0) return all;
      all.append(chunk, static_cast<std::size_t>(got));
    }
  }

 private:
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// What a ScriptedServer sends: the 101 answering `request`, and unmasked frames (masked with
// `key` to play a server that breaks RFC 6455 §5.1).
inline std::string accept_response(const std::string& request) {
  return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " +
         ws::accept_key(ScriptedServer::header(request, "Sec-WebSocket-Key")) + "\r\n\r\n";
}
inline std::string server_frame(ws::Opcode opcode, std::string_view payload,
                                const ws::MaskingKey* key = nullptr) {
  std::uint8_t header[ws::kMaxFrameHeaderSize];
  const std::size_t size = ws::write_frame_header(header, opcode, payload.size(), true, false, key);
  std::string frame(reinterpret_cast<const char*>(header), size);
  std::string body(payload);
  if (key != nullptr)
    ws::apply_mask(std::span(reinterpret_cast<std::uint8_t*>(body.data()), body.size()), *key);
  return frame + body;
}

// The payload of the client's next frame (masked, unfragmented, under 64 KiB), read from a
// ScriptedServer's socket; empty when the connection ends first.
inline std::string read_client_frame(int fd) {
  const auto read_exactly = [fd](std::size_t count) {
    std::string bytes(count, '\0');
    for (std::size_t got = 0; got < count;) {
      const ssize_t n = ::recv(fd, bytes.data() + got, count - got, 0);
      if (n <= 0) return std::string();
      got += static_cast<std::size_t>(n);
    }
    return bytes;
  };
  const std::string head = read_exactly(2);
  if (head.size() != 2) return {};
  std::size_t length = static_cast<std::uint8_t>(head[1]) & 0x7F;
  if (length == 126) {
    const std::string extended = read_exactly(2);
    if (extended.size() != 2) return {};
    length = static_cast<std::uint8_t>(extended[0]) << 8 | static_cast<std::uint8_t>(extended[1]);
  }
  const std::string key = read_exactly(4);
  std::string payload = read_exactly(length);
  if (key.size() != 4 || payload.size() != length) return {};
  for (std::size_t i = 0; i < length; ++i) payload[i] ^= key[i % 4];
  return payload;
}

// Runs the loop until something calls stop() or `timeout` passes; false on timeout.
inline bool run_for(ClientLoop& loop, std::chrono::milliseconds timeout = 10s) {
  std::mutex mutex;
  std::condition_variable done;
  bool finished = false;
  std::atomic<bool> timed_out{false};
  std::thread watchdog([&] {
    std::unique_lock lock(mutex);
    if (!done.wait_for(lock, timeout, [&] { return finished; })) {
      timed_out = true;
      loop.stop();
    }
  });
  loop.run();
  {
    std::lock_guard lock(mutex);
    finished = true;
  }
  done.notify_all();
  watchdog.join();
  return !timed_out;
}

// What a client saw, in order.
struct Events {
  std::vector<std::string> log;
  std::vector<std::string> messages;
  std::vector<MessageKind> kinds;
  int opens = 0;
  std::uint16_t close_code = 0;  // the last close
  std::string close_reason;
  std::vector<std::uint16_t> closes;  // every close, across reconnects
  std::vector<std::string> errors;
  std::string pong;
  bool compressed = false;  // permessage-deflate agreed at the last open
};

// Handlers that record into `events`; `on_open` / `on_message` add the test's behaviour.
inline ClientHandlers recording(
    Events& events, std::function<void(WebSocketClient&)> on_open = {},
    std::function<void(WebSocketClient&, std::string_view)> on_message = {}) {
  return {
      .on_open =
          [&events, on_open](WebSocketClient& client) {
            ++events.opens;
            events.compressed = client.compressed();
            events.log.push_back("open");
            if (on_open) on_open(client);
          },
      .on_message =
          [&events, on_message](WebSocketClient& client, std::string_view message,
                                MessageKind kind) {
            events.messages.emplace_back(message);
            events.kinds.push_back(kind);
            if (on_message) on_message(client, message);
          },
      .on_ping =
          [&events](WebSocketClient&, std::string_view payload) {
            events.log.push_back("ping " + std::string(payload));
          },
      .on_pong = [&events](WebSocketClient&, std::string_view payload) { events.pong = payload; },
      .on_close =
          [&events](WebSocketClient& client, std::uint16_t code, std::string_view reason) {
            events.close_code = code;
            events.close_reason = reason;
            events.closes.push_back(code);
            events.log.push_back("close " + std::to_string(code));
            if (!client.reconnecting()) client.loop().stop();
          },
      .on_error =
          [&events](WebSocketClient& client, std::string_view error) {
            events.errors.emplace_back(error);
            events.log.push_back("error");
            if (!client.is_open() && !client.reconnecting()) client.loop().stop();
          },
  };
}

}  // namespace pylon::test
