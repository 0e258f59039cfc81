// A worker: one event loop thread with its own SO_REUSEPORT listener, its connections, its cork
// buffer and its share of a graceful drain (DESIGN.md "The engine").
//
// Created on the main thread; after start() everything but post_drain() runs on its thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/request_parser.hpp"
#include "net/connection_list.hpp"
#include "net/event_loop.hpp"
#include "net/outbox.hpp"
#include "net/timer_wheel.hpp"
#include "pubsub/inbox.hpp"
#include "pubsub/local_topics.hpp"
#include "pubsub/message.hpp"
#include "server/admission.hpp"
#include "server/slab_pool.hpp"
#include "ws/permessage_deflate.hpp"

namespace pylon {
enum class MessageKind : std::uint8_t;  // pylon/app.hpp
}  // namespace pylon

namespace pylon::detail {

class Server;
class Connection;
struct RouteMetrics;

class Worker;

// One listening socket of a worker: the public one, or the metrics one (metrics_listen).
class Listener final : public net::IoHandler {
 public:
  Listener(Worker& worker, int fd, bool internal) : worker(worker), fd(fd), internal(internal) {}
  void on_io(std::uint32_t epoll_events) override;
  Worker& worker;
  int fd;
  bool internal;  // connections from it see only internal routes (/metrics)
};

class Worker final : public net::TimerNode {
 public:
  // listen_fds: the public listener, then optionally the metrics listener; the worker owns them.
  Worker(Server& server, std::vector<int> listen_fds, unsigned index);
  ~Worker();

  void start();
  void join();
  void post_drain();  // any thread
  // Any thread: deliver a published message to this worker's subscribers of its topic, at the
  // end of an iteration of its loop (so a burst of publishes goes out as one write per
  // subscriber). From a loop thread of this server it waits for the end of that loop's
  // iteration, and what the iteration published for another loop is handed over then, in one
  // batch with at most one wake-up; from any other thread it is handed over at once. A message
  // with an offset (history) is always handed over at once: one FIFO keeps offset order.
  void enqueue(pubsub::MessageRef message);
  unsigned index() const noexcept { return index_; }
  pubsub::LocalTopics<Connection>& topics() noexcept { return topics_; }

  // Accepts what the listener has, at most kMaxAcceptsPerEvent, and reads each connection's first
  // bytes at once (TCP_DEFER_ACCEPT); true when it stopped at that cap.
  bool accept_ready(Listener& listener);

  Server& server() noexcept { return server_; }
  net::EventLoop& loop() noexcept { return loop_; }
  std::uint64_t now_ms() const noexcept { return loop_.now_ms(); }
  bool draining() const noexcept { return draining_; }

  // Corked writes (net/outbox.hpp): while a connection processes what it read, everything it
  // sends collects in the cork and goes out in one write when processing ends.
  net::Cork& cork() noexcept { return cork_; }
  // Messages and bytes in and out, by kind ([MessageKind]).
  struct MessageCounts {
    std::array<std::uint64_t, 2> messages_in{}, bytes_in{}, messages_out{}, bytes_out{};
    void add(const MessageCounts& other) noexcept {
      for (std::size_t kind = 0; kind < messages_in.size(); ++kind) {
        messages_in[kind] += other.messages_in[kind];
        bytes_in[kind] += other.bytes_in[kind];
        messages_out[kind] += other.messages_out[kind];
        bytes_out[kind] += other.bytes_out[kind];
      }
    }
    // Field by field: assigning a whole empty struct compiles to `rep stos`, whose start-up cost,
    // paid twice per read, was ~20 % of the server's user time at 8 in flight (issue 17).
    void clear() noexcept {
      for (std::size_t kind = 0; kind < messages_in.size(); ++kind)
        messages_in[kind] = bytes_in[kind] = messages_out[kind] = bytes_out[kind] = 0;
    }
  };
  // What the messages of the read being processed (Connection::process) add to their route's
  // metrics and access log: counted here per message, and passed on once per read (to the access
  // log, and to count_read below for the metrics), so a message costs a few additions instead of
  // several counter updates and two clock reads (issue 17). The counts stay exact.
  struct ReadTally : MessageCounts {
    const Connection* reader = nullptr;  // whose read it is; null between reads
    bool timed = false;                  // HandlingSample::timed said so when the read began
    std::uint64_t started_ns = 0;        // pylon_message_handling_seconds: the read's start
    std::uint64_t handled = 0;           // messages given to the route's handler
    void received(MessageKind kind, std::size_t bytes) noexcept {
      ++messages_in[static_cast<std::size_t>(kind)];
      bytes_in[static_cast<std::size_t>(kind)] += bytes;
    }
    void sent(MessageKind kind, std::size_t bytes) noexcept {
      ++messages_out[static_cast<std::size_t>(kind)];
      bytes_out[static_cast<std::size_t>(kind)] += bytes;
    }
    // A read begins; the tally is clear then (clear() ended the last one).
    void begin(const Connection* of, bool timed_read, std::uint64_t started) noexcept {
      reader = of;
      timed = timed_read;
      started_ns = started;
    }
    void clear() noexcept {
      reader = nullptr;
      timed = false;
      started_ns = handled = 0;
      MessageCounts::clear();
    }
  };
  ReadTally& read_tally() noexcept { return read_tally_; }
  // pylon_message_handling_seconds is timed on a sample of reads: its two clock reads (30-50 ns
  // each in a VM) were ~4 % of the server's user time (issue 17). A read is timed when it is the
  // first of a route since another route's, or when kUntimedReads reads of its route followed the
  // last timed one; the reads between count their messages at that read's mean (docs/metrics.md).
  struct HandlingSample {
    static constexpr unsigned kUntimedReads = 15;
    const RouteMetrics* route = nullptr;  // whose timed read each_ns comes from
    std::uint64_t each_ns = 0;            // that read's time per handled message
    unsigned untimed_left = 0;            // reads still to count at each_ns
    bool timed(const RouteMetrics* of) const noexcept { return of != route || untimed_left == 0; }
  };
  HandlingSample& handling_sample() noexcept { return handling_sample_; }
  // A read's tally goes to its route's metrics through here, once per loop iteration rather than
  // once per read: six counter updates per read were half of the read's counting (issue 17).
  // The counts are added to the metrics when a read of another route comes, when the handling
  // time's mean changes (a timed read), and at the end of the iteration (end_of_iteration): a
  // scrape sees them at most an iteration late. each_ns: the read's handling time per message.
  void count_read(const RouteMetrics& route, const ReadTally& tally,
                  std::uint64_t each_ns) noexcept {
    if (route_counts_.route != &route || (tally.handled != 0 && each_ns != route_counts_.each_ns)) {
      add_route_counts();
      route_counts_.route = &route;
      route_counts_.each_ns = each_ns;
    }
    route_counts_.add(tally);
    route_counts_.handled += tally.handled;
  }
  // The connections to flush at the end of the iteration; the retired ones, freed then. (The live
  // ones are the connection pool's live slots.)
  net::ConnectionList<Connection, false>& connections() noexcept { return connections_; }

  // permessage-deflate in shared mode (no context takeover): one compressor per window size and
  // one decompressor serve every connection of this loop, reset after each message.
  ws::MessageDeflater& shared_deflater(std::uint8_t window_bits);
  ws::MessageInflater& shared_inflater() noexcept { return shared_inflater_; }
  // Shared mode, a compressed message spread over several reads needs a decompressor of its own
  // until it ends: lent from a few spares (~40 KiB each), so such messages allocate nothing.
  std::unique_ptr<ws::MessageInflater> borrow_inflater();
  void return_inflater(std::unique_ptr<ws::MessageInflater> inflater) noexcept;
  std::string& inflate_buffer() noexcept { return inflate_buffer_; }
  http::Request& request_scratch() noexcept { return request_scratch_; }
  SlabPool& http_state_pool() noexcept { return http_state_pool_; }
  std::string& deflate_buffer() noexcept { return deflate_buffer_; }
  // Dedicated-mode deliveries: one subscriber's frames, compressed for it alone, before its send.
  std::string& frame_buffer() noexcept { return frame_buffer_; }
  // The 101 of an upgrade while it is put together.
  std::string& response_buffer() noexcept { return response_buffer_; }

  // Connections awaiting an answer from another thread (the cluster engine's, a deferred HTTP
  // response): the answer, posted to this loop, finds its connection by address and the number
  // watch() gave, which a later connection in the same slot does not have. Loop thread only.
  std::uint64_t watch(Connection& connection);
  Connection* watched(Connection* connection, std::uint64_t id) const noexcept;
  void unwatch(Connection& connection) noexcept {
    if (!watched_.empty()) watched_.erase(&connection);
  }

  // Open WebSockets of this worker: a drain is over when none is left.
  void websocket_opened() noexcept { ++websockets_; }
  void websocket_closed() noexcept { --websockets_; }
  // WebSockets that count against max_connections_per_ip, with the client they count for (an
  // idle Connection has no byte to spare for it: connection_test.cpp); release_client gives the
  // place back when one closes. Only with a per-IP cap: otherwise the table stays empty.
  void count_client(const Connection& connection, const ClientKey& client);
  void release_client(const Connection& connection);
  // The access log's client_ip of a WebSocket whose real client is not its peer (behind a trusted
  // proxy), kept here for its close line for the same reason; take_client_ip gives it back and
  // forgets it ("" when none).
  void keep_client_ip(const Connection& connection, std::string client_ip);
  std::string take_client_ip(const Connection& connection);
  // TLS handshakes in progress on this worker (tls_max_handshakes caps them).
  void tls_handshake_started() noexcept { ++tls_handshakes_; }
  void tls_handshake_ended() noexcept { --tls_handshakes_; }

 private:
  void end_of_iteration();
  void pause_listeners(bool paused);
  // Moves messages into this worker's inbox, waking its loop if none is on its way.
  void receive(std::span<pubsub::MessageRef> messages);
  void hand_over();  // this iteration's publications for the other loops
  void deliver(std::vector<pubsub::MessageRef>& batch, bool several_topics);
  void begin_drain();
  void close_listeners();    // the backlog accepted first
  bool owes_http_answers();  // Connection::owes_http_answer of any connection
  bool drained();            // draining: the loop may stop
  static void on_tick(net::TimerNode& node);
  static void on_loop_tick(net::TimerNode& node);
  void drain_tick();
  void destroy_connections() noexcept;  // every live one: shutdown, or the drain's timeout
  void free_retired() noexcept;

  Server& server_;
  unsigned index_;
  net::EventLoop loop_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  bool listeners_paused_ = false;
  std::thread thread_;

  // Every Connection of this worker lives in a slot of this pool (whose owner is this worker),
  // and the HTTP-phase state of each in one of the other (slab_pool.hpp says why).
  SlabPool connection_pool_;
  SlabPool http_state_pool_;
  net::ConnectionList<Connection, false> connections_;
  std::size_t websockets_ = 0;
  std::unordered_map<const Connection*, ClientKey> counted_clients_;
  std::unordered_map<const Connection*, std::string> client_ips_;
  std::size_t tls_handshakes_ = 0;
  net::Cork cork_;
  ReadTally read_tally_;
  HandlingSample handling_sample_;
  struct RouteCounts : MessageCounts {  // count_read's, not yet in the route's metrics
    const RouteMetrics* route = nullptr;
    std::uint64_t handled = 0;  // messages handled, each_ns each
    std::uint64_t each_ns = 0;
  };
  RouteCounts route_counts_;
  void add_route_counts() noexcept;  // route_counts_ into its route's metrics, and cleared

  std::array<std::unique_ptr<ws::MessageDeflater>, 8> shared_deflaters_;  // [window_bits - 8]
  ws::MessageInflater shared_inflater_{15, true};
  static constexpr std::size_t kSpareInflaters = 16;
  std::vector<std::unique_ptr<ws::MessageInflater>> spare_inflaters_;  // capacity kSpareInflaters
  std::string inflate_buffer_, deflate_buffer_, frame_buffer_, response_buffer_;
  http::Request request_scratch_;

  std::unordered_map<Connection*, std::uint64_t> watched_;
  std::uint64_t next_watch_ = 0;

  pubsub::LocalTopics<Connection> topics_;
  pubsub::Inbox inbox_;
  std::vector<pubsub::MessageRef> delivering_;  // the batch being delivered
  // Publications of this iteration for other workers, by their index (sized on first use).
  struct Outgoing {
    Worker* to = nullptr;
    std::vector<pubsub::MessageRef> messages;
  };
  std::vector<Outgoing> outgoing_;

  // App::on_loop_tick's tasks and report_batching, once a second; a node of its own, apart from
  // the drain's ticks.
  struct LoopTick : net::TimerNode {
    Worker* worker = nullptr;
  } loop_tick_;
  static constexpr std::uint64_t kLoopTickMs = 1000;
  // What report_batching told the metrics: batching on, and trials [net::WaitBatching::Verdict].
  bool batching_reported_ = false;
  std::uint64_t trials_reported_[3] = {};
  void report_batching() noexcept;

  // How long a draining worker keeps its listener, accepting without TCP_DEFER_ACCEPT
  // (begin_drain says why): a client's first bytes come within it after its connect(). In its
  // last kHandshakeSettleMs new handshakes are dropped (net::drop_new_handshakes): a handshake
  // under way has that long to complete, a round trip on any network a load balancer spans.
  static constexpr std::uint64_t kListenerGraceMs = 250;
  static constexpr std::uint64_t kHandshakeSettleMs = net::TimerWheel::kTickMs;
  static_assert(kHandshakeSettleMs < kListenerGraceMs, "new handshakes are taken for a while");
  bool draining_ = false;
  std::uint64_t drain_started_ms_ = 0;
  std::uint64_t handshakes_dropped_ms_ = 0;  // when the listeners began to drop them (0: not yet)
  std::size_t drain_total_ = 0;              // WebSockets open when the drain began
  std::size_t drain_closed_ = 0;             // of which we have started closing
};

}  // namespace pylon::detail
