// The outbox (src/net/outbox.hpp) over a real loop and real TCP sockets on 127.0.0.1, under both
// backends: what the kernel does not take at once arrives later, whole and in order; under
// io_uring the loop sends (EventLoop::send), and bytes in flight count as buffered until their
// result comes back.
#include "net/outbox.hpp"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "loopback.hpp"
#include "net/event_loop.hpp"

namespace pylon::net {
namespace {

// A writer as a connection is one (server/connection.cpp): bytes written outside a read go to the
// outbox and are flushed at once; EPOLLOUT flushes what the kernel refused; on_sent hands back
// what a send of the loop's left.
struct Writer final : IoHandler {
  Writer(EventLoop& loop, int fd) : loop(loop), fd(fd) { loop.add(fd, interest, this); }

  void write(std::string_view bytes) {
    bool flush_later = false;
    outbox.output(cork, this, &flush_later).append(bytes);
    flush();
  }
  void flush() {
    const Outbox::Flushed flushed = outbox.flush(cork, SocketTransport{fd, &loop});
    if (flushed.error != 0) error = flushed.error;
    if (flushed.drained) ++drains;
    const std::uint32_t wanted = outbox.interest();
    if (wanted != interest) loop.modify(fd, interest = wanted, this);
    if (after_flush) after_flush(*this);
  }
  void on_io(std::uint32_t events) override {
    if ((events & EPOLLOUT) != 0) flush();
  }
  void on_sent(int failure, std::span<const std::uint8_t> unsent) override {
    ++sends;
    if (!unsent.empty()) ++partial_sends;
    if (failure != 0) {
      error = failure;
      return;
    }
    outbox.sent(unsent);
    flush();
  }

  EventLoop& loop;
  int fd;
  Cork cork;
  Outbox outbox;
  std::uint32_t interest = EPOLLRDHUP;
  int error = 0, drains = 0, sends = 0, partial_sends = 0;
  std::function<void(Writer&)> after_flush;
};

class OutboxTest : public testing::TestWithParam<IoBackend> {
 protected:
  EventLoop loop_{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(Backends, OutboxTest,
                         testing::Values(IoBackend::epoll, IoBackend::io_uring),
                         [](const testing::TestParamInfo<IoBackend>& info) {
                           return info.param == IoBackend::epoll ? "epoll" : "io_uring";
                         });

// Reads the peer until it has `total` bytes (or EOF), on a thread of its own.
std::thread read_into(int peer, std::string& received, std::size_t total) {
  return std::thread([peer, &received, total] {
    std::string buffer(64 * 1024, '\0');
    while (received.size() < total) {
      const ssize_t got = read(peer, buffer.data(), buffer.size());
      if (got <= 0) break;
      received.append(buffer.data(), static_cast<std::size_t>(got));
    }
  });
}

// A peer that reads only after the writer is full, through small socket buffers: most of each
// write is refused (epoll) or comes back unsent (io_uring), and still all of it arrives in order,
// and the outbox reports the drain once.
TEST_P(OutboxTest, PartialSendsArriveWholeAndInOrder) {
  auto [fd, peer] = tcp_pair();
  const int small = 16 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  Writer writer(loop_, fd);
  const std::string first = pattern(700 * 1024);
  const std::string second = "and then this";
  const std::string third = pattern(300 * 1024);
  const std::string all = first + second + third;
  // Posted: the loop sends only once it runs (an io_uring ring is enabled by its first wait).
  loop_.post([&] {
    writer.write(first);
    writer.write(second);
    writer.write(third);
    if (GetParam() == IoBackend::io_uring) {
      // Nothing has gone out yet: the first write is in flight, the others wait behind it; all
      // of it counts (backpressure, and reads pause past Outbox::kReadPauseBytes).
      EXPECT_EQ(writer.outbox.buffered(), all.size());
      EXPECT_FALSE(writer.outbox.blocked());
      EXPECT_EQ(writer.outbox.interest() & EPOLLIN, 0u);
    }
    writer.after_flush = [](Writer& self) {
      if (self.outbox.buffered() == 0) self.loop.stop();
    };
  });
  std::string received;
  std::thread reader = read_into(peer, received, all.size());
  loop_.run();
  reader.join();
  EXPECT_EQ(writer.error, 0);
  EXPECT_EQ(received.size(), all.size());
  EXPECT_TRUE(received == all);
  EXPECT_EQ(writer.drains, 1);
  if (GetParam() == IoBackend::io_uring) {
    EXPECT_GE(writer.partial_sends, 1);
  } else {
    EXPECT_EQ(writer.sends, 0);
  }
  loop_.remove(fd);
  close(fd);
  close(peer);
}

// Bytes queued behind a send in flight (a second delivery in the same iteration) wait for its
// result, not for EPOLLOUT: not blocked, no EPOLLOUT interest, and out right after, in order.
TEST_P(OutboxTest, BytesBehindASendInFlightWaitForItsResult) {
  auto [fd, peer] = tcp_pair();
  Writer writer(loop_, fd);
  loop_.post([&] {
    writer.write("first ");
    writer.outbox.enqueue("second");
    if (GetParam() == IoBackend::io_uring) {
      EXPECT_FALSE(writer.outbox.blocked());
      EXPECT_EQ(writer.outbox.interest() & EPOLLOUT, 0u);
      EXPECT_EQ(writer.outbox.buffered(), 12u);
      // The send in flight is the kernel's: only what is queued behind it waits here (what
      // pylon_send_backlog_bytes counts).
      EXPECT_EQ(writer.outbox.waiting(), 6u);
    }
    writer.after_flush = [](Writer& self) {
      if (self.outbox.buffered() == 0) self.loop.stop();
    };
    writer.flush();
  });
  loop_.run();
  std::string received;
  read_into(peer, received, 12).join();
  EXPECT_EQ(received, "first second");
  EXPECT_EQ(writer.error, 0);
  EXPECT_EQ(writer.sends, GetParam() == IoBackend::io_uring ? 2 : 0);
  loop_.remove(fd);
  close(fd);
  close(peer);
}

// A socket removed and closed while the loop still holds a send for it, and a new socket given
// the same fd number in the same iteration (as accept4 would): the old peer gets the old bytes,
// the new peer only its own, and the old handler hears nothing more.
TEST_P(OutboxTest, CloseWithASendInFlight) {
  auto [fd, peer] = tcp_pair();
  auto [next, next_peer] = tcp_pair();
  Writer first(loop_, fd);
  std::optional<Writer> second;
  loop_.post([&, fd = fd, next = next] {
    first.write("for the first socket");
    if (GetParam() == IoBackend::io_uring) {
      EXPECT_EQ(first.outbox.buffered(), 20u);  // in flight
    }
    first.outbox.discard(first.cork);
    loop_.remove(fd);
    close(fd);
    ASSERT_EQ(dup2(next, fd), fd);
    close(next);
    second.emplace(loop_, fd);
    second->after_flush = [](Writer& self) {
      if (self.outbox.buffered() == 0) self.loop.stop();
    };
    second->write("for the second");
  });
  loop_.run();
  std::string old_bytes, new_bytes;
  read_into(peer, old_bytes, 20).join();
  read_into(next_peer, new_bytes, 14).join();
  EXPECT_EQ(old_bytes, "for the first socket");
  EXPECT_EQ(new_bytes, "for the second");
  EXPECT_EQ(first.sends, 0);
  EXPECT_EQ(second->error, 0);
  loop_.remove(fd);
  close(fd);
  close(peer);
  close(next_peer);
}

}  // namespace
}  // namespace pylon::net
