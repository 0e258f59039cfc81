#include "net/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "net/epoll_poller.hpp"
#include "net/uring_poller.hpp"

namespace pylon::net {

std::uint64_t EventLoop::monotonic_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

std::uint64_t EventLoop::monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

EventLoop::EventLoop(IoBackend backend, unsigned batch_wait_us)
    : now_ms_(monotonic_ms()), timers_(now_ms_), receive_buffer_(kReceiveBufferSize) {
  if (backend == IoBackend::io_uring) {
    try {
      poller_ = std::make_unique<UringPoller>(batch_wait_us);
    } catch (const std::system_error& error) {
      backend_error_ = error.what();
    }
  }
  if (!poller_) poller_ = std::make_unique<EpollPoller>();
  loop_sends_ = poller_->backend() == IoBackend::io_uring;
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  add(wake_fd_, EPOLLIN, &waker_);
}

const WaitBatching* EventLoop::wait_batching() const noexcept {
  return backend() == IoBackend::io_uring
             ? &static_cast<const UringPoller&>(*poller_).wait_batching()
             : nullptr;
}

unsigned EventLoop::batch_wait_us() const noexcept {
  const WaitBatching* batching = wait_batching();
  return batching ? batching->wait_us() : 0;
}

EventLoop::~EventLoop() {
  close(wake_fd_);
}

void EventLoop::stop() noexcept {
  stopping_.store(true, std::memory_order_release);
  std::uint64_t one = 1;
  [[maybe_unused]] auto written = write(wake_fd_, &one, sizeof one);
}

void EventLoop::post(std::function<void()> task) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(task));
  }
  // Only the first post since the loop last drained the queue pays for the eventfd write.
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto written = write(wake_fd_, &one, sizeof one);
  }
}

void EventLoop::drain_posted() {
  std::uint64_t count;
  [[maybe_unused]] auto got = read(wake_fd_, &count, sizeof count);
  wake_pending_.store(false, std::memory_order_release);
  {
    std::lock_guard lock(posted_mutex_);
    running_.swap(posted_);
  }
  for (auto& task : running_) task();
  running_.clear();
}

void EventLoop::run() {
  while (!stopping_.load(std::memory_order_acquire)) {
    // Wake at least every timer tick so the wheel advances even when the sockets are quiet.
    poller_->wait(static_cast<int>(TimerWheel::kTickMs));
    now_ms_ = monotonic_ms();
    poller_->dispatch();
    timers_.advance(now_ms_);
    if (end_of_iteration_) end_of_iteration_();
  }
  poller_->flush();  // what the last iteration queued
}

}  // namespace pylon::net
