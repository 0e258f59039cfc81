#include "cluster/hiredis_adapter.hpp"

#include <hiredis/async.h>
#include <sys/epoll.h>

namespace pylon::cluster {

void HiredisAdapter::attach(redisAsyncContext* context) noexcept {
  context_ = context;
  fd_ = context->c.fd;
  reading_ = writing_ = registered_ = false;
  context->ev.data = this;
  context->ev.addRead = &HiredisAdapter::add_read;
  context->ev.delRead = &HiredisAdapter::del_read;
  context->ev.addWrite = &HiredisAdapter::add_write;
  context->ev.delWrite = &HiredisAdapter::del_write;
  context->ev.cleanup = &HiredisAdapter::cleanup;
}

void HiredisAdapter::on_io(std::uint32_t epoll_events) {
  // A stale event: the context was freed earlier in this epoll batch.
  if (context_ == nullptr) return;
  // Errors and hang-ups go to the read side: hiredis reads 0 or an error and disconnects (and
  // completes or fails a pending connect there too).
  if (epoll_events & (EPOLLIN | EPOLLERR | EPOLLHUP)) redisAsyncHandleRead(context_);
  // Warning: redisAsyncHandleRead may have freed the context (cleanup() cleared context_).
  if (context_ != nullptr && (epoll_events & EPOLLOUT)) redisAsyncHandleWrite(context_);
}

void HiredisAdapter::update(bool reading, bool writing) noexcept {
  if (reading == reading_ && writing == writing_) return;
  reading_ = reading;
  writing_ = writing;
  const std::uint32_t events = (reading ? EPOLLIN : 0u) | (writing ? EPOLLOUT : 0u);
  if (events == 0) {
    if (registered_) loop_.remove(fd_);
    registered_ = false;
  } else if (!registered_) {
    try {
      loop_.add(fd_, events, this);
      registered_ = true;
    } catch (...) {
      // epoll refused the socket: nothing will wake this context, and the engine's connect or
      // reply timeout will give up on it.
      reading_ = writing_ = false;
    }
  } else {
    loop_.modify(fd_, events, this);
  }
}

void HiredisAdapter::detach() noexcept {
  if (registered_) loop_.remove(fd_);
  registered_ = reading_ = writing_ = false;
  context_ = nullptr;
  fd_ = -1;
}

void HiredisAdapter::add_read(void* self) noexcept {
  auto& adapter = *static_cast<HiredisAdapter*>(self);
  adapter.update(true, adapter.writing_);
}
void HiredisAdapter::del_read(void* self) noexcept {
  auto& adapter = *static_cast<HiredisAdapter*>(self);
  adapter.update(false, adapter.writing_);
}
void HiredisAdapter::add_write(void* self) noexcept {
  auto& adapter = *static_cast<HiredisAdapter*>(self);
  adapter.update(adapter.reading_, true);
}
void HiredisAdapter::del_write(void* self) noexcept {
  auto& adapter = *static_cast<HiredisAdapter*>(self);
  adapter.update(adapter.reading_, false);
}
// hiredis calls this while freeing the context, before it closes the socket.
void HiredisAdapter::cleanup(void* self) noexcept {
  static_cast<HiredisAdapter*>(self)->detach();
}

}  // namespace pylon::cluster
