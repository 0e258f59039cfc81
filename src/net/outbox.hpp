// The write path of one connection, for the server's and the client's alike: the loop's cork,
// the connection's backlog of bytes the kernel has not taken, flushing through a transport (a
// plain socket, or TLS), and the epoll interest that follows from them (DESIGN.md "The engine").
//
// - Cork: while a connection processes what it read, everything it sends collects in its loop's
//   one cork buffer and goes out in one write when processing ends. One per loop.
// - Outbox: per connection, one word. Its Backlog exists only while bytes wait (or the kernel
//   refused some and EPOLLOUT is armed); an idle connection holds nothing.
// - Transport: anything with `int send(const char* data, std::size_t size, std::size_t& taken)`
//   returning 0 (taken bytes went out; fewer than size means "would block") or the errno of a
//   failure. SocketTransport is the plain one; the client's TLS session is another.
// - In flight (io_uring): a SocketTransport given its loop hands the bytes to the loop instead
//   (EventLoop::send), which sends them with the iteration's io_uring_enter. They count as
//   buffered (backpressure, read pause, a close waits for them) until the owner passes the
//   result to sent(); meanwhile newer bytes wait in the backlog behind them (one send in flight
//   per socket keeps the stream in order), and what the kernel did not take goes back in front.
// Loop thread only.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "net/buffer.hpp"
#include "net/event_loop.hpp"
#include "net/socket.hpp"

namespace pylon::net {

class Cork {
 public:
  Cork() { buffer_.reserve(EventLoop::kReceiveBufferSize); }
  // Processing of `owner`'s input begins / ends.
  void begin(const void* owner) noexcept { owner_ = owner; }
  void end() noexcept { owner_ = nullptr; }
  bool held_by(const void* owner) const noexcept { return owner_ == owner; }
  bool held() const noexcept { return owner_ != nullptr; }
  ByteBuffer& buffer() noexcept { return buffer_; }
  // Empties the buffer, giving back what one burst grew it to.
  void clear() {
    buffer_.clear();
    if (buffer_.capacity() > 2 * EventLoop::kReceiveBufferSize) {
      buffer_.release();
      buffer_.reserve(EventLoop::kReceiveBufferSize);
    }
  }

 private:
  const void* owner_ = nullptr;
  ByteBuffer buffer_;
};

struct SocketTransport {
  int fd;
  EventLoop* loop = nullptr;  // set: the loop may send for the socket (io_uring; see above)
  // MSG_MORE for the last bytes before a FIN: the kernel holds them (in a segment not sent yet)
  // until the close() or shutdown() that follows, whose FIN then leaves in the same segment.
  int flags = 0;
  int send(const char* data, std::size_t size, std::size_t& taken) const noexcept {
    const ssize_t written = send_some(fd, data, size, flags);
    taken = written > 0 ? static_cast<std::size_t>(written) : 0;
    return written < 0 && errno != EAGAIN && errno != EINTR ? errno : 0;
  }
  // true: the loop took a copy of the pieces; the result comes to the fd's handler (on_sent).
  bool submit(std::span<const iovec> pieces) const {
    return loop != nullptr && loop->send(fd, pieces, flags);
  }
};

class Outbox {
 public:
  // Reads stop while this much waits for the kernel: a peer that sends faster than it reads is
  // slowed down by TCP instead of growing our memory (echo, request/response protocols).
  static constexpr std::size_t kReadPauseBytes = 256 * 1024;
  // A cork that reaches this much inside one handler goes to the kernel at once, so that
  // backpressure applies to a burst too (the cork alone would grow without bound).
  static constexpr std::size_t kCorkLimit = 256 * 1024;

  // Bytes not yet taken by the kernel: waiting here, or in flight.
  std::size_t buffered() const noexcept { return waiting() + in_flight(); }
  // Nothing waits, nothing is in flight, no drain is owed: a flush would find nothing to do.
  bool idle() const noexcept { return state_ == 0; }
  // Bytes waiting here, not handed to the kernel (an io_uring send in flight is taken or handed
  // back by its completion, within an iteration or so).
  std::size_t waiting() const noexcept {
    const Backlog* waiting = backlog_if_any();
    return waiting != nullptr ? waiting->size() : 0;
  }
  // Bytes wait here, or an emptied backlog still marks a drain owed (see flush).
  bool has_backlog() const noexcept { return backlog_if_any() != nullptr; }
  // The kernel refused bytes: EPOLLOUT is wanted until they are gone.
  bool blocked() const noexcept {
    const Backlog* waiting = backlog_if_any();
    return waiting != nullptr && waiting->blocked;
  }

  Outbox() = default;
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;
  ~Outbox() { delete backlog_if_any(); }

  // Where `owner`'s next bytes go: the cork while it holds it and nothing waits, else the
  // backlog. Order matters: once something waits, everything goes behind it. *flush_later is
  // set when the bytes went to a backlog that no EPOLLOUT will flush (the owner schedules one).
  ByteBuffer& output(Cork& cork, const void* owner, bool* flush_later) {
    // Nothing waits and nothing is in flight (state_ 0): the test of every frame, kept to one
    // comparison so that the frame writers stay inlined (issue 17).
    if (cork.held_by(owner) && state_ == 0) return cork.buffer();
    return output_behind(cork, owner, flush_later);
  }

  // After bytes were appended to output(): a cork past kCorkLimit is written now. Returns the
  // errno of a failed write (the bytes then wait for the next flush to find it), else 0.
  template <typename Transport>
  int after_output(Cork& cork, const void* owner, const Transport& transport) {
    if (!cork.held_by(owner) || cork.buffer().size() < kCorkLimit) return 0;
    const int error = send_cork(cork, transport);
    if (waiting() > 0) backlog().blocked = true;
    return error;
  }

  struct Flushed {
    int error = 0;         // errno of a failed write: the peer is gone
    bool drained = false;  // was blocked, and everything went out
  };
  // Hands the kernel what waits: a cork that no one holds any more (it holds the bytes of the
  // connection that just processed its input, which flushes right after), else the backlog,
  // unless bytes are in flight (sent() comes first). drained is reported once the last byte of a
  // blocked backlog is taken, in flight or not.
  template <typename Transport>
  Flushed flush(Cork& cork, const Transport& transport) {
    int error = 0;
    if (!cork.held() && !cork.buffer().empty()) {
      error = send_cork(cork, transport);
    } else if (waiting() > 0 && in_flight() == 0) {
      Backlog& rest = backlog();
      std::size_t taken = 0;
      error = hand_over(rest.bytes.data() + rest.offset, rest.size(), taken, transport);
      rest.offset += taken;
    }
    if (error != 0) return {error, false};
    Backlog* rest = backlog_if_any();
    if (rest == nullptr) return {};
    if (rest->size() > 0) {
      if (in_flight() == 0) rest->blocked = true;  // the kernel refused them: EPOLLOUT
      return {};
    }
    const bool was_blocked = rest->blocked || rest->drain_owed;
    if (was_blocked && in_flight() > 0) {
      // The last of a blocked backlog is in flight: drained once sent() says it all went. The
      // empty backlog stays as the mark, without its memory.
      rest->bytes.release();
      rest->offset = 0;
      rest->blocked = false;
      rest->drain_owed = true;
      return {};
    }
    free_backlog();
    return {0, was_blocked};
  }

  // The loop's send of the bytes in flight completed; unsent (valid during the call) is what the
  // kernel did not take. It goes back in front of what waits, and waits for EPOLLOUT.
  void sent(std::span<const std::uint8_t> unsent) {
    set_in_flight(0);
    if (unsent.empty()) return;
    Backlog& rest = backlog();
    ByteBuffer bytes;
    bytes.reserve(unsent.size() + rest.size());
    bytes.append(reinterpret_cast<const char*>(unsent.data()), unsent.size());
    bytes.append(rest.bytes.data() + rest.offset, rest.size());
    rest.bytes = std::move(bytes);
    rest.offset = 0;
    rest.blocked = true;
  }

  // Frames shared with other connections (broadcast), sent while nothing is buffered: the
  // kernel reads them in place (writev), or the loop takes a copy (in flight then). Returns what
  // was taken, or -1 with errno (EAGAIN while bytes are in flight: what follows must wait).
  ssize_t send_frames(std::span<const iovec> frames, const SocketTransport& transport) {
    if (in_flight() > 0) {
      errno = EAGAIN;
      return -1;
    }
    if (!transport.submit(frames)) return send_vector(transport.fd, frames.data(), frames.size());
    std::size_t size = 0;
    for (const iovec& frame : frames) size += frame.iov_len;
    set_in_flight(size);
    return static_cast<ssize_t>(size);
  }

  // The connection has no transport any more: what it wrote has nowhere to go (bytes in flight
  // are the loop's, which drops their result once the fd is removed).
  void discard(Cork& cork) noexcept {
    if (!cork.held() && !cork.buffer().empty()) cork.clear();
    free_backlog();
    set_in_flight(0);
  }

  // Bytes that follow what the kernel refused, or the rest of a frame it took part of; or that
  // wait behind bytes in flight (sent() flushes them then: no EPOLLOUT).
  void enqueue(std::string_view bytes) {
    Backlog& waiting = backlog();
    waiting.bytes.append(bytes);
    if (waiting.in_flight == 0) waiting.blocked = true;
  }

  // EPOLLIN unless too much waits; EPOLLOUT while blocked (or when the transport needs it).
  std::uint32_t interest(bool want_write = false) const noexcept {
    std::uint32_t events = EPOLLRDHUP;
    if (buffered() < kReadPauseBytes) events |= EPOLLIN;
    if (blocked() || want_write) events |= EPOLLOUT;
    return events;
  }

 private:
  struct Backlog {
    ByteBuffer bytes;
    std::size_t offset = 0;  // bytes before it went out already
    std::size_t in_flight = 0;
    bool blocked = false;
    bool drain_owed = false;  // a blocked backlog's last bytes are in flight: flush reports drained
    std::size_t size() const noexcept { return bytes.size() - offset; }
  };
  static_assert(alignof(Backlog) >= 2, "the low bit of state_ tells a Backlog's address apart");
  // An idle connection's slot has no room for a second word: state_ is the Backlog's address
  // while one exists (it counts the bytes in flight then), else the bytes in flight times two
  // plus one (0: nothing at all).
  Backlog* backlog_if_any() const noexcept {
    return (state_ & 1) == 0 ? reinterpret_cast<Backlog*>(state_) : nullptr;
  }
  std::size_t in_flight() const noexcept {
    if ((state_ & 1) != 0) return state_ >> 1;
    return state_ != 0 ? reinterpret_cast<const Backlog*>(state_)->in_flight : 0;
  }
  void set_in_flight(std::size_t size) noexcept {
    if (Backlog* waiting = backlog_if_any(); waiting != nullptr)
      waiting->in_flight = size;
    else
      state_ = size != 0 ? size << 1 | 1 : 0;
  }
  void free_backlog() noexcept {
    Backlog* waiting = backlog_if_any();
    if (waiting == nullptr) return;
    const std::size_t flying = waiting->in_flight;
    delete waiting;
    state_ = 0;
    set_in_flight(flying);
  }
  // To the loop if the transport can (in flight then), else a write now.
  template <typename Transport>
  int hand_over(const char* data, std::size_t size, std::size_t& taken,
                const Transport& transport) {
    if constexpr (requires { transport.submit(std::span<const iovec>{}); }) {
      const iovec piece{const_cast<char*>(data), size};
      if (transport.submit({&piece, 1})) {
        set_in_flight(size);
        taken = size;
        return 0;
      }
    }
    return transport.send(data, size, taken);
  }
  // noinline, these three: the rare paths stay out of output() and after_output(), which run for
  // every frame and then need no stack frame of their own (issue 17).
  [[gnu::noinline]] ByteBuffer& output_behind(Cork& cork, const void* owner, bool* flush_later) {
    if (cork.held_by(owner) && buffered() == 0) return cork.buffer();  // an empty backlog's mark
    if (!blocked() && in_flight() == 0) *flush_later = true;  // else EPOLLOUT or sent() flushes
    return backlog().bytes;
  }
  [[gnu::noinline]] Backlog& backlog() {
    if (Backlog* waiting = backlog_if_any(); waiting != nullptr) return *waiting;
    auto* created = new Backlog;
    created->in_flight = in_flight();
    state_ = reinterpret_cast<std::uintptr_t>(created);
    return *created;
  }
  template <typename Transport>
  [[gnu::noinline]] int send_cork(Cork& cork, const Transport& transport) {
    // The cork holds this connection's bytes alone, and nothing was waiting before them
    // (output() queues everything behind an existing backlog).
    const ByteBuffer& bytes = cork.buffer();
    std::size_t taken = 0;
    const int error = hand_over(bytes.data(), bytes.size(), taken, transport);
    if (taken < bytes.size()) backlog().bytes.append(bytes.data() + taken, bytes.size() - taken);
    cork.clear();
    return error;
  }

  std::uintptr_t state_ = 0;  // the backlog, or the bytes in flight (backlog_if_any)
};

}  // namespace pylon::net
