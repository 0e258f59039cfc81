#include "bench/worker.hpp"

#include <algorithm>
#include <cstring>

namespace pylon::bench {
namespace {

// Without --ramp-rate, each worker keeps at most this many handshakes going at once: enough to
// open thousands of connections per second, few enough not to overflow the server's accept
// backlog (a dropped SYN costs a one-second retransmit and spoils the handshake latency).
constexpr std::size_t kMaxConcurrentOpens = 64;
constexpr std::uint64_t kClosePollNs = 20'000'000;
constexpr std::size_t kSequenceDigits = 16;
constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

Worker::Slot& Worker::slot_of(WebSocketClient& client) {
  return *static_cast<Slot*>(client.user_data());
}

const std::shared_ptr<const ClientProfile>& SharedPlan::profile_for(std::size_t connection) const {
  const std::size_t urls = options.urls.size();
  const std::size_t sources = std::max<std::size_t>(1, options.source_addresses.size());
  return profiles[(connection % urls) * sources + (connection / urls) % sources];
}

ClientHandlers Worker::handlers() {
  return ClientHandlers{
      .on_open = &Worker::handle_open,
      .on_message = &Worker::handle_message,
      .on_close = &Worker::handle_close,
      .on_error = &Worker::handle_error,
  };
}

Worker::Worker(SharedPlan& plan, unsigned index, unsigned worker_count)
    : plan_(plan),
      options_(plan.options),
      index_(index),
      worker_count_(worker_count),
      ramp_timer_(loop_, [this] { open_next(); }),
      close_timer_(loop_, [this] { check_closed(); }) {
  const std::size_t total = total_connections(options_);
  std::size_t mine = 0;
  for (std::size_t k = index; k < total; k += worker_count) ++mine;
  slots_.resize(mine);
  std::size_t k = index;
  for (Slot& slot : slots_) {
    slot.worker = this;
    slot.index = k;
    if (options_.scenario == Scenario::fanout)
      slot.role = k < options_.subscribers ? Role::subscriber : Role::publisher;
    k += worker_count;
  }
  // json: distinct variants, so that a compressor with context takeover meets each again only
  // after 64 messages or 4 MiB (beyond deflate's 32 KiB window), as with real traffic.
  const std::size_t length = std::max(options_.size, kSequenceDigits);
  variants_ = options_.payload == PayloadKind::json
                  ? std::clamp<std::size_t>((4u << 20) / length, 1, 64)
                  : 1;
  payload_.clear();
  for (std::size_t i = 0; i < variants_; ++i) append_payload(payload_, options_.payload, length, i);
}

Worker::~Worker() {
  if (thread_.joinable()) {
    stop_loop();
    thread_.join();
  }
}

void Worker::start() {
  loop_.post([this] { begin_connecting(); });
  thread_ = std::thread([this] {
    loop_.run();
    stopped_.store(true, std::memory_order_release);
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::stop_loop() noexcept {
  loop_.stop();
}

void Worker::post_begin(RunTimes times) {
  loop_.post([this, times] {
    times_ = times;
    on_begin();
  });
}

void Worker::post_snapshot(std::shared_ptr<IntervalSnapshot> into) {
  loop_.post([this, into = std::move(into)] {
    std::lock_guard lock(into->mutex);
    into->latency.merge(interval_latency_);
    into->handshake.merge(interval_handshake_);
    interval_latency_.reset();
    interval_handshake_.reset();
    if (--into->pending == 0) into->done.notify_all();
  });
}

void Worker::post_finish() {
  loop_.post([this] { finish(); });
}

// ---------------------------------------------------------------------------------------------
// Opening connections

void Worker::begin_connecting() {
  open_next();
}

void Worker::open_next() {
  if (finishing_) return;
  if (options_.ramp_rate <= 0) {
    while (next_to_open_ < slots_.size() && connecting_ < kMaxConcurrentOpens)
      open(slots_[next_to_open_++]);
    return;
  }
  // Connection k is due at k / ramp_rate seconds after the ramp began, whichever worker has it.
  const double interval_ns = 1e9 / options_.ramp_rate;
  const std::uint64_t now = ClientTimer::monotonic_ns();
  while (next_to_open_ < slots_.size()) {
    Slot& slot = slots_[next_to_open_];
    const auto due = plan_.connect_start_ns +
                     static_cast<std::uint64_t>(static_cast<double>(slot.index) * interval_ns);
    if (due > now) {
      ramp_timer_.arm_at(due);
      return;
    }
    ++next_to_open_;
    open(slot);
  }
}

void Worker::open(Slot& slot) {
  slot.state = SlotState::connecting;
  slot.connect_ns = ClientTimer::monotonic_ns();
  ++connecting_;
  slot.client = &loop_.connect(plan_.profile_for(slot.index));
  slot.client->set_user_data(&slot);
}

void Worker::connection_settled() {
  --connecting_;
  if (options_.ramp_rate <= 0) open_next();
}

void Worker::start_pacer(Pacer& pacer, std::size_t local, std::size_t total) noexcept {
  const double worker_rate =
      options_.rate * static_cast<double>(local) / static_cast<double>(total);
  const double interval_ns = 1e9 / worker_rate;
  const auto phase = static_cast<std::uint64_t>(interval_ns * index_ / worker_count_);
  pacer.start(times_.start_ns + phase, interval_ns, times_.measure_end_ns);
}

void Worker::resolve(Slot& slot) {
  counters.resolved.add();
}

// ---------------------------------------------------------------------------------------------
// Client events

void Worker::handle_open(WebSocketClient& client) {
  Slot& slot = slot_of(client);
  Worker& worker = *slot.worker;
  const std::uint64_t now = ClientTimer::monotonic_ns();
  slot.state = SlotState::open;
  worker.counters.opened.add();
  worker.handshake.record(now - slot.connect_ns);
  worker.interval_handshake_.record(now - slot.connect_ns);
  if (slot.role != Role::subscriber) worker.resolve(slot);
  worker.on_open(slot);
  worker.connection_settled();
}

void Worker::handle_message(WebSocketClient& client, std::string_view message, MessageKind kind) {
  Slot& slot = slot_of(client);
  slot.worker->counters.received_all.add();
  slot.worker->on_message(slot, message, kind, ClientTimer::monotonic_ns());
}

void Worker::handle_close(WebSocketClient& client, std::uint16_t code, std::string_view) {
  Slot& slot = slot_of(client);
  Worker& worker = *slot.worker;
  if (!slot.closing_by_us && !slot.failed_by_us) {
    worker.errors.count_closed(code);
    worker.counters.errors.add();
  }
  worker.counters.ended.add();
  worker.slot_ended(slot);
}

void Worker::handle_error(WebSocketClient& client, std::string_view error) {
  Slot& slot = slot_of(client);
  Worker& worker = *slot.worker;
  if (slot.state == SlotState::open) {
    // A protocol violation by the server: we fail the connection and on_close follows.
    slot.failed_by_us = true;
    worker.errors.count_client_error(error);
    worker.counters.errors.add();
    return;
  }
  if (slot.closing_by_us) return;
  worker.errors.count_client_error(error);
  worker.counters.errors.add();
  worker.counters.failed.add();
  worker.counters.resolved.add();
  slot.state = SlotState::done;
  slot.client = nullptr;
  worker.connection_settled();
}

void Worker::slot_ended(Slot& slot) {
  // Measured messages still in flight will never come back.
  std::uint64_t lost = 0;
  for (std::size_t i = 0; i < slot.in_flight_size; ++i) {
    const std::uint64_t sent = slot.in_flight[(slot.in_flight_head + i) % slot.in_flight.size()];
    if (is_measured(sent)) ++lost;
  }
  if (lost != 0) counters.lost.add(lost);
  slot.in_flight_size = 0;
  if (slot.role == Role::subscriber && !slot.acked) counters.resolved.add();
  slot.state = SlotState::done;
  slot.client = nullptr;
}

void Worker::count_server_error(std::string_view code) {
  ++errors.server_errors[std::string(code)];
  counters.errors.add();
}

void Worker::record_latency(std::uint64_t latency_ns, bool measured) noexcept {
  interval_latency_.record(latency_ns);
  if (measured) latency.record(latency_ns);
}

// ---------------------------------------------------------------------------------------------
// Sequenced messages (echo, rate)

bool Worker::send_sequenced(Slot& slot, std::uint64_t timestamp_ns) {
  const std::uint64_t sequence = slot.next_sequence;
  const std::size_t digits = std::min(kSequenceDigits, options_.size);
  char* variant =
      payload_.data() + (sequence % variants_) * std::max(options_.size, kSequenceDigits);
  for (std::size_t i = 0; i < digits; ++i)
    variant[i] = kHexDigits[(sequence >> (4 * (kSequenceDigits - 1 - i))) & 0xF];
  const std::string_view message(variant, options_.size);
  const MessageKind kind = options_.binary ? MessageKind::binary : MessageKind::text;
  if (slot.client->send(message, kind) == SendStatus::dropped) {
    ++errors.dropped_sends;
    counters.errors.add();
    return false;
  }
  ++slot.next_sequence;
  if (slot.in_flight_size == slot.in_flight.size()) {
    // Grow the ring (doubling, in order); happens only while the backlog grows.
    std::vector<std::uint64_t> grown(std::max<std::size_t>(4, slot.in_flight.size() * 2));
    for (std::size_t i = 0; i < slot.in_flight_size; ++i)
      grown[i] = slot.in_flight[(slot.in_flight_head + i) % slot.in_flight.size()];
    slot.in_flight = std::move(grown);
    slot.in_flight_head = 0;
  }
  slot.in_flight[(slot.in_flight_head + slot.in_flight_size) % slot.in_flight.size()] =
      timestamp_ns;
  ++slot.in_flight_size;
  counters.sent_all.add();
  if (is_measured(timestamp_ns)) {
    counters.sent.add();
    counters.bytes_sent.add(options_.size);
  }
  return true;
}

bool Worker::match_echo(Slot& slot, std::string_view message, MessageKind kind,
                        std::uint64_t& timestamp_ns) {
  if (slot.in_flight_size == 0) {
    ++errors.mismatched;
    counters.errors.add();
    return false;
  }
  timestamp_ns = slot.in_flight[slot.in_flight_head];
  slot.in_flight_head = (slot.in_flight_head + 1) % slot.in_flight.size();
  --slot.in_flight_size;
  const std::uint64_t sequence = slot.expected_sequence++;
  bool same = message.size() == options_.size &&
              kind == (options_.binary ? MessageKind::binary : MessageKind::text);
  const std::size_t digits = std::min(kSequenceDigits, options_.size);
  for (std::size_t i = 0; same && i < digits; ++i)
    same = message[i] == kHexDigits[(sequence >> (4 * (kSequenceDigits - 1 - i))) & 0xF];
  if (!same) {
    ++errors.mismatched;
    counters.errors.add();
    if (is_measured(timestamp_ns)) counters.lost.add();
    return false;
  }
  if (is_measured(timestamp_ns)) {
    counters.received.add();
    counters.bytes_received.add(message.size());
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Closing

void Worker::finish() {
  on_finish();
  finishing_ = true;
  ramp_timer_.disarm();
  for (Slot& slot : slots_) {
    if (slot.state != SlotState::open && slot.state != SlotState::connecting) continue;
    slot.closing_by_us = true;
    const bool was_connecting = slot.state == SlotState::connecting;
    slot.client->close(1000, "bench done");
    if (was_connecting) {  // given up without an event: the handle is gone
      slot.state = SlotState::done;
      slot.client = nullptr;
    }
  }
  check_closed();
}

void Worker::check_closed() {
  if (loop_.client_count() == 0) {
    loop_.stop();
    return;
  }
  close_timer_.arm_at(ClientTimer::monotonic_ns() + kClosePollNs);
}

}  // namespace pylon::bench
