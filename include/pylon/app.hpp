// pylon as a library: declare WebSocket routes with handlers, then run one event loop per thread.
//
//   pylon::App app(config);
//   app.ws<Session>("/chat", {.message = [](auto& ws, std::string_view text, pylon::MessageKind
//   kind) {
//     ws.send(text, kind);
//   }});
//   return app.run();
//
// Threads: every handler of a connection runs on the loop thread that owns it, never
// concurrently with another handler of the same connection. A WebSocket handle (and its data())
// is valid from `open` until `close` returns; keep neither beyond that. Closing inside a handler
// only marks the connection: it is freed after the loop iteration (STYLE.md rule 12).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "pylon/config.hpp"
#include "pylon/metrics.hpp"
#include "pylon/presence.hpp"

namespace pylon {

// What became of a send (STYLE.md rule 6: backpressure is a result, not an error).
enum class SendStatus : std::uint8_t {
  sent,     // handed to the kernel (or to this iteration's corked write)
  queued,   // accepted into the connection's backlog; `drain` runs when it empties
  dropped,  // not sent: the backlog is past max_backpressure, or the connection is closing
};

enum class MessageKind : std::uint8_t { text, binary };

// What became of a publish.
struct PublishResult {
  // false: the cluster engine cannot reach the other instances right now, so the message was
  // delivered nowhere (never to this instance alone): tell the publisher, e.g. engine_unavailable.
  bool accepted = true;
  // Accepted, the outcome still to come: the topic's history lives in Redis (engine = "redis"),
  // which gives the offset once it stored the publication. The outcome (stored with its offset,
  // or refused) comes to the publish's `settled` callback or the route's `published` hook.
  bool pending = false;
  std::size_t subscribers = 0;  // subscribers on this instance when it was published
  std::uint64_t offset = 0;     // its place in the topic's history; 0: the topic keeps none
};

// A message that carries its own offset on topics with history (their namespace's
// history_size): there it is head + label + the offset in decimal + tail, elsewhere head + tail.
// An empty label splices nothing anywhere. The /ws protocol's envelope is one:
// {"type":"message","topic":"T" + ,"offset": + N + ,"data":D}.
struct OffsetEnvelope {
  std::string_view head, label, tail;
};

// Where a topic's history stands: its latest offset (0 before any publication) and its epoch,
// which changes when the history is lost (docs/protocol.md "History and recovery").
struct StreamPosition {
  std::uint64_t offset = 0;
  std::string epoch;
};

// What a subscribe to a topic with history found.
struct HistorySubscription {
  bool history = false;  // the topic keeps history; the fields below say nothing otherwise
  // The history lives in Redis: the fields below come later, to the route's `subscribed` hook.
  // Live deliveries of the topic wait until then.
  bool pending = false;
  bool asked = false;       // a position to recover from was given
  bool recovered = false;   // a position was given and everything after it was sent
  StreamPosition position;  // the latest when subscribing: live deliveries follow it, no gap
  std::size_t sent = 0;     // publications sent from the history
};

// What became of a message to the other instances (App::send_to_cluster).
enum class ClusterSend : std::uint8_t {
  sent,         // handed to the cluster engine for every other instance
  no_cluster,   // engine = "memory": there are no other instances to tell
  unavailable,  // the engine cannot reach the other instances now: sent to none
};

struct NoUserData {};

namespace detail {
class Connection;
SendStatus send(Connection& connection, std::string_view message, MessageKind kind);
void close(Connection& connection, std::uint16_t code, std::string_view reason);
std::size_t buffered_amount(const Connection& connection) noexcept;
void* user_data(Connection& connection) noexcept;
std::string remote_address(const Connection& connection);
std::string_view subprotocol(const Connection& connection) noexcept;
bool subscribe(Connection& connection, std::string_view topic);
bool unsubscribe(Connection& connection, std::string_view topic);
bool is_subscribed(const Connection& connection, std::string_view topic) noexcept;
std::size_t subscription_count(const Connection& connection) noexcept;
std::vector<std::string> subscriptions(const Connection& connection);
PublishResult publish(Connection& connection, std::string_view topic, const OffsetEnvelope& message,
                      MessageKind kind, std::uint64_t tag);
std::optional<HistorySubscription> subscribe_with_history(Connection& connection,
                                                          std::string_view topic,
                                                          const StreamPosition* since,
                                                          std::uint64_t tag);
class Worker;
// A connection as a SocketHandle names it: the slot's address and the number its worker gave it
// (Worker::watch), which a later connection in the same slot does not have.
struct ConnectionRef {
  Worker* worker;
  Connection* connection;
  std::uint64_t id;
};
ConnectionRef connection_ref(Connection& connection);
void run_on(const ConnectionRef& ref, std::function<void(Connection&)> task);
}  // namespace detail

template <typename UserData>
class WebSocket;

// A connection named from any thread (e.g. the thread a slow answer comes back on): run() posts
// task to the connection's loop, where it runs with the connection if that is still open; it is
// dropped otherwise. Cheap to copy; safe to keep after the connection closed.
template <typename UserData>
class SocketHandle {
 public:
  explicit SocketHandle(detail::ConnectionRef ref) noexcept : ref_(ref) {}
  void run(std::function<void(WebSocket<UserData>&)> task) const {
    detail::run_on(ref_, [task = std::move(task)](detail::Connection& connection) {
      WebSocket<UserData> socket(connection);
      task(socket);
    });
  }

 private:
  detail::ConnectionRef ref_;
};

// A handle to one open WebSocket connection.
template <typename UserData>
class WebSocket {
 public:
  explicit WebSocket(detail::Connection& connection) noexcept : connection_(&connection) {}

  SendStatus send(std::string_view message, MessageKind kind = MessageKind::text) {
    return detail::send(*connection_, message, kind);
  }
  // Starts the closing handshake (RFC 6455 §7.1.2); `close` runs once it has begun. A code that
  // may not appear on the wire (RFC 6455 §7.4: 1005, 1006, 1015, unassigned) is sent as 1000.
  void close(std::uint16_t code = 1000, std::string_view reason = {}) {
    detail::close(*connection_, code, reason);
  }
  std::size_t buffered_amount() const noexcept { return detail::buffered_amount(*connection_); }
  // The peer's address and port, "1.2.3.4:5678" or "[::1]:5678": a new string per call (the
  // connection keeps it in binary). The client behind a proxy is in the access log's client_ip.
  std::string remote_address() const { return detail::remote_address(*connection_); }
  std::string_view subprotocol() const noexcept { return detail::subprotocol(*connection_); }
  UserData& data() noexcept { return *static_cast<UserData*>(detail::user_data(*connection_)); }
  // Loop thread: a handle another thread may use to come back to this connection.
  SocketHandle<UserData> handle() {
    return SocketHandle<UserData>(detail::connection_ref(*connection_));
  }

  // Topics (docs/protocol.md names: 1-128 bytes of A-Z a-z 0-9 _ - . : / @). subscribe returns
  // false for an invalid name; subscribing twice is harmless. Subscriptions end with the
  // connection.
  bool subscribe(std::string_view topic) { return detail::subscribe(*connection_, topic); }
  bool unsubscribe(std::string_view topic) { return detail::unsubscribe(*connection_, topic); }
  bool is_subscribed(std::string_view topic) const noexcept {
    return detail::is_subscribed(*connection_, topic);
  }
  std::size_t subscription_count() const noexcept {
    return detail::subscription_count(*connection_);
  }
  // The names of the topics subscribed, in the order subscribed: a new vector per call.
  std::vector<std::string> subscriptions() const { return detail::subscriptions(*connection_); }
  // Subscribes as subscribe() does and, on a topic with history, answers where it stands and,
  // given `since` (the last position the client saw), first sends the publications it missed
  // since then (docs/protocol.md "History and recovery"). Live deliveries follow the position
  // answered, without gap or duplicate. nullopt: an invalid topic name. A pending answer (the
  // history lives in Redis) comes later to the route's `subscribed` hook with this tag.
  std::optional<HistorySubscription> subscribe_with_history(std::string_view topic,
                                                            const StreamPosition* since = nullptr,
                                                            std::uint64_t tag = 0) {
    return detail::subscribe_with_history(*connection_, topic, since, tag);
  }
  // Same as App::publish, from this connection's loop. A pending outcome (the topic's history
  // lives in Redis) comes later to the route's `published` hook with this tag.
  PublishResult publish(std::string_view topic, std::string_view message,
                        MessageKind kind = MessageKind::text, std::uint64_t tag = 0) {
    return detail::publish(*connection_, topic, OffsetEnvelope{.head = message}, kind, tag);
  }
  PublishResult publish(std::string_view topic, const OffsetEnvelope& message,
                        MessageKind kind = MessageKind::text, std::uint64_t tag = 0) {
    return detail::publish(*connection_, topic, message, kind, tag);
  }

 private:
  template <typename>
  friend class MessageHandler;
  detail::Connection* connection_;
};

struct HttpResponse;

// The answer to a request given later (HttpRequest::defer): any thread may send it, once. Nothing
// is sent when the connection closed meanwhile. Cheap to copy.
class DeferredResponse {
 public:
  DeferredResponse(detail::Worker* worker, detail::Connection* connection,
                   std::uint64_t id) noexcept
      : worker_(worker), connection_(connection), id_(id) {}
  void send(HttpResponse response) const;

 private:
  detail::Worker* worker_;
  detail::Connection* connection_;
  std::uint64_t id_;
};

// A plain HTTP request as a route handler sees it: views valid during the call only.
class HttpRequest {
 public:
  virtual std::string_view method() const noexcept = 0;
  virtual std::string_view path() const noexcept = 0;
  virtual std::string_view query() const noexcept = 0;
  virtual std::string_view body() const noexcept = 0;
  // First header of that name (case-insensitive); empty when absent.
  virtual std::string_view header(std::string_view name) const noexcept = 0;
  // The client's address: from a trusted proxy's X-Real-IP / X-Forwarded-For (trusted_proxies),
  // else the peer's.
  virtual std::string client_ip() const = 0;
  // A handle to answer this request later, from any thread; the handler then returns a response
  // with `deferred` set. Requests behind it on the connection wait for that answer.
  virtual DeferredResponse defer() const = 0;

 protected:
  ~HttpRequest() = default;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  bool deferred = false;  // not sent: the answer comes through request.defer()'s handle
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

namespace detail {
// A message handler with the user-data type erased: a plain function with the callable inlined
// in it, called with the connection. Copies share the callable.
struct ErasedMessageHandler {
  void (*call)(const void* handler, Connection&, std::string_view, MessageKind) = nullptr;
  std::shared_ptr<const void> handler;
  explicit operator bool() const noexcept { return call != nullptr; }
  void operator()(Connection& connection, std::string_view message, MessageKind kind) const {
    call(handler.get(), connection, message, kind);
  }
};
}  // namespace detail

template <typename UserData>
class MessageHandler;
// What a MessageHandler<UserData> takes (a MessageHandler itself is copied, not wrapped).
template <typename F, typename UserData>
concept MessageCallable = !std::is_same_v<std::remove_cvref_t<F>, MessageHandler<UserData>> &&
                          std::is_invocable_v<const std::remove_cvref_t<F>&, WebSocket<UserData>&,
                                              std::string_view, MessageKind>;

// WebSocketBehavior::message: any callable taking (WebSocket<UserData>&, std::string_view,
// MessageKind), as a std::function of that signature takes it. A message reaches it through one
// indirect call with the callable inlined behind it; a std::function would add a second call and
// its empty check to every message (issue 17).
template <typename UserData>
class MessageHandler {
 public:
  // Implicit, as std::function's: `.message = [](auto& ws, ...) {...}` and `= nullptr` work.
  MessageHandler() noexcept = default;
  MessageHandler(std::nullptr_t) noexcept {}
  template <MessageCallable<UserData> F>
  MessageHandler(F&& callable) {
    using Callable = std::remove_cvref_t<F>;
    // An empty std::function or a null function pointer: no handler, as std::function has it.
    if constexpr (std::is_constructible_v<bool, const Callable&>) {
      if (!static_cast<bool>(callable)) return;
    }
    erased_.handler = std::make_shared<const Callable>(std::forward<F>(callable));
    erased_.call = [](const void* handler, detail::Connection& connection, std::string_view message,
                      MessageKind kind) {
      WebSocket<UserData> socket(connection);
      (*static_cast<const Callable*>(handler))(socket, message, kind);
    };
  }
  explicit operator bool() const noexcept { return static_cast<bool>(erased_); }
  void operator()(WebSocket<UserData>& socket, std::string_view message, MessageKind kind) const {
    erased_(*socket.connection_, message, kind);
  }

 private:
  friend class App;
  detail::ErasedMessageHandler erased_;
};

template <typename UserData = NoUserData>
struct WebSocketBehavior {
  std::vector<std::string>
      subprotocols;  // at most 255; server preference is the client's order (RFC 6455 §4.2.2)
  SlowConsumerPolicy slow_consumer = SlowConsumerPolicy::close;
  // permessage-deflate for this endpoint; unset: the configuration's `compression` keys. The
  // configuration's [endpoints."/path"] keys apply over it (the operator has the last word).
  std::optional<CompressionSettings> compression;
  // Before the 101, once the request passed the RFC 6455 checks and the connection limit: the
  // route's own verdict (authentication). A response refuses the upgrade with it; nullopt accepts.
  // `data` is the new connection's, constructed: what is stored there is the connection's.
  std::function<std::optional<HttpResponse>(const HttpRequest&, UserData& data)> upgrade;
  std::function<void(WebSocket<UserData>&)> open;
  MessageHandler<UserData> message;  // (WebSocket<UserData>&, std::string_view, MessageKind)
  std::function<void(WebSocket<UserData>&)> drain;  // the send backlog has emptied
  // code is 1005 when the peer's close had none, 1006 when the connection dropped without one.
  std::function<void(WebSocket<UserData>&, std::uint16_t code, std::string_view reason)> close;
  // The outcome of a publish that answered `pending`, with the tag it was given; never after
  // `close`.
  std::function<void(WebSocket<UserData>&, std::uint64_t tag, const PublishResult&)> published;
  // The answer of a subscribe_with_history that answered `pending` (its history was read from
  // Redis and what it missed is sent), with the tag it was given; never after `close`, nor for a
  // topic unsubscribed meanwhile.
  std::function<void(WebSocket<UserData>&, std::uint64_t tag, std::string_view topic,
                     const HistorySubscription&)>
      subscribed;
};

namespace detail {
// A route's behaviour with the user-data type erased; built by App::ws.
struct ErasedBehavior {
  std::vector<std::string> subprotocols;
  SlowConsumerPolicy slow_consumer = SlowConsumerPolicy::close;
  std::optional<CompressionSettings> compression;
  std::size_t user_data_size = 0;
  std::size_t user_data_align = alignof(std::max_align_t);
  void (*construct)(void*) = nullptr;
  void (*destroy)(void*) noexcept = nullptr;
  std::function<std::optional<HttpResponse>(const HttpRequest&, void* user_data)> upgrade;
  std::function<void(Connection&)> open;
  ErasedMessageHandler message;
  std::function<void(Connection&)> drain;
  std::function<void(Connection&, std::uint16_t, std::string_view)> close;
  std::function<void(Connection&, std::uint64_t, const PublishResult&)> published;
  std::function<void(Connection&, std::uint64_t, std::string_view, const HistorySubscription&)>
      subscribed;
};
class Server;
}  // namespace detail

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and every thread it starts later, so
// that only App::run()'s signal thread takes them. Call it first thing in main() when threads
// are started before run().
void block_shutdown_signals() noexcept;

class App {
 public:
  explicit App(Config config = {});
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  template <typename UserData = NoUserData>
  App& ws(std::string path, WebSocketBehavior<UserData> behavior);
  // Small HTTP routes (health checks, metrics, a publish API); handlers run on a loop thread
  // and must not block. Bodies are limited to 1 MiB (413 beyond).
  App& get(std::string path, HttpHandler handler);
  App& post(std::string path, HttpHandler handler);

  // Any thread: delivers message to every subscriber of topic on every loop (and, with a cluster
  // engine, on every instance), encoded once. On a topic with history it is kept there under
  // the next offset, and every loop receives the topic's publications in offset order.
  PublishResult publish(std::string_view topic, std::string_view message,
                        MessageKind kind = MessageKind::text);
  // The same, with the publication's offset spliced in on a topic with history.
  PublishResult publish(std::string_view topic, const OffsetEnvelope& message,
                        MessageKind kind = MessageKind::text);
  // The same, for a caller that needs the outcome of a pending publish (a topic whose history
  // lives in Redis): `settled` gets it, on the cluster engine's loop thread; it must not block.
  PublishResult publish(std::string_view topic, const OffsetEnvelope& message, MessageKind kind,
                        std::function<void(const PublishResult&)> settled);

  // Presence (docs/protocol.md "Presence"). Any thread, while running: member is listed in
  // topic's presence until presence_leave (with the Redis engine on every instance, and until
  // the topic namespace's presence_ttl after this instance stopped refreshing it: a crash).
  void presence_join(std::string_view topic, PresenceMember member);
  void presence_leave(std::string_view topic, std::string_view client);
  // Reads topic's presence: done gets the members, or null when the cluster engine cannot tell
  // now. Memory engine: before this returns, on the calling thread; Redis: later, on the engine
  // loop's thread (it must not block).
  void read_presence(std::string_view topic,
                     std::function<void(const PresenceMembers* members)> done);

  // Any thread, while running: runs task once on each loop thread of this instance, after what
  // that loop already has to do; e.g. to act on the connections each loop owns. Not running: no.
  void run_on_every_loop(std::function<void()> task);
  // Any thread, while running: hands message to the on_cluster_message handlers of every other
  // instance (engine = "redis": a reserved channel no topic maps to), not to this one's. Like
  // publishes, delivery is at most once: a message sent as Redis fails is lost.
  ClusterSend send_to_cluster(std::string_view message);
  // Before run(): handler of the messages other instances send with send_to_cluster, called in
  // their order on the cluster engine's loop thread (worker 0's); it must not block.
  void on_cluster_message(std::function<void(std::string_view message)> handler);

  // Binds config.listen on every loop, runs until SIGTERM/SIGINT (or drain()) has drained every
  // connection, and returns the process exit code. Throws std::system_error when it cannot bind.
  // Threads the application started earlier must have SIGTERM, SIGINT and SIGHUP blocked (see
  // block_shutdown_signals), or the kernel may deliver those signals to them.
  int run();
  // Any thread: stop accepting, report not ready, close every WebSocket with 1001 spread over
  // drain_window, and make run() return once they are gone or drain_timeout has passed.
  void drain();
  bool draining() const noexcept;
  // Not draining, and the cluster engine is up when readyz_requires_engine asks for it.
  bool ready() const noexcept;
  // Checks the configuration against the routes declared so far (an [endpoints."/path"] table
  // needs a WebSocket route at that path); throws ConfigError naming the key. run() does it too.
  void check_config() const;
  const Config& config() const noexcept;
  // The registry behind GET /metrics; an application adds its own series here before run().
  MetricsRegistry& metrics() noexcept;
  // Adds a hook called on SIGHUP, on run()'s signal thread (not a loop thread), after those added
  // before it: re-read what can change.
  void on_reload(std::function<void()> reload);
  // Adds a task run about once a second on every loop thread (the loop's timer wheel), before
  // run(): per-loop housekeeping such as credentials that expire on open connections. It may
  // send to and close the connections of its own loop, as a handler may.
  void on_loop_tick(std::function<void()> tick);

 private:
  void add_route(std::string path, detail::ErasedBehavior behavior);
  std::unique_ptr<detail::Server> server_;
};

template <typename UserData>
App& App::ws(std::string path, WebSocketBehavior<UserData> behavior) {
  detail::ErasedBehavior erased;
  erased.subprotocols = std::move(behavior.subprotocols);
  erased.slow_consumer = behavior.slow_consumer;
  erased.compression = behavior.compression;
  if constexpr (!std::is_empty_v<UserData>) {
    erased.user_data_size = sizeof(UserData);
    erased.user_data_align = alignof(UserData);
    erased.construct = [](void* memory) { new (memory) UserData(); };
    erased.destroy = [](void* memory) noexcept { static_cast<UserData*>(memory)->~UserData(); };
  }
  if (behavior.upgrade)
    erased.upgrade = [handler = std::move(behavior.upgrade)](const HttpRequest& request,
                                                             void* user_data) {
      if constexpr (std::is_empty_v<UserData>) {
        UserData none;  // an empty type has no storage per connection
        return handler(request, none);
      } else {
        return handler(request, *static_cast<UserData*>(user_data));
      }
    };
  if (behavior.open)
    erased.open = [handler = std::move(behavior.open)](detail::Connection& connection) {
      WebSocket<UserData> socket(connection);
      handler(socket);
    };
  erased.message = std::move(behavior.message.erased_);
  if (behavior.drain)
    erased.drain = [handler = std::move(behavior.drain)](detail::Connection& connection) {
      WebSocket<UserData> socket(connection);
      handler(socket);
    };
  if (behavior.close)
    erased.close = [handler = std::move(behavior.close)](detail::Connection& connection,
                                                         std::uint16_t code,
                                                         std::string_view reason) {
      WebSocket<UserData> socket(connection);
      handler(socket, code, reason);
    };
  if (behavior.published)
    erased.published = [handler = std::move(behavior.published)](detail::Connection& connection,
                                                                 std::uint64_t tag,
                                                                 const PublishResult& result) {
      WebSocket<UserData> socket(connection);
      handler(socket, tag, result);
    };
  if (behavior.subscribed)
    erased.subscribed = [handler = std::move(behavior.subscribed)](
                            detail::Connection& connection, std::uint64_t tag,
                            std::string_view topic, const HistorySubscription& subscription) {
      WebSocket<UserData> socket(connection);
      handler(socket, tag, topic, subscription);
    };
  add_route(std::move(path), std::move(erased));
  return *this;
}

}  // namespace pylon
