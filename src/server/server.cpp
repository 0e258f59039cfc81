#include "server/server.hpp"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <thread>

#include "cluster/redis_engine.hpp"
#include "net/socket.hpp"
#include "obs/log.hpp"
#include "obs/process_metrics.hpp"
#include "pubsub/message.hpp"
#include "pubsub/topic_name.hpp"
#include "server/tls_certificates.hpp"
#include "server/worker.hpp"

namespace pylon {
namespace {

sigset_t shutdown_signals() noexcept {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  return signals;
}

}  // namespace

void block_shutdown_signals() noexcept {
  const sigset_t signals = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

namespace detail {

Server::Server(Config config_in) : config(std::move(config_in)) {}

Server::~Server() {
  engine.reset();  // before the loop it lives on
}

const Route* Server::find_route(std::string_view path) const noexcept {
  for (const Route& route : routes)
    if (route.path == path) return &route;
  return nullptr;
}

const Route* Server::find_route(std::string_view path, std::string_view method,
                                bool upgrade) const noexcept {
  if (method == "HEAD") method = "GET";
  const Route* websocket = nullptr;
  const Route* plain = nullptr;
  for (const Route& route : routes) {
    if (route.path != path) continue;
    if (route.websocket && websocket == nullptr) websocket = &route;
    if (!route.websocket && route.method == method && plain == nullptr) plain = &route;
  }
  if (upgrade) return websocket != nullptr ? websocket : plain;
  return plain != nullptr ? plain : websocket;
}

void Server::check_config() const {
  if (config.tls_cert.empty()) {
    if (!config.tls_key.empty()) throw ConfigError("tls_key", "needs tls_cert");
    if (!config.tls_sni_certs.empty()) throw ConfigError("tls_sni_certs", "needs tls_cert");
  } else {
    TicketKeys ticket_keys;
    TlsCertificates::load(config, ticket_keys);  // the files exist, parse, match their keys
  }
  for (const auto& endpoint : config.endpoints) {
    const Route* route = find_route(endpoint.first, "GET", true);
    if (route == nullptr || !route->websocket) {
      std::string paths;
      for (const Route& known : routes)
        if (known.websocket) paths += (paths.empty() ? "" : ", ") + known.path;
      throw ConfigError("endpoints." + endpoint.first,
                        "no WebSocket endpoint has this path (they are: " + paths + ")");
    }
  }
}

std::optional<pubsub::HistoryPolicy> Server::history_policy(std::string_view topic) const {
  if (pubsub::is_server_topic(topic)) return std::nullopt;
  const NamespaceRules& rules = namespace_rules(config, topic);
  if (rules.history_size == 0) return std::nullopt;
  return pubsub::HistoryPolicy{
      .size = rules.history_size,
      .ttl_ms = static_cast<std::uint64_t>(std::ceil(rules.history_ttl * 1000)),
      .latest_only = rules.recovery == RecoveryMode::cache};
}

PublishResult Server::publish(std::string_view topic, ws::Opcode opcode,
                              const OffsetEnvelope& envelope,
                              std::function<void(const PublishResult&)> settled) {
  if (topics == nullptr) return {.accepted = false};  // not running yet
  if (const auto policy = history_policy(topic)) {
    if (engine == nullptr) return publish_to_history(topic, opcode, envelope, *policy);
    // Redis stores it, gives the offset, and publishes it to every instance, this one included:
    // the local subscribers get it from there, in offset order with every other instance's.
    if (!engine->available()) return {.accepted = false};
    // The copies and the posted task are per publish: this path waits for Redis anyway.
    pubsub::HistoryAppend append{.topic = std::string(topic),
                                 .opcode = opcode,
                                 .head = std::string(envelope.head),
                                 .label = std::string(envelope.label),
                                 .tail = std::string(envelope.tail),
                                 .policy = *policy};
    const std::size_t subscribers = topics->lookup(topic).subscribers;
    workers_[0]->loop().post([this, append = std::move(append), settled, subscribers]() mutable {
      engine->append(
          std::move(append), [settled, subscribers](std::uint64_t offset, std::string_view) {
            if (settled)
              settled({.accepted = offset != 0, .subscribers = subscribers, .offset = offset});
          });
    });
    return {.accepted = true, .pending = true, .subscribers = subscribers};
  }
  const std::string_view payload_parts[] = {envelope.head, envelope.tail};
  if (engine == nullptr || pubsub::is_server_topic(topic))
    return {.accepted = true, .subscribers = deliver_local(topic, opcode, payload_parts)};
  // All or nothing: while the other instances cannot be reached, nobody gets it.
  if (!engine->available()) return {.accepted = false};
  pubsub::MessageRef message = pubsub::make_message(topic, opcode, payload_parts);
  const std::size_t subscribers = deliver_local(message, topics->lookup(topic));
  bool first_of_batch = false;
  {
    std::lock_guard lock(engine_outbox_mutex_);
    first_of_batch = engine_outbox_.empty();
    engine_outbox_.push_back(std::move(message));
  }
  if (first_of_batch) workers_[0]->loop().post([this] { send_engine_outbox(); });
  return {.accepted = true, .subscribers = subscribers};
}

PublishResult Server::publish_to_history(std::string_view topic, ws::Opcode opcode,
                                         const OffsetEnvelope& envelope,
                                         const pubsub::HistoryPolicy& policy) {
  pubsub::History::Locked stream = history->lock(topic, policy, pubsub::History::now_ms());
  const std::uint64_t offset = stream.top() + 1;
  char digits[20];
  const auto written = std::to_chars(digits, digits + sizeof digits, offset);
  const std::string_view spliced[] = {envelope.head, envelope.label,
                                      std::string_view(digits, written.ptr), envelope.tail};
  const std::string_view plain[] = {envelope.head, envelope.tail};
  pubsub::MessageRef message = envelope.label.empty()
                                   ? pubsub::make_message(topic, opcode, plain, offset)
                                   : pubsub::make_message(topic, opcode, spliced, offset);
  stream.append(message);
  // Still under the stream's lock, so that (1) every loop's inbox receives the topic's
  // publications in offset order, and (2) a subscriber that read the history before this
  // offset is in the lookup (it was added to the registry before it took the lock): it gets
  // this publication live, and what it read is below its delivery floor.
  const std::size_t subscribers = deliver_local(message, topics->lookup(topic));
  return {.accepted = true, .subscribers = subscribers, .offset = offset};
}

void Server::read_history(std::string_view topic, const pubsub::HistoryPolicy& policy,
                          const StreamPosition* since, pubsub::ReadDone done) {
  std::optional<std::uint64_t> first;
  if (since != nullptr) first = since->offset;
  workers_[0]->loop().post(
      [this, topic = std::string(topic), policy, first, done = std::move(done)]() mutable {
        engine->read(std::move(topic), policy, first, std::move(done));
      });
}

void Server::presence_join(std::string_view topic, PresenceMember member) {
  if (engine == nullptr) {
    presence.join(topic, std::move(member));
    return;
  }
  const std::uint64_t ttl_ms = net::to_ms(namespace_rules(config, topic).presence_ttl);
  workers_[0]->loop().post(
      [this, topic = std::string(topic), member = std::move(member), ttl_ms]() mutable {
        engine->presence_join(std::move(topic), std::move(member), ttl_ms);
      });
}

void Server::presence_leave(std::string_view topic, std::string_view client) {
  if (engine == nullptr) {
    presence.leave(topic, client);
    return;
  }
  workers_[0]->loop().post(
      [this, topic = std::string(topic), client = std::string(client)]() mutable {
        engine->presence_leave(std::move(topic), std::move(client));
      });
}

void Server::read_presence(std::string_view topic, pubsub::PresenceDone done) {
  if (engine == nullptr) {
    const PresenceMembers members = presence.members(topic);
    return done(&members);
  }
  workers_[0]->loop().post([this, topic = std::string(topic), done = std::move(done)]() mutable {
    engine->read_presence(std::move(topic), std::move(done));
  });
}

void Server::start_history() {
  const bool wanted = std::any_of(config.namespaces.begin(), config.namespaces.end(),
                                  [](const auto& item) { return item.second.history_size > 0; });
  if (!wanted) return;
  // pylon serve checked it already; an embedding application gets the same refusals here.
  validate_config(config);
  if (config.engine == EngineKind::redis) return;  // the history lives in Redis
  history = std::make_unique<pubsub::History>();
  // Every loop sweeps a share of the shards each second: expired publications and idle streams
  // are freed even on topics nobody publishes to or reads any more.
  loop_ticks.push_back([this] { history->sweep(pubsub::History::now_ms()); });
}

void Server::send_engine_outbox() {
  {
    std::lock_guard lock(engine_outbox_mutex_);
    engine_sending_.swap(engine_outbox_);
  }
  for (const pubsub::MessageRef& message : engine_sending_)
    engine->publish(message->topic, message->opcode, message->payload());
  engine_sending_.clear();  // keeps its capacity for the next batch
}

std::size_t Server::deliver_local(std::string_view topic, ws::Opcode opcode,
                                  std::span<const std::string_view> payload_parts,
                                  std::uint64_t offset) {
  const pubsub::TopicRegistry::Lookup lookup = topics->lookup(topic);
  if (lookup.subscribers == 0) return 0;
  return deliver_local(pubsub::make_message(topic, opcode, payload_parts, offset), lookup);
}

std::size_t Server::deliver_local(const pubsub::MessageRef& message,
                                  const pubsub::TopicRegistry::Lookup& lookup) {
  for (unsigned index = 0; index < workers_.size(); ++index)
    if ((lookup.workers >> index) & 1) workers_[index]->enqueue(message);
  return lookup.subscribers;
}

void Server::run_on_every_loop(const std::function<void()>& task) {
  for (auto& worker : workers_) worker->loop().post(task);
}

ClusterSend Server::send_to_cluster(std::string_view message) {
  if (topics == nullptr || engine == nullptr) return ClusterSend::no_cluster;
  // Refused rather than sent to some instances: the caller says so to its own caller.
  if (!engine->available()) return ClusterSend::unavailable;
  // Rare (backend API calls): a copy per message is fine here.
  workers_[0]->loop().post(
      [this, message = std::string(message)] { engine->send_control(message); });
  return ClusterSend::sent;
}

bool Server::ready() const noexcept {
  if (draining.load(std::memory_order_relaxed)) return false;
  return !config.readyz_requires_engine || engine == nullptr || engine->available();
}

void Server::start_engine() {
  if (config.engine != EngineKind::redis) return;
  cluster::RedisOptions options;
  options.url = config.redis_url;
  options.prefix = config.redis_prefix;
  net::EventLoop& loop = workers_[0]->loop();
  engine = cluster::make_redis_engine(
      loop, options,
      [this](std::string_view topic, ws::Opcode opcode, std::string_view payload,
             std::uint64_t offset) {
        const std::string_view parts[] = {payload};
        deliver_local(topic, opcode, parts, offset);
      },
      [this] { return topics->topics(); },
      [this](std::string_view message) {
        for (const auto& handler : cluster_handlers) handler(message);
      },
      metrics);
  // Interest changes reach the engine in the order the registry saw them (the hook runs under
  // its lock and the loop's queue is FIFO).
  topics->set_interest_hook([this, &loop](std::string_view topic, bool interested) {
    if (pubsub::is_server_topic(topic)) return;  // this instance's own
    loop.post([this, topic = std::string(topic), interested] {
      if (interested)
        engine->subscribe(topic);
      else
        engine->unsubscribe(topic);
    });
  });
}

void Server::drain() {
  if (draining.exchange(true)) return;
  for (auto& worker : workers_) worker->post_drain();
}

void Server::register_metrics() {
  counters = std::make_unique<ServerMetrics>(metrics);
  for (Route& route : routes)
    if (route.websocket) route.metrics = std::make_unique<RouteMetrics>(metrics, route.path);
  using Values = std::vector<std::pair<Labels, double>>;
  metrics.computed("pylon_build_info", "The running build.", "gauge", []() -> Values {
    return {{{{"version", PYLON_VERSION}}, 1.0}};
  });
  metrics.computed("pylon_max_connections", "The configured max_connections.", "gauge",
                   [this]() -> Values {
                     return {{{}, static_cast<double>(config.max_connections)}};
                   });
  metrics.computed("pylon_topics", "Topics with at least one subscriber on this instance.", "gauge",
                   [this]() -> Values {
                     return {{{}, static_cast<double>(topics->topic_count())}};
                   });
  // Zero without history, so that dashboards need no special case.
  metrics.computed("pylon_history_publications", "Publications kept in topic history.", "gauge",
                   [this]() -> Values {
                     return {{{}, history ? static_cast<double>(history->publications()) : 0.0}};
                   });
  metrics.computed("pylon_history_bytes", "Bytes of the frames kept in topic history.", "gauge",
                   [this]() -> Values {
                     return {{{}, history ? static_cast<double>(history->bytes()) : 0.0}};
                   });
  metrics.computed("pylon_history_streams", "Topics with a history stream.", "gauge",
                   [this]() -> Values {
                     return {{{}, history ? static_cast<double>(history->streams()) : 0.0}};
                   });
  metrics.computed("pylon_admission_tracked_ips", "Client IPs the per-IP limits remember.", "gauge",
                   [this]() -> Values {
                     return {{{}, static_cast<double>(admission->tracked_ips())}};
                   });
  metrics.computed("pylon_admission_locked_out_ips",
                   "Client IPs locked out after failed authentications.", "gauge",
                   [this]() -> Values {
                     const std::uint64_t now = net::EventLoop::monotonic_ms();
                     return {{{}, static_cast<double>(admission->locked_out_ips(now))}};
                   });
  metrics.computed("pylon_admission_lockouts_total",
                   "Client IPs locked out after failed authentications.", "counter",
                   [this]() -> Values {
                     return {{{}, static_cast<double>(admission->lockouts())}};
                   });
  obs::register_process_metrics(metrics);
  // The engine series exist with every engine (the Redis engine uses these same series), so
  // dashboards and alerts need no special case for a single instance.
  const Gauge engine_up =
      metrics.gauge("pylon_engine_up", "1 while the cluster engine can reach the other instances");
  metrics.counter("pylon_engine_disconnects_total", "Connections to the cluster engine lost");
  metrics.counter("pylon_engine_messages_total", "Messages to and from the other instances",
                  {{"direction", "in"}});
  metrics.counter("pylon_engine_messages_total", "Messages to and from the other instances",
                  {{"direction", "out"}});
  metrics.counter("pylon_history_gap_reads_total",
                  "Reads of a topic's Redis history to fill a gap in the offsets this instance "
                  "received");
  metrics.counter(
      "pylon_history_gap_lost_total",
      "Publications a gap read no longer found in the Redis history (trimmed or expired)");
  if (config.engine == EngineKind::memory) engine_up.add(1);  // nothing to lose: always up

  Route route;
  route.path = "/metrics";
  route.method = "GET";
  route.internal = !config.metrics_listen.empty();
  route.handler = [this](const HttpRequest&) {
    return HttpResponse{.content_type = "text/plain; version=0.0.4; charset=utf-8",
                        .body = metrics.expose()};
  };
  routes.push_back(std::move(route));
}

int Server::run() {
  const net::Endpoint endpoint = net::parse_endpoint(config.listen);
  unsigned threads =
      config.threads != 0 ? config.threads : std::max(1u, std::thread::hardware_concurrency());

  // Worker threads inherit this mask: SIGTERM, SIGINT and SIGHUP are taken by sigwait below,
  // never by a loop thread in the middle of its work.
  block_shutdown_signals();
  const sigset_t signals = shutdown_signals();
  signal(SIGPIPE, SIG_IGN);
  // Blocks from 1 MiB up (a large message, a bomb stopped at the limit, a slow consumer's
  // backlog) are mapped for themselves and unmapped when freed. glibc's default raises that
  // threshold to the largest block freed so far, after which such blocks come from the heap and
  // stay resident once freed: a deflate bomb left 26 MiB behind for good (issue 17).
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMappedBlock));

  if (threads > pubsub::kMaxWorkers)
    throw std::invalid_argument("threads: at most 64 are supported");
  check_config();
  for (Route& route : routes)
    if (route.websocket)
      route.compression = endpoint_compression(
          config, route.path, route.behavior.compression.value_or(config.compression));
  topics = std::make_unique<pubsub::TopicRegistry>(threads);
  start_history();  // before the workers: it adds a loop tick
  for (const std::string& range : config.trusted_proxies)
    trusted_proxies.push_back(*net::parse_cidr(range));
  admission = std::make_unique<Admission>(config);
  const std::uint64_t open_files = net::raise_open_file_limit();
  register_metrics();
  if (!config.tls_cert.empty()) {
    tls = std::make_unique<ServerTls>(config, metrics, counters->tls_ticket_key_rotations);
    reloads.push_back([this] { tls->reload(); });
    tls->watch_files();
    tls->rotate_ticket_keys();
  }
  // Each listener binds the port the first one got, so "port 0" means one ephemeral port for all.
  net::Endpoint bound = endpoint;
  for (unsigned i = 0; i < threads; ++i) {
    std::vector<int> fds = {net::listen_on(bound)};
    if (i == 0) bound.port = net::local_port(fds[0]);
    // The metrics listener is one socket on the first worker: scrapes are rare and small.
    if (i == 0 && !config.metrics_listen.empty())
      fds.push_back(net::listen_on(net::parse_endpoint(config.metrics_listen)));
    workers_.push_back(std::make_unique<Worker>(*this, std::move(fds), i));
  }
  // Descriptors: one per connection, plus listeners, epoll and eventfds, plus a little slack.
  const std::uint64_t reserved = 3 * threads + 16;
  const std::uint64_t connection_room = open_files > reserved ? open_files - reserved : 0;
  const std::string listening = bound.to_string();
  // io_uring asked for but refused by the kernel (seccomp, kernel.io_uring_disabled, an old
  // kernel): the loops run on epoll, and say why once.
  const net::EventLoop& first_loop = workers_[0]->loop();
  const bool uring = first_loop.backend() == IoBackend::io_uring;
  if (config.io_backend == IoBackend::io_uring && !uring)
    obs::log(obs::LogLevel::warn, "io_uring unavailable; the event loops use epoll",
             {{"error", std::string_view(first_loop.backend_error())}});
  obs::log(obs::LogLevel::info, "pylon listening",
           {{"version", std::string_view(PYLON_VERSION)},
            {"address", std::string_view(listening)},
            {"tls", !config.tls_cert.empty()},
            {"threads", std::uint64_t{threads}},
            {"io_backend", std::string_view(uring ? "io_uring" : "epoll")},
            {"io_batch_wait_us", std::uint64_t{first_loop.batch_wait_us()}},
            {"open_file_limit", open_files},
            {"connections_allowed", connection_room},
            {"max_connections", std::uint64_t{config.max_connections}}});
  if (connection_room < config.max_connections)
    obs::log(obs::LogLevel::warn,
             "the open-file limit allows fewer connections than max_connections",
             {{"connections_allowed", connection_room},
              {"max_connections", std::uint64_t{config.max_connections}}});
  start_engine();
  for (auto& worker : workers_) worker->start();

  // The main thread waits for signals; the workers stop by themselves once drained.
  std::thread waiter([this, signals] {
    for (;;) {
      int signal_number = 0;
      if (sigwait(&signals, &signal_number) != 0) continue;
      if (signal_number == SIGHUP) {
        for (const auto& reload : reloads) reload();
        continue;
      }
      obs::log(obs::LogLevel::info, "draining",
               {{"signal", std::string_view(signal_number == SIGTERM ? "SIGTERM" : "SIGINT")},
                {"websockets", std::uint64_t{open_websockets.load()}},
                {"drain_window_s", config.drain_window},
                {"drain_timeout_s", config.drain_timeout}});
      drain();
      return;
    }
  });
  for (auto& worker : workers_) worker->join();
  if (!draining.load()) drain();  // a worker stopped on its own: make the waiter return
  // The waiter may still sit in sigwait when drain() came from the API: wake it.
  if (waiter.joinable()) {
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
  }
  // The workers (stopped loops, no connections left that matter) stay until the Server goes:
  // another thread may still be inside publish() and hand them a message meanwhile.
  obs::log(obs::LogLevel::info, "drained; exiting");
  return 0;
}

}  // namespace detail
}  // namespace pylon
