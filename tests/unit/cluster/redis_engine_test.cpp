// The Redis engine against a real redis-server: two engines on two loops stand for two pylon
// instances (two instance ids).
#include "cluster/redis_engine.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "engine_instance.hpp"

namespace pylon::cluster {
namespace {

using testing::eventually;
using testing::Instance;
using testing::Received;
using testing::RedisServer;

TEST(RedisEngine, PublishReachesTheOtherInstanceAndNeverEchoes) {
  RedisServer redis;
  Instance a(redis.url()), b(redis.url());
  ASSERT_TRUE(eventually([&] { return a.available() && b.available(); }));
  a.subscribe("chat");
  b.subscribe("chat");
  ASSERT_TRUE(eventually([&] { return redis.numsub("test:chat") == 2; }));

  a.publish("chat", "{\"hello\":1}");
  a.publish("chat", std::string("\x00\xff", 2), ws::Opcode::binary);
  ASSERT_TRUE(eventually([&] { return b.received_count() == 2; }));
  EXPECT_EQ(b.received()[0], (Received{"chat", ws::Opcode::text, "{\"hello\":1}"}));
  EXPECT_EQ(b.received()[1], (Received{"chat", ws::Opcode::binary, std::string("\x00\xff", 2)}));

  // B's message reaches A after A's own two went by on the same channel: A got none of its own.
  b.publish("chat", "from b");
  ASSERT_TRUE(eventually([&] { return a.received_count() == 1; }));
  EXPECT_EQ(a.received()[0], (Received{"chat", ws::Opcode::text, "from b"}));
  EXPECT_EQ(b.received_count(), 2u);

  EXPECT_EQ(a.metric("pylon_engine_up"), 1);
  EXPECT_EQ(a.metric("pylon_engine_messages_total", "out"), 2);
  EXPECT_EQ(a.metric("pylon_engine_messages_total", "in"), 1);
  EXPECT_EQ(b.metric("pylon_engine_messages_total", "in"), 2);
  EXPECT_EQ(a.metric("pylon_engine_disconnects_total"), 0);
}

TEST(RedisEngine, KeepsTheOrderOfAThousandMessages) {
  RedisServer redis;
  Instance a(redis.url()), b(redis.url());
  b.subscribe("seq");
  ASSERT_TRUE(
      eventually([&] { return a.available() && b.available() && redis.numsub("test:seq") == 1; }));
  a.on_loop([&] {});  // nothing pending
  for (int i = 0; i < 1000; ++i) a.publish("seq", "m" + std::to_string(i));
  ASSERT_TRUE(eventually([&] { return b.received_count() == 1000; }));
  const auto received = b.received();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(received[i].payload, "m" + std::to_string(i)) << i;
}

TEST(RedisEngine, PrefixesSeparateClustersAndForeignBytesAreIgnored) {
  RedisServer redis;
  Instance a(redis.url(), "one:"), b(redis.url(), "two:"), c(redis.url(), "two:");
  b.subscribe("t");
  c.subscribe("t");
  ASSERT_TRUE(eventually([&] { return a.available() && redis.numsub("two:t") == 2; }));
  // Only the control channel, which every engine has.
  EXPECT_EQ(redis.channels("one:*"), std::vector<std::string>{"one:#control"});
  a.publish("t", "cluster one");
  redis.publish_raw("two:t", "not a pylon message");
  c.publish("t", "cluster two");
  ASSERT_TRUE(eventually([&] { return b.received_count() == 1; }));
  EXPECT_EQ(b.received()[0].payload, "cluster two");
}

TEST(RedisEngine, PasswordAndDb) {
  RedisServer redis({.password = "pa ss@word"});
  Instance a("redis://:pa%20ss%40word@127.0.0.1:" + std::to_string(redis.port()) + "/3");
  Instance b("redis://default:pa%20ss%40word@127.0.0.1:" + std::to_string(redis.port()));
  a.subscribe("t");
  b.subscribe("t");
  ASSERT_TRUE(
      eventually([&] { return a.available() && b.available() && redis.numsub("test:t") == 2; }));
  a.publish("t", "authenticated");
  ASSERT_TRUE(eventually([&] { return b.received_count() == 1; }));
}

TEST(RedisEngine, WrongPasswordOrDbStaysUnavailable) {
  RedisServer redis({.password = "right"});
  Instance wrong("redis://:wrong@127.0.0.1:" + std::to_string(redis.port()));
  Instance no_password("redis://127.0.0.1:" + std::to_string(redis.port()));
  Instance bad_db("redis://:right@127.0.0.1:" + std::to_string(redis.port()) + "/999");
  Instance good(redis.url());
  ASSERT_TRUE(eventually([&] { return good.available(); }));
  // The others have had the same time and several retries by now; give them one more second.
  EXPECT_FALSE(
      eventually([&] { return wrong.available() || no_password.available() || bad_db.available(); },
                 std::chrono::seconds(1)));
  EXPECT_EQ(wrong.metric("pylon_engine_up"), 0);
}

TEST(RedisEngine, UnixSocket) {
  const std::string socket = "/tmp/pylon-redis-test-" + std::to_string(getpid()) + ".sock";
  RedisServer redis({.unix_socket = socket});
  Instance a("unix://" + socket), b("unix://" + socket + "?db=1");
  b.subscribe("u");
  ASSERT_TRUE(
      eventually([&] { return a.available() && b.available() && redis.numsub("test:u") == 1; }));
  a.publish("u", "over a unix socket");
  ASSERT_TRUE(eventually([&] { return b.received_count() == 1; }));
  EXPECT_EQ(b.received()[0].payload, "over a unix socket");
}

TEST(RedisEngine, SubscriptionsFollowLocalInterest) {
  RedisServer redis;
  Instance a(redis.url());
  ASSERT_TRUE(eventually([&] { return a.available(); }));
  a.subscribe("x");
  a.subscribe("y");
  a.subscribe("y");  // the server calls once per topic; a repeat must not double anything
  ASSERT_TRUE(eventually([&] {
    return redis.channels("test:[^#]*") == std::vector<std::string>{"test:x", "test:y"};
  }));
  a.unsubscribe("x");
  ASSERT_TRUE(eventually(
      [&] { return redis.channels("test:[^#]*") == std::vector<std::string>{"test:y"}; }));
  a.unsubscribe("never-subscribed");
  a.unsubscribe("y");
  ASSERT_TRUE(eventually([&] { return redis.channels("test:[^#]*").empty(); }));
  // Flapping interest ends where it ended.
  for (int i = 0; i < 50; ++i) {
    a.subscribe("flap");
    a.unsubscribe("flap");
  }
  a.subscribe("flap");
  ASSERT_TRUE(eventually([&] { return redis.numsub("test:flap") == 1; }));
  a.unsubscribe("flap");
  ASSERT_TRUE(eventually([&] { return redis.channels("test:[^#]*").empty(); }));
}

TEST(RedisEngine, SurvivesARedisRestartAndSubscribesAgain) {
  RedisServer redis;
  Instance a(redis.url()), b(redis.url());
  a.subscribe("r1");
  b.subscribe("r1");
  b.subscribe("r2");
  ASSERT_TRUE(
      eventually([&] { return a.available() && b.available() && redis.numsub("test:r1") == 2; }));

  redis.kill_now();
  ASSERT_TRUE(eventually([&] { return !a.available() && !b.available(); }));
  EXPECT_EQ(a.metric("pylon_engine_up"), 0);
  a.publish("r1", "dropped while down");  // refused by the server in real life; must be harmless
  // Interest that changes during the outage is what gets subscribed after it.
  b.unsubscribe("r2");
  b.subscribe("r3");

  redis.start();
  ASSERT_TRUE(eventually([&] { return a.available() && b.available(); }));
  EXPECT_EQ(redis.numsub("test:r1"), 2);
  EXPECT_EQ(redis.numsub("test:r2"), 0);
  EXPECT_EQ(redis.numsub("test:r3"), 1);
  a.publish("r1", "after");
  a.publish("r3", "after3");
  ASSERT_TRUE(eventually([&] { return b.received_count() == 2; }));
  EXPECT_EQ(b.received()[0].payload, "after");
  EXPECT_EQ(b.received()[1].payload, "after3");
  EXPECT_EQ(a.metric("pylon_engine_up"), 1);
  EXPECT_EQ(a.metric("pylon_engine_disconnects_total"), 2);  // subscriber and publisher
  EXPECT_EQ(a.metric("pylon_engine_messages_total", "out"), 2);
}

TEST(RedisEngine, ControlMessagesReachEveryOtherInstanceAfterARestartToo) {
  RedisServer redis;
  Instance a(redis.url()), b(redis.url()), c(redis.url());
  ASSERT_TRUE(eventually([&] { return redis.numsub("test:#control") == 3; }));
  a.send_control("disconnect {\"user\":\"u\"}");
  ASSERT_TRUE(eventually([&] { return b.received_count() == 1 && c.received_count() == 1; }));
  EXPECT_EQ(b.received()[0],
            (Received{"#control", ws::Opcode::text, "disconnect {\"user\":\"u\"}"}));
  // No topic can be named #control (outside the charset), and a control message is no topic's.
  a.subscribe("control");
  b.send_control("second");
  ASSERT_TRUE(eventually([&] { return a.received_count() == 1 && c.received_count() == 2; }));
  EXPECT_EQ(a.received()[0].topic, "#control");

  redis.kill_now();
  ASSERT_TRUE(eventually([&] { return !a.available() && !b.available(); }));
  redis.start();
  ASSERT_TRUE(eventually([&] { return a.available() && b.available() && c.available(); }));
  ASSERT_TRUE(eventually([&] { return redis.numsub("test:#control") == 3; }));
  c.send_control("after the restart");
  ASSERT_TRUE(eventually([&] { return a.received_count() == 2 && b.received_count() == 2; }));
  EXPECT_EQ(a.received()[1].payload, "after the restart");
  EXPECT_EQ(c.received_count(), 2u);  // its own never comes back
}

TEST(RedisEngine, StartsBeforeRedisAndConnectsWhenItComes) {
  const std::uint16_t port = testing::free_port();
  Instance a("redis://127.0.0.1:" + std::to_string(port));
  a.subscribe("early");
  EXPECT_FALSE(a.available());
  RedisServer redis({.port = port});
  ASSERT_TRUE(eventually([&] { return a.available() && redis.numsub("test:early") == 1; }));
  EXPECT_EQ(a.metric("pylon_engine_disconnects_total"), 0);  // failed attempts are not losses
}

TEST(RedisEngine, ASlowPublisherConnectionIsBoundedAndRecovers) {
  RedisServer redis;
  Instance a(redis.url(), "test:", {.max_pending_bytes = 1 << 20});
  ASSERT_TRUE(eventually([&] { return a.available(); }));
  redis.pause();  // Redis stops reading: the kernel buffers fill, then hiredis's
  const std::string chunk(64 * 1024, 'x');
  int published = 0;
  while (a.available() && published < 2000) {
    a.publish("big", chunk);
    ++published;
  }
  EXPECT_FALSE(a.available()) << "after " << published << " messages of 64 KiB";
  redis.resume();
  ASSERT_TRUE(eventually([&] { return a.available(); }, std::chrono::seconds(20)));
}

TEST(RedisEngine, MalformedUrlThrows) {
  net::EventLoop loop;
  MetricsRegistry metrics;
  EXPECT_THROW(make_redis_engine(loop, {.url = "redis://h:port"}, {}, {}, {}, metrics, {}),
               std::invalid_argument);
}

}  // namespace
}  // namespace pylon::cluster
