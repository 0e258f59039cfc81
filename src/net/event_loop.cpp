#include "net/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace pylon::net {
namespace {

constexpr int kMaxEvents = 512;

// The eventfd's handler: the loop itself, marked by a null handler pointer in epoll data.
constexpr IoHandler* kWakeHandler = nullptr;

}  // namespace

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

EventLoop::EventLoop()
    : now_ms_(monotonic_ms()), timers_(now_ms_), receive_buffer_(kReceiveBufferSize) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  add(wake_fd_, EPOLLIN, kWakeHandler);
}

EventLoop::~EventLoop() {
  close(wake_fd_);
  close(epoll_fd_);
}

void EventLoop::add(int fd, std::uint32_t events, IoHandler* handler) {
  epoll_event event{};
  event.events = events;
  event.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl add");
}

void EventLoop::modify(int fd, std::uint32_t events, IoHandler* handler) {
  epoll_event event{};
  event.events = events;
  event.data.ptr = handler;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);
}

void EventLoop::remove(int fd) noexcept {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
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
  epoll_event events[kMaxEvents];
  while (!stopping_.load(std::memory_order_acquire)) {
    // Wake at least every timer tick so the wheel advances even when the sockets are quiet.
    const int ready =
        epoll_wait(epoll_fd_, events, kMaxEvents, static_cast<int>(TimerWheel::kTickMs));
    now_ms_ = monotonic_ms();
    for (int i = 0; i < ready; ++i) {
      auto* handler = static_cast<IoHandler*>(events[i].data.ptr);
      if (handler == kWakeHandler) {
        drain_posted();
      } else {
        handler->on_io(events[i].events);
      }
    }
    timers_.advance(now_ms_);
    if (end_of_iteration_) end_of_iteration_();
  }
}

}  // namespace pylon::net
