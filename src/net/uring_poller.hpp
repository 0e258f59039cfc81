// The io_uring backend (io_backend = "io_uring"): one io_uring_enter per loop iteration submits
// everything the iteration asked for and waits for what comes next.
//
// - Readiness, for every handler: a one-shot IORING_OP_POLL_ADD, armed again after each event.
//   Arming looks at the socket's state, so what is left unread is reported again, as with the
//   level-triggered epoll backend (the listener accepts a bounded number per event, and counts on
//   it).
// - Receive::by_loop sockets: a multishot IORING_OP_RECV into the ring's provided buffers. Bytes
//   go to IoHandler::on_received, and their buffer goes back into the ring right after. A handler
//   that stops wanting EPOLLIN (reads paused) has its receive cancelled; what was received before
//   the cancel still reaches it, in order. The ring holds kInitialBuffers buffers at first, twice
//   as many each time receives run out (ENOBUFS) while many sockets receive, up to kBufferCount:
//   not when the socket that ran out took half the ring itself (one socket's burst waits in its
//   socket buffer instead, as under epoll). Every kTrimMs without running out it goes back to
//   twice the most buffers one iteration used (kInitialBuffers at least), and the memory of the
//   buffers it no longer holds goes back to the kernel. A loop's buffer memory follows its
//   traffic: a busy one keeps up to 2 MiB, an idle one ~128 KiB.
// - A quiet socket's receive is parked: one that received nothing for a whole kParkMs has its
//   multishot receive cancelled and, once the receive's last completion is in, a one-shot poll
//   for EPOLLIN armed in its place; the poll's event arms the receive again, which takes the
//   bytes (or the EOF) waiting. An armed multishot receive holds ~860 B of kernel memory (its
//   request, async poll and message header), a poll only its 256 B request; armed after the
//   receive is gone, the poll reuses the receive's request from io_uring's cache instead of
//   adding one. An idle connection costs the kernel ~600 B less, and a busy one never parks.
//   Parking is invisible to handlers.
// - send(): the bytes are copied into one of two send arenas and go out as an IORING_OP_SEND
//   (MSG_DONTWAIT) with the iteration's next io_uring_enter, with every other socket's: N sockets
//   with output cost one system call, not N. The arenas alternate per iteration; one is emptied
//   once every send taken from it has completed. The result reaches the handler's on_sent, with
//   the bytes the kernel did not take (they stay in the arena until then). A send still waiting
//   inside io_uring an iteration later (a full socket) is cancelled, so that no arena stays pinned
//   by a slow peer: its handler gets all of it back as unsent and waits for EPOLLOUT, as on epoll.
// - SINGLE_ISSUER | DEFER_TASKRUN: the kernel runs the receives and polls inside our
//   io_uring_enter, as one batch on the loop's thread. The ring is created disabled (the loop is
//   built on another thread) and enabled by the first wait(), on the loop's thread.
// - Batched waits (io_batch_wait_us; kernels with IORING_FEAT_MIN_TIMEOUT, 6.12 and later): a
//   busy loop wakes for a handful of completions, not for each. While WaitBatching says so, the
//   wait asks the kernel for kBatchCompletions completions and, once one has come, waits for the
//   rest at most the batch wait. Otherwise (and without the feature) a wait returns at the first
//   completion.
//
// Each submission's user_data names its fd, the generation of the fd's registration and the arm
// count of its operation (a send's, the record in front of its bytes in the arena, which names
// the same), so a completion for a closed socket (whose fd number a new socket may already have)
// or for a cancelled poll is recognised and dropped. Loop thread only.
#pragma once

#include <liburing.h>

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "net/poller.hpp"

namespace pylon::net {

// Whether a loop's waits batch, decided per kWindowMs from the loop's receives (the multishot
// receives of Receive::by_loop sockets) in that window.
// - A loop batches only while its receives come fast enough to gather kBatchFrom of them per
//   batch wait: one with little traffic (one connection, a few quiet ones) never holds a message,
//   and neither does one whose sockets read for themselves (TLS through OpenSSL), whose traffic
//   it does not measure. A window below that rate ends batching at once.
// - Batching must pay, and must not cost the peers' traffic: peers that wait for each answer
//   before they send again (a few connections in a fast request/response exchange) would slow
//   down by the time their answers are held, and a loop that never ran out of work would only
//   add sleeps. So a busy loop first measures kCompared windows without batching, then kCompared
//   with it, and keeps batching only if the bytes received per second fell by less than
//   kTolerancePercent and the loop thread's CPU time per byte fell by at least kGainPercent.
//   The verdict stands, through quiet stretches too, until it measures again kRecheckMs later
//   (traffic changes), or after a trial that failed twice as long as after the one before, up to
//   kLongestRecheckMs: where batching never pays, a trial (0.3 s of held answers) comes once in
//   minutes. Bytes, not receives: a batching loop takes more bytes per receive.
class WaitBatching {
 public:
  static constexpr std::uint64_t kWindowMs = 100;
  static constexpr std::uint64_t kBatchFrom = 4;
  static constexpr unsigned kCompared = 3;
  static constexpr std::uint64_t kTolerancePercent = 10;
  static constexpr std::uint64_t kGainPercent = 2;
  static constexpr std::uint64_t kRecheckMs = 10'000;
  static constexpr std::uint64_t kLongestRecheckMs = 320'000;

  explicit WaitBatching(unsigned wait_us = 0) noexcept : wait_us_(wait_us) {}
  unsigned wait_us() const noexcept { return wait_us_; }
  bool on() const noexcept { return phase_ == Phase::measuring_on || phase_ == Phase::batching; }
  // How a trial ended: batching kept; dropped because the bytes received per second fell by
  // kTolerancePercent or more (slowed; also when it saved no CPU either), or because the CPU time
  // per byte fell by less than kGainPercent (no_gain).
  enum class Verdict : std::uint8_t { kept, slowed, no_gain };
  static constexpr std::size_t kVerdicts = 3;
  std::uint64_t trials(Verdict verdict) const noexcept {
    return trials_[static_cast<std::size_t>(verdict)];
  }
  // An iteration's receives and the bytes they took, at the loop's (coarse) time now_ms. true:
  // a window is over, and the caller calls end_window.
  bool count(std::uint64_t receives, std::uint64_t received, std::uint64_t now_ms) noexcept {
    receives_ += receives;
    received_ += received;
    return now_ms - window_start_ms_ >= kWindowMs;
  }
  // cpu_ns: the loop thread's CPU time so far (user and system).
  void end_window(std::uint64_t now_ms, std::uint64_t cpu_ns) noexcept;

 private:
  enum class Phase : std::uint8_t {
    quiet,          // not busy enough to batch
    measuring_off,  // busy, not batching: the reference windows
    measuring_on,   // batching, on trial
    batching,       // kept: until recheck_at_ms_
    not_batching,   // it did not pay: not until recheck_at_ms_
  };
  unsigned wait_us_;
  Phase phase_ = Phase::quiet;
  std::uint64_t window_start_ms_ = 0;
  std::uint64_t window_start_cpu_ns_ = 0;
  std::uint64_t receives_ = 0;  // this window's
  std::uint64_t received_ = 0;
  // The windows of the phase measured so far: how many, their bytes, length and CPU time.
  unsigned measured_ = 0;
  std::uint64_t measured_bytes_ = 0;
  std::uint64_t measured_ms_ = 0;
  std::uint64_t measured_cpu_ns_ = 0;
  double reference_bytes_per_ms_ = 0;  // measured without batching
  double reference_cpu_per_byte_ = 0;
  bool kept_ = false;  // the last trial's verdict: it stands until recheck_at_ms_
  std::uint64_t recheck_at_ms_ = 0;
  std::uint64_t recheck_after_ms_ = kRecheckMs;  // after this trial's failure
  std::uint64_t trials_[kVerdicts] = {};         // ended, [Verdict]
};

class UringPoller final : public Poller {
 public:
  // Provided receive buffers, per loop: a receive takes one whole, whatever it holds.
  static constexpr unsigned kBufferCount = 256;  // a power of two (the ring's mask)
  static constexpr unsigned kInitialBuffers = 16;
  static constexpr std::size_t kBufferSize = 8 * 1024;  // a multiple of the page size (madvise)
  static constexpr std::uint64_t kTrimMs = 1000;
  // Every fd is looked at once in this long, a slice of the table per iteration; a receive that
  // took nothing since it was last looked at is parked (quiet for 2-4 s).
  static constexpr std::uint64_t kParkMs = 2000;
  static_assert((kBufferCount & (kBufferCount - 1)) == 0, "a buffer ring's size is a power of two");
  // Bytes one iteration can hand to send(); more go out through the handlers' own writes. Memory
  // is touched only as far as an iteration fills it.
  static constexpr std::size_t kSendArenaSize = 4 * 1024 * 1024;
  // The by-fd table's reservation when the open-file limit is higher still (16 B an fd).
  static constexpr std::size_t kMaxFds = std::size_t{1} << 24;
  // A batched wait's count (see above).
  static constexpr unsigned kBatchCompletions = 64;

  // batch_wait_us: the longest a busy loop's wait holds a completion for others (0: never).
  // Throws std::system_error naming what the kernel refused.
  explicit UringPoller(unsigned batch_wait_us = 0);
  ~UringPoller() override;

  IoBackend backend() const noexcept override { return IoBackend::io_uring; }
  void add(int fd, std::uint32_t events, IoHandler* handler, Receive receive) override;
  void modify(int fd, std::uint32_t events, IoHandler* handler) override;
  void remove(int fd) noexcept override;
  void flush() noexcept override;
  void wait(int timeout_ms) override;
  void dispatch() override;
  bool send(int fd, std::span<const iovec> pieces, int flags) override;
  unsigned buffers_provided() const noexcept { return provided_; }  // the ring's size now
  // Its on(): the next wait is a batched one. Its wait_us(): the batch wait in effect, the one
  // asked for or 0 where the kernel cannot bound it.
  const WaitBatching& wait_batching() const noexcept { return batching_; }

 private:
  enum class Op : std::uint8_t { poll, receive, control, send };
  // 16 bytes an fd, in a table reserved up front for every fd the process may open: an idle
  // connection costs the loop no more than that (issue 17). What a send needs later lives in
  // its arena, in front of its bytes (SendHeader).
  struct Registration {
    IoHandler* handler = nullptr;  // null: the fd is not registered
    std::uint16_t generation = 0;  // of this fd number's registrations
    std::uint8_t events = 0;       // what the handler wants (compact(): epoll flags in 8 bits)
    std::uint8_t polled = 0;       // what the armed poll waits for (the same)
    // Polls and receives armed so far, modulo 256: the live one's number. A cancelled one
    // completes within an io_uring_enter or two, long before the count comes round again.
    std::uint8_t poll_arm = 0;
    std::uint8_t receive_arm = 0;
    bool polling : 1 = false;    // a poll is armed
    bool receiving : 1 = false;  // a multishot receive is armed
    bool by_loop : 1 = false;    // Receive::by_loop
    bool ended : 1 = false;      // EOF or an error: the loop receives no more for it
    bool sending : 1 = false;    // a send's completion has not come yet
    bool heard : 1 = false;      // bytes came (or the fd was added) since the sweep last looked
    bool parked : 1 = false;     // the receive waits as a poll for EPOLLIN (kParkMs)
    bool parking : 1 = false;    // parked, and the cancelled receive's last completion not in
  };
  static_assert(sizeof(Registration) == 16, "an idle connection's share of the loop");
  // In front of each send's bytes in its arena; the send's user_data is the header's offset.
  struct SendHeader {
    std::int32_t fd;
    std::uint32_t size;
    std::uint16_t generation;
  };
  struct SendArena {
    std::uint8_t* bytes = nullptr;  // kSendArenaSize of send_memory_
    std::size_t used = 0;
    unsigned outstanding = 0;  // sends from it whose completion has not come
  };

  static std::uint64_t tag(int fd, const Registration& registration, Op op) noexcept;
  Registration& slot(int fd) noexcept { return registrations_[static_cast<std::size_t>(fd)]; }
  io_uring_sqe* next_sqe();  // inlined: one per send and receive arming (issue 17)
  [[gnu::noinline]] io_uring_sqe* sqe_after_submitting();  // the queue was full
  // Brings the armed poll and receive of fd in line with what its registration wants.
  void arm(int fd);
  void cancel(Op op, std::uint64_t user_data);
  // Submits what was queued and waits up to timeout_ms: for one completion, or when batching
  // for kBatchCompletions, at most the batch wait after the first.
  void enter(int timeout_ms) noexcept;
  void complete(const io_uring_cqe& cqe);
  void complete_poll(int fd, std::uint64_t user_data, int result);
  void complete_receive(int fd, const io_uring_cqe& cqe);
  void complete_send(const io_uring_cqe& cqe);
  void recycle(unsigned buffer_id) noexcept;  // into the ring
  // A buffer back from a receive: into the ring, or released if the ring no longer holds it.
  void give_back(unsigned buffer_id) noexcept;
  void trim_buffers() noexcept;
  // Looks at the next slice of fds (kParkMs for all of them) and parks every receive that heard
  // nothing since the sweep last looked at it.
  void park_quiet_receives(std::uint64_t now_ms);
  void
  provide_more_buffers() noexcept;  // receives ran out: up to twice as many, kBufferCount at most
  // Buffers this iteration's receives for the registration (fd, generation) took.
  unsigned buffers_taken_by(int fd, std::uint16_t generation) const noexcept;

  io_uring ring_{};
  bool enabled_ = false;
  bool registered_ring_ = false;  // io_uring_enter may name the ring by its registered index
  WaitBatching batching_;
  // By fd, for every fd below the open-file limit's hard maximum (kMaxFds at most): mmap'ed
  // with MAP_NORESERVE, so that only the pages of the fds in use are ever touched, and never
  // copied as a growing vector would be (each copy left behind in malloc's heap).
  Registration* registrations_ = nullptr;
  std::size_t registration_capacity_ = 0;
  int highest_fd_ = -1;  // the highest fd ever added: where the park sweep turns round
  io_uring_buf_ring* buffer_ring_ = nullptr;  // kBufferCount entries, mmap'ed (page-aligned)
  std::uint8_t* buffers_ = nullptr;           // kBufferCount × kBufferSize, mmap'ed (page-aligned)
  unsigned recycled_ = 0;                     // buffers given back since the ring's tail last moved
  unsigned provided_ = 0;                     // buffers 0 to provided_ - 1 belong to the ring
  std::bitset<kBufferCount> in_ring_;  // the kernel holds these (never added to the ring twice)
  unsigned most_used_ = 0;             // buffers taken in one iteration, since the last trim
  bool ran_out_ = false;               // ENOBUFS since the last trim
  std::uint64_t last_trim_ms_ = 0;
  std::uint64_t last_sweep_ms_ = 0;
  std::uint64_t sweep_credit_ = 0;       // fd visits owed to the sweep, × kParkMs
  int sweep_next_ = 0;                   // the fd it looks at next
  std::uint8_t* send_memory_ = nullptr;  // both arenas, mmap'ed (page-aligned, touched as used)
  SendArena arenas_[2];
  unsigned filling_ = 0;  // the arena this iteration's sends are copied into
};

}  // namespace pylon::net
