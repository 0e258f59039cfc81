// The event loop: one per worker thread, share-nothing (DESIGN.md "The engine").
//
// A loop owns a poller (epoll or io_uring: poller.hpp), a timer wheel, one large receive buffer
// shared by all of its sockets, and an eventfd-driven queue through which other threads hand it
// work. Everything except post() and stop() must be called on the loop's own thread. The loop
// never blocks except in its poller's wait.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "net/poller.hpp"
#include "net/timer_wheel.hpp"

namespace pylon::net {

class WaitBatching;

class EventLoop {
 public:
  // Receive buffer size: one read takes up to this much from a socket. A connection copies bytes
  // out of it only when a frame or request is incomplete.
  static constexpr std::size_t kReceiveBufferSize = 512 * 1024;

  // io_uring where the kernel refuses a ring (too old, seccomp, kernel.io_uring_disabled) runs
  // on epoll instead: backend() says which, backend_error() why. batch_wait_us: how long a busy
  // io_uring loop's wait may hold a completion for others (uring_poller.hpp; 0: never).
  explicit EventLoop(IoBackend backend = IoBackend::epoll, unsigned batch_wait_us = 0);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until stop(); returns after the iteration in which stop() was seen.
  void run();
  // Any thread.
  void stop() noexcept;
  // Any thread: runs task on the loop's thread at its next iteration, in posting order.
  void post(std::function<void()> task);

  // events: epoll flags under either backend.
  void add(int fd, std::uint32_t events, IoHandler* handler,
           Receive receive = Receive::by_handler) {
    poller_->add(fd, events, handler, receive);
  }
  void modify(int fd, std::uint32_t events, IoHandler* handler) {
    poller_->modify(fd, events, handler);
  }
  void remove(int fd) noexcept { poller_->remove(fd); }
  // Stops watching fd and closes it (the way to close a watched descriptor).
  void close(int fd) noexcept { poller_->close(fd); }
  // What the loop queued goes to the kernel now (poller.hpp): after remove(), before a
  // listener's close.
  void flush() noexcept { poller_->flush(); }
  // Under io_uring: the loop takes a copy of the bytes and sends them with the next wait, with
  // every other socket's; the result reaches the handler's on_sent (poller.hpp). false: nothing
  // was taken (epoll, or no room this iteration), and the caller writes itself.
  bool send(int fd, std::span<const iovec> pieces, int flags) {
    return loop_sends_ && poller_->send(fd, pieces, flags);
  }
  IoBackend backend() const noexcept { return poller_->backend(); }
  const Poller& poller() const noexcept { return *poller_; }
  const std::string& backend_error() const noexcept { return backend_error_; }
  // The batch wait in effect: 0 under epoll, or where the kernel cannot bound a wait's batch.
  unsigned batch_wait_us() const noexcept;
  // Whether the io_uring loop's waits batch now, and its trials (uring_poller.hpp); null under
  // epoll. Loop thread.
  const WaitBatching* wait_batching() const noexcept;

  TimerWheel& timers() noexcept { return timers_; }
  // Monotonic milliseconds, read once per iteration (cheap, coarse).
  std::uint64_t now_ms() const noexcept { return now_ms_; }
  std::span<std::uint8_t> receive_buffer() noexcept { return receive_buffer_; }

  // Runs after every batch of events, before the next wait (used to flush corked writes and free
  // closed connections once no callback can touch them).
  void set_end_of_iteration(std::function<void()> hook) { end_of_iteration_ = std::move(hook); }

  // Coarse (a few ms, cheap): deadlines. Precise: latencies.
  static std::uint64_t monotonic_ms() noexcept;
  static std::uint64_t monotonic_ns() noexcept;

 private:
  // The eventfd's handler: runs what other threads posted.
  struct Waker final : IoHandler {
    explicit Waker(EventLoop& loop) : loop(loop) {}
    void on_io(std::uint32_t) override { loop.drain_posted(); }
    EventLoop& loop;
  };
  void drain_posted();

  std::unique_ptr<Poller> poller_;
  bool loop_sends_ = false;  // io_uring: send() may take bytes (a test that costs no virtual call)
  std::string backend_error_;
  Waker waker_{*this};
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
