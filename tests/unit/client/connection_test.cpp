// End-to-end tests of the client connection (src/client/connection.cpp) against real peers on
// 127.0.0.1: the pylon binary of this build (`pylon serve`, spawned, /ws/echo), the Python
// `websockets` peer (tests/unit/client/websockets_peer.py), and scripted raw servers for the
// failures a correct server never commits.
#include "client/connection.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "peers.hpp"
#include "pylon/client.hpp"
#include "ws/frame.hpp"
#include "ws/handshake.hpp"
#include "ws/permessage_deflate.hpp"

namespace pylon {
namespace {

using namespace std::chrono_literals;
using test::Events;
using test::PylonServer;
using test::PythonPeer;
using test::recording;
using test::ScriptedServer;

// ---------------------------------------------------------------------------------------------
// Against pylon itself

class AgainstPylon : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new PylonServer();
    ASSERT_TRUE(server_->wait_ready()) << "pylon serve did not answer /healthz";
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static PylonServer* server_;
};
PylonServer* AgainstPylon::server_ = nullptr;

TEST_F(AgainstPylon, EchoesTextBinaryEmptyLargeAndFragmented) {
  ClientLoop loop;
  Events events;
  const std::string large(1 << 20, 'x');
  std::string binary("\x00\x01\xff\xfe", 4);
  loop.connect(server_->url("/ws/echo"), recording(
                                             events,
                                             [&](WebSocketClient& client) {
                                               EXPECT_EQ(client.send("hello"), SendStatus::sent);
                                               client.send(binary, MessageKind::binary);
                                               client.send("");
                                               client.send(large);
                                               client.send_fragmented("fragmented message",
                                                                      MessageKind::text, 4);
                                             },
                                             [&](WebSocketClient& client, std::string_view) {
                                               if (events.messages.size() == 5)
                                                 client.close(4000, "client says bye");
                                             }));
  ASSERT_TRUE(test::run_for(loop));
  ASSERT_EQ(events.messages.size(), 5u);
  EXPECT_EQ(events.messages[0], "hello");
  EXPECT_EQ(events.messages[1], binary);
  EXPECT_EQ(events.kinds[1], MessageKind::binary);
  EXPECT_EQ(events.messages[2], "");
  EXPECT_EQ(events.messages[3], large);
  EXPECT_EQ(events.messages[4], "fragmented message");
  EXPECT_EQ(events.close_code, 4000);  // pylon echoes the code of our close (RFC 6455 §5.5.1)
  EXPECT_TRUE(events.errors.empty());
}

TEST_F(AgainstPylon, PingGetsItsPong) {
  ClientLoop loop;
  Events events;
  ClientHandlers handlers = recording(
      events, [](WebSocketClient& client) { client.ping("probe"); }, nullptr);
  handlers.on_pong = [&](WebSocketClient& client, std::string_view payload) {
    events.pong = payload;
    client.close();
  };
  loop.connect(server_->url("/ws/echo"), std::move(handlers));
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(events.pong, "probe");
  EXPECT_EQ(events.close_code, 1000);
}

TEST_F(AgainstPylon, ManyClientsOnOneLoopShareAProfile) {
  ClientLoop loop;
  constexpr int kClients = 200;
  int echoed = 0;
  int closed = 0;
  auto profile = make_client_profile(
      server_->url("/ws/echo"),
      {
          .on_open = [](WebSocketClient& client) { client.send("ping"); },
          .on_message =
              [&](WebSocketClient& client, std::string_view message, MessageKind) {
                if (message == "ping") ++echoed;
                client.close();
              },
          .on_close =
              [&](WebSocketClient& client, std::uint16_t, std::string_view) {
                if (++closed == kClients) client.loop().stop();
              },
      },
      {.source_address = "127.0.0.1"});
  for (int i = 0; i < kClients; ++i) loop.connect(profile);
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(echoed, kClients);
  EXPECT_EQ(loop.client_count(), 0u);
}

TEST_F(AgainstPylon, UnknownPathFailsTheHandshake) {
  ClientLoop loop;
  Events events;
  loop.connect(server_->url("/nope"), recording(events, nullptr, nullptr));
  ASSERT_TRUE(test::run_for(loop));
  ASSERT_EQ(events.errors.size(), 1u);
  EXPECT_EQ(events.errors[0], "handshake: HTTP 404 Not Found");
  EXPECT_EQ(events.opens, 0);
}

// ---------------------------------------------------------------------------------------------
// Against Python websockets

class AgainstPython : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(peer_.ready()) << "websockets_peer.py did not start"; }
  PythonPeer peer_;
};

TEST_F(AgainstPython, EchoesTextBinaryEmptyAndOneMebibyte) {
  ClientLoop loop;
  Events events;
  std::string large(1 << 20, '\0');
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 7);
  loop.connect(peer_.url("/echo"), recording(
                                       events,
                                       [&](WebSocketClient& client) {
                                         client.send("héllo");
                                         client.send(large, MessageKind::binary);
                                         client.send("");
                                         client.send("", MessageKind::binary);
                                         client.send_fragmented("in three parts", MessageKind::text,
                                                                3);
                                       },
                                       [&](WebSocketClient& client, std::string_view) {
                                         if (events.messages.size() == 5)
                                           client.close(4000, "client says bye");
                                       }));
  ASSERT_TRUE(test::run_for(loop));
  ASSERT_EQ(events.messages.size(), 5u);
  EXPECT_EQ(events.messages[0], "héllo");
  EXPECT_EQ(events.kinds[0], MessageKind::text);
  EXPECT_TRUE(events.messages[1] == large);
  EXPECT_EQ(events.kinds[1], MessageKind::binary);
  EXPECT_EQ(events.messages[2], "");
  EXPECT_EQ(events.kinds[3], MessageKind::binary);
  EXPECT_EQ(events.messages[4], "in three parts");
  // websockets echoes our close frame; the server saw our code and reason.
  EXPECT_EQ(events.close_code, 4000);
  EXPECT_EQ(events.close_reason, "client says bye");
  EXPECT_EQ(peer_.read_line(), "closed 4000 client says bye");
}

TEST_F(AgainstPython, ReassemblesServerFragments) {
  ClientLoop loop;
  Events events;
  const std::string binary(3000, '\x5a');
  loop.connect(peer_.url("/fragments"), recording(
                                            events,
                                            [&](WebSocketClient& client) {
                                              client.send("abcdefghi");
                                              client.send(binary, MessageKind::binary);
                                            },
                                            [&](WebSocketClient& client, std::string_view) {
                                              if (events.messages.size() == 2) client.close();
                                            }));
  ASSERT_TRUE(test::run_for(loop));
  ASSERT_EQ(events.messages.size(), 2u);
  EXPECT_EQ(events.messages[0], "abcdefghi");
  EXPECT_EQ(events.kinds[0], MessageKind::text);
  EXPECT_EQ(events.messages[1], binary);
  EXPECT_EQ(events.kinds[1], MessageKind::binary);
}

TEST_F(AgainstPython, AnswersServerPingsAndSeesPongs) {
  ClientLoop loop;
  Events events;
  loop.connect(peer_.url("/ping"), recording(
                                       events, [](WebSocketClient& client) { client.ping("mine"); },
                                       [](WebSocketClient& client, std::string_view message) {
                                         if (message == "pong received") client.close();
                                       }));
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(events.log.at(1), "ping are you there");
  ASSERT_EQ(events.messages.size(), 1u);
  EXPECT_EQ(events.messages[0], "pong received");  // the server got our automatic pong
  EXPECT_EQ(events.pong, "mine");
}

TEST_F(AgainstPython, ServerCloseWithCodeAndReason) {
  ClientLoop loop;
  Events events;
  loop.connect(peer_.url("/close4001"),
               recording(
                   events, [](WebSocketClient& client) { client.send("x"); }, nullptr));
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(events.close_code, 4001);
  EXPECT_EQ(events.close_reason, "server says bye");
  EXPECT_TRUE(events.errors.empty());
  // It got our answering close, which echoes the code (RFC 6455 §5.5.1) without a reason.
  EXPECT_EQ(peer_.read_line(), "closed 4001 ");
}

TEST_F(AgainstPython, HeadersAndSubprotocol) {
  ClientLoop loop;
  Events events;
  std::string chosen;
  loop.connect(peer_.url("/hello?x=1"),
               recording(
                   events, [&](WebSocketClient& client) { chosen = client.subprotocol(); },
                   [](WebSocketClient& client, std::string_view) { client.close(); }),
               {.headers = {{"X-Pylon-Test", "value 1"}}, .subprotocols = {"superchat", "chat"}});
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(chosen, "chat");
  ASSERT_EQ(events.messages.size(), 1u);
  EXPECT_EQ(events.messages[0], "value 1|chat|x=1");
}

TEST_F(AgainstPython, ReconnectsAfterTheServerIsKilledAndRestarted) {
  ClientLoop loop;
  Events events;
  const std::uint16_t port = peer_.port();
  bool restarted = false;
  ClientHandlers handlers = recording(
      events, [&](WebSocketClient& client) { client.send(events.opens == 1 ? "one" : "two"); },
      [&](WebSocketClient& client, std::string_view message) {
        if (message == "one") peer_.kill();  // SIGKILL: no close frame, the client sees EOF
        if (message == "two") client.close();
      });
  auto record_error = handlers.on_error;
  handlers.on_error = [&, record_error](WebSocketClient& client, std::string_view error) {
    record_error(client, error);
    // The first reconnect attempt was refused: bring the server back on the same port.
    if (!restarted) {
      restarted = true;
      peer_.start(port);
    }
  };
  loop.connect(
      peer_.url("/echo"), std::move(handlers),
      {.reconnect = {.enabled = true, .initial_delay = 0.05, .max_delay = 0.2, .multiplier = 2}});
  ASSERT_TRUE(test::run_for(loop));
  ASSERT_TRUE(restarted);
  EXPECT_EQ(peer_.port(), port);
  EXPECT_EQ(events.opens, 2);
  EXPECT_EQ(events.messages, (std::vector<std::string>{"one", "two"}));
  ASSERT_FALSE(events.errors.empty());
  EXPECT_EQ(events.errors[0].rfind("connect: ", 0), 0u) << events.errors[0];
  EXPECT_EQ(events.log.at(1), "close 1006");  // dropped without a close frame
  EXPECT_EQ(events.close_code, 1000);
}

TEST(AgainstPylonPaced, WaitsForTheServersRetryAfterBeforeReconnecting) {
  // One upgrade a second: one client takes it, the other is refused with 503 and Retry-After: 1
  // (which one is up to the scheduler, so both may reconnect). Its own backoff would retry after
  // 50 ms, and again and again; honouring the server it tries once more, a second later, and gets
  // in.
  PylonServer server({"--admission-rate", "1", "--admission-burst", "1"});
  ASSERT_TRUE(server.wait_ready());
  ClientLoop loop;
  Events first, second;
  int open = 0;
  const auto stop_when_both_open = [&](WebSocketClient&) {
    if (++open == 2) loop.stop();
  };
  const ClientOptions reconnecting{
      .reconnect = {.enabled = true, .initial_delay = 0.05, .max_delay = 0.2}};
  loop.connect(server.url("/ws/echo"), recording(first, stop_when_both_open, nullptr),
               reconnecting);
  loop.connect(server.url("/ws/echo"), recording(second, stop_when_both_open, nullptr),
               reconnecting);
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(first.opens + second.opens, 2);
  ASSERT_EQ(first.errors.size() + second.errors.size(), 1u)
      << "one refusal, then the reconnect waited for its Retry-After";
  const std::string& error = first.errors.empty() ? second.errors[0] : first.errors[0];
  EXPECT_EQ(error, "handshake: HTTP 503 Service Unavailable");
}

// ---------------------------------------------------------------------------------------------
// Against scripted servers: handshake failures and protocol violations

using test::accept_response;
using test::server_frame;

// The status code of the first (masked, client) frame in `bytes` if it is a close frame.
int client_close_code(const std::string& bytes) {
  if (bytes.size() < 8 || static_cast<std::uint8_t>(bytes[0]) != 0x88 || (bytes[1] & 0x80) == 0)
    return -1;
  const auto* key = reinterpret_cast<const std::uint8_t*>(bytes.data() + 2);
  const int high = static_cast<std::uint8_t>(bytes[6]) ^ key[0];
  const int low = static_cast<std::uint8_t>(bytes[7]) ^ key[1];
  return high << 8 | low;
}

TEST(AgainstScripted, HttpErrorStatus) {
  ScriptedServer server([](int fd, const std::string&) {
    ScriptedServer::send_all(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
  });
  ClientLoop loop;
  Events events;
  loop.connect(server.url(), recording(events, nullptr, nullptr));
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(events.errors, std::vector<std::string>{"handshake: HTTP 503 Service Unavailable"});
  EXPECT_EQ(events.opens, 0);
}

TEST(AgainstScripted, BadAccept) {
  ScriptedServer server([](int fd, const std::string&) {
    ScriptedServer::send_all(
        fd,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  });
  ClientLoop loop;
  Events events;
  loop.connect(server.url(), recording(events, nullptr, nullptr));
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(events.errors, std::vector<std::string>{"handshake: bad Sec-WebSocket-Accept"});
}

TEST(AgainstScripted, RequestIsWellFormedAndFramesRightBehindThe101AreDelivered) {
  std::string request;
  ScriptedServer server([&](int fd, const std::string& got) {
    request = got;
    ScriptedServer::send_all(fd, accept_response(got) + server_frame(ws::Opcode::text, "early"));
    ScriptedServer::read_until_eof(fd);
  });
  ClientLoop loop;
  Events events;
  loop.connect(
      server.url("/path?q=1"),
      recording(events, nullptr, [](WebSocketClient& client, std::string_view) { client.close(); }),
      {.close_timeout = 0.2});
  ASSERT_TRUE(test::run_for(loop));
  server.wait();
  EXPECT_EQ(events.messages, std::vector<std::string>{"early"});
  EXPECT_EQ(request.rfind("GET /path?q=1 HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_TRUE(ws::is_valid_client_key(ScriptedServer::header(request, "Sec-WebSocket-Key")));
  EXPECT_EQ(ScriptedServer::header(request, "Sec-WebSocket-Version"), "13");
  // The server never answered our close: close_timeout ends it as 1006.
}

void expect_failure_close(const std::string& frame, std::uint16_t expected_code,
                          const std::string& error) {
  std::string client_bytes;
  ScriptedServer server([&](int fd, const std::string& request) {
    ScriptedServer::send_all(fd, accept_response(request) + frame);
    client_bytes = ScriptedServer::read_until_eof(fd);
  });
  ClientLoop loop;
  Events events;
  loop.connect(server.url(), recording(events, nullptr, nullptr), {.close_timeout = 0.3});
  ASSERT_TRUE(test::run_for(loop));
  server.wait();
  EXPECT_EQ(events.errors, std::vector<std::string>{error});
  EXPECT_EQ(events.close_code, expected_code);
  EXPECT_TRUE(events.messages.empty());
  // Our close frame went out masked, with the RFC's code.
  EXPECT_EQ(client_close_code(client_bytes), expected_code);
}

TEST(AgainstScripted, MaskedServerFrameFailsWith1002) {
  const ws::MaskingKey key = {1, 2, 3, 4};
  expect_failure_close(server_frame(ws::Opcode::text, "masked", &key), 1002,
                       "protocol error: masked frame");
}

TEST(AgainstScripted, InvalidUtf8FailsWith1007) {
  expect_failure_close(server_frame(ws::Opcode::text, "bad \xff utf-8"), 1007,
                       "protocol error: invalid UTF-8");
}

TEST(AgainstScripted, HandshakeTimeout) {
  ScriptedServer server([](int fd, const std::string&) { ScriptedServer::read_until_eof(fd); });
  ClientLoop loop;
  Events events;
  loop.connect(server.url(), recording(events, nullptr, nullptr), {.handshake_timeout = 0.2});
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(events.errors,
            std::vector<std::string>{"handshake: timed out waiting for the server's response"});
}

TEST(AgainstScripted, ConnectionRefused) {
  ClientLoop loop;
  Events events;
  loop.connect("ws://127.0.0.1:" + std::to_string(test::free_port()) + "/",
               recording(events, nullptr, nullptr));
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(events.errors, std::vector<std::string>{"connect: Connection refused"});
}

}  // namespace
}  // namespace pylon

namespace pylon {
namespace {

TEST(ClientConnection, SmallPerConnectionState) {
  // Tens of thousands of connections per process: the object stays a few hundred bytes.
  EXPECT_LE(sizeof(client::Connection), 512u) << sizeof(client::Connection);
}

TEST(AgainstScripted, BackpressureQueuesThenDrops) {
  std::atomic<bool> client_done{false};
  ScriptedServer server([&](int fd, const std::string& request) {
    ScriptedServer::send_all(fd, accept_response(request));
    // Read nothing until the client has seen its sends back up.
    while (!client_done) std::this_thread::sleep_for(5ms);
    ScriptedServer::read_until_eof(fd);
  });
  ClientLoop loop;
  Events events;
  std::vector<SendStatus> statuses;
  ClientHandlers handlers = recording(
      events,
      [&](WebSocketClient& client) {
        const std::string chunk(256 * 1024, 'b');
        // Loopback socket buffers take several MiB before the kernel refuses.
        for (int i = 0; i < 400 && (statuses.empty() || statuses.back() != SendStatus::dropped);
             ++i)
          statuses.push_back(client.send(chunk, MessageKind::binary));
        EXPECT_GT(client.buffered_amount(), 0u);
        EXPECT_LE(client.buffered_amount(), (1u << 20) + 256 * 1024 + 64);
        client_done = true;
        client.close();
      },
      nullptr);
  loop.connect(server.url(), std::move(handlers), {.close_timeout = 2});
  ASSERT_TRUE(test::run_for(loop));
  ASSERT_GE(statuses.size(), 3u);
  EXPECT_EQ(statuses.front(), SendStatus::sent);
  EXPECT_EQ(statuses.back(), SendStatus::dropped);
  EXPECT_EQ(statuses[statuses.size() - 2], SendStatus::queued);
  client_done = true;
}

}  // namespace
}  // namespace pylon

// ---------------------------------------------------------------------------------------------
// permessage-deflate (RFC 7692) against servers we did not write, and against pylon

namespace pylon {
namespace {

ClientOptions with_compression(CompressionOptions compression = {.enabled = true}) {
  ClientOptions options;
  options.compression = compression;
  options.compression.enabled = true;
  return options;
}

// Every size and kind the issue asks for; the same set goes out whole and fragmented.
struct DeflateCase {
  std::string message;
  MessageKind kind;
  std::size_t fragments;
};

std::vector<DeflateCase> deflate_cases() {
  std::string random(1 << 20, '\0');
  std::uint64_t state = 0x9E3779B97F4A7C15u;
  for (char& c : random) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    c = static_cast<char>(state);
  }
  std::string json;
  while (json.size() < 64 * 1024)
    json += R"({"user":"ada","room":"general","text":"héllo wörld","seq":)" +
            std::to_string(json.size()) + "},";
  json.resize(64 * 1024);
  std::string hundred;
  for (int i = 0; i < 100; ++i) hundred += static_cast<char>('a' + i % 7);
  return {
      {"", MessageKind::text, 1},
      {"", MessageKind::binary, 1},
      {hundred, MessageKind::text, 1},
      {hundred, MessageKind::binary, 1},
      {json, MessageKind::text, 1},
      {json, MessageKind::binary, 1},
      {random, MessageKind::binary, 1},
      {json, MessageKind::text, 5},  // RSV1 on the first of 5 frames
      {random, MessageKind::binary, 3},
      {hundred, MessageKind::text, 2},
      {"short", MessageKind::text, 1},  // under the threshold: sent uncompressed
      // Several similar messages in a row: the windows carry over (context takeover).
      {json, MessageKind::text, 1},
      {json, MessageKind::text, 1},
      {hundred + hundred, MessageKind::text, 1},
  };
}

struct DeflateRun {
  Events events;
  std::string extensions;
  bool compressed = false;
};

// Sends every case to an echo at `url` and closes once all came back.
DeflateRun run_deflate_echo(const std::string& url, ClientOptions options) {
  const std::vector<DeflateCase> cases = deflate_cases();
  DeflateRun run;
  ClientLoop loop;
  loop.connect(url,
               recording(
                   run.events,
                   [&](WebSocketClient& client) {
                     run.extensions = client.extensions();
                     run.compressed = client.compressed();
                     for (const DeflateCase& c : cases) {
                       const SendStatus status =
                           client.send_fragmented(c.message, c.kind, c.fragments);
                       EXPECT_NE(status, SendStatus::dropped);
                     }
                   },
                   [&](WebSocketClient& client, std::string_view) {
                     if (run.events.messages.size() == cases.size()) client.close(4000, "done");
                   }),
               std::move(options));
  EXPECT_TRUE(test::run_for(loop, 20s));
  EXPECT_TRUE(run.events.errors.empty()) << run.events.errors.front();
  EXPECT_EQ(run.events.close_code, 4000);
  EXPECT_EQ(run.events.messages.size(), cases.size());
  for (std::size_t i = 0; i < cases.size() && i < run.events.messages.size(); ++i) {
    EXPECT_TRUE(run.events.messages[i] == cases[i].message)
        << "case " << i << ": " << run.events.messages[i].size() << " bytes, expected "
        << cases[i].message.size();
    EXPECT_EQ(run.events.kinds[i], cases[i].kind) << "case " << i;
  }
  return run;
}

TEST(DeflateAgainstPython, DefaultContextTakeoverBothWays) {
  PythonPeer peer(0, "deflate");
  ASSERT_TRUE(peer.ready());
  const DeflateRun run = run_deflate_echo(peer.url("/echo"), with_compression());
  EXPECT_TRUE(run.compressed);
  // websockets' defaults limit both windows to 12 bits; we always offer client_max_window_bits.
  EXPECT_EQ(run.extensions,
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12");
  EXPECT_EQ(peer.read_line(), "closed 4000 done");
}

TEST(DeflateAgainstPython, NoContextTakeoverWhenWeAskForIt) {
  PythonPeer peer(0, "deflate");
  ASSERT_TRUE(peer.ready());
  const DeflateRun run = run_deflate_echo(
      peer.url("/echo"),
      with_compression({.no_context_takeover = true, .max_window_bits = 10, .threshold = 0}));
  EXPECT_TRUE(run.compressed);
  EXPECT_NE(run.extensions.find("server_no_context_takeover"), std::string::npos) << run.extensions;
  EXPECT_NE(run.extensions.find("server_max_window_bits=10"), std::string::npos) << run.extensions;
}

TEST(DeflateAgainstPython, NoContextTakeoverWhenTheServerAsks) {
  PythonPeer peer(0, "isolated");
  ASSERT_TRUE(peer.ready());
  const DeflateRun run = run_deflate_echo(peer.url("/echo"), with_compression());
  EXPECT_TRUE(run.compressed);
  EXPECT_NE(run.extensions.find("server_no_context_takeover"), std::string::npos) << run.extensions;
  EXPECT_NE(run.extensions.find("client_no_context_takeover"), std::string::npos) << run.extensions;
}

TEST(DeflateAgainstPython, ServerSeesTheAgreementWeSee) {
  PythonPeer peer(0, "deflate");
  ASSERT_TRUE(peer.ready());
  ClientLoop loop;
  Events events;
  std::string ours;
  loop.connect(peer.url("/extensions"),
               recording(
                   events, [&](WebSocketClient& client) { ours = client.extensions(); },
                   [](WebSocketClient& client, std::string_view) { client.close(); }),
               with_compression());
  ASSERT_TRUE(test::run_for(loop));
  ASSERT_EQ(events.messages.size(), 1u);
  EXPECT_EQ(events.messages[0], ours);
}

TEST(DeflateAgainstPython, DeclinedOfferWorksUncompressed) {
  PythonPeer peer(0, "none");
  ASSERT_TRUE(peer.ready());
  const DeflateRun run = run_deflate_echo(peer.url("/echo"), with_compression());
  EXPECT_FALSE(run.compressed);
  EXPECT_EQ(run.extensions, "");
}

TEST(DeflateAgainstPython, ServerFragmentsOfCompressedMessages) {
  PythonPeer peer(0, "deflate");
  ASSERT_TRUE(peer.ready());
  ClientLoop loop;
  Events events;
  const std::string text(10000, 'z');
  loop.connect(peer.url("/fragments"),
               recording(
                   events,
                   [&](WebSocketClient& client) {
                     client.send(text);
                     client.send(text, MessageKind::binary);
                   },
                   [&](WebSocketClient& client, std::string_view) {
                     if (events.messages.size() == 2) client.close();
                   }),
               with_compression());
  ASSERT_TRUE(test::run_for(loop));
  ASSERT_EQ(events.messages.size(), 2u);
  EXPECT_EQ(events.messages[0], text);
  EXPECT_EQ(events.messages[1], text);
  EXPECT_EQ(events.kinds[1], MessageKind::binary);
}

class DeflateAgainstPylon : public ::testing::TestWithParam<const char*> {};

TEST_P(DeflateAgainstPylon, EchoesEverySize) {
  PylonServer server({"--compression", GetParam()});
  ASSERT_TRUE(server.wait_ready());
  const DeflateRun run = run_deflate_echo(server.url("/ws/echo"), with_compression());
  EXPECT_TRUE(run.compressed);
  EXPECT_EQ(run.extensions.rfind("permessage-deflate", 0), 0u) << run.extensions;
  if (std::string_view(GetParam()) == "shared") {
    EXPECT_NE(run.extensions.find("server_no_context_takeover"), std::string::npos);
  }
}

TEST_P(DeflateAgainstPylon, ClientWithoutCompressionIsServedUncompressed) {
  PylonServer server({"--compression", GetParam()});
  ASSERT_TRUE(server.wait_ready());
  const DeflateRun run = run_deflate_echo(server.url("/ws/echo"), {});
  EXPECT_FALSE(run.compressed);
}

INSTANTIATE_TEST_SUITE_P(Modes, DeflateAgainstPylon, ::testing::Values("shared", "dedicated"));

// Scripted servers: what no correct server sends.

std::string deflate_response(const std::string& request, const std::string& extensions) {
  std::string response = accept_response(request);
  response.insert(response.size() - 2, "Sec-WebSocket-Extensions: " + extensions + "\r\n");
  return response;
}

std::string compressed_frame(ws::Opcode opcode, std::string_view payload) {
  std::uint8_t header[ws::kMaxFrameHeaderSize];
  const std::size_t size = ws::write_frame_header(header, opcode, payload.size(), true, true);
  return std::string(reinterpret_cast<const char*>(header), size) + std::string(payload);
}

std::string deflated(std::string_view message, std::uint8_t window_bits = 15) {
  ws::MessageDeflater deflater(window_bits, 8, true);
  std::string out;
  deflater.compress(message, out);
  return out;
}

TEST(DeflateAgainstScripted, InvalidExtensionResponsesFailWithThePreciseError) {
  const std::pair<std::string, std::string> cases[] = {
      {"permessage-deflate; server_max_window_bits=16",
       "handshake: bad Sec-WebSocket-Extensions: permessage-deflate: "},
      {"permessage-deflate; x-unknown", "handshake: bad Sec-WebSocket-Extensions: "},
      {"permessage-deflate, permessage-deflate",
       "handshake: bad Sec-WebSocket-Extensions: permessage-deflate: accepted twice"},
      {"x-webkit-deflate-frame",
       "handshake: bad Sec-WebSocket-Extensions: Sec-WebSocket-Extensions: the server accepted an "
       "extension not offered: "},
  };
  for (const auto& [extensions, error] : cases) {
    ScriptedServer server([&, extensions = extensions](int fd, const std::string& request) {
      ScriptedServer::send_all(fd, deflate_response(request, extensions));
      ScriptedServer::read_until_eof(fd);
    });
    ClientLoop loop;
    Events events;
    loop.connect(server.url(), recording(events, nullptr, nullptr), with_compression());
    ASSERT_TRUE(test::run_for(loop));
    ASSERT_EQ(events.errors.size(), 1u) << extensions;
    EXPECT_EQ(events.errors[0].rfind(error, 0), 0u) << events.errors[0];
    EXPECT_EQ(events.opens, 0);
  }
  // Asked for server_no_context_takeover, the server MUST agree (RFC 7692 §7.1.1.1).
  ScriptedServer server([](int fd, const std::string& request) {
    ScriptedServer::send_all(fd, deflate_response(request, "permessage-deflate"));
    ScriptedServer::read_until_eof(fd);
  });
  ClientLoop loop;
  Events events;
  loop.connect(server.url(), recording(events, nullptr, nullptr),
               with_compression({.no_context_takeover = true}));
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(events.errors, std::vector<std::string>{"handshake: bad Sec-WebSocket-Extensions: "
                                                    "permessage-deflate: server_no_context_"
                                                    "takeover requested but not accepted"});
}

TEST(DeflateAgainstScripted, OfferAndFramesOnTheWire) {
  std::string request;
  std::string client_bytes;
  ScriptedServer server([&](int fd, const std::string& got) {
    request = got;
    ScriptedServer::send_all(
        fd, deflate_response(got,
                             "permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover; server_max_window_bits=11") +
                compressed_frame(ws::Opcode::text, deflated("héllo héllo", 11)));
    client_bytes = ScriptedServer::read_until_eof(fd);
  });
  ClientLoop loop;
  Events events;
  const std::string big(1000, 'q');
  loop.connect(server.url(),
               recording(events, nullptr,
                         [&](WebSocketClient& client, std::string_view) {
                           client.send("tiny");  // under the threshold
                           client.send_fragmented(big, MessageKind::binary, 3);  // compressed
                           client.ping("p");
                           client.close();
                         }),
               [] {
                 ClientOptions options =
                     with_compression({.no_context_takeover = true, .max_window_bits = 11});
                 options.close_timeout = 0.3;
                 return options;
               }());
  ASSERT_TRUE(test::run_for(loop));
  server.wait();
  EXPECT_EQ(events.messages, std::vector<std::string>{"héllo héllo"});
  EXPECT_EQ(ScriptedServer::header(request, "Sec-WebSocket-Extensions"),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=11; client_max_window_bits");

  // Walk the client's frames: unmask, note RSV1, inflate the compressed message.
  struct Frame {
    std::uint8_t first_byte;
    std::string payload;
  };
  std::vector<Frame> frames;
  std::size_t at = 0;
  while (at + 6 <= client_bytes.size()) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(client_bytes.data()) + at;
    std::size_t length = bytes[1] & 0x7F;
    std::size_t header = 2;
    if (length == 126) {
      length = static_cast<std::size_t>(bytes[2] << 8 | bytes[3]);
      header = 4;
    }
    ASSERT_NE(length, 127u);
    ws::MaskingKey key;
    std::memcpy(key.data(), bytes + header, 4);
    std::string payload(client_bytes, at + header + 4, length);
    ws::apply_mask(std::span(reinterpret_cast<std::uint8_t*>(payload.data()), payload.size()), key);
    frames.push_back({bytes[0], payload});
    at += header + 4 + length;
  }
  ASSERT_EQ(frames.size(), 6u);           // text, 3 binary fragments, ping, close
  EXPECT_EQ(frames[0].first_byte, 0x81);  // FIN, no RSV1: "tiny" is under the threshold
  EXPECT_EQ(frames[0].payload, "tiny");
  EXPECT_EQ(frames[1].first_byte, 0x42);  // binary, RSV1, not FIN
  EXPECT_EQ(frames[2].first_byte, 0x00);  // continuation: never RSV1 (RFC 7692 §6.1)
  EXPECT_EQ(frames[3].first_byte, 0x80);
  EXPECT_EQ(frames[4].first_byte, 0x89);  // control frames are never compressed
  EXPECT_EQ(frames[5].first_byte, 0x88);
  ws::MessageInflater inflater(11, true);
  std::string inflated;
  for (int i = 1; i <= 3; ++i)
    ASSERT_EQ(inflater.inflate(frames[i].payload, i == 3, 1 << 20, inflated),
              ws::MessageInflater::Status::ok);
  EXPECT_EQ(inflated, big);
  EXPECT_LT(frames[1].payload.size() + frames[2].payload.size() + frames[3].payload.size(), 100u);
}

void expect_deflate_failure(const std::string& frames, std::uint16_t expected_code,
                            const std::string& error, std::size_t max_message_size = 16u << 20) {
  std::string client_bytes;
  ScriptedServer server([&](int fd, const std::string& request) {
    ScriptedServer::send_all(fd, deflate_response(request, "permessage-deflate") + frames);
    client_bytes = ScriptedServer::read_until_eof(fd);
  });
  ClientLoop loop;
  Events events;
  ClientOptions options = with_compression();
  options.close_timeout = 0.3;
  options.max_message_size = max_message_size;
  loop.connect(server.url(), recording(events, nullptr, nullptr), options);
  ASSERT_TRUE(test::run_for(loop));
  server.wait();
  EXPECT_EQ(events.errors, std::vector<std::string>{error});
  EXPECT_EQ(events.close_code, expected_code);
  EXPECT_TRUE(events.messages.empty());
  EXPECT_EQ(client_close_code(client_bytes), expected_code);
}

TEST(DeflateAgainstScripted, BombFailsWith1009) {
  // 1 MiB of zeros deflates to ~1 KiB; the limit is 64 KiB of inflated bytes.
  const std::string bomb = deflated(std::string(1 << 20, '\0'));
  ASSERT_LT(bomb.size(), 2048u);
  expect_deflate_failure(compressed_frame(ws::Opcode::binary, bomb), 1009,
                         "protocol error: message too large", 64 * 1024);
}

TEST(DeflateAgainstScripted, CorruptDataFailsWith1007) {
  expect_deflate_failure(compressed_frame(ws::Opcode::binary, "\xff\xff\xff\xff garbage"), 1007,
                         "protocol error: invalid compressed data");
}

TEST(DeflateAgainstScripted, InvalidUtf8AfterInflatingFailsWith1007) {
  expect_deflate_failure(compressed_frame(ws::Opcode::text, deflated("bad \xff utf-8")), 1007,
                         "protocol error: invalid UTF-8");
}

TEST(DeflateAgainstScripted, Rsv1OnAContinuationFailsWith1002) {
  std::uint8_t header[ws::kMaxFrameHeaderSize];
  std::size_t size = ws::write_frame_header(header, ws::Opcode::text, 2, false, false);
  std::string frames = std::string(reinterpret_cast<const char*>(header), size) + "ab";
  size = ws::write_frame_header(header, ws::Opcode::continuation, 2, true, true);
  frames += std::string(reinterpret_cast<const char*>(header), size) + "cd";
  expect_deflate_failure(frames, 1002, "protocol error: reserved bits set");
}

TEST(DeflateAgainstScripted, Rsv1WithoutTheExtensionFailsWith1002) {
  std::string client_bytes;
  ScriptedServer server([&](int fd, const std::string& request) {
    ScriptedServer::send_all(
        fd, accept_response(request) + compressed_frame(ws::Opcode::text, deflated("x")));
    client_bytes = ScriptedServer::read_until_eof(fd);
  });
  ClientLoop loop;
  Events events;
  ClientOptions options = with_compression();  // offered, but the server declined
  options.close_timeout = 0.3;
  loop.connect(server.url(), recording(events, nullptr, nullptr), options);
  ASSERT_TRUE(test::run_for(loop));
  server.wait();
  EXPECT_EQ(events.errors, std::vector<std::string>{"protocol error: reserved bits set"});
  EXPECT_EQ(client_close_code(client_bytes), 1002);
}

// ---------------------------------------------------------------------------------------------
// Heartbeat (ClientOptions::ping_interval)

using Clock = std::chrono::steady_clock;

TEST_F(AgainstPylon, HeartbeatPingsOnlyWhileIdle) {
  // Idle: a ping after each ping_interval of silence, each answered. Then a message every 50 ms
  // for four intervals, each echoed: the echoes prove the server alive and no ping goes out.
  ClientLoop loop;
  Events events;
  WebSocketClient* client = nullptr;
  int pongs = 0;
  int sent = 0;
  Clock::time_point opened;
  Clock::time_point third_pong;
  ClientTimer sender(loop, [&] {
    if (sent == 24) return client->close();
    client->send("busy");
    ++sent;
    sender.arm_at(ClientTimer::monotonic_ns() + 50'000'000);
  });
  ClientHandlers handlers = recording(
      events,
      [&](WebSocketClient& opened_client) {
        client = &opened_client;
        opened = Clock::now();
      },
      nullptr);
  handlers.on_pong = [&](WebSocketClient&, std::string_view payload) {
    EXPECT_EQ(payload, kHeartbeatPing);
    if (++pongs == 3) {
      third_pong = Clock::now();
      sender.arm_at(ClientTimer::monotonic_ns());  // the busy phase starts now
    }
  };
  loop.connect(server_->url("/ws/echo"), std::move(handlers),
               {.ping_interval = 0.3, .pong_timeout = 1});
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_TRUE(events.errors.empty());
  EXPECT_EQ(events.close_code, 1000);
  EXPECT_EQ(sent, 24);
  EXPECT_EQ(events.messages.size(), 24u);
  EXPECT_EQ(pongs, 3) << "pings went out while the server was talking";
  // Three intervals of silence at least (less 10 ms for the loop clock's truncation), at most a
  // timer tick late each: an answered ping moves the next one to an interval after its pong,
  // not to its pong deadline (pong_timeout is longer than ping_interval here).
  EXPECT_GE(third_pong - opened, 890ms);
  EXPECT_LE(third_pong - opened, 1600ms);
}

TEST_F(AgainstPython, HeartbeatDetectsAServerThatStoppedAnswering) {
  ClientLoop loop;
  Events events;
  Clock::time_point paused;
  Clock::time_point failed;
  ClientHandlers handlers = recording(
      events,
      [&](WebSocketClient&) {
        peer_.pause();
        paused = Clock::now();
      },
      nullptr);
  auto record_error = handlers.on_error;
  handlers.on_error = [&, record_error](WebSocketClient& client, std::string_view error) {
    failed = Clock::now();
    EXPECT_TRUE(client.is_open());  // on_close follows
    record_error(client, error);
  };
  loop.connect(peer_.url("/echo"), std::move(handlers),
               {.ping_interval = 0.5, .pong_timeout = 0.5});
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(events.errors, std::vector<std::string>{"heartbeat: no pong within 0.5 s"});
  EXPECT_EQ(events.log, (std::vector<std::string>{"open", "error", "close 1006"}));
  // ping_interval + pong_timeout after the last byte from the server (the 101), plus at most two
  // timer ticks and some scheduling slack.
  EXPECT_GE(failed - paused, 990ms);
  EXPECT_LE(failed - paused, 1500ms);
}

TEST_F(AgainstPython, HeartbeatReconnectsOnceTheServerAnswersAgain) {
  ClientLoop loop;
  Events events;
  ClientHandlers handlers = recording(
      events,
      [&](WebSocketClient& client) {
        if (events.opens == 1)
          peer_.pause();
        else
          client.send("back");
      },
      [](WebSocketClient& client, std::string_view) { client.close(); });
  auto record_error = handlers.on_error;
  handlers.on_error = [&, record_error](WebSocketClient& client, std::string_view error) {
    record_error(client, error);
    // The stopped server's kernel accepted the reconnect, but nobody answered the handshake:
    // wake the server for the next attempt.
    if (error.starts_with("handshake: ")) peer_.resume();
  };
  loop.connect(peer_.url("/echo"), std::move(handlers),
               {.handshake_timeout = 0.5,
                .ping_interval = 0.3,
                .pong_timeout = 0.3,
                .reconnect = {.enabled = true, .initial_delay = 0.05, .max_delay = 0.2}});
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(events.log, (std::vector<std::string>{"open", "error", "close 1006", "error", "open",
                                                  "close 1000"}));
  ASSERT_EQ(events.errors.size(), 2u);
  EXPECT_EQ(events.errors[0], "heartbeat: no pong within 0.3 s");
  EXPECT_EQ(events.errors[1], "handshake: timed out waiting for the server's response");
  EXPECT_EQ(events.messages, std::vector<std::string>{"back"});
}

// What a scripted server received from a client that stayed idle and sent no message.
std::string idle_client_bytes(ClientOptions options, Events& events) {
  std::string client_bytes;
  ScriptedServer server([&](int fd, const std::string& request) {
    ScriptedServer::send_all(fd, accept_response(request));
    client_bytes = ScriptedServer::read_until_eof(fd);
  });
  ClientLoop loop;
  WebSocketClient* client = nullptr;
  // Without a heartbeat nothing would end the connection: close it after 1 s (three and a
  // half of the intervals the other tests ping at).
  ClientTimer closer(loop, [&] { client->close(); });
  options.close_timeout = 0.2;  // the script never answers our close
  loop.connect(server.url(),
               recording(
                   events,
                   [&](WebSocketClient& opened) {
                     client = &opened;
                     closer.arm_at(ClientTimer::monotonic_ns() + 1'000'000'000);
                   },
                   nullptr),
               options);
  EXPECT_TRUE(test::run_for(loop));
  server.wait();
  return client_bytes;
}

TEST(AgainstScripted, HeartbeatIsOffByDefault) {
  Events events;
  EXPECT_EQ(ClientOptions{}.ping_interval, 0);
  const std::string bytes = idle_client_bytes({}, events);
  // Our close frame (2 + 4 + 2 bytes) and nothing else: no ping in a second of silence.
  EXPECT_EQ(bytes.size(), 8u);
  EXPECT_EQ(client_close_code(bytes), 1000);
  EXPECT_TRUE(events.errors.empty());
}

TEST(AgainstScripted, HeartbeatPingOnTheWireAndNoCloseFrameAfterIt) {
  Events events;
  const std::string bytes = idle_client_bytes({.ping_interval = 0.3, .pong_timeout = 0.2}, events);
  // One masked ping carrying kHeartbeatPing, then only the FIN: a server that does not answer
  // gets no close frame.
  ASSERT_EQ(bytes.size(), 2 + 4 + kHeartbeatPing.size());
  EXPECT_EQ(static_cast<std::uint8_t>(bytes[0]), 0x89);
  EXPECT_EQ(static_cast<std::uint8_t>(bytes[1]), 0x80 | kHeartbeatPing.size());
  std::string payload = bytes.substr(6);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] ^= bytes[2 + i % 4];
  EXPECT_EQ(payload, kHeartbeatPing);
  EXPECT_EQ(events.errors, std::vector<std::string>{"heartbeat: no pong within 0.2 s"});
  EXPECT_EQ(events.close_code, 1006);
}

}  // namespace
}  // namespace pylon
