// The server behind pylon::App: routes, configuration, the counters shared by all loops, and
// the workers (one event loop thread each). Internal to src/server.
//
// Threads: routes and config are written before run() starts the workers and only read after;
// the counters are atomics; everything else belongs to one worker's thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "net/cidr.hpp"
#include "pubsub/cluster_engine.hpp"
#include "pubsub/history.hpp"
#include "pubsub/message.hpp"
#include "pubsub/presence.hpp"
#include "pubsub/topic_registry.hpp"
#include "pylon/app.hpp"
#include "pylon/metrics.hpp"
#include "server/admission.hpp"
#include "server/server_metrics.hpp"
#include "ws/frame.hpp"

namespace pylon::detail {

// The frame opcode of a message of this kind.
inline ws::Opcode opcode_of(MessageKind kind) noexcept {
  return kind == MessageKind::text ? ws::Opcode::text : ws::Opcode::binary;
}

class Worker;
class ServerTls;

// A connection keeps its agreed subprotocol as a one-byte index (connection.hpp).
constexpr std::size_t kMaxSubprotocols = 255;

// Blocks from this size up are mapped for themselves and unmapped when freed (Server::run sets
// glibc's M_MMAP_THRESHOLD to it); smaller ones stay in malloc's heap for reuse.
constexpr std::size_t kMappedBlock = 1 << 20;

struct Route {
  std::string path;
  bool websocket = false;
  bool internal = false;    // served only on the metrics listener (when metrics_listen is set)
  ErasedBehavior behavior;  // websocket routes
  CompressionSettings
      compression;  // websocket routes: what run() resolved from behavior and config
  std::unique_ptr<RouteMetrics> metrics;  // websocket routes, created by run()
  std::string method;                     // plain HTTP routes: "GET" (HEAD too) or "POST"
  HttpHandler handler;
};

class Server {
 public:
  explicit Server(Config config);
  ~Server();

  // The first route of a path; nullptr when none.
  const Route* find_route(std::string_view path) const noexcept;
  // The route a request goes to. A path may have a WebSocket route and plain HTTP routes (`/`
  // in `pylon serve`: the dashboard page, and echo for upgrades): an upgrade request prefers the
  // WebSocket route, any other request the HTTP route of its method (HEAD is GET). A plain GET
  // of a WebSocket-only path still gets the WebSocket route (which answers 426).
  const Route* find_route(std::string_view path, std::string_view method,
                          bool upgrade) const noexcept;
  int run();
  void drain();
  // Any thread: fans a message out to every loop with subscribers and, with a cluster engine, to
  // the other instances; refused while the engine is unavailable. On a topic with history it is
  // kept there first, with its offset spliced in (OffsetEnvelope). When that history lives in
  // Redis the result is pending and `settled` gets the outcome on the engine loop.
  PublishResult publish(std::string_view topic, ws::Opcode opcode, const OffsetEnvelope& message,
                        std::function<void(const PublishResult&)> settled = {});
  // Engine history (engine != nullptr): reads topic's position and, given since, what followed
  // it; done runs on the engine loop.
  void read_history(std::string_view topic, const pubsub::HistoryPolicy& policy,
                    const StreamPosition* since, pubsub::ReadDone done);
  // The history policy of topic's namespace; nullopt when the topic keeps none.
  std::optional<pubsub::HistoryPolicy> history_policy(std::string_view topic) const;
  // App::presence_join, presence_leave, read_presence: the memory engine's table, or the
  // cluster engine's (posted to its loop).
  void presence_join(std::string_view topic, PresenceMember member);
  void presence_leave(std::string_view topic, std::string_view client);
  void read_presence(std::string_view topic, pubsub::PresenceDone done);
  bool ready() const noexcept;
  // App::run_on_every_loop, App::send_to_cluster.
  void run_on_every_loop(const std::function<void()>& task);
  ClusterSend send_to_cluster(std::string_view message);
  // Every [endpoints."/path"] has a WebSocket route; throws ConfigError naming the key.
  void check_config() const;

  Config config;
  std::vector<Route> routes;
  std::atomic<std::size_t> open_websockets{0};
  std::atomic<unsigned> running_loops{0};  // the workers' loops started and not yet stopped
  std::atomic<bool> draining{false};
  std::unique_ptr<pubsub::TopicRegistry> topics;  // created by run() once the workers are known
  MetricsRegistry metrics;
  std::vector<std::function<void()>> reloads;     // SIGHUP, in the order added
  std::vector<std::function<void()>> loop_ticks;  // every loop, about once a second
  std::vector<std::function<void(std::string_view)>> cluster_handlers;  // App::on_cluster_message
  std::vector<net::Cidr> trusted_proxies;
  std::unique_ptr<Admission> admission;     // the abuse limits, created by run()
  std::unique_ptr<ServerMetrics> counters;  // created by run(), after the application's own series
  std::unique_ptr<pubsub::ClusterEngine> engine;  // engine = "redis"; lives on worker 0's loop
  // Created by run() when a namespace keeps history with the memory engine; the Redis engine keeps
  // it in Redis.
  std::unique_ptr<pubsub::History> history;
  // Native TLS (tls_cert): the live certificates; null when `listen` is plain.
  std::unique_ptr<ServerTls> tls;
  pubsub::PresenceTable presence;  // the memory engine's; the Redis engine keeps it in Redis

 private:
  void register_metrics();
  void start_engine();
  void start_history();
  PublishResult publish_to_history(std::string_view topic, ws::Opcode opcode,
                                   const OffsetEnvelope& message,
                                   const pubsub::HistoryPolicy& policy);
  // Fans out on this instance only: local publishes and messages from other instances.
  std::size_t deliver_local(std::string_view topic, ws::Opcode opcode,
                            std::span<const std::string_view> payload_parts,
                            std::uint64_t offset = 0);
  // Hands the message to every worker with subscribers of its topic; returns how many there are.
  std::size_t deliver_local(const pubsub::MessageRef& message,
                            const pubsub::TopicRegistry::Lookup& lookup);
  void send_engine_outbox();  // worker 0's loop
  std::vector<std::unique_ptr<Worker>> workers_;
  // Publishes on their way to the engine, which lives on worker 0's loop: producers append (the
  // encoded message, shared with the local delivery) and the first of a batch wakes the loop, so
  // a publish costs no allocation of its own on the way and keeps its order per producer.
  std::mutex engine_outbox_mutex_;
  std::vector<pubsub::MessageRef> engine_outbox_;
  std::vector<pubsub::MessageRef> engine_sending_;  // worker 0's loop only
};

}  // namespace pylon::detail
