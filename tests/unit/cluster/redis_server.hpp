// Test support: a real redis-server child process on a free 127.0.0.1 port (or a unix socket),
// stopped by PID, and a blocking hiredis client for asserting on Redis's own view (PUBSUB ...).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pylon::cluster::testing {

// Polls condition every 10 ms until it holds or timeout passes.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

inline std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    throw std::runtime_error("bind");
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

class RedisServer {
 public:
  struct Options {
    std::string password;     // --requirepass
    std::string unix_socket;  // --unixsocket (TCP stays on too, for the test's own client)
    std::uint16_t port = 0;   // 0: a free one
  };

  RedisServer() : RedisServer(Options{}) {}
  explicit RedisServer(Options options)
      : options_(std::move(options)), port_(options_.port != 0 ? options_.port : free_port()) {
    start();
  }
  ~RedisServer() { kill_now(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  std::string url() const {
    std::string url = "redis://";
    if (!options_.password.empty()) url += ":" + options_.password + "@";
    return url + "127.0.0.1:" + std::to_string(port_);
  }

  // Starts redis-server (again, on the same port) and waits until it answers PING.
  void start() {
    std::vector<std::string> args = {
        "redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",  "--save", "",
        "--appendonly", "no",     "--daemonize",         "no",     "--loglevel", "warning"};
    if (!options_.password.empty()) args.insert(args.end(), {"--requirepass", options_.password});
    if (!options_.unix_socket.empty())
      args.insert(args.end(), {"--unixsocket", options_.unix_socket});
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      std::vector<char*> argv;
      // Redis's banner and warnings would bury the test output.
      if (const int null = open("/dev/null", O_WRONLY); null >= 0) dup2(null, STDOUT_FILENO);
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execvp("redis-server", argv.data());
      _exit(127);
    }
    if (!eventually([&] { return ping(); })) throw std::runtime_error("redis-server did not start");
  }

  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }

  bool ping() const {
    redisReply* reply = command({"PING"});
    const bool ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
    if (reply) freeReplyObject(reply);
    return ok;
  }

  // Subscribers Redis counts for one channel (PUBSUB NUMSUB).
  long long numsub(const std::string& channel) const {
    redisReply* reply = command({"PUBSUB", "NUMSUB", channel});
    long long count = -1;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
      count = reply->element[1]->integer;
    if (reply) freeReplyObject(reply);
    return count;
  }

  // Channels with at least one subscriber matching pattern (PUBSUB CHANNELS), sorted.
  std::vector<std::string> channels(const std::string& pattern) const {
    redisReply* reply = command({"PUBSUB", "CHANNELS", pattern});
    std::vector<std::string> names;
    if (reply && reply->type == REDIS_REPLY_ARRAY)
      for (std::size_t i = 0; i < reply->elements; ++i)
        names.emplace_back(reply->element[i]->str, reply->element[i]->len);
    if (reply) freeReplyObject(reply);
    std::sort(names.begin(), names.end());
    return names;
  }

  // An integer answer (XLEN, EXISTS ...); -1 when the answer is something else.
  long long integer(const std::vector<std::string>& args) const {
    redisReply* reply = command(args);
    const long long value = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (reply) freeReplyObject(reply);
    return value;
  }

  // A string answer (INFO ...); empty when the answer is something else.
  std::string text(const std::vector<std::string>& args) const {
    redisReply* reply = command(args);
    std::string value;
    if (reply && (reply->type == REDIS_REPLY_STRING)) value.assign(reply->str, reply->len);
    if (reply) freeReplyObject(reply);
    return value;
  }

  // A raw PUBLISH, as another program sharing the Redis would.
  void publish_raw(const std::string& channel, const std::string& bytes) const {
    if (redisReply* reply = command({"PUBLISH", channel, bytes})) freeReplyObject(reply);
  }

 private:
  redisReply* command(const std::vector<std::string>& args) const {
    timeval timeout{1, 0};
    redisContext* context = redisConnectWithTimeout("127.0.0.1", port_, timeout);
    if (context == nullptr || context->err) {
      if (context) redisFree(context);
      return nullptr;
    }
    if (!options_.password.empty()) {
      if (auto* auth =
              static_cast<redisReply*>(redisCommand(context, "AUTH %s", options_.password.c_str())))
        freeReplyObject(auth);
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data()));
    redisFree(context);
    return reply;
  }

  Options options_;
  std::uint16_t port_;
  pid_t pid_ = -1;
};

}  // namespace pylon::cluster::testing
