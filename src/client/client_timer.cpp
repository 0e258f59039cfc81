// ClientTimer (include/pylon/client.hpp): a timerfd registered with the loop's epoll set.
//
// The loop's timer wheel ticks every 100 ms, fine for timeouts but far too coarse to pace sends;
// a timerfd with an absolute deadline wakes epoll_wait within tens of microseconds of it.
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "client/loop_state.hpp"
#include "net/event_loop.hpp"
#include "pylon/client.hpp"

namespace pylon {

class ClientTimer::Impl final : public net::IoHandler {
 public:
  Impl(net::EventLoop& loop, std::function<void()> on_fire)
      : loop_(loop), on_fire_(std::move(on_fire)) {
    fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "timerfd_create");
    loop_.add(fd_, EPOLLIN, this);
  }
  ~Impl() { loop_.close(fd_); }

  void arm_at(std::uint64_t deadline_ns) {
    // A zero it_value disarms a timerfd: a deadline of 0 (long past) becomes 1 ns.
    if (deadline_ns == 0) deadline_ns = 1;
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(deadline_ns / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(deadline_ns % 1'000'000'000);
    timerfd_settime(fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
    armed_ = true;
  }

  void disarm() {
    if (!armed_) return;
    itimerspec spec{};
    timerfd_settime(fd_, 0, &spec, nullptr);
    armed_ = false;
  }

  bool armed() const noexcept { return armed_; }

  void on_io(std::uint32_t) override {
    std::uint64_t expirations = 0;
    if (::read(fd_, &expirations, sizeof expirations) != sizeof expirations) return;
    armed_ = false;
    on_fire_();
  }

 private:
  net::EventLoop& loop_;
  std::function<void()> on_fire_;
  int fd_ = -1;
  bool armed_ = false;
};

ClientTimer::ClientTimer(ClientLoop& loop, std::function<void()> on_fire)
    : impl_(std::make_unique<Impl>(loop.state_->loop, std::move(on_fire))) {}
ClientTimer::~ClientTimer() = default;

void ClientTimer::arm_at(std::uint64_t deadline_ns) {
  impl_->arm_at(deadline_ns);
}
void ClientTimer::disarm() {
  impl_->disarm();
}
bool ClientTimer::armed() const noexcept {
  return impl_->armed();
}

std::uint64_t ClientTimer::monotonic_ns() noexcept {
  return net::EventLoop::monotonic_ns();
}

}  // namespace pylon
