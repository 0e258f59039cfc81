// The write path of one connection, for the server's and the client's alike: the loop's cork,
// the connection's backlog of bytes the kernel has not taken, flushing through a transport (a
// plain socket, or TLS), and the epoll interest that follows from them (DESIGN.md "The engine").
//
// - Cork: while a connection processes what it read, everything it sends collects in its loop's
//   one cork buffer and goes out in one write when processing ends. One per loop.
// - Outbox: per connection, one pointer. Its Backlog exists only while bytes wait (or the kernel
//   refused some and EPOLLOUT is armed); an idle connection holds nothing.
// - Transport: anything with `int send(const char* data, std::size_t size, std::size_t& taken)`
//   returning 0 (taken bytes went out; fewer than size means "would block") or the errno of a
//   failure. SocketTransport is the plain one; the client's TLS session is another.
// Loop thread only.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
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
  // MSG_MORE for the last bytes before a FIN: the kernel holds them (in a segment not sent yet)
  // until the close() or shutdown() that follows, whose FIN then leaves in the same segment.
  int flags = 0;
  int send(const char* data, std::size_t size, std::size_t& taken) const noexcept {
    const ssize_t written = send_some(fd, data, size, flags);
    taken = written > 0 ? static_cast<std::size_t>(written) : 0;
    return written < 0 && errno != EAGAIN && errno != EINTR ? errno : 0;
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

  std::size_t buffered() const noexcept { return backlog_ ? backlog_->size() : 0; }
  // The kernel refused bytes: EPOLLOUT is wanted until they are gone.
  bool blocked() const noexcept { return backlog_ && backlog_->blocked; }

  // Where `owner`'s next bytes go: the cork while it holds it and nothing waits, else the
  // backlog. Order matters: once something waits, everything goes behind it. *flush_later is
  // set when the bytes went to a backlog that no EPOLLOUT will flush (the owner schedules one).
  ByteBuffer& output(Cork& cork, const void* owner, bool* flush_later) {
    if (cork.held_by(owner) && buffered() == 0) return cork.buffer();
    if (!blocked()) *flush_later = true;
    return backlog().bytes;
  }

  // After bytes were appended to output(): a cork past kCorkLimit is written now. Returns the
  // errno of a failed write (the bytes then wait for the next flush to find it), else 0.
  template <typename Transport>
  int after_output(Cork& cork, const void* owner, const Transport& transport) {
    if (!cork.held_by(owner) || cork.buffer().size() < kCorkLimit) return 0;
    const int error = send_cork(cork, transport);
    if (buffered() > 0) backlog().blocked = true;
    return error;
  }

  struct Flushed {
    int error = 0;         // errno of a failed write: the peer is gone
    bool drained = false;  // was blocked, and everything went out
  };
  // Hands the kernel what waits: a cork that no one holds any more (it holds the bytes of the
  // connection that just processed its input, which flushes right after), else the backlog.
  template <typename Transport>
  Flushed flush(Cork& cork, const Transport& transport) {
    int error = 0;
    if (!cork.held() && !cork.buffer().empty()) {
      error = send_cork(cork, transport);
    } else if (buffered() > 0) {
      std::size_t taken = 0;
      error = transport.send(backlog_->bytes.data() + backlog_->offset, buffered(), taken);
      backlog_->offset += taken;
    }
    if (error != 0) return {error, false};
    const bool was_blocked = blocked();
    if (buffered() > 0) {
      backlog_->blocked = true;
      return {};
    }
    backlog_.reset();
    return {0, was_blocked};
  }

  // The connection has no transport any more: what it wrote has nowhere to go.
  void discard(Cork& cork) noexcept {
    if (!cork.held() && !cork.buffer().empty()) cork.clear();
    backlog_.reset();
  }

  // Bytes that follow what the kernel refused, or the rest of a frame it took part of.
  void enqueue(std::string_view bytes) {
    Backlog& waiting = backlog();
    waiting.bytes.append(bytes);
    waiting.blocked = true;
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
    bool blocked = false;
    std::size_t size() const noexcept { return bytes.size() - offset; }
  };
  // noinline, these two: the rare paths stay out of output() and after_output(), which run for
  // every frame and then need no stack frame of their own (issue 17).
  [[gnu::noinline]] Backlog& backlog() {
    if (!backlog_) backlog_ = std::make_unique<Backlog>();
    return *backlog_;
  }
  template <typename Transport>
  [[gnu::noinline]] int send_cork(Cork& cork, const Transport& transport) {
    // The cork holds this connection's bytes alone, and nothing was waiting before them
    // (output() queues everything behind an existing backlog).
    const ByteBuffer& bytes = cork.buffer();
    std::size_t taken = 0;
    const int error = transport.send(bytes.data(), bytes.size(), taken);
    if (taken < bytes.size()) backlog().bytes.append(bytes.data() + taken, bytes.size() - taken);
    cork.clear();
    return error;
  }

  std::unique_ptr<Backlog> backlog_;
};

}  // namespace pylon::net
