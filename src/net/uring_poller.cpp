#include "net/uring_poller.hpp"

#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace pylon::net {
namespace {

// Submission queue entries; the completion queue gets kCompletionEntries (a loop with many
// sockets may see that many events in one iteration; the kernel keeps any overflow and hands it
// over at the next io_uring_enter).
constexpr unsigned kSubmissionEntries = 4096;
constexpr unsigned kCompletionEntries = 16384;
constexpr int kBufferGroup = 0;

// user_data: fd (32 bits) | generation (16) | arm count (14) | operation (2).
constexpr unsigned kGenerationShift = 32;
constexpr unsigned kArmShift = 48;
constexpr unsigned kOpShift = 62;
constexpr std::uint16_t kArmMask = (1u << 14) - 1;

// IORING_ASYNC_CANCEL_OP (Linux 6.6; liburing 2.3's header predates it): cancel by opcode, given
// in the entry's len. An older kernel refuses the cancel, and a send waiting inside io_uring then
// only keeps its arena from being emptied until it completes.
constexpr std::uint32_t kCancelByOpcode = 1u << 5;
// A send that finds the socket full fails with EAGAIN (the handler waits for EPOLLOUT) instead of
// waiting inside io_uring; MSG_NOSIGNAL: a peer gone is an error value, not SIGPIPE.
constexpr int kSendFlags = MSG_DONTWAIT | MSG_NOSIGNAL;

constexpr std::uint32_t kEventsUsed = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLERR | EPOLLHUP;
static_assert(kEventsUsed <= 0xffff, "a registration keeps its events in 16 bits");

int fd_of(std::uint64_t user_data) noexcept {
  return static_cast<int>(user_data & 0xffffffffu);
}
std::uint16_t generation_of(std::uint64_t user_data) noexcept {
  return static_cast<std::uint16_t>(user_data >> kGenerationShift);
}
std::uint16_t arm_of(std::uint64_t user_data) noexcept {
  return static_cast<std::uint16_t>(user_data >> kArmShift) & kArmMask;
}

[[noreturn]] void fail(int negative_errno, const char* what) {
  throw std::system_error(-negative_errno, std::generic_category(), what);
}

}  // namespace

UringPoller::UringPoller() {
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED |
                 IORING_SETUP_CQSIZE;
  params.cq_entries = kCompletionEntries;
  if (const int error = io_uring_queue_init_params(kSubmissionEntries, &ring_, &params); error < 0)
    fail(error, "io_uring_setup");
  try {
    // Without it a wait with a timeout costs a second system call.
    if ((params.features & IORING_FEAT_EXT_ARG) == 0) fail(-ENOSYS, "io_uring EXT_ARG");
    const std::size_t ring_bytes = kBufferCount * sizeof(io_uring_buf);
    void* memory =
        mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) fail(-errno, "mmap");
    buffer_ring_ = static_cast<io_uring_buf_ring*>(memory);
    io_uring_buf_reg registration{};
    registration.ring_addr = reinterpret_cast<std::uintptr_t>(memory);
    registration.ring_entries = kBufferCount;
    registration.bgid = kBufferGroup;
    if (const int error = io_uring_register_buf_ring(&ring_, &registration, 0); error < 0)
      fail(error, "io_uring buffer ring");
    buffers_ = std::make_unique_for_overwrite<std::uint8_t[]>(kBufferCount * kBufferSize);
    io_uring_buf_ring_init(buffer_ring_);
    provide_more_buffers();
    io_uring_buf_ring_advance(buffer_ring_, static_cast<int>(recycled_));
    recycled_ = 0;
  } catch (...) {
    if (buffer_ring_ != nullptr) munmap(buffer_ring_, kBufferCount * sizeof(io_uring_buf));
    io_uring_queue_exit(&ring_);
    throw;
  }
}

UringPoller::~UringPoller() {
  io_uring_queue_exit(&ring_);  // cancels what is still armed
  munmap(buffer_ring_, kBufferCount * sizeof(io_uring_buf));
}

std::uint64_t UringPoller::tag(int fd, const Registration& registration, Op op) noexcept {
  // A send's "arm" is its arena: a completion must find that even for a closed socket.
  const std::uint16_t arm = op == Op::poll      ? registration.poll_arm
                            : op == Op::receive ? registration.receive_arm
                                                : registration.send_arena;
  return static_cast<std::uint32_t>(fd) |
         std::uint64_t{registration.generation} << kGenerationShift |
         std::uint64_t{static_cast<std::uint16_t>(arm & kArmMask)} << kArmShift |
         std::uint64_t{static_cast<std::uint8_t>(op)} << kOpShift;
}

io_uring_sqe* UringPoller::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe != nullptr) return sqe;
  // A full submission queue (thousands of changes in one iteration): submit them now. Before the
  // first wait the ring is disabled, and only a loop's first few registrations come then.
  if (enabled_) io_uring_submit(&ring_);
  sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) fail(-EBUSY, "io_uring submission queue full");
  return sqe;
}

void UringPoller::add(int fd, std::uint32_t events, IoHandler* handler, Receive receive) {
  if (static_cast<std::size_t>(fd) >= registrations_.size())
    registrations_.resize(static_cast<std::size_t>(fd) + 1);
  Registration& registration = registrations_[static_cast<std::size_t>(fd)];
  const std::uint16_t generation = registration.generation + 1;
  registration = Registration{};
  registration.handler = handler;
  registration.generation = generation;
  registration.events = static_cast<std::uint16_t>(events & kEventsUsed);
  registration.by_loop = receive == Receive::by_loop;
  arm(fd);
}

void UringPoller::modify(int fd, std::uint32_t events, IoHandler* handler) {
  Registration& registration = registrations_[static_cast<std::size_t>(fd)];
  registration.handler = handler;
  registration.events = static_cast<std::uint16_t>(events & kEventsUsed);
  arm(fd);
}

void UringPoller::remove(int fd) noexcept {
  if (static_cast<std::size_t>(fd) >= registrations_.size()) return;
  Registration& registration = registrations_[static_cast<std::size_t>(fd)];
  registration.handler = nullptr;
  try {
    if (registration.polling) cancel(Op::poll, tag(fd, registration, Op::poll));
    if (registration.receiving) cancel(Op::receive, tag(fd, registration, Op::receive));
  } catch (const std::system_error&) {
    // No room to cancel: the completions that come are dropped (the generation moves on), and
    // the ring's exit cancels the operations at the latest.
  }
  // A send not yet submitted names the fd by number: once the caller closes it, accept may give
  // the number to a new socket, which would get these bytes. Submitted now, it holds the socket
  // itself; its completion is dropped like the others.
  if (registration.sending && enabled_) io_uring_submit(&ring_);
  registration.polling = registration.receiving = registration.sending = false;
}

void UringPoller::cancel(Op op, std::uint64_t user_data) {
  io_uring_sqe* sqe = next_sqe();
  if (op == Op::poll)
    io_uring_prep_poll_remove(sqe, user_data);
  else
    io_uring_prep_cancel64(sqe, user_data, 0);
  io_uring_sqe_set_data64(sqe, std::uint64_t{static_cast<std::uint8_t>(Op::control)} << kOpShift);
}

void UringPoller::arm(int fd) {
  Registration& registration = registrations_[static_cast<std::size_t>(fd)];
  if (registration.handler == nullptr) return;
  const bool receive =
      registration.by_loop && !registration.ended && (registration.events & EPOLLIN) != 0;
  if (receive && !registration.receiving) {
    ++registration.receive_arm;
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(sqe, tag(fd, registration, Op::receive));
    registration.receiving = true;
  } else if (!receive && registration.receiving) {
    cancel(Op::receive, tag(fd, registration, Op::receive));
    registration.receiving = false;
  }
  // While the loop receives, the receive reports bytes, EOF and errors: the poll waits for the
  // rest (EPOLLOUT), if anything.
  std::uint16_t wanted = registration.events;
  if (registration.receiving) wanted &= static_cast<std::uint16_t>(~(EPOLLIN | EPOLLRDHUP));
  if (registration.polling && wanted == registration.polled) return;
  if (registration.polling) {
    // A poll that fired meanwhile is dropped with the cancelled one: arming the new poll looks
    // at the socket's state, so nothing it would have reported is lost.
    cancel(Op::poll, tag(fd, registration, Op::poll));
    registration.polling = false;
  }
  if (wanted == 0) return;
  ++registration.poll_arm;
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_poll_add(sqe, fd, wanted);
  io_uring_sqe_set_data64(sqe, tag(fd, registration, Op::poll));
  registration.polling = true;
  registration.polled = wanted;
}

void UringPoller::wait(int timeout_ms) {
  if (!enabled_) {
    // SINGLE_ISSUER: the thread that enables the ring is the one that may submit to it.
    // (io_uring_register rather than io_uring_enable_rings: Debian's liburing 2.3 declares that
    // one but does not export it.)
    if (const int error = io_uring_register(static_cast<unsigned>(ring_.ring_fd),
                                            IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
        error < 0)
      fail(error, "io_uring enable");
    io_uring_register_ring_fd(&ring_);  // per thread: io_uring_enter skips the fd lookup
    enabled_ = true;
  }
  // Sends of the last iteration that still wait inside io_uring (a full socket; MSG_DONTWAIT
  // does not stop every case: seen on 6.18 with a small send right after the peer drained a full
  // socket) are cancelled: their handlers get the bytes back and wait for EPOLLOUT, and the
  // arena can be emptied. Queued behind this iteration's sends, it cancels those that wait too.
  if (arenas_[filling_ ^ 1].outstanding > 0) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ALL | kCancelByOpcode);
    sqe->len = IORING_OP_SEND;
    io_uring_sqe_set_data64(sqe, std::uint64_t{static_cast<std::uint8_t>(Op::control)} << kOpShift);
  }
  __kernel_timespec timeout{};
  timeout.tv_sec = timeout_ms / 1000;
  timeout.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1'000'000;
  io_uring_cqe* first = nullptr;
  // Submits this iteration's operations and waits, in one io_uring_enter. -ETIME and -EINTR
  // only mean that the loop runs its timers and comes back.
  io_uring_submit_and_wait_timeout(&ring_, &first, 1, &timeout, nullptr);
  // What this iteration queued is submitted: the next iteration fills the other arena, empty
  // unless a send taken from it has still not completed.
  filling_ ^= 1;
  if (arenas_[filling_].outstanding == 0) arenas_[filling_].used = 0;
}

bool UringPoller::send(int fd, std::span<const iovec> pieces) {
  Registration& registration = registrations_[static_cast<std::size_t>(fd)];
  if (!enabled_ || registration.handler == nullptr || registration.sending) return false;
  SendArena& arena = arenas_[filling_];
  std::size_t size = 0;
  for (const iovec& piece : pieces) size += piece.iov_len;
  if (size == 0 || size > kSendArenaSize - arena.used) return false;
  if (!arena.bytes) arena.bytes = std::make_unique_for_overwrite<std::uint8_t[]>(kSendArenaSize);
  io_uring_sqe* sqe = next_sqe();
  std::uint8_t* const start = arena.bytes.get() + arena.used;
  std::uint8_t* end = start;
  for (const iovec& piece : pieces) {
    std::memcpy(end, piece.iov_base, piece.iov_len);
    end += piece.iov_len;
  }
  io_uring_prep_send(sqe, fd, start, size, kSendFlags);
  registration.sending = true;
  registration.send_arena = static_cast<std::uint8_t>(filling_);
  registration.send_offset = static_cast<std::uint32_t>(arena.used);
  registration.send_size = static_cast<std::uint32_t>(size);
  io_uring_sqe_set_data64(sqe, tag(fd, registration, Op::send));
  arena.used += size;
  ++arena.outstanding;
  return true;
}

void UringPoller::dispatch() {
  unsigned head = 0;
  unsigned seen = 0;
  io_uring_cqe* cqe = nullptr;
  // Completions posted while handlers run (a full submission queue submitted early) are taken in
  // this same walk: it reads the tail again at every step.
  io_uring_for_each_cqe(&ring_, head, cqe) {
    const io_uring_cqe completion = *cqe;
    complete(completion);
    ++seen;
  }
  io_uring_cq_advance(&ring_, seen);
  if (recycled_ > 0) {
    io_uring_buf_ring_advance(buffer_ring_, static_cast<int>(recycled_));
    recycled_ = 0;
  }
}

void UringPoller::complete(const io_uring_cqe& cqe) {
  const auto op = static_cast<Op>(cqe.user_data >> kOpShift);
  if (op == Op::control) return;  // a cancel's own result
  const int fd = fd_of(cqe.user_data);
  if (op == Op::receive)
    complete_receive(fd, cqe);
  else if (op == Op::send)
    complete_send(fd, cqe);
  else
    complete_poll(fd, cqe.user_data, cqe.res);
}

void UringPoller::complete_poll(int fd, std::uint64_t user_data, int result) {
  Registration& registration = registrations_[static_cast<std::size_t>(fd)];
  if (registration.handler == nullptr || !registration.polling ||
      user_data != tag(fd, registration, Op::poll))
    return;  // cancelled, or a closed socket's
  registration.polling = false;
  std::uint32_t events = result < 0 ? std::uint32_t{EPOLLERR} : static_cast<std::uint32_t>(result);
  // Hang-ups and readable bytes are the receive's to report, in order with the bytes.
  if (registration.receiving) events &= ~std::uint32_t{EPOLLIN | EPOLLRDHUP | EPOLLHUP};
  if (events != 0) registration.handler->on_io(events);
  arm(fd);  // the handler may have removed, modified or re-added it: arm() reads it again
}

void UringPoller::complete_receive(int fd, const io_uring_cqe& cqe) {
  const bool has_buffer = (cqe.flags & IORING_CQE_F_BUFFER) != 0;
  const unsigned buffer_id = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
  Registration& registration = registrations_[static_cast<std::size_t>(fd)];
  if (registration.handler == nullptr || registration.generation != generation_of(cqe.user_data)) {
    if (has_buffer) recycle(buffer_id);  // a closed socket's bytes
    return;
  }
  // A cancelled receive of this same registration may still deliver what it took before the
  // cancel: those bytes come before anything a later receive takes, and are handed over too.
  const bool live =
      registration.receiving && arm_of(cqe.user_data) == (registration.receive_arm & kArmMask);
  const bool ended = live && (cqe.flags & IORING_CQE_F_MORE) == 0;
  if (ended) registration.receiving = false;
  IoHandler* handler = registration.handler;
  if (cqe.res > 0) {
    handler->on_received(
        {buffers_.get() + std::size_t{buffer_id} * kBufferSize, static_cast<std::size_t>(cqe.res)});
    recycle(buffer_id);
  } else if (!live) {
    // A cancelled receive's end.
  } else if (cqe.res == -ENOBUFS) {
    // Every buffer was taken: armed again below, once this iteration's buffers (and more, if
    // the ring may still grow) are back in the ring.
    provide_more_buffers();
  } else {
    registration.ended = true;  // EOF, or an error the next receive would repeat
    if (cqe.res == 0)
      handler->on_received({});
    else
      handler->on_io(EPOLLERR);
  }
  if (ended) arm(fd);
}

void UringPoller::complete_send(int fd, const io_uring_cqe& cqe) {
  SendArena& arena = arenas_[arm_of(cqe.user_data) & 1];
  --arena.outstanding;
  Registration& registration = registrations_[static_cast<std::size_t>(fd)];
  if (registration.handler == nullptr || registration.generation != generation_of(cqe.user_data) ||
      !registration.sending)
    return;  // a closed socket's
  registration.sending = false;
  int error = 0;
  std::size_t taken = 0;
  if (cqe.res >= 0)
    taken = static_cast<std::size_t>(cqe.res);
  else if (cqe.res != -EAGAIN && cqe.res != -ECANCELED && cqe.res != -EINTR)
    error = -cqe.res;
  // The handler may send again (into the other arena, or after these bytes) or remove the fd:
  // nothing of the registration is read after the call.
  registration.handler->on_sent(error, {arena.bytes.get() + registration.send_offset + taken,
                                        registration.send_size - taken});
}

void UringPoller::provide_more_buffers() noexcept {
  const unsigned wanted = provided_ == 0 ? kInitialBuffers : std::min(2 * provided_, kBufferCount);
  for (; provided_ < wanted; ++provided_) recycle(provided_);
}

void UringPoller::recycle(unsigned buffer_id) noexcept {
  io_uring_buf_ring_add(buffer_ring_, buffers_.get() + std::size_t{buffer_id} * kBufferSize,
                        kBufferSize, static_cast<unsigned short>(buffer_id),
                        io_uring_buf_ring_mask(kBufferCount), static_cast<int>(recycled_));
  ++recycled_;
}

}  // namespace pylon::net
