// TopicClient (src/client/topic_client.cpp) against `pylon serve` of this build, whose topics
// under chat: keep a history of 100 publications and under short: of 2: offsets remembered,
// recovery after close() + connect() and after an automatic reconnect to a restarted server.
#include "pylon/topic_client.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "peers.hpp"

namespace pylon {
namespace {

using namespace std::chrono_literals;
using test::PylonServer;

const std::vector<std::string> kHistory = {
    "--namespace", "chat:history_size=100", "--namespace", "chat:history_ttl=300",
    "--namespace", "short:history_size=2",  "--namespace", "short:history_ttl=300"};

// What a subscriber saw.
struct Seen {
  std::vector<std::uint64_t> offsets;
  std::vector<std::string> data;
  std::vector<std::string> subscribed;  // "offset recovered|fresh|lost"
};

TopicHandlers recording(Seen& seen, std::function<void(TopicClient&, const Publication&)> then,
                        std::function<void(TopicClient&, const SubscribeResult&)> on_subscribed) {
  return {
      .on_message =
          [&seen, then](TopicClient& client, const Publication& publication) {
            seen.offsets.push_back(publication.offset);
            seen.data.emplace_back(publication.data);
            if (then) then(client, publication);
          },
      .on_subscribed =
          [&seen, on_subscribed](TopicClient& client, const SubscribeResult& result) {
            seen.subscribed.push_back(std::to_string(result.offset) + " " +
                                      (!result.recovery   ? "fresh"
                                       : result.recovered ? "recovered"
                                                          : "lost"));
            if (on_subscribed) on_subscribed(client, result);
          },
  };
}

// Publishes `count` messages {"n":first..} and calls `done` once all are acked.
struct Publisher {
  Publisher(ClientLoop& loop, const PylonServer& server)
      : client(loop, TopicClient::make_profile(server.url("/ws")),
               {.on_open =
                    [this](TopicClient&) {
                      if (on_open) on_open();
                    },
                .on_published =
                    [this](TopicClient&, std::uint64_t, std::uint64_t offset) {
                      offsets.push_back(offset);
                      if (--waiting == 0 && done) done();
                    }}) {}
  void publish(const std::string& topic, int count, std::function<void()> then) {
    waiting = count;
    done = std::move(then);
    for (int i = 0; i < count; ++i)
      ASSERT_NE(client.publish(topic, R"({"n":)" + std::to_string(next++) + "}"), 0u);
  }
  TopicClient client;
  std::function<void()> on_open;
  std::function<void()> done;
  std::vector<std::uint64_t> offsets;
  int waiting = 0;
  int next = 1;
};

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t offset = first; offset <= last; ++offset) out.push_back(offset);
  return out;
}

TEST(TopicClient, RejectsBadTopicNames) {
  ClientLoop loop;
  TopicClient client(loop, TopicClient::make_profile("ws://127.0.0.1:1/ws"), {});
  EXPECT_FALSE(client.subscribe(""));
  EXPECT_FALSE(client.subscribe("a b"));
  EXPECT_FALSE(client.subscribe(std::string(129, 'a')));
  EXPECT_TRUE(client.subscribe("chat:1"));
  EXPECT_EQ(client.position("chat:1"), nullptr);  // not known before the server said it
  EXPECT_EQ(client.publish("chat:1", "1"), 0u);   // not open: not sent
}

TEST(TopicClient, DeliversInOffsetOrderAndRemembersThePosition) {
  PylonServer server(kHistory);
  ASSERT_TRUE(server.wait_ready());
  ClientLoop loop;
  Publisher publisher(loop, server);
  Seen seen;
  TopicClient subscriber(loop, TopicClient::make_profile(server.url("/ws")),
                         recording(
                             seen,
                             [&](TopicClient&, const Publication&) {
                               if (seen.offsets.size() == 3 && publisher.offsets.size() == 3)
                                 loop.stop();
                             },
                             [&](TopicClient&, const SubscribeResult&) {
                               // Stops once the three deliveries and the publisher's three acks are
                               // in, whichever comes last (they travel on two connections).
                               publisher.publish("chat:a", 3, [&] {
                                 if (seen.offsets.size() == 3) loop.stop();
                               });
                             }));
  subscriber.subscribe("chat:a");
  publisher.on_open = [&] { subscriber.connect(); };
  publisher.client.connect();
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(seen.subscribed, std::vector<std::string>{"0 fresh"});
  EXPECT_EQ(seen.offsets, range(1, 3));
  EXPECT_EQ(seen.data, (std::vector<std::string>{R"({"n":1})", R"({"n":2})", R"({"n":3})"}));
  ASSERT_NE(subscriber.position("chat:a"), nullptr);
  EXPECT_EQ(subscriber.position("chat:a")->offset, 3u);
  EXPECT_FALSE(subscriber.position("chat:a")->epoch.empty());
  EXPECT_EQ(subscriber.stats().delivered, 3u);
  // Acks come in order here (one connection, memory engine), each with its offset.
  EXPECT_EQ(publisher.offsets, range(1, 3));
}

// Receives 2, closes; 5 are published meanwhile; connects again: the 5 missed come first, each
// once, then the ack, then the live stream.
void reconnect_and_recover(const std::string& topic, Seen& seen, TopicClientStats& stats) {
  PylonServer server(kHistory);
  ASSERT_TRUE(server.wait_ready());
  ClientLoop loop;
  Publisher publisher(loop, server);
  std::unique_ptr<TopicClient> subscriber;
  bool closed = false;
  auto on_message = [&](TopicClient& client, const Publication& publication) {
    if (!closed && seen.offsets.size() == 2) {
      closed = true;
      client.close();
    } else if (publication.offset == 8) {
      loop.stop();
    }
  };
  auto on_subscribed = [&](TopicClient&, const SubscribeResult& result) {
    publisher.publish(topic, result.recovery ? 1 : 2, {});
  };
  TopicHandlers handlers = recording(seen, on_message, on_subscribed);
  handlers.on_close = [&](TopicClient&, std::uint16_t, std::string_view) {
    publisher.publish(topic, 5, [&] { subscriber->connect(); });
  };
  subscriber = std::make_unique<TopicClient>(loop, TopicClient::make_profile(server.url("/ws")),
                                             std::move(handlers));
  subscriber->subscribe(topic);
  publisher.on_open = [&] { subscriber->connect(); };
  publisher.client.connect();
  ASSERT_TRUE(test::run_for(loop));
  stats = subscriber->stats();
  EXPECT_EQ(subscriber->position(topic)->offset, 8u);
}

TEST(TopicClient, RecoversWhatItMissedAfterAReconnect) {
  Seen seen;
  TopicClientStats stats;
  reconnect_and_recover("chat:b", seen, stats);
  EXPECT_EQ(seen.offsets, range(1, 8));
  EXPECT_EQ(seen.subscribed, (std::vector<std::string>{"0 fresh", "7 recovered"}));
  EXPECT_EQ(stats.recovered, 1u);
  EXPECT_EQ(stats.not_recovered, 0u);
  EXPECT_EQ(stats.duplicates, 0u);
}

TEST(TopicClient, SaysNotRecoveredWhenTheHistoryIsTooShort) {
  Seen seen;
  TopicClientStats stats;
  reconnect_and_recover("short:b", seen, stats);
  // 3..7 are past a history of 2: nothing of them is sent, the live stream goes on from 7.
  EXPECT_EQ(seen.offsets, (std::vector<std::uint64_t>{1, 2, 8}));
  EXPECT_EQ(seen.subscribed, (std::vector<std::string>{"0 fresh", "7 lost"}));
  EXPECT_EQ(stats.not_recovered, 1u);
}

TEST(TopicClient, ResubscribesAfterAnAutomaticReconnect) {
  // The server restarts on the same port: the memory engine's history is gone (a new epoch), so
  // the automatic reconnect's recovery is answered recovered = false, and the topic works on.
  auto server = std::make_unique<PylonServer>(kHistory);
  const std::uint16_t port = server->port();
  ASSERT_TRUE(server->wait_ready());
  ClientLoop loop;
  Seen seen;
  int opens = 0;
  std::string first_epoch;
  TopicHandlers handlers = recording(
      seen,
      [&](TopicClient&, const Publication& publication) {
        if (publication.data == R"("after")") loop.stop();
      },
      [&](TopicClient& client, const SubscribeResult& result) {
        if (!result.recovery) {
          first_epoch = result.epoch;
          client.publish("chat:c", R"("before")");
        } else {
          EXPECT_NE(result.epoch, first_epoch);
          client.publish("chat:c", R"("after")");
        }
      });
  handlers.on_open = [&](TopicClient&) { ++opens; };
  handlers.on_message = [&, deliver = handlers.on_message](TopicClient& client,
                                                           const Publication& publication) {
    deliver(client, publication);
    if (publication.data == R"("before")") {
      server.reset();  // SIGKILL: the connection drops without a close frame
      server = std::make_unique<PylonServer>(kHistory, port);
    }
  };
  TopicClient client(loop,
                     TopicClient::make_profile(
                         "ws://127.0.0.1:" + std::to_string(port) + "/ws",
                         {.reconnect = {.enabled = true, .initial_delay = 0.05, .max_delay = 0.2}}),
                     std::move(handlers));
  client.subscribe("chat:c");
  client.connect();
  ASSERT_TRUE(test::run_for(loop, 20s));
  EXPECT_GE(opens, 2);
  EXPECT_EQ(seen.data, (std::vector<std::string>{R"("before")", R"("after")"}));
  EXPECT_EQ(seen.subscribed, (std::vector<std::string>{"0 fresh", "0 lost"}));
  EXPECT_EQ(client.stats().not_recovered, 1u);
}

// A gap on the live stream, which pylon makes only for a slow consumer with slow_consumer =
// "drop" (not reproducible on time): a scripted server sends offsets 1, 2, 4, 5 and checks that
// the client unsubscribes and recovers from 2, dropping what comes before the unsubscribe's ack.
TEST(TopicClient, RecoversFromAGapOnTheLiveStream) {
  std::vector<std::string> requests;
  const auto message = [](int offset) {
    return test::server_frame(ws::Opcode::text, R"({"type":"message","topic":"t:1","offset":)" +
                                                    std::to_string(offset) + R"(,"data":)" +
                                                    std::to_string(offset) + "}");
  };
  const auto text = [](std::string_view payload) {
    return test::server_frame(ws::Opcode::text, payload);
  };
  test::ScriptedServer server([&](int fd, const std::string& request) {
    using test::ScriptedServer;
    ScriptedServer::send_all(fd, test::accept_response(request));
    requests.push_back(test::read_client_frame(fd));
    ScriptedServer::send_all(
        fd, text(R"({"type":"ack","id":1,"positions":{"t:1":{"offset":0,"epoch":"e"}}})") +
                message(1) + message(2) + message(4) + message(5));
    requests.push_back(test::read_client_frame(fd));
    requests.push_back(test::read_client_frame(fd));
    // 6 left before the unsubscribe arrived; then what a recovery sends, and the live stream.
    ScriptedServer::send_all(
        fd,
        message(6) + text(R"({"type":"ack","id":2})") + message(3) + message(4) + message(5) +
            message(6) +
            text(
                R"({"type":"ack","id":3,"positions":{"t:1":{"offset":6,"epoch":"e","recovered":true}}})") +
            message(7));
    ScriptedServer::read_until_eof(fd);
  });
  ClientLoop loop;
  Seen seen;
  TopicHandlers handlers = recording(seen,
                                     [&](TopicClient& client, const Publication& publication) {
                                       if (publication.offset == 7) client.close();
                                     },
                                     {});
  // The script does not answer the close frame: close_timeout ends the connection.
  handlers.on_close = [&](TopicClient&, std::uint16_t, std::string_view) { loop.stop(); };
  TopicClient client(loop, TopicClient::make_profile(server.url("/ws"), {.close_timeout = 0.2}),
                     std::move(handlers));
  client.subscribe("t:1");
  client.connect();
  ASSERT_TRUE(test::run_for(loop, 5s));
  server.wait();
  EXPECT_EQ(seen.offsets, range(1, 7));
  EXPECT_EQ(seen.subscribed, (std::vector<std::string>{"0 fresh", "6 recovered"}));
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0], R"({"type":"subscribe","topics":["t:1"],"id":1})");
  EXPECT_EQ(requests[1], R"({"type":"unsubscribe","topics":["t:1"],"id":2})");
  EXPECT_EQ(
      requests[2],
      R"({"type":"subscribe","topics":["t:1"],"recover":{"t:1":{"offset":2,"epoch":"e"}},"id":3})");
  EXPECT_EQ(client.stats().gaps, 1u);
  EXPECT_EQ(client.stats().recovered, 1u);
}

TEST(TopicClient, UnsubscribeStopsDeliveries) {
  PylonServer server(kHistory);
  ASSERT_TRUE(server.wait_ready());
  ClientLoop loop;
  Seen seen;
  std::vector<std::uint64_t> acks;
  TopicHandlers handlers = recording(seen, {}, [&](TopicClient& client, const SubscribeResult&) {
    client.publish("chat:d", "1");
    client.unsubscribe("chat:d");
    client.publish("chat:d", "2");
  });
  handlers.on_published = [&](TopicClient&, std::uint64_t id, std::uint64_t offset) {
    acks.push_back(offset);
    if (acks.size() == 2) loop.stop();
  };
  TopicClient client(loop, TopicClient::make_profile(server.url("/ws")), std::move(handlers));
  client.subscribe("chat:d");
  client.connect();
  ASSERT_TRUE(test::run_for(loop));
  EXPECT_EQ(acks, (std::vector<std::uint64_t>{1, 2}));
  // The first one reached the connection after the unsubscribe was asked: not delivered.
  EXPECT_TRUE(seen.offsets.empty());
  EXPECT_EQ(client.position("chat:d"), nullptr);
}

}  // namespace
}  // namespace pylon
