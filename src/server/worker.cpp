#include "server/worker.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <new>
#include <type_traits>

#include "net/socket.hpp"
#include "net/uring_poller.hpp"
#include "obs/log.hpp"
#include "server/connection.hpp"
#include "server/server.hpp"
#include "server/tls_certificates.hpp"

namespace pylon::detail {
namespace {

// Accepting is bounded per readiness event so one busy listener cannot starve the connections.
constexpr int kMaxAcceptsPerEvent = 128;
constexpr std::uint64_t kListenerRetryMs = 200;

}  // namespace

Worker::Worker(Server& server, std::vector<int> listen_fds, unsigned index)
    : server_(server),
      index_(index),
      loop_(server.config.io_backend, server.config.io_batch_wait_us),
      connection_pool_(sizeof(Connection), alignof(Connection), this),
      http_state_pool_(Connection::make_http_state_pool()) {
  fire = &Worker::on_tick;
  loop_tick_.worker = this;
  loop_tick_.fire = &Worker::on_loop_tick;
  spare_inflaters_.reserve(kSpareInflaters);
  for (std::size_t i = 0; i < listen_fds.size(); ++i) {
    listeners_.push_back(std::make_unique<Listener>(*this, listen_fds[i], i > 0));
    loop_.add(listen_fds[i], EPOLLIN, listeners_.back().get());
  }
  loop_.set_end_of_iteration([this] { end_of_iteration(); });
}

Worker::~Worker() {
  net::TimerWheel::cancel(loop_tick_);
  if (batching_reported_) server_.counters->batching_loops.add(-1);  // this loop is gone
  destroy_connections();
  add_route_counts();  // what the connections' last reads counted
  free_retired();
  for (const auto& listener : listeners_) ::close(listener->fd);
}

namespace {
thread_local Worker* current_worker = nullptr;  // the worker whose loop runs on this thread
}  // namespace

void Worker::start() {
  server_.running_loops.fetch_add(1, std::memory_order_relaxed);
  thread_ = std::thread([this] {
    current_worker = this;
    metrics_detail::bind_thread_slot(index_ + 1);
    if (!server_.loop_ticks.empty() || loop_.batch_wait_us() != 0)
      loop_.timers().schedule(loop_tick_, now_ms() + kLoopTickMs);
    loop_.run();
    server_.running_loops.fetch_sub(1, std::memory_order_release);
  });
}

std::uint64_t Worker::watch(Connection& connection) {
  const auto [entry, added] = watched_.try_emplace(&connection, next_watch_ + 1);
  if (added) ++next_watch_;
  return entry->second;
}

Connection* Worker::watched(Connection* connection, std::uint64_t id) const noexcept {
  const auto found = watched_.find(connection);
  return found != watched_.end() && found->second == id ? connection : nullptr;
}

void Worker::enqueue(pubsub::MessageRef message) {
  // A publication with an offset is handed over at once even from this thread: it must reach the
  // subscribers in offset order, whatever thread published the one before.
  if (message->offset == 0 && current_worker != nullptr && &current_worker->server_ == &server_) {
    if (current_worker == this) return inbox_.add_local(std::move(message));
    auto& outgoing = current_worker->outgoing_;
    if (outgoing.size() <= index_) outgoing.resize(index_ + 1);
    outgoing[index_].to = this;
    outgoing[index_].messages.push_back(std::move(message));
    return;
  }
  receive(std::span(&message, 1));
}

void Worker::receive(std::span<pubsub::MessageRef> messages) {
  if (inbox_.add_remote(messages)) loop_.post([this] { inbox_.collect(); });
}

void Worker::hand_over() {
  for (Outgoing& outgoing : outgoing_) {
    if (outgoing.messages.empty()) continue;
    outgoing.to->receive(outgoing.messages);
    outgoing.messages.clear();  // moved from; keeps its capacity
  }
}

void Worker::deliver(std::vector<pubsub::MessageRef>& batch, bool several_topics) {
  // Each topic's publications form one run (Inbox::take) that each subscriber gets in one write.
  // A subscriber of several of the batch's topics gathers its runs and writes them once, at the
  // end of the iteration.
  for (std::size_t begin = 0; begin < batch.size();) {
    const std::string& name = batch[begin]->topic;
    std::size_t end = begin + 1;
    while (end < batch.size() && batch[end]->topic == name) ++end;
    if (auto* topic = topics_.find(name)) {
      const std::span run(batch.data() + begin, end - begin);
      DeliveryTally tally(run);
      topics_.for_each_subscriber(*topic, [&](Connection& subscriber) {
        subscriber.deliver_frames(*topic, run, tally, several_topics);
      });
    }
    begin = end;
  }
  batch.clear();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::post_drain() {
  loop_.post([this] { begin_drain(); });
}

void Listener::on_io(std::uint32_t) {
  worker.accept_ready(*this);
}

void Worker::pause_listeners(bool paused) {
  if (paused == listeners_paused_) return;
  listeners_paused_ = paused;
  for (const auto& listener : listeners_) {
    if (paused)
      loop_.remove(listener->fd);
    else
      loop_.add(listener->fd, EPOLLIN, listener.get());
  }
}

bool Worker::accept_ready(Listener& listener) {
  for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof peer;
    const int fd = accept4(listener.fd, reinterpret_cast<sockaddr*>(&peer), &peer_length,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: level-triggered epoll would spin on the pending connection, so
        // stop listening for a moment and let closes free some.
        static obs::LogRateLimit limit(1);
        limit.log(
            obs::LogLevel::warn, "cannot accept: out of descriptors; pausing accepts",
            {{"worker", std::uint64_t{index_}}, {"error", std::string_view(std::strerror(errno))}});
        pause_listeners(true);
        loop_.timers().schedule(*this, now_ms() + kListenerRetryMs);
      }
      return false;  // EAGAIN: nothing left; ECONNABORTED and friends: the peer is gone
    }
    server_.counters->accepted.add();
    std::shared_ptr<const TlsCertificates> tls;
    if (server_.tls && !listener.internal) {  // the metrics listener stays plain
      // Past the cap the connection costs us an accept and a close, not a handshake's CPU.
      if (tls_handshakes_ >= server_.config.tls_max_handshakes) {
        server_.counters->tls_handshake(TlsHandshake::refused);
        ::close(fd);
        continue;
      }
      tls = server_.tls->current();
    }
    void* slot = connection_pool_.allocate();
    try {
      auto* connection = new (slot)
          Connection(fd, net::PeerAddress::from(peer), listener.internal, std::move(tls));
      // Its first bytes are already in (TCP_DEFER_ACCEPT, net/socket.hpp): read them now rather
      // than at the next wake-up. A connection past the defer period without data reads nothing.
      connection->on_io(EPOLLIN);
    } catch (const std::bad_alloc&) {  // OpenSSL could not allocate the connection
      connection_pool_.deallocate(slot);
      ::close(fd);
    }
  }
  return true;  // the cap: more may be waiting
}

void Worker::destroy_connections() noexcept {
  // Destroyed ones stay in their slots until free_retired, and destroy() again does nothing.
  connection_pool_.for_each([](void* slot) { static_cast<Connection*>(slot)->destroy(); });
}

void Worker::free_retired() noexcept {
  connections_.free_retired([this](Connection& connection) {
    connection.~Connection();
    connection_pool_.deallocate(&connection);
  });
}

ws::MessageDeflater& Worker::shared_deflater(std::uint8_t window_bits) {
  auto& slot = shared_deflaters_[window_bits - 8];
  if (!slot) slot = std::make_unique<ws::MessageDeflater>(window_bits, 8, true);
  return *slot;
}

std::unique_ptr<ws::MessageInflater> Worker::borrow_inflater() {
  if (spare_inflaters_.empty()) return std::make_unique<ws::MessageInflater>(15, true);
  std::unique_ptr<ws::MessageInflater> inflater = std::move(spare_inflaters_.back());
  spare_inflaters_.pop_back();
  return inflater;
}

void Worker::return_inflater(std::unique_ptr<ws::MessageInflater> inflater) noexcept {
  if (spare_inflaters_.size() == kSpareInflaters)
    return;  // freed: more were lent at once than kept
  inflater->reset();
  spare_inflaters_.push_back(std::move(inflater));  // within the reserved capacity
}

void Worker::count_client(const Connection& connection, const ClientKey& client) {
  counted_clients_.emplace(&connection, client);
}

void Worker::keep_client_ip(const Connection& connection, std::string client_ip) {
  client_ips_.insert_or_assign(&connection, std::move(client_ip));
}

std::string Worker::take_client_ip(const Connection& connection) {
  if (client_ips_.empty()) return {};
  const auto found = client_ips_.find(&connection);
  if (found == client_ips_.end()) return {};
  std::string client_ip = std::move(found->second);
  client_ips_.erase(found);
  return client_ip;
}

void Worker::release_client(const Connection& connection) {
  const auto found = counted_clients_.find(&connection);
  if (found == counted_clients_.end()) return;
  server_.admission->release(found->second);
  counted_clients_.erase(found);
}

void Worker::add_route_counts() noexcept {
  RouteCounts& counts = route_counts_;
  if (counts.route == nullptr) return;
  const RouteMetrics& metrics = *counts.route;
  for (std::size_t kind = 0; kind < counts.messages_in.size(); ++kind) {
    if (counts.messages_in[kind] != 0) {
      metrics.messages_received[kind].add(counts.messages_in[kind]);
      metrics.bytes_received[kind].add(counts.bytes_in[kind]);
    }
    if (counts.messages_out[kind] != 0) {
      metrics.messages_sent[kind].add(counts.messages_out[kind]);
      metrics.bytes_sent[kind].add(counts.bytes_out[kind]);
    }
  }
  if (counts.handled != 0) metrics.handling.observe_ns(counts.each_ns, counts.handled);
  counts.clear();
  counts.route = nullptr;
  counts.handled = 0;
}

void Worker::end_of_iteration() {
  add_route_counts();
  // The other loops' share first, so that they deliver while this one does. Handlers run by a
  // delivery (a slow consumer's close) may publish again: bounded rounds, the rest waits for the
  // next iteration.
  hand_over();
  for (int round = 0; round < 4 && !inbox_.empty(); ++round) {
    const bool several_topics = inbox_.take(delivering_);
    deliver(delivering_, several_topics);
    hand_over();
  }
  connections_.flush_scheduled();
  free_retired();
  if (draining_ && drained()) loop_.stop();
}

bool Worker::drained() {
  // Once the listener is closed, no WebSocket is left on any worker and this one owes no HTTP
  // answer: until then every worker keeps answering plain HTTP (a probe on a keep-alive
  // connection must see /readyz say 503). Its idle keep-alive connections are dropped with the
  // loop.
  if (!listeners_.empty() || server_.open_websockets.load(std::memory_order_relaxed) != 0 ||
      owes_http_answers())
    return false;
  // The cluster engine runs on the first worker's loop (Server::start_engine) and settles the
  // other workers' deferred answers (a publish waiting for Redis): that loop stops last. It
  // wakes at least once a timer tick to see the others gone.
  return index_ != 0 || server_.engine == nullptr ||
         server_.running_loops.load(std::memory_order_acquire) == 1;
}

void Worker::begin_drain() {
  if (draining_) return;
  draining_ = true;
  drain_started_ms_ = now_ms();
  drain_total_ = websockets_;
  // A client whose connect() has returned may not have sent its request yet, and the kernel
  // holds such a connection until its first bytes come (TCP_DEFER_ACCEPT): closing the listener
  // now would reset it, request and all. So the listener stays for kListenerGraceMs, no longer
  // deferring, and what it gets is served like any connection of a draining server (upgrades
  // get 503).
  for (const auto& listener : listeners_) net::stop_deferring_accepts(listener->fd);
  drain_tick();
}

void Worker::close_listeners() {
  // The loop lets go of the listeners first, so that each is gone the moment it is closed.
  pause_listeners(true);
  loop_.flush();
  // Connections the kernel already completed wait in the backlog: closing the listener would
  // reset them. Take them first, and close right after the last accept; no new one completes
  // in between once drop_new_handshakes() has settled (drain_tick; not on the drain timeout's
  // path). From here on a connect is refused (a proxy tries the next instance).
  for (const auto& listener : listeners_) {
    while (accept_ready(*listener)) {
    }
    ::close(listener->fd);
  }
  listeners_.clear();
}

bool Worker::owes_http_answers() {
  bool owed = false;
  connection_pool_.for_each(
      [&](void* slot) { owed = owed || static_cast<Connection*>(slot)->owes_http_answer(); });
  return owed;
}

void Worker::on_tick(net::TimerNode& node) {
  auto& worker = static_cast<Worker&>(node);
  if (worker.draining_) {
    worker.drain_tick();
  } else {
    worker.pause_listeners(false);
  }
}

void Worker::on_loop_tick(net::TimerNode& node) {
  Worker& worker = *static_cast<LoopTick&>(node).worker;
  for (const auto& tick : worker.server_.loop_ticks) tick();
  worker.report_batching();
  worker.loop_.timers().schedule(node, worker.now_ms() + kLoopTickMs);
}

void Worker::report_batching() noexcept {
  const net::WaitBatching* batching = loop_.wait_batching();
  if (batching == nullptr) return;
  const ServerMetrics& counters = *server_.counters;
  if (batching->on() != batching_reported_) {
    batching_reported_ = !batching_reported_;
    counters.batching_loops.add(batching_reported_ ? 1 : -1);
  }
  static_assert(net::WaitBatching::kVerdicts == std::extent_v<decltype(trials_reported_)> &&
                net::WaitBatching::kVerdicts ==
                    std::tuple_size_v<decltype(ServerMetrics::batch_trials)>);
  for (std::size_t verdict = 0; verdict < net::WaitBatching::kVerdicts; ++verdict) {
    const std::uint64_t trials = batching->trials(static_cast<net::WaitBatching::Verdict>(verdict));
    counters.batch_trials[verdict].add(trials - trials_reported_[verdict]);
    trials_reported_[verdict] = trials;
  }
}

void Worker::drain_tick() {
  const Config& config = server_.config;
  const std::uint64_t elapsed = now_ms() - drain_started_ms_;
  if (elapsed >= static_cast<std::uint64_t>(config.drain_timeout * 1000)) {
    if (websockets_ > 0)
      obs::log(obs::LogLevel::warn, "drain timeout: dropping the remaining WebSockets",
               {{"worker", std::uint64_t{index_}}, {"websockets", std::uint64_t{websockets_}}});
    if (!listeners_.empty()) close_listeners();
    destroy_connections();
    return;  // end_of_iteration stops the loop
  }
  if (!listeners_.empty()) {
    // The grace ends with kHandshakeSettleMs of dropping new handshakes: those under way complete
    // and are in the backlog when close_listeners() takes it, and none can complete after that.
    const std::uint64_t settle_from = kListenerGraceMs - kHandshakeSettleMs;
    if (elapsed < settle_from) {
      loop_.timers().schedule(*this, drain_started_ms_ + settle_from);
      return;
    }
    if (handshakes_dropped_ms_ == 0) {
      for (const auto& listener : listeners_) net::drop_new_handshakes(listener->fd);
      handshakes_dropped_ms_ = now_ms();
    }
    if (now_ms() - handshakes_dropped_ms_ < kHandshakeSettleMs) {
      loop_.timers().schedule(*this, handshakes_dropped_ms_ + kHandshakeSettleMs);
      return;
    }
    close_listeners();
  }
  // The 1001 closes begin once the listener is closed, so that the clients they close cannot
  // come back to this server. They are spread evenly over drain_window so that clients do not
  // all reconnect to the remaining instances in the same second.
  const double window_ms = config.drain_window * 1000;
  const double closing_ms =
      static_cast<double>(elapsed > kListenerGraceMs ? elapsed - kListenerGraceMs : 0);
  std::size_t due = drain_total_;
  if (window_ms > 0 && closing_ms < window_ms)
    due = static_cast<std::size_t>(std::ceil(static_cast<double>(drain_total_) *
                                             (closing_ms + net::TimerWheel::kTickMs) / window_ms));
  // Plain HTTP connections stay: a load balancer's keep-alive probe must see /readyz say 503.
  // (Closing frees no slot before the end of the iteration: the walk stays valid.)
  connection_pool_.for_each([&](void* slot) {
    if (drain_closed_ < due && static_cast<Connection*>(slot)->start_drain_close()) ++drain_closed_;
  });
  loop_.timers().schedule(*this, now_ms() + net::TimerWheel::kTickMs);
}

}  // namespace pylon::detail
