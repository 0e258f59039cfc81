// RedisPresence against a real redis-server: members are seen by every instance, leave on
// request, are written again after Redis lost them, and vanish within the TTL once their
// instance is gone (nobody refreshes them); and the encoding of a member in its hash field.
#include "cluster/redis_presence.hpp"

#include <gtest/gtest.h>

#include "engine_instance.hpp"

namespace pylon::cluster {
namespace {

using testing::eventually;
using testing::Instance;
using testing::RedisServer;

const PresenceMember kAda{.client = "c1", .user = "ada", .info = R"({"name":"Ada"})"};
const PresenceMember kGuest{.client = "c2", .user = "", .info = ""};

TEST(RedisPresence, AMemberIsEncodedWithItsUserLengthSoAnyUserDecodes) {
  for (const PresenceMember& member :
       {kAda, kGuest, PresenceMember{.client = "c3", .user = "12:weird\n", .info = "[1,2]"}}) {
    PresenceMember decoded;
    ASSERT_TRUE(RedisPresence::decode(member.client, RedisPresence::encode(member), decoded));
    EXPECT_EQ(decoded, member);
  }
  PresenceMember decoded;
  EXPECT_FALSE(RedisPresence::decode("c", "", decoded));
  EXPECT_FALSE(RedisPresence::decode("c", "5:ab", decoded));  // shorter than its length
  EXPECT_FALSE(RedisPresence::decode("c", "x:ab", decoded));  // no length
  EXPECT_FALSE(RedisPresence::decode("c", "3", decoded));     // no ':'
}

TEST(RedisPresence, MembersAreSeenByEveryInstanceUntilTheyLeave) {
  RedisServer redis;
  Instance a(redis.url()), b(redis.url());
  ASSERT_TRUE(eventually([&] { return a.available() && b.available(); }));
  // An instance's commands go out in order on its one publisher connection; another instance's
  // read may pass them, so it polls.
  a.presence_join("room", kAda, 60000);
  b.presence_join("room", kGuest, 60000);
  for (Instance* instance : {&a, &b})
    EXPECT_TRUE(eventually([&] {
      return instance->read_presence("room") == PresenceMembers{kAda, kGuest};
    }));
  EXPECT_EQ(a.read_presence("elsewhere"), PresenceMembers{});
  a.presence_leave("room", "c1");
  EXPECT_EQ(a.read_presence("room"), PresenceMembers{kGuest});
  b.presence_leave("room", "c2");
  EXPECT_TRUE(eventually([&] { return a.read_presence("room") == PresenceMembers{}; }));
  EXPECT_EQ(redis.integer({"EXISTS", "test:presence:room", "test:presence-expiry:room"}), 0);
}

TEST(RedisPresence, AGoneInstancesMembersVanishWithinTheTtlWhileTheOthersAreRefreshed) {
  RedisServer redis;
  Instance b(redis.url());
  {
    Instance a(redis.url());
    ASSERT_TRUE(eventually([&] { return a.available() && b.available(); }));
    a.presence_join("room", kAda, 1500);
    b.presence_join("room", kGuest, 1500);
    ASSERT_TRUE(eventually([&] { return b.read_presence("room")->size() == 2; }));
  }  // a stops without leaving, as a SIGKILLed instance does
  EXPECT_TRUE(eventually([&] { return b.read_presence("room") == PresenceMembers{kGuest}; },
                         std::chrono::seconds(5)));
  // b's own member outlives its TTL several times: b refreshes it every third of it.
  std::this_thread::sleep_for(std::chrono::milliseconds(4000));  // longer than the TTL, on purpose
  EXPECT_EQ(b.read_presence("room"), PresenceMembers{kGuest});
}

TEST(RedisPresence, MembersAreWrittenAgainWhenRedisComesBackEmptyAndLeavesMadeMeanwhileAreSent) {
  RedisServer redis;
  Instance a(redis.url());
  ASSERT_TRUE(eventually([&] { return a.available(); }));
  a.presence_join("room", kAda, 60000);
  a.presence_join("room", kGuest, 60000);
  redis.kill_now();
  ASSERT_TRUE(eventually([&] { return !a.available(); }));
  EXPECT_EQ(a.read_presence("room"), std::nullopt);  // cannot tell
  a.presence_leave("room", "c2");
  redis.start();  // empty
  ASSERT_TRUE(eventually([&] { return a.available(); }));
  EXPECT_EQ(a.read_presence("room"), PresenceMembers{kAda});
}

}  // namespace
}  // namespace pylon::cluster
