#include "net/epoll_poller.hpp"

#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace pylon::net {

EpollPoller::EpollPoller() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
}

EpollPoller::~EpollPoller() {
  ::close(epoll_fd_);
}

void EpollPoller::add(int fd, std::uint32_t events, IoHandler* handler, Receive) {
  epoll_event event{};
  event.events = events;
  event.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl add");
}

void EpollPoller::modify(int fd, std::uint32_t events, IoHandler* handler) {
  epoll_event event{};
  event.events = events;
  event.data.ptr = handler;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);
}

void EpollPoller::remove(int fd) noexcept {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

void EpollPoller::wait(int timeout_ms) {
  ready_ = epoll_wait(epoll_fd_, events_, kMaxEvents, timeout_ms);
}

void EpollPoller::dispatch() {
  for (int i = 0; i < ready_; ++i)
    static_cast<IoHandler*>(events_[i].data.ptr)->on_io(events_[i].events);
}

}  // namespace pylon::net
