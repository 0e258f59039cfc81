// pylon::App end to end on loopback: what a route's settings do to the handshake.
#include "pylon/app.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace pylon {
namespace {

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return fd;
  ::close(fd);
  return -1;
}

// A connection to 127.0.0.1:port once the server listens there; -1 if it never does.
int connect_when_listening(std::uint16_t port) {
  int fd = -1;
  for (int attempt = 0; attempt < 200 && fd < 0; ++attempt) {
    fd = connect_to(port);
    if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return fd;
}

// Sends an upgrade request of `path` (with `extra_headers`, each ending in CRLF) and returns the
// response head, read a byte at a time so that no frame after it is consumed.
std::string upgrade_head(int fd, const std::string& path, const std::string& extra_headers = {}) {
  const std::string request =
      "GET " + path +
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
      extra_headers + "\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string response;
  char byte = 0;
  while (response.find("\r\n\r\n") == std::string::npos && ::recv(fd, &byte, 1, 0) == 1)
    response += byte;
  return response;
}

// The Sec-WebSocket-Extensions answer to an upgrade of path offering permessage-deflate; "-" when
// the upgrade failed.
std::string extensions_answer(std::uint16_t port, const std::string& path) {
  const int fd = connect_when_listening(port);
  if (fd < 0) return "-";
  const std::string response = upgrade_head(
      fd, path, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
  ::close(fd);
  if (response.rfind("HTTP/1.1 101", 0) != 0) return "-";
  const std::string field = "Sec-WebSocket-Extensions: ";
  const std::size_t at = response.find(field);
  if (at == std::string::npos) return "";
  const std::size_t begin = at + field.size();
  return response.substr(begin, response.find("\r\n", begin) - begin);
}

// A connected socket that completed an upgrade of `path` (its 101 read), or -1.
int upgraded(std::uint16_t port, const std::string& path) {
  const int fd = connect_when_listening(port);
  if (fd < 0) return -1;
  if (upgrade_head(fd, path).rfind("HTTP/1.1 101", 0) == 0) return fd;
  ::close(fd);
  return -1;
}

// One loop on 127.0.0.1:port.
Config loopback(std::uint16_t port) {
  Config config;
  config.listen = "127.0.0.1:" + std::to_string(port);
  config.threads = 1;
  return config;
}

// The status code of the close frame the server sends first on an upgraded socket; 0 if none.
std::uint16_t close_code_received(int fd) {
  std::uint8_t header[2];
  if (::recv(fd, header, 2, MSG_WAITALL) != 2 || (header[0] & 0x0f) != 0x8) return 0;
  std::uint8_t payload[125];
  const std::size_t size = header[1] & 0x7f;
  if (size < 2 || ::recv(fd, payload, size, MSG_WAITALL) != static_cast<ssize_t>(size)) return 0;
  return static_cast<std::uint16_t>(payload[0] << 8 | payload[1]);
}

TEST(App, AnApplicationCloseNeverPutsAForbiddenCodeOnTheWire) {
  // RFC 6455 §7.4: 1005, 1006 and 1015 are never sent, nor unassigned codes; they become 1000.
  const std::uint16_t port = free_port();
  App app(loopback(port));
  const auto closing_with = [](std::uint16_t code) {
    return WebSocketBehavior<>{
        .open = [code](WebSocket<NoUserData>& ws) { ws.close(code, "bye"); }};
  };
  for (const std::uint16_t code : {1006, 1005, 1015, 1004, 999, 2000, 5000, 1001, 4001})
    app.ws("/close" + std::to_string(code), closing_with(code));
  std::thread server([&app] { app.run(); });

  for (const std::uint16_t code : {1006, 1005, 1015, 1004, 999, 2000, 5000, 1001, 4001}) {
    const int fd = upgraded(port, "/close" + std::to_string(code));
    ASSERT_GE(fd, 0);
    const bool allowed = code == 1001 || code == 4001;
    EXPECT_EQ(close_code_received(fd), allowed ? code : 1000) << "close(" << code << ")";
    ::close(fd);
  }
  app.drain();
  server.join();
}

TEST(App, ATaskRunsOnceOnEveryLoopThread) {
  const std::uint16_t port = free_port();
  Config config = loopback(port);
  config.threads = 3;
  App app(config);
  app.ws("/ws", WebSocketBehavior<>{});
  EXPECT_EQ(app.send_to_cluster("before run"), ClusterSend::no_cluster);
  std::thread server([&app] { app.run(); });
  const int fd = upgraded(port, "/ws");  // answered: the loops run
  ASSERT_GE(fd, 0);
  std::mutex mutex;
  std::vector<std::thread::id> ran_on;
  app.run_on_every_loop([&] {
    std::lock_guard lock(mutex);
    ran_on.push_back(std::this_thread::get_id());
  });
  for (int i = 0; i < 500; ++i) {  // polled, up to 5 s
    {
      std::lock_guard lock(mutex);
      if (ran_on.size() >= 3) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(ran_on.size(), 3u);
    EXPECT_EQ(std::set<std::thread::id>(ran_on.begin(), ran_on.end()).size(), 3u);
    EXPECT_EQ(std::count(ran_on.begin(), ran_on.end(), std::this_thread::get_id()), 0);
  }
  // The memory engine: there is no other instance to tell.
  EXPECT_EQ(app.send_to_cluster("hello"), ClusterSend::no_cluster);
  ::close(fd);
  app.drain();
  server.join();
}

// WebSocketBehavior::message takes what a std::function of its signature takes, and is empty
// exactly when that std::function would be.
TEST(App, AMessageHandlerIsEmptyExactlyWhenAStdFunctionWouldBe) {
  using Handler = MessageHandler<NoUserData>;
  using Function = std::function<void(WebSocket<NoUserData>&, std::string_view, MessageKind)>;
  void (*no_function)(WebSocket<NoUserData>&, std::string_view, MessageKind) = nullptr;
  EXPECT_FALSE(Handler{});
  EXPECT_FALSE(Handler{nullptr});
  EXPECT_FALSE(Handler{Function{}});
  EXPECT_FALSE(Handler{no_function});
  EXPECT_TRUE(Handler{[](auto&, std::string_view, MessageKind) {}});
  EXPECT_TRUE(Handler{Function{[](WebSocket<NoUserData>&, std::string_view, MessageKind) {}}});
}

// Each kind of callable is called with the message: a lambda with a capture, a std::function
// and a plain function, each on its own route.
void echo_binary(WebSocket<NoUserData>& ws, std::string_view message, MessageKind) {
  ws.send(message, MessageKind::binary);
}

TEST(App, EveryKindOfMessageHandlerGetsTheMessage) {
  const std::uint16_t port = free_port();
  App app(loopback(port));
  const std::string suffix = "!";
  app.ws("/lambda",
         WebSocketBehavior<>{.message = [suffix](auto& ws, std::string_view message, MessageKind) {
           ws.send(std::string(message) + suffix, MessageKind::binary);
         }});
  app.ws("/function",
         WebSocketBehavior<>{
             .message = std::function<void(WebSocket<NoUserData>&, std::string_view, MessageKind)>(
                 echo_binary)});
  app.ws("/pointer", WebSocketBehavior<>{.message = &echo_binary});
  std::thread server([&app] { app.run(); });
  for (const std::string path : {"/lambda", "/function", "/pointer"}) {
    const int fd = upgraded(port, path);
    ASSERT_GE(fd, 0) << path;
    // A masked binary frame "hi" (RFC 6455 §5.7's key).
    const std::uint8_t frame[] = {0x82, 0x82, 0x37, 0xfa, 0x21, 0x3d, 'h' ^ 0x37, 'i' ^ 0xfa};
    ASSERT_EQ(::send(fd, frame, sizeof frame, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof frame));
    const std::string expected = path == "/lambda" ? "hi!" : "hi";
    std::string answer(2 + expected.size(), '\0');
    ASSERT_EQ(::recv(fd, answer.data(), answer.size(), MSG_WAITALL),
              static_cast<ssize_t>(answer.size()))
        << path;
    EXPECT_EQ(answer, std::string("\x82") + static_cast<char>(expected.size()) + expected) << path;
    ::close(fd);
  }
  app.drain();
  server.join();
}

TEST(App, RemoteAddressesOfTwoConnectionsStayTheirOwn) {
  // remote_address() returns a string of its own: it once returned a view into a per-thread
  // buffer that the next call, for any connection, overwrote.
  const std::uint16_t port = free_port();
  App app(loopback(port));
  std::vector<WebSocket<NoUserData>> open;  // the loop's thread only
  std::string first, second;
  std::atomic<int> opened{0};
  app.ws("/who", WebSocketBehavior<>{.open = [&](WebSocket<NoUserData>& ws) {
           open.push_back(ws);
           if (open.size() == 2) {
             const auto one = open[0].remote_address();
             const auto two = open[1].remote_address();
             first = one;
             second = two;
           }
           ++opened;
         }});
  std::thread server([&app] { app.run(); });
  const int a = upgraded(port, "/who");
  const int b = upgraded(port, "/who");
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  for (int i = 0; i < 200 && opened < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const auto local_address = [](int fd) {
    sockaddr_in address{};
    socklen_t size = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
    ::close(fd);
    return "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  };
  const std::string a_address = local_address(a), b_address = local_address(b);
  app.drain();
  server.join();
  EXPECT_EQ(first, a_address);
  EXPECT_EQ(second, b_address);
}

TEST(App, TheUpgradeHookRefusesOrFillsTheConnectionsData) {
  const std::uint16_t port = free_port();
  App app(loopback(port));
  struct Seen {
    std::string ticket;
  };
  std::vector<std::string> opened;  // the loop's thread only
  std::atomic<int> opens{0};
  app.ws("/hook",
         WebSocketBehavior<Seen>{
             .upgrade = [](const HttpRequest& request, Seen& seen) -> std::optional<HttpResponse> {
               if (request.header("X-Ticket").empty())
                 return HttpResponse{.status = 401,
                                     .body = "a ticket, please\n",
                                     .headers = {{"WWW-Authenticate", "Bearer"}}};
               seen.ticket = std::string(request.header("X-Ticket")) + "@" + request.client_ip();
               return std::nullopt;
             },
             .open =
                 [&](WebSocket<Seen>& ws) {
                   opened.push_back(ws.data().ticket);
                   ++opens;
                 }});
  std::thread server([&app] { app.run(); });

  int fd = connect_when_listening(port);
  ASSERT_GE(fd, 0);
  const std::string refused = upgrade_head(fd, "/hook");
  ::close(fd);
  EXPECT_EQ(refused.rfind("HTTP/1.1 401", 0), 0u) << refused;
  EXPECT_NE(refused.find("WWW-Authenticate: Bearer\r\n"), std::string::npos) << refused;
  fd = connect_when_listening(port);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(upgrade_head(fd, "/hook", "X-Ticket: 42\r\n").rfind("HTTP/1.1 101", 0), 0u);
  for (int i = 0; i < 200 && opens < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ::close(fd);
  app.drain();
  server.join();
  EXPECT_EQ(opened, std::vector<std::string>{"42@127.0.0.1"});
}

TEST(App, LoopTicksRunOnEveryLoopAndMayCloseItsConnections) {
  // Two loops: each runs the tick on its own thread; a tick closes the connections of its loop
  // (as a token expiry does) and lists the subscriptions they held.
  const std::uint16_t port = free_port();
  Config config = loopback(port);
  config.threads = 2;
  App app(config);
  std::mutex mutex;
  std::set<std::thread::id> tick_threads;
  std::vector<std::string> topics_seen;
  thread_local std::vector<WebSocket<NoUserData>> open;  // each loop's own
  app.ws("/tick", WebSocketBehavior<>{.open = [&](WebSocket<NoUserData>& ws) {
           ws.subscribe("b");
           ws.subscribe("a");
           open.push_back(ws);
         }});
  app.on_loop_tick([&] {
    std::lock_guard lock(mutex);
    tick_threads.insert(std::this_thread::get_id());
    for (auto& ws : open) {
      for (const std::string& topic : ws.subscriptions()) topics_seen.push_back(topic);
      ws.close(4001, "tick");
    }
    std::vector<WebSocket<NoUserData>>().swap(open);  // nothing left for LeakSanitizer at exit
  });
  std::thread server([&app] { app.run(); });
  const int fd = upgraded(port, "/tick");
  ASSERT_GE(fd, 0);
  EXPECT_EQ(close_code_received(fd), 4001);  // within a second or so: the tick's period
  ::close(fd);
  for (int i = 0; i < 300; ++i) {
    {
      std::lock_guard lock(mutex);
      if (tick_threads.size() == 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  app.drain();
  server.join();
  EXPECT_EQ(tick_threads.size(), 2u);
  EXPECT_EQ(topics_seen, (std::vector<std::string>{"b", "a"}));
}

TEST(App, CompressionIsChosenPerEndpoint) {
  const std::uint16_t port = free_port();
  Config config = loopback(port);
  config.compression.mode = CompressionMode::shared;
  set_endpoint_text(config, "/operator:compression=off");  // the operator overrides the code
  App app(config);
  app.ws("/default", WebSocketBehavior<>{});
  app.ws("/plain",
         WebSocketBehavior<>{.compression = CompressionSettings{.mode = CompressionMode::off}});
  app.ws("/own", WebSocketBehavior<>{.compression = CompressionSettings{
                                         .mode = CompressionMode::dedicated, .window_bits = 12}});
  app.ws("/operator", WebSocketBehavior<>{
                          .compression = CompressionSettings{.mode = CompressionMode::dedicated}});
  std::thread server([&app] { app.run(); });

  EXPECT_EQ(extensions_answer(port, "/default"),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "client_max_window_bits=15");
  EXPECT_EQ(extensions_answer(port, "/plain"), "");
  EXPECT_EQ(extensions_answer(port, "/own"),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=15");
  EXPECT_EQ(extensions_answer(port, "/operator"), "");

  app.drain();
  server.join();
}

TEST(App, ARouteHasAtMost255Subprotocols) {
  // A connection keeps the agreed subprotocol as a one-byte index.
  App app(Config{});
  WebSocketBehavior<> behavior;
  for (int i = 0; i < 255; ++i) behavior.subprotocols.push_back(std::to_string(i));
  app.ws("/most", behavior);
  behavior.subprotocols.push_back("one-too-many");
  EXPECT_THROW(app.ws("/too-many", behavior), std::invalid_argument);
}

TEST(App, AnEndpointTableNeedsAWebSocketRoute) {
  Config config;
  set_endpoint_text(config, "/nowhere:compression=off");
  App app(config);
  app.ws("/ws", WebSocketBehavior<>{});
  app.get("/nowhere", [](const HttpRequest&) { return HttpResponse{}; });
  try {
    app.check_config();
    FAIL() << "an [endpoints] table for a plain HTTP path was accepted";
  } catch (const ConfigError& error) {
    EXPECT_EQ(error.key(), "endpoints./nowhere");
    EXPECT_STREQ(error.what(),
                 "endpoints./nowhere: no WebSocket endpoint has this path (they are: /ws)");
  }
}

}  // namespace
}  // namespace pylon
