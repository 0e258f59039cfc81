#include "net/uring_poller.hpp"

#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <bit>
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

// user_data: fd (32 bits) | generation (16) | arm count (8) | operation (2 of the top bits); a
// send's is its SendHeader's offset in the send memory | operation.
constexpr unsigned kGenerationShift = 32;
constexpr unsigned kArmShift = 48;
constexpr unsigned kOpShift = 62;

// IORING_ASYNC_CANCEL_OP (Linux 6.6; liburing 2.3's header predates it): cancel by opcode, given
// in the entry's len. An older kernel refuses the cancel, and a send waiting inside io_uring then
// only keeps its arena from being emptied until it completes.
constexpr std::uint32_t kCancelByOpcode = 1u << 5;
// A send that finds the socket full fails with EAGAIN (the handler waits for EPOLLOUT) instead of
// waiting inside io_uring; MSG_NOSIGNAL: a peer gone is an error value, not SIGPIPE.
constexpr int kSendFlags = MSG_DONTWAIT | MSG_NOSIGNAL;
// IORING_FEAT_MIN_TIMEOUT (Linux 6.12; newer than liburing 2.3's header): the kernel reads a
// minimum wait from io_uring_getevents_arg's 32 bits after sigmask_sz (`pad` there, since named
// min_wait_usec), and with a wait for several completions returns once that long has passed with
// at least one. Older kernels ignore the field, and would wait for all of them.
constexpr std::uint32_t kFeatureMinTimeout = 1u << 15;

// A registration keeps the epoll flags it uses in 8 bits: all but EPOLLRDHUP are there already,
// and EPOLLRDHUP takes the free bit kCompactRdhup.
constexpr std::uint32_t kEventsUsed = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLERR | EPOLLHUP;
constexpr std::uint32_t kCompactRdhup = 0x80;
// What a receive reports, in order with the bytes, when one is armed (or parked).
constexpr std::uint32_t kReceiveEvents = EPOLLIN | EPOLLRDHUP | EPOLLHUP;
static_assert(((kEventsUsed & ~std::uint32_t{EPOLLRDHUP}) & ~std::uint32_t{0x7f}) == 0 &&
                  (kEventsUsed & kCompactRdhup) == 0,
              "the compact events");
std::uint8_t compact(std::uint32_t events) noexcept {
  return static_cast<std::uint8_t>((events & kEventsUsed & ~std::uint32_t{EPOLLRDHUP}) |
                                   ((events & EPOLLRDHUP) != 0 ? kCompactRdhup : 0));
}
std::uint32_t expand(std::uint8_t events) noexcept {
  return (events & ~kCompactRdhup) |
         ((events & kCompactRdhup) != 0 ? std::uint32_t{EPOLLRDHUP} : 0);
}

int fd_of(std::uint64_t user_data) noexcept {
  return static_cast<int>(user_data & 0xffffffffu);
}
std::uint16_t generation_of(std::uint64_t user_data) noexcept {
  return static_cast<std::uint16_t>(user_data >> kGenerationShift);
}
std::uint8_t arm_of(std::uint64_t user_data) noexcept {
  return static_cast<std::uint8_t>(user_data >> kArmShift);
}

[[noreturn]] void fail(int negative_errno, const char* what) {
  throw std::system_error(-negative_errno, std::generic_category(), what);
}

// Page-aligned memory whose pages exist only once touched (and after madvise(MADV_DONTNEED) again
// only once touched again).
std::uint8_t* map_anonymous(std::size_t bytes) {
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (memory == MAP_FAILED) fail(-errno, "mmap");
  return static_cast<std::uint8_t*>(memory);
}

}  // namespace

void WaitBatching::end_window(std::uint64_t now_ms, std::uint64_t cpu_ns) noexcept {
  const std::uint64_t elapsed_ms = now_ms - window_start_ms_;
  const std::uint64_t cpu_used_ns = cpu_ns - window_start_cpu_ns_;
  const bool busy = wait_us_ != 0 && receives_ * wait_us_ >= kBatchFrom * elapsed_ms * 1000;
  const std::uint64_t bytes = received_;
  receives_ = received_ = 0;
  window_start_ms_ = now_ms;
  window_start_cpu_ns_ = cpu_ns;
  if (!busy) {
    phase_ = Phase::quiet;  // the last trial's verdict stands until recheck_at_ms_
    return;
  }
  const auto measure = [&](Phase next) {
    phase_ = next;
    measured_ = 0;
    measured_bytes_ = measured_ms_ = measured_cpu_ns_ = 0;
  };
  switch (phase_) {
    case Phase::quiet:
      // Busy again: as the last trial found, until it is due again (traffic near the rate that
      // makes a loop busy must not bring a trial back at every crossing).
      if (now_ms < recheck_at_ms_)
        phase_ = kept_ ? Phase::batching : Phase::not_batching;
      else
        measure(Phase::measuring_off);  // this window may have begun quiet: not a reference
      return;
    case Phase::batching:
    case Phase::not_batching:
      if (now_ms >= recheck_at_ms_) measure(Phase::measuring_off);
      return;
    case Phase::measuring_off:
    case Phase::measuring_on:
      break;
  }
  measured_bytes_ += bytes;
  measured_ms_ += elapsed_ms;
  measured_cpu_ns_ += cpu_used_ns;
  if (++measured_ < kCompared) return;
  const double bytes_per_ms =
      static_cast<double>(measured_bytes_) / static_cast<double>(measured_ms_);
  const double cpu_per_byte = static_cast<double>(measured_cpu_ns_) /
                              static_cast<double>(std::max<std::uint64_t>(measured_bytes_, 1));
  if (phase_ == Phase::measuring_off) {
    reference_bytes_per_ms_ = bytes_per_ms;
    reference_cpu_per_byte_ = cpu_per_byte;
    measure(Phase::measuring_on);
    return;
  }
  const bool held = bytes_per_ms * 100 >= reference_bytes_per_ms_ * (100 - kTolerancePercent);
  const bool saved = cpu_per_byte * 100 <= reference_cpu_per_byte_ * (100 - kGainPercent);
  kept_ = held && saved;
  const Verdict verdict = kept_ ? Verdict::kept : !held ? Verdict::slowed : Verdict::no_gain;
  ++trials_[static_cast<std::size_t>(verdict)];
  phase_ = kept_ ? Phase::batching : Phase::not_batching;
  recheck_at_ms_ = now_ms + (kept_ ? kRecheckMs : recheck_after_ms_);
  recheck_after_ms_ = kept_ ? kRecheckMs : std::min(2 * recheck_after_ms_, kLongestRecheckMs);
}

UringPoller::UringPoller(unsigned batch_wait_us) {
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED |
                 IORING_SETUP_CQSIZE;
  params.cq_entries = kCompletionEntries;
  if (const int error = io_uring_queue_init_params(kSubmissionEntries, &ring_, &params); error < 0)
    fail(error, "io_uring_setup");
  try {
    // Without it a wait with a timeout costs a second system call.
    if ((params.features & IORING_FEAT_EXT_ARG) == 0) fail(-ENOSYS, "io_uring EXT_ARG");
    if ((params.features & kFeatureMinTimeout) != 0) batching_ = WaitBatching(batch_wait_us);
    // The soft limit may still be raised up to the hard one (raise_open_file_limit).
    rlimit open_files{};
    registration_capacity_ = kMaxFds;
    if (getrlimit(RLIMIT_NOFILE, &open_files) == 0 && open_files.rlim_max < kMaxFds)
      registration_capacity_ = static_cast<std::size_t>(open_files.rlim_max);
    registrations_ = reinterpret_cast<Registration*>(
        map_anonymous(registration_capacity_ * sizeof(Registration)));
    buffer_ring_ =
        reinterpret_cast<io_uring_buf_ring*>(map_anonymous(kBufferCount * sizeof(io_uring_buf)));
    io_uring_buf_reg registration{};
    registration.ring_addr = reinterpret_cast<std::uintptr_t>(buffer_ring_);
    registration.ring_entries = kBufferCount;
    registration.bgid = kBufferGroup;
    if (const int error = io_uring_register_buf_ring(&ring_, &registration, 0); error < 0)
      fail(error, "io_uring buffer ring");
    buffers_ = map_anonymous(kBufferCount * kBufferSize);
    send_memory_ = map_anonymous(2 * kSendArenaSize);
    arenas_[0].bytes = send_memory_;
    arenas_[1].bytes = send_memory_ + kSendArenaSize;
    io_uring_buf_ring_init(buffer_ring_);
    provide_more_buffers();
    io_uring_buf_ring_advance(buffer_ring_, static_cast<int>(recycled_));
    recycled_ = 0;
  } catch (...) {
    if (send_memory_ != nullptr) munmap(send_memory_, 2 * kSendArenaSize);
    if (buffers_ != nullptr) munmap(buffers_, kBufferCount * kBufferSize);
    if (buffer_ring_ != nullptr) munmap(buffer_ring_, kBufferCount * sizeof(io_uring_buf));
    if (registrations_ != nullptr)
      munmap(registrations_, registration_capacity_ * sizeof(Registration));
    io_uring_queue_exit(&ring_);
    throw;
  }
}

UringPoller::~UringPoller() {
  io_uring_queue_exit(&ring_);  // cancels what is still armed
  munmap(send_memory_, 2 * kSendArenaSize);
  munmap(buffers_, kBufferCount * kBufferSize);
  munmap(buffer_ring_, kBufferCount * sizeof(io_uring_buf));
  munmap(registrations_, registration_capacity_ * sizeof(Registration));
}

std::uint64_t UringPoller::tag(int fd, const Registration& registration, Op op) noexcept {
  const std::uint8_t arm = op == Op::poll ? registration.poll_arm : registration.receive_arm;
  return static_cast<std::uint32_t>(fd) |
         std::uint64_t{registration.generation} << kGenerationShift |
         std::uint64_t{arm} << kArmShift | std::uint64_t{static_cast<std::uint8_t>(op)} << kOpShift;
}

io_uring_sqe* UringPoller::next_sqe() {
  if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_); sqe != nullptr) [[likely]]
    return sqe;
  return sqe_after_submitting();
}

io_uring_sqe* UringPoller::sqe_after_submitting() {
  // A full submission queue (thousands of changes in one iteration): submit them now. Before the
  // first wait the ring is disabled, and only a loop's first few registrations come then.
  if (enabled_) io_uring_submit(&ring_);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) fail(-EBUSY, "io_uring submission queue full");
  return sqe;
}

void UringPoller::add(int fd, std::uint32_t events, IoHandler* handler, Receive receive) {
  // Beyond the hard limit only if it was raised after the loop began (by another process).
  if (static_cast<std::size_t>(fd) >= registration_capacity_) fail(-EMFILE, "io_uring fd table");
  Registration& registration = slot(fd);
  const std::uint16_t generation = registration.generation + 1;
  registration = Registration{};
  registration.handler = handler;
  registration.generation = generation;
  registration.events = compact(events);
  registration.by_loop = receive == Receive::by_loop;
  registration.heard = true;  // a whole kParkMs before its receive may park
  highest_fd_ = std::max(highest_fd_, fd);
  arm(fd);
}

void UringPoller::modify(int fd, std::uint32_t events, IoHandler* handler) {
  Registration& registration = slot(fd);
  registration.handler = handler;
  registration.events = compact(events);
  arm(fd);
}

void UringPoller::remove(int fd) noexcept {
  if (static_cast<std::size_t>(fd) >= registration_capacity_) return;
  Registration& registration = slot(fd);
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

void UringPoller::flush() noexcept {
  // DEFER_TASKRUN: a cancelled operation ends (and lets go of its file) only in task work, which
  // runs when this thread enters the ring asking for events.
  if (enabled_) io_uring_submit_and_get_events(&ring_);
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
  Registration& registration = slot(fd);
  if (registration.handler == nullptr) return;
  const bool receive = registration.by_loop && !registration.ended && !registration.parked &&
                       (registration.events & EPOLLIN) != 0;
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
  // rest (EPOLLOUT), if anything. A parked receive's poll waits for EPOLLIN as well, once the
  // receive has ended.
  std::uint8_t wanted = registration.events;
  if (registration.receiving || registration.parking)
    wanted &= static_cast<std::uint8_t>(~compact(EPOLLIN | EPOLLRDHUP));
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
  io_uring_prep_poll_add(sqe, fd, expand(wanted));
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
    // Per thread: io_uring_enter skips the fd lookup.
    registered_ring_ = io_uring_register_ring_fd(&ring_) == 1;
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
  enter(timeout_ms);
  // What this iteration queued is submitted: the next iteration fills the other arena, empty
  // unless a send taken from it has still not completed.
  filling_ ^= 1;
  if (arenas_[filling_].outstanding == 0) arenas_[filling_].used = 0;
}

void UringPoller::enter(int timeout_ms) noexcept {
  // Publishes the queued entries as liburing's submit does (the ring's index array maps each
  // slot to itself since setup): the new tail, and the count the kernel has not consumed.
  io_uring_sq& queue = ring_.sq;
  const unsigned tail = queue.sqe_tail;
  if (queue.sqe_head != tail) {
    queue.sqe_head = tail;
    io_uring_smp_store_release(queue.ktail, tail);
  }
  const unsigned to_submit = tail - io_uring_smp_load_acquire(queue.khead);
  __kernel_timespec timeout{};
  timeout.tv_sec = timeout_ms / 1000;
  timeout.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1'000'000;
  io_uring_getevents_arg wait{};
  wait.ts = reinterpret_cast<std::uintptr_t>(&timeout);
  unsigned wanted = 1;
  // Completions already waiting (posted while the last ones were handled) are taken at once.
  if (batching_.on() && io_uring_cq_ready(&ring_) == 0) {
    wanted = kBatchCompletions;
    wait.pad = batching_.wait_us();  // min_wait_usec (kFeatureMinTimeout)
  }
  unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
  if (registered_ring_) flags |= IORING_ENTER_REGISTERED_RING;
  // One system call submits this iteration's operations and waits. Its errors (-ETIME, -EINTR,
  // -EBUSY with the completion queue overflowing) only mean that the loop handles what came and
  // comes back; entries the kernel did not take stay published and go with the next call.
  io_uring_enter2(registered_ring_ ? ring_.enter_ring_fd : ring_.ring_fd, to_submit, wanted, flags,
                  reinterpret_cast<sigset_t*>(&wait), sizeof wait);
}

bool UringPoller::send(int fd, std::span<const iovec> pieces, int flags) {
  Registration& registration = slot(fd);
  if (!enabled_ || registration.handler == nullptr || registration.sending) return false;
  SendArena& arena = arenas_[filling_];
  std::size_t size = 0;
  for (const iovec& piece : pieces) size += piece.iov_len;
  if (size == 0 || sizeof(SendHeader) + size > kSendArenaSize - arena.used) return false;
  io_uring_sqe* sqe = next_sqe();
  std::uint8_t* const header = arena.bytes + arena.used;
  const SendHeader record{
      .fd = fd, .size = static_cast<std::uint32_t>(size), .generation = registration.generation};
  std::memcpy(header, &record, sizeof record);
  std::uint8_t* const start = header + sizeof record;
  std::uint8_t* end = start;
  for (const iovec& piece : pieces) {
    std::memcpy(end, piece.iov_base, piece.iov_len);
    end += piece.iov_len;
  }
  io_uring_prep_send(sqe, fd, start, size, kSendFlags | flags);
  registration.sending = true;
  io_uring_sqe_set_data64(sqe, static_cast<std::uint64_t>(header - send_memory_) |
                                   std::uint64_t{static_cast<std::uint8_t>(Op::send)} << kOpShift);
  arena.used += sizeof record + size;
  ++arena.outstanding;
  return true;
}

void UringPoller::dispatch() {
  unsigned head = 0;
  unsigned seen = 0;
  unsigned buffers_taken = 0;
  std::uint64_t received = 0;
  io_uring_cqe* cqe = nullptr;
  // Completions posted while handlers run (a full submission queue submitted early) are taken in
  // this same walk: it reads the tail again at every step.
  io_uring_for_each_cqe(&ring_, head, cqe) {
    const io_uring_cqe completion = *cqe;
    if ((completion.flags & IORING_CQE_F_BUFFER) != 0) {
      ++buffers_taken;
      received += static_cast<unsigned>(completion.res);  // a buffer holds what was received
    }
    complete(completion);
    ++seen;
  }
  most_used_ = std::max(most_used_, buffers_taken);
  // Here, with every completion handled, no buffer the kernel filled is still unread: the only
  // moment a trim may release buffer memory.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  const std::uint64_t now_ms = static_cast<std::uint64_t>(now.tv_sec) * 1000 +
                               static_cast<std::uint64_t>(now.tv_nsec) / 1'000'000;
  if (now_ms - last_trim_ms_ >= kTrimMs) {
    trim_buffers();
    last_trim_ms_ = now_ms;
  }
  park_quiet_receives(now_ms);
  if (batching_.count(buffers_taken, received, now_ms)) {
    // Once per window: a system call (CLOCK_THREAD_CPUTIME_ID has no vDSO path).
    timespec cpu{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
    batching_.end_window(now_ms, static_cast<std::uint64_t>(cpu.tv_sec) * 1'000'000'000 +
                                     static_cast<std::uint64_t>(cpu.tv_nsec));
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
  if (op == Op::send) return complete_send(cqe);
  const int fd = fd_of(cqe.user_data);
  if (op == Op::receive)
    complete_receive(fd, cqe);
  else
    complete_poll(fd, cqe.user_data, cqe.res);
}

void UringPoller::complete_poll(int fd, std::uint64_t user_data, int result) {
  Registration& registration = slot(fd);
  if (registration.handler == nullptr || !registration.polling ||
      user_data != tag(fd, registration, Op::poll))
    return;  // cancelled, or a closed socket's
  registration.polling = false;
  std::uint32_t events = result < 0 ? std::uint32_t{EPOLLERR} : static_cast<std::uint32_t>(result);
  // Hang-ups and readable bytes are the receive's to report, in order with the bytes: a parked
  // receive's too (unless reads are paused), armed again below once the cancelled one has ended.
  const bool parked = registration.parked && (registration.events & EPOLLIN) != 0;
  if (registration.receiving || parked) {
    if (parked && !registration.parking && (events & (kReceiveEvents | EPOLLERR)) != 0) {
      registration.parked = false;
      registration.heard = true;  // a whole kParkMs before it may park again
    }
    events &= ~kReceiveEvents;
  }
  if (events != 0) registration.handler->on_io(events);
  arm(fd);  // the handler may have removed, modified or re-added it: arm() reads it again
}

void UringPoller::complete_receive(int fd, const io_uring_cqe& cqe) {
  const bool has_buffer = (cqe.flags & IORING_CQE_F_BUFFER) != 0;
  const unsigned buffer_id = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
  if (has_buffer) in_ring_.reset(buffer_id);
  Registration& registration = slot(fd);
  if (registration.handler == nullptr || registration.generation != generation_of(cqe.user_data)) {
    if (has_buffer) give_back(buffer_id);  // a closed socket's bytes
    return;
  }
  // A cancelled receive of this same registration may still deliver what it took before the
  // cancel: those bytes come before anything a later receive takes, and are handed over too.
  const bool live = registration.receiving && arm_of(cqe.user_data) == registration.receive_arm;
  const bool last = (cqe.flags & IORING_CQE_F_MORE) == 0;
  const bool ended = live && last;
  if (ended) registration.receiving = false;
  // The parked receive's last completion, whatever it carries (bytes too, when the cancel came
  // as it received): the poll takes its place now.
  const bool parked_end =
      registration.parking && last && arm_of(cqe.user_data) == registration.receive_arm;
  if (parked_end) registration.parking = false;
  IoHandler* handler = registration.handler;
  if (cqe.res > 0) {
    registration.heard = true;
    handler->on_received(
        {buffers_ + std::size_t{buffer_id} * kBufferSize, static_cast<std::size_t>(cqe.res)});
    give_back(buffer_id);
  } else if (!live) {
    // A cancelled receive's end.
  } else if (cqe.res == -ENOBUFS) {
    // Every buffer was taken: armed again below, once this iteration's buffers are back in the
    // ring. The ring grows when many sockets' bytes came at once, not for one socket's burst (a
    // large message, a deflate bomb's megabyte): that socket takes up to the whole ring each
    // iteration, and the rest waits in its socket buffer, as under epoll.
    ran_out_ = true;
    if (2 * buffers_taken_by(fd, registration.generation) < provided_) provide_more_buffers();
  } else {
    registration.ended = true;  // EOF, or an error the next receive would repeat
    if (cqe.res == 0)
      handler->on_received({});
    else
      handler->on_io(EPOLLERR);
  }
  if (ended || parked_end) arm(fd);
}

void UringPoller::complete_send(const io_uring_cqe& cqe) {
  const std::size_t offset = cqe.user_data & ((std::uint64_t{1} << kOpShift) - 1);
  --arenas_[offset / kSendArenaSize].outstanding;
  SendHeader record{};
  std::memcpy(&record, send_memory_ + offset, sizeof record);
  const std::uint8_t* const bytes = send_memory_ + offset + sizeof record;
  Registration& registration = slot(record.fd);
  if (registration.handler == nullptr || registration.generation != record.generation ||
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
  registration.handler->on_sent(error, {bytes + taken, record.size - taken});
}

unsigned UringPoller::buffers_taken_by(int fd, std::uint16_t generation) const noexcept {
  // The iteration's completions, all still in the queue while dispatch walks it (it advances the
  // head at the end): every buffer taken since the last io_uring_enter is in one of them.
  unsigned taken = 0;
  const unsigned first = *ring_.cq.khead;
  const unsigned end = first + io_uring_cq_ready(&ring_);
  for (unsigned index = first; index != end; ++index) {
    const io_uring_cqe& cqe = ring_.cq.cqes[index & ring_.cq.ring_mask];
    if ((cqe.flags & IORING_CQE_F_BUFFER) != 0 && fd_of(cqe.user_data) == fd &&
        generation_of(cqe.user_data) == generation)
      ++taken;
  }
  return taken;
}

void UringPoller::provide_more_buffers() noexcept {
  const unsigned wanted = provided_ == 0 ? kInitialBuffers : std::min(2 * provided_, kBufferCount);
  // A buffer above the old count may still be in the ring, from before a trim: it stays there.
  for (; provided_ < wanted; ++provided_)
    if (!in_ring_[provided_]) recycle(provided_);
}

void UringPoller::give_back(unsigned buffer_id) noexcept {
  if (buffer_id < provided_) return recycle(buffer_id);
  madvise(buffers_ + std::size_t{buffer_id} * kBufferSize, kBufferSize, MADV_DONTNEED);
}

void UringPoller::trim_buffers() noexcept {
  const unsigned wanted = std::max(kInitialBuffers, std::bit_ceil(2 * most_used_));
  if (!ran_out_ && wanted < provided_) {
    // The buffers above `wanted` leave the ring as the kernel hands them over (give_back);
    // their memory goes now. Safe while the ring still holds some: with DEFER_TASKRUN the kernel
    // writes into a buffer only inside our io_uring_enter, and a page released here is simply
    // faulted in again then.
    madvise(buffers_ + std::size_t{wanted} * kBufferSize, (provided_ - wanted) * kBufferSize,
            MADV_DONTNEED);
    provided_ = wanted;
  }
  most_used_ = 0;
  ran_out_ = false;
  // The send arenas' pages go back too, past what the filling one holds (its sends are not
  // submitted yet) and, for the other, once every send taken from it has completed. An arena is
  // touched only as far as one iteration filled it; a busy loop faults a few pages in again.
  constexpr std::size_t kPage = 4096;
  for (unsigned index = 0; index < 2; ++index) {
    SendArena& arena = arenas_[index];
    if (index != filling_ && arena.outstanding > 0) continue;
    const std::size_t keep = index == filling_ ? (arena.used + kPage - 1) / kPage * kPage : 0;
    if (keep < kSendArenaSize) madvise(arena.bytes + keep, kSendArenaSize - keep, MADV_DONTNEED);
  }
}

void UringPoller::park_quiet_receives(std::uint64_t now_ms) {
  // A slice in proportion to the time since the last one: the whole table in kParkMs, and no
  // iteration walks all of it (a loop with a million fds has 16 MiB of table).
  const auto table = static_cast<std::uint64_t>(highest_fd_ + 1);
  if (last_sweep_ms_ != 0) sweep_credit_ += (now_ms - last_sweep_ms_) * table;
  last_sweep_ms_ = now_ms;
  std::uint64_t visits = sweep_credit_ / kParkMs;
  if (visits > table) {
    visits = table;  // a stalled loop does one round, not the rounds it missed
    sweep_credit_ = 0;
  } else {
    sweep_credit_ -= visits * kParkMs;
  }
  for (; visits > 0; --visits) {
    const int fd = sweep_next_;
    sweep_next_ = fd >= highest_fd_ ? 0 : fd + 1;
    Registration& registration = slot(fd);
    if (registration.handler == nullptr || !registration.receiving) continue;
    if (registration.heard) {
      registration.heard = false;
      continue;
    }
    // Bytes the cancelled receive took before the cancel still arrive (complete_receive); any
    // that come after it wake the poll armed once the receive has ended.
    cancel(Op::receive, tag(fd, registration, Op::receive));
    registration.receiving = false;
    registration.parked = registration.parking = true;
  }
}

void UringPoller::recycle(unsigned buffer_id) noexcept {
  in_ring_.set(buffer_id);
  io_uring_buf_ring_add(buffer_ring_, buffers_ + std::size_t{buffer_id} * kBufferSize, kBufferSize,
                        static_cast<unsigned short>(buffer_id),
                        io_uring_buf_ring_mask(kBufferCount), static_cast<int>(recycled_));
  ++recycled_;
}

}  // namespace pylon::net
