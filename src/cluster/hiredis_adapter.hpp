// Runs a hiredis asynchronous context on a pylon event loop: fills redisAsyncContext::ev so that
// hiredis's "I want to read / write" hooks become epoll interest on the context's socket, and
// readiness becomes redisAsyncHandleRead/Write. The same job as hiredis/adapters/ae.h for redis's
// own loop, without another event library.
//
// The owner keeps one adapter per connection slot for the life of the engine and attaches each
// new context to it; hiredis detaches it (the `cleanup` hook) when it frees the context, which
// can happen inside redisAsyncHandleRead. The adapter outliving its contexts is what makes a
// stale epoll event after such a free harmless. Loop thread only.
#pragma once

#include <cstdint>

#include "net/event_loop.hpp"

struct redisAsyncContext;

namespace pylon::cluster {

class HiredisAdapter final : public net::IoHandler {
 public:
  explicit HiredisAdapter(net::EventLoop& loop) noexcept : loop_(loop) {}
  HiredisAdapter(const HiredisAdapter&) = delete;
  HiredisAdapter& operator=(const HiredisAdapter&) = delete;
  ~HiredisAdapter() { detach(); }

  // Takes over context's event hooks. The adapter must be detached (no context).
  void attach(redisAsyncContext* context) noexcept;
  redisAsyncContext* context() const noexcept { return context_; }

  void on_io(std::uint32_t epoll_events) override;

 private:
  static void add_read(void* self) noexcept;
  static void del_read(void* self) noexcept;
  static void add_write(void* self) noexcept;
  static void del_write(void* self) noexcept;
  static void cleanup(void* self) noexcept;

  void update(bool reading, bool writing) noexcept;
  void detach() noexcept;

  net::EventLoop& loop_;
  redisAsyncContext* context_ = nullptr;
  int fd_ = -1;
  bool reading_ = false;
  bool writing_ = false;
  bool registered_ = false;
};

}  // namespace pylon::cluster
