// The event loop: one per worker thread, share-nothing (DESIGN.md "The engine").
//
// A loop owns an epoll instance, a timer wheel, one large receive buffer shared by all of its
// sockets, and an eventfd-driven queue through which other threads hand it work. Everything
// except post() and stop() must be called on the loop's own thread. The loop never blocks except
// in epoll_wait.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "net/timer_wheel.hpp"

namespace pylon::net {

// Something that owns a file descriptor registered with a loop.
class IoHandler {
 public:
  virtual void on_io(std::uint32_t epoll_events) = 0;

 protected:
  ~IoHandler() = default;
};

class EventLoop {
 public:
  // Receive buffer size: one read takes up to this much from a socket. A connection copies bytes
  // out of it only when a frame or request is incomplete.
  static constexpr std::size_t kReceiveBufferSize = 512 * 1024;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until stop(); returns after the iteration in which stop() was seen.
  void run();
  // Any thread.
  void stop() noexcept;
  // Any thread: runs task on the loop's thread at its next iteration, in posting order.
  void post(std::function<void()> task);

  void add(int fd, std::uint32_t events, IoHandler* handler);
  void modify(int fd, std::uint32_t events, IoHandler* handler);
  void remove(int fd) noexcept;

  TimerWheel& timers() noexcept { return timers_; }
  // Monotonic milliseconds, read once per iteration (cheap, coarse).
  std::uint64_t now_ms() const noexcept { return now_ms_; }
  std::span<std::uint8_t> receive_buffer() noexcept { return receive_buffer_; }

  // Runs after every epoll batch, before the next wait (used to flush corked writes and free
  // closed connections once no callback can touch them).
  void set_end_of_iteration(std::function<void()> hook) { end_of_iteration_ = std::move(hook); }

  // Coarse (a few ms, cheap): deadlines. Precise: latencies.
  static std::uint64_t monotonic_ms() noexcept;
  static std::uint64_t monotonic_ns() noexcept;

 private:
  void drain_posted();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::uint64_t now_ms_;
  TimerWheel timers_;
  std::vector<std::uint8_t> receive_buffer_;
  std::function<void()> end_of_iteration_;

  // MPSC: producers append under the mutex; the loop swaps the vector out and runs it unlocked.
  std::mutex posted_mutex_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> running_;
  std::atomic<bool> wake_pending_{false};
};

}  // namespace pylon::net
