// How an event loop waits for its sockets: the narrow interface between EventLoop and its two
// backends, epoll (epoll_poller.cpp, the default) and io_uring (uring_poller.cpp), chosen by the
// `io_backend` key. Events are epoll's flags under both, so every IoHandler works with either.
// Under io_uring the loop may also receive (Receive::by_loop) and send (Poller::send) for a
// handler, batching the system calls of a whole iteration into one io_uring_enter.
//
// A Poller belongs to one loop: every call but the constructor comes from the loop's thread.
#pragma once

#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <span>

#include "pylon/config.hpp"

namespace pylon::net {

// Something that owns a file descriptor registered with a loop.
class IoHandler {
 public:
  virtual void on_io(std::uint32_t epoll_events) = 0;
  // Only for a handler added with Receive::by_loop to a loop that receives (io_uring): bytes the
  // loop received from its socket, valid during the call (the loop reuses their buffer after
  // it); empty once the peer closed its side. A failed receive arrives as on_io(EPOLLERR).
  virtual void on_received(std::span<std::uint8_t> bytes) {}
  // Only for a handler whose bytes went out through Poller::send (io_uring): the send completed.
  // error is 0 or the errno of a failure (the peer is gone); unsent holds the bytes the kernel
  // did not take (valid during the call), which the handler sends again, before anything newer.
  virtual void on_sent(int error, std::span<const std::uint8_t> unsent) {}

 protected:
  ~IoHandler() = default;
};

// Who reads a socket. by_handler: the handler, on EPOLLIN. by_loop: under io_uring the loop
// receives into buffers of its own and hands the bytes to on_received (EPOLLIN is never
// reported then); under epoll it means by_handler.
enum class Receive : std::uint8_t { by_handler, by_loop };

class Poller {
 public:
  Poller() = default;
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;
  virtual ~Poller() = default;
  virtual IoBackend backend() const noexcept = 0;
  virtual void add(int fd, std::uint32_t events, IoHandler* handler, Receive receive) = 0;
  virtual void modify(int fd, std::uint32_t events, IoHandler* handler) = 0;
  // Stops watching an fd that stays open (a paused listener). Events epoll collected for it
  // earlier in the same batch may still come (the handler is alive until the iteration ends:
  // connection_list.hpp); io_uring sends none.
  virtual void remove(int fd) noexcept = 0;
  // Stops watching fd and closes it; the same holds for events of the batch. epoll needs no
  // removal first (EpollPoller says why).
  virtual void close(int fd) noexcept {
    remove(fd);
    ::close(fd);
  }
  // Hands the kernel what the loop has queued and lets it finish what it deferred (io_uring:
  // submits, and runs the ring's task work, which ends cancelled operations). After remove(fd)
  // the loop then holds fd's file no more: a listener closed after that refuses the next connect
  // at once, instead of taking it into a backlog that no one accepts from (io_uring's poll would
  // keep the socket until its cancel had run). Also when the loop stops: a cancel or a send
  // queued by its last iteration still takes effect.
  virtual void flush() noexcept {}
  // Waits up to timeout_ms for events (the only blocking call of a loop).
  virtual void wait(int timeout_ms) = 0;
  // Hands what wait() found to the handlers.
  virtual void dispatch() = 0;
  // Takes a copy of the bytes (the pieces, in order) to send on fd with the next wait(), and
  // reports the result to fd's handler (on_sent). At most one send per fd at a time: the caller
  // waits for on_sent before the next. false: nothing was taken (epoll, or no room this
  // iteration): the caller writes the bytes itself. flags: added to the send's (MSG_MORE).
  virtual bool send(int fd, std::span<const iovec> pieces, int flags) { return false; }
};

}  // namespace pylon::net
