// wss:// end to end (src/client/tls.cpp and its use in src/client/connection.cpp): the client
// against the Python `websockets` peer serving TLS with a certificate from deploy/tls/local-ca.sh,
// against `pylon serve` (which speaks no TLS), and against a server that hangs up mid-handshake.
// All on 127.0.0.1.
#include "client/tls.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "peers.hpp"
#include "pylon/client.hpp"

namespace pylon {
namespace {

using namespace std::chrono_literals;
using test::Events;
using test::LocalCa;
using test::PylonServer;
using test::PythonPeer;
using test::recording;

// One local CA and one TLS peer (echo, no compression) for the suite.
class OverTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ca_ = new LocalCa();
    ASSERT_TRUE(ca_->ready()) << "deploy/tls/local-ca.sh failed";
    peer_ = new PythonPeer(0, "none", ca_->directory());
    ASSERT_TRUE(peer_->ready()) << "websockets_peer.py did not start with TLS";
  }
  static void TearDownTestSuite() {
    delete peer_;
    delete ca_;
    peer_ = nullptr;
    ca_ = nullptr;
  }
  static ClientOptions trusting_ca() { return {.tls = {.ca_file = ca_->ca_file()}}; }

  // Connects once and returns what happened; the client closes after `expected` messages.
  static Events run(const std::string& url, ClientOptions options, std::size_t expected = 1) {
    Events events;
    ClientLoop loop;
    loop.connect(url,
                 recording(
                     events, [](WebSocketClient& client) { client.send("hello over tls"); },
                     [&](WebSocketClient& client, std::string_view) {
                       if (events.messages.size() == expected) client.close();
                     }),
                 std::move(options));
    EXPECT_TRUE(test::run_for(loop));
    return events;
  }

  static LocalCa* ca_;
  static PythonPeer* peer_;
};
LocalCa* OverTls::ca_ = nullptr;
PythonPeer* OverTls::peer_ = nullptr;

TEST_F(OverTls, EchoesSmallLargeAndFragmentedMessages) {
  Events events;
  ClientLoop loop;
  // Larger than the receive buffer and many TLS records (16 KiB each), both ways.
  std::string large(3 << 20, '\0');
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 13);
  loop.connect(peer_->url("/echo", "localhost"),
               recording(
                   events,
                   [&](WebSocketClient& client) {
                     client.send("héllo");
                     client.send(large, MessageKind::binary);
                     for (int i = 0; i < 100; ++i) client.send(std::to_string(i));
                     client.send_fragmented("in three parts", MessageKind::text, 3);
                   },
                   [&](WebSocketClient& client, std::string_view) {
                     if (events.messages.size() == 103) client.close(4000, "done");
                   }),
               trusting_ca());
  ASSERT_TRUE(test::run_for(loop, 20s));
  EXPECT_TRUE(events.errors.empty()) << events.errors.front();
  ASSERT_EQ(events.messages.size(), 103u);
  EXPECT_EQ(events.messages[0], "héllo");
  EXPECT_TRUE(events.messages[1] == large);
  EXPECT_EQ(events.messages[101], "99");
  EXPECT_EQ(events.messages[102], "in three parts");
  EXPECT_EQ(events.closes, std::vector<std::uint16_t>{4000});
  EXPECT_EQ(peer_->read_line(), "closed 4000 done");  // the close handshake went through TLS
}

TEST_F(OverTls, ByIpAddressTheCertificateNamesIt) {
  const Events events = run(peer_->url("/echo", "127.0.0.1"), trusting_ca());
  EXPECT_TRUE(events.errors.empty()) << events.errors.front();
  EXPECT_EQ(events.messages, std::vector<std::string>{"hello over tls"});
  peer_->read_line();
}

TEST_F(OverTls, UntrustedCertificateFailsVerification) {
  // The system store does not know the local CA.
  const Events events = run(peer_->url("/echo", "localhost"), {});
  EXPECT_EQ(events.opens, 0);
  ASSERT_EQ(events.errors.size(), 1u);
  EXPECT_EQ(events.errors[0].rfind("tls: certificate verify failed: ", 0), 0u) << events.errors[0];
}

TEST_F(OverTls, NameMismatchFailsVerification) {
  ClientOptions options = trusting_ca();
  options.tls.server_name = "example.test";
  const Events events = run(peer_->url("/echo", "127.0.0.1"), options);
  EXPECT_EQ(events.opens, 0);
  EXPECT_EQ(events.errors,
            std::vector<std::string>{"tls: certificate verify failed: hostname mismatch (the "
                                     "certificate is not valid for example.test)"});
}

TEST_F(OverTls, WithoutVerificationAnyCertificateWill) {
  const Events events =
      run(peer_->url("/echo", "localhost"), {.tls = {.verify = false, .server_name = "x.test"}});
  EXPECT_TRUE(events.errors.empty()) << events.errors.front();
  EXPECT_EQ(events.messages, std::vector<std::string>{"hello over tls"});
  peer_->read_line();
}

TEST_F(OverTls, BackpressureQueuesThenDrops) {
  // /silent reads nothing: TLS records pile up in the socket, then in pending_.
  Events events;
  ClientLoop loop;
  std::vector<SendStatus> statuses;
  ClientOptions options = trusting_ca();
  options.close_timeout = 0.5;
  loop.connect(
      peer_->url("/silent"),
      recording(events,
                [&](WebSocketClient& client) {
                  const std::string chunk(256 * 1024, 'b');
                  for (int i = 0;
                       i < 800 && (statuses.empty() || statuses.back() != SendStatus::dropped); ++i)
                    statuses.push_back(client.send(chunk, MessageKind::binary));
                  EXPECT_GT(client.buffered_amount(), 0u);
                  EXPECT_LE(client.buffered_amount(), (1u << 20) + 256 * 1024 + 64);
                  client.close();
                }),
      options);
  ASSERT_TRUE(test::run_for(loop, 20s));
  ASSERT_GE(statuses.size(), 3u);
  EXPECT_EQ(statuses.front(), SendStatus::sent);
  EXPECT_EQ(statuses.back(), SendStatus::dropped);
  EXPECT_EQ(statuses[statuses.size() - 2], SendStatus::queued);
  peer_->kill();  // it never reads our close; the next test gets a fresh peer
  delete peer_;
  peer_ = new PythonPeer(0, "none", ca_->directory());
}

TEST_F(OverTls, ReconnectsWithANewHandshakeAfterTheServerRestarts) {
  Events events;
  ClientLoop loop;
  const std::uint16_t port = peer_->port();
  bool restarted = false;
  ClientHandlers handlers = recording(
      events, [&](WebSocketClient& client) { client.send(events.opens == 1 ? "one" : "two"); },
      [&](WebSocketClient& client, std::string_view message) {
        if (message == "one") peer_->kill();  // no close_notify, no close frame: EOF
        if (message == "two") client.close();
      });
  auto record_error = handlers.on_error;
  handlers.on_error = [&, record_error](WebSocketClient& client, std::string_view error) {
    record_error(client, error);
    if (!restarted) {
      restarted = true;
      peer_->start(port);
    }
  };
  ClientOptions options = trusting_ca();
  options.reconnect = {.enabled = true, .initial_delay = 0.05, .max_delay = 0.2};
  loop.connect(peer_->url("/echo", "localhost"), std::move(handlers), options);
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(events.opens, 2);
  EXPECT_EQ(events.messages, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(events.closes, (std::vector<std::uint16_t>{1006, 1000}));
}

TEST(DeflateOverTls, CompressedEchoThroughTls) {
  LocalCa ca;
  ASSERT_TRUE(ca.ready());
  PythonPeer peer(0, "deflate", ca.directory());
  ASSERT_TRUE(peer.ready());
  std::string json;
  while (json.size() < 100'000)
    json += R"({"symbol":"SYM7","price":104.37,"seq":)" + std::to_string(json.size()) + "},";
  Events events;
  ClientLoop loop;
  loop.connect(peer.url("/echo", "localhost"),
               recording(
                   events,
                   [&](WebSocketClient& client) {
                     for (int i = 0; i < 5; ++i) client.send(json);
                   },
                   [&](WebSocketClient& client, std::string_view) {
                     if (events.messages.size() == 5) client.close();
                   }),
               {.compression = {.enabled = true}, .tls = {.ca_file = ca.ca_file()}});
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_TRUE(events.compressed);
  EXPECT_TRUE(events.errors.empty()) << events.errors.front();
  ASSERT_EQ(events.messages.size(), 5u);
  EXPECT_TRUE(events.messages[4] == json);
}

TEST(TlsAgainstPlainServer, HandshakeFailsWithTheReason) {
  // pylon serve speaks HTTP where TLS is expected.
  PylonServer server;
  ASSERT_TRUE(server.wait_ready());
  Events events;
  ClientLoop loop;
  loop.connect("wss://127.0.0.1:" + std::to_string(server.port()) + "/ws/echo", recording(events),
               {.handshake_timeout = 5});
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(events.opens, 0);
  ASSERT_EQ(events.errors.size(), 1u);
  EXPECT_EQ(events.errors[0], "tls: handshake failed: wrong version number (is this port TLS?)");
}

TEST(TlsAgainstScripted, ServerHangsUpDuringTheHandshake) {
  // Accepts, reads the ClientHello, closes.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t length = sizeof address;
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  std::thread server([listener] {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    char hello[4096];
    ::recv(fd, hello, sizeof hello, 0);
    ::close(fd);
  });
  Events events;
  ClientLoop loop;
  loop.connect("wss://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/",
               recording(events));
  EXPECT_TRUE(test::run_for(loop));
  server.join();
  ::close(listener);
  EXPECT_EQ(events.errors,
            std::vector<std::string>{"tls: the server closed the connection during the TLS "
                                     "handshake"});
}

}  // namespace
}  // namespace pylon
