// The epoll backend (the default): level-triggered readiness; handlers read and write their
// sockets themselves. Loop thread only, like the loop that owns it.
#pragma once

#include <sys/epoll.h>

#include "net/poller.hpp"

namespace pylon::net {

class EpollPoller final : public Poller {
 public:
  EpollPoller();  // throws std::system_error
  ~EpollPoller() override;

  IoBackend backend() const noexcept override { return IoBackend::epoll; }
  void add(int fd, std::uint32_t events, IoHandler* handler, Receive receive) override;
  void modify(int fd, std::uint32_t events, IoHandler* handler) override;
  void remove(int fd) noexcept override;
  // A closed file leaves every epoll interest list by itself once its last descriptor is closed
  // (epoll(7)), and pylon never duplicates a descriptor it watches: no EPOLL_CTL_DEL before
  // close, one system call less per connection.
  void close(int fd) noexcept override { ::close(fd); }
  void wait(int timeout_ms) override;
  void dispatch() override;

 private:
  static constexpr int kMaxEvents = 512;
  int epoll_fd_ = -1;
  int ready_ = 0;
  epoll_event events_[kMaxEvents];
};

}  // namespace pylon::net
