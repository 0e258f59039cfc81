#include "server/subject_index.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace pylon {
namespace {

// A handle as WebSocket<Session> is one: a pointer to the connection's data.
struct FakeSocket {
  int* session;
  int& data() { return *session; }
};

TEST(SubjectIndex, FindsEveryConnectionOfASubjectAndForgetsClosedOnes) {
  int a1 = 0, a2 = 0, b1 = 0;
  SubjectIndex<FakeSocket> index;
  index.add("alice", {&a1});
  index.add("alice", {&a2});
  index.add("bob", {&b1});
  EXPECT_EQ(index.subjects(), 2u);
  auto alice = index.find("alice");
  ASSERT_EQ(alice.size(), 2u);
  EXPECT_EQ(alice[0].session, &a1);
  EXPECT_EQ(alice[1].session, &a2);
  EXPECT_TRUE(index.find("carol").empty());

  // What was found is a copy: removing while acting on it is safe.
  for (auto& socket : alice) index.remove("alice", socket);
  EXPECT_TRUE(index.find("alice").empty());
  EXPECT_EQ(index.subjects(), 1u);  // an emptied subject takes no room
  index.remove("bob", {&a1});       // not bob's: nothing happens
  EXPECT_EQ(index.find("bob").size(), 1u);
  index.remove("nobody", {&b1});
  index.remove("bob", {&b1});
  EXPECT_EQ(index.subjects(), 0u);
}

TEST(SubjectIndex, OnePerThread) {
  int a = 0;
  SubjectIndex<FakeSocket>::this_loop().add("alice", {&a});
  std::size_t seen_elsewhere = 1;
  std::thread([&] { seen_elsewhere = SubjectIndex<FakeSocket>::this_loop().subjects(); }).join();
  EXPECT_EQ(seen_elsewhere, 0u);
  EXPECT_EQ(SubjectIndex<FakeSocket>::this_loop().find("alice").size(), 1u);
  SubjectIndex<FakeSocket>::this_loop().remove("alice", {&a});
}

}  // namespace
}  // namespace pylon
