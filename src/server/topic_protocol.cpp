#include "server/topic_protocol.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "http/response_writer.hpp"
#include "obs/log.hpp"
#include "pubsub/topic_name.hpp"
#include "server/api_keys.hpp"
#include "server/history_protocol.hpp"
#include "server/http_publish.hpp"
#include "server/topic_auth.hpp"
#include "server/topic_presence.hpp"
#include "server/topic_request.hpp"
#include "server/user_commands.hpp"

namespace pylon {
namespace {

using namespace topic_request;  // the requests' parse and error codes (topic_request.hpp)

// A client that sends this many malformed requests in a row is closed with 1008.
constexpr unsigned kMalformedLimit = 10;
// docs/protocol.md: a connection whose token expired and that sent no new one within
// auth_refresh_grace (RFC 6455 §7.4.2: 4000-4999 are the application's own codes).
constexpr std::uint16_t kTokenExpired = 4001;

struct Session;
// A loop's connections whose token has an "exp", by the second (since the epoch) when the tick
// next looks at them: the token's exp, or once the refresh was asked for, the end of the grace.
using ExpiryQueue = std::multimap<double, WebSocket<Session>>;

// A request whose ack waits for Redis (a topic whose history lives there): a publish's offset, or
// a subscribe's positions.
struct PendingAck {
  std::uint64_t tag;
  std::string id;                    // the request's id, raw JSON; empty: none
  std::string positions;             // a subscribe's, gathered so far
  std::vector<std::string> waiting;  // a subscribe's topics whose position is still to come
};

struct Session {
  double tokens = -1;  // publish token bucket; -1: not started
  std::chrono::steady_clock::time_point refilled;
  unsigned malformed_in_row = 0;
  std::unique_ptr<Grant> grant;  // what the connection token grants; null: none (anonymous)
  std::optional<ExpiryQueue::iterator> expiry;  // its place in the loop's queue, while queued
  bool refresh_requested = false;               // the token expired; the grace is running
  std::uint64_t last_tag = 0;
  std::vector<PendingAck> pending;   // allocated only with Redis history
  std::uint64_t client = 0;          // the client id presence lists it by (topic_presence.hpp)
  std::vector<std::string> present;  // topics whose presence lists it
};

// A loop's /ws connections by their token's sub, for the backend API's user commands.
using Subjects = SubjectIndex<WebSocket<Session>>;

ExpiryQueue& expiry_queue() {
  thread_local ExpiryQueue queue;
  return queue;
}

double seconds_since_epoch() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class TopicEndpoint {
 public:
  explicit TopicEndpoint(App& app)
      : app_(app),
        config_(app.config()),
        auth_(app.config(), app.metrics()),
        presence_(app),
        publishes_websocket_(app.metrics().counter("pylon_publishes_total", "Publishes.",
                                                   {{"source", "websocket"}})),
        rate_limited_(app.metrics().counter("pylon_rate_limited_total",
                                            "Publishes refused by max_publish_rate.")),
        refreshed_(app.metrics().counter("pylon_auth_refreshes_total",
                                         "Refresh requests, by result.", {{"result", "ok"}})),
        refresh_refused_(app.metrics().counter(
            "pylon_auth_refreshes_total", "Refresh requests, by result.", {{"result", "refused"}})),
        refresh_requests_(app.metrics().counter(
            "pylon_auth_refresh_requests_total",
            "Connections whose token expired, asked by the server for a new one.")),
        expired_(app.metrics().counter(
            "pylon_auth_expired_total",
            "Connections closed with 4001 because their token expired and was not refreshed.")),
        revoked_(app.metrics().counter(
            "pylon_auth_revoked_subscriptions_total",
            "Subscriptions ended because a refreshed token no longer grants them.")) {}

  TopicAuth& auth() noexcept { return auth_; }

  void on_text(WebSocket<Session>& socket, std::string_view message) {
    Request request;
    if (const auto failure = parse_request(message, request)) return fail(socket, {}, *failure);
    if (!request.id_is_valid)
      return fail(socket, {}, {ErrorCode::bad_request, "id must be an integer or a string"});
    const std::string_view id = request.id;
    Failure failure{
        ErrorCode::unknown_type,
        "type must be subscribe, unsubscribe, publish, refresh, ping, presence or presence_stats"};
    bool ok = false;
    if (request.type_is_string && (request.type == "subscribe" || request.type == "unsubscribe")) {
      ok = change_subscriptions(socket, request, request.type == "subscribe", failure);
    } else if (request.type_is_string && request.type == "publish") {
      ok = publish_json(socket, request, failure);
    } else if (request.type_is_string && request.type == "refresh") {
      ok = refresh(socket, request, failure);
    } else if (request.type_is_string && request.type == "ping") {
      // The application's heartbeat: browsers cannot see WebSocket pings, so a client that wants
      // to know its connection is alive asks for an ack.
      ok = true;
    } else if (request.type_is_string &&
               (request.type == "presence" || request.type == "presence_stats")) {
      ok = ask_presence(socket, request, request.type == "presence_stats", failure);
    }
    if (!ok) return fail(socket, id, failure);
    if (!parsers().ack_later) succeed(socket, id, parsers().ack_fields);
  }

  // A publish's outcome from Redis: its ack with the offset, or engine_unavailable.
  void on_published(WebSocket<Session>& socket, std::uint64_t tag, const PublishResult& result) {
    const auto pending = find_pending(socket.data(), tag);
    if (!pending) return;
    const PendingAck ack = std::move(**pending);
    socket.data().pending.erase(*pending);
    if (!result.accepted)
      return fail(socket, ack.id,
                  {ErrorCode::engine_unavailable, "redis did not store the publication"});
    if (ack.id.empty()) return;  // no id, no ack
    std::string& fields = parsers().ack_fields;
    fields.clear();
    append_offset(fields, result);
    succeed(socket, ack.id, fields);
  }

  // One topic's position read from Redis; the ack goes once every topic of the subscribe has one.
  void on_subscribed(WebSocket<Session>& socket, std::uint64_t tag, std::string_view topic,
                     const HistorySubscription& subscription) {
    const auto pending = find_pending(socket.data(), tag);
    if (!pending) return;
    PendingAck& ack = **pending;
    append_position(ack.positions, topic, subscription, subscription.asked);
    std::erase(ack.waiting, topic);
    if (ack.waiting.empty()) complete_subscribe(socket, *pending);
  }

  void on_binary(WebSocket<Session>& socket, std::string_view message) {
    // [N][N bytes of topic][payload]: forwarded to subscribers byte for byte.
    if (message.empty() || message.front() == 0 ||
        message.size() < 1 + static_cast<std::size_t>(static_cast<unsigned char>(message.front())))
      return fail(socket, {},
                  {ErrorCode::bad_request, "binary publish: [topic length][topic][payload]"});
    const std::string_view topic = message.substr(1, static_cast<unsigned char>(message.front()));
    if (const auto failure = check_publish_topic(topic)) return fail(socket, {}, *failure);
    if (const auto failure = check_may_publish(socket, topic)) return fail(socket, {}, *failure);
    // Its bytes are forwarded as they are, so there is no room for the offset every publication
    // of a topic with history carries.
    if (namespace_rules(config_, topic).history_size > 0)
      return fail(socket, {},
                  {ErrorCode::bad_request,
                   "binary publishes cannot carry an offset: publish JSON on topics with history"});
    if (!take_token(socket.data()))
      return fail(socket, {}, {ErrorCode::rate_limited, "publish rate exceeded"});
    if (!socket.publish(topic, message, MessageKind::binary).accepted)
      return fail(
          socket, {},
          {ErrorCode::engine_unavailable, "the cluster engine is unavailable; not delivered"});
    publishes_websocket_.add();
    socket.data().malformed_in_row = 0;
  }

  // The connection opened: the backend API finds it by its token's sub (user_commands.hpp; a
  // refresh keeps the sub), and a token with an "exp" puts it in its loop's expiry queue.
  void on_open(WebSocket<Session>& socket) {
    socket.data().client = new_client_id();
    const Grant* grant = socket.data().grant.get();
    if (grant != nullptr && !grant->subject.empty())
      Subjects::this_loop().add(grant->subject, socket);
    queue_expiry(socket, grant);
  }

  void on_close(WebSocket<Session>& socket) {
    const Grant* grant = socket.data().grant.get();
    presence_.leave_all(socket.data().present, socket.data().client, grant);
    if (grant != nullptr && !grant->subject.empty())
      Subjects::this_loop().remove(grant->subject, socket);
    dequeue_expiry(socket.data());
  }

  // After the backend unsubscribed a user from a topic (user_commands.hpp) on this loop.
  void unsubscribed_by_backend(const UserCommand& command) {
    if (command.kind != ApiEndpoint::unsubscribe) return;
    for (auto& socket : Subjects::this_loop().find(command.user))
      leave_presence(socket, command.topic);
  }

  // Once a second on every loop: connections whose token expired are asked for a new one; those
  // still without one auth_refresh_grace seconds later are closed with 4001.
  void on_tick() {
    ExpiryQueue& queue = expiry_queue();
    const double now = seconds_since_epoch();
    while (!queue.empty() && queue.begin()->first <= now) {
      WebSocket<Session> socket = queue.begin()->second;
      queue.erase(queue.begin());
      Session& session = socket.data();
      session.expiry.reset();
      if (session.refresh_requested) {
        expired_.add();
        socket.close(kTokenExpired, "token expired");
        continue;
      }
      session.refresh_requested = true;
      refresh_requests_.add();
      std::string& message = parsers().reply;
      message.assign(R"({"type":"refresh","reason":"token_expired","grace":)");
      char grace[32];
      std::snprintf(grace, sizeof grace, "%g", config_.auth_refresh_grace);
      message += grace;
      message += '}';
      socket.send(message);
      session.expiry = queue.emplace(now + config_.auth_refresh_grace, socket);
    }
  }

 private:
  void complete_subscribe(WebSocket<Session>& socket, std::vector<PendingAck>::iterator ack) {
    const std::string fields =
        ack->positions.empty() ? std::string() : R"("positions":{)" + ack->positions + '}';
    const std::string id = std::move(ack->id);
    socket.data().pending.erase(ack);
    succeed(socket, id, fields);
  }

  // topic is unsubscribed, or subscribed again, while a subscribe's read of its history is out:
  // that subscribe no longer waits for it (its position comes to the later one, or never).
  void stop_waiting(WebSocket<Session>& socket, std::string_view topic) {
    auto& pending = socket.data().pending;
    for (auto ack = pending.begin(); ack != pending.end(); ++ack) {
      if (std::erase(ack->waiting, topic) == 0 || !ack->waiting.empty()) continue;
      return complete_subscribe(socket, ack);  // one subscribe at most waits for a topic
    }
  }

  static std::optional<std::vector<PendingAck>::iterator> find_pending(Session& session,
                                                                       std::uint64_t tag) {
    const auto found = std::find_if(session.pending.begin(), session.pending.end(),
                                    [tag](const PendingAck& ack) { return ack.tag == tag; });
    if (found == session.pending.end()) return std::nullopt;
    return found;
  }

  bool change_subscriptions(WebSocket<Session>& socket, const Request& request, bool subscribe,
                            Failure& failure) {
    const auto& topics = parsers().topics;
    if (!request.has_topics || !request.topics_are_strings) {
      failure = {ErrorCode::bad_request, "topics must be an array of strings"};
      return false;
    }
    if (request.recover_error) {
      failure = {ErrorCode::bad_request, *request.recover_error};
      return false;
    }
    // All or nothing: check every name (and the limit) before changing anything.
    std::size_t fresh = 0;  // re-subscribing is harmless: only new names count towards the limit
    for (const std::string_view topic : topics) {
      if (!pubsub::is_valid_topic(topic)) {
        failure = {ErrorCode::bad_topic, "invalid topic name"};
        return false;
      }
      if (subscribe && !socket.is_subscribed(topic)) ++fresh;
    }
    if (subscribe && socket.subscription_count() + fresh > config_.max_subscriptions) {
      failure = {ErrorCode::too_many_subscriptions, "subscription limit reached"};
      return false;
    }
    for (const std::string_view topic : topics) {
      if (subscribe && request.join_leave && !namespace_rules(config_, topic).join_leave) {
        failure = {ErrorCode::forbidden, "join_leave is off on this topic's namespace"};
        return false;
      }
    }
    for (const RecoverRequest& recover : parsers().recover) {
      if (!subscribe || std::find(topics.begin(), topics.end(), recover.topic) == topics.end()) {
        failure = {ErrorCode::bad_request, "recover names a topic this subscribe does not"};
        return false;
      }
    }
    for (const std::string_view topic : topics) {
      if (!subscribe) break;
      if (auto denial = auth_.may_subscribe(socket.data().grant.get(), topic, request.token)) {
        failure = denied(*denial);
        return false;
      }
    }
    std::string& positions = parsers().ack_fields;
    const std::uint64_t tag = ++socket.data().last_tag;
    std::vector<std::string> waiting;  // topics whose position comes from Redis
    for (const std::string_view topic : topics) {
      if (!socket.data().pending.empty()) stop_waiting(socket, topic);
      if (!subscribe) {
        socket.unsubscribe(topic);
        leave_presence(socket, topic);
        continue;
      }
      const StreamPosition* since = find_recover(parsers().recover, topic);
      const auto subscription = socket.subscribe_with_history(topic, since, tag);
      if (request.join_leave) socket.subscribe(join_leave_topic(topic));  // its own join too
      presence_.join(socket.data().present, topic, socket.data().client, socket.data().grant.get());
      if (subscription->pending)
        waiting.emplace_back(topic);
      else if (subscription->history)
        append_position(positions, topic, *subscription, since != nullptr);
    }
    if (!waiting.empty()) {
      socket.data().pending.push_back(
          {tag, std::string(request.id), positions, std::move(waiting)});
      parsers().ack_later = true;
      return true;
    }
    if (!positions.empty()) positions = R"("positions":{)" + positions + '}';
    return true;
  }

  static void queue_expiry(WebSocket<Session>& socket, const Grant* grant) {
    if (grant != nullptr && grant->expires_at)
      socket.data().expiry = expiry_queue().emplace(*grant->expires_at, socket);
  }

  static void dequeue_expiry(Session& session) noexcept {
    if (!session.expiry) return;
    expiry_queue().erase(*session.expiry);
    session.expiry.reset();
  }

  // A new connection token (docs/protocol.md "Refreshing a token"): same user, new expiry, and
  // the permissions it grants from now on; subscriptions it no longer allows end, each with an
  // "unsubscribed" message.
  bool refresh(WebSocket<Session>& socket, const Request& request, Failure& failure) {
    if (request.token.empty()) {
      failure = {ErrorCode::bad_request, "token (a string) is required"};
      return false;
    }
    Session& session = socket.data();
    auto verdict = auth_.refresh(session.grant.get(), request.token);
    if (auto* denial = std::get_if<Denial>(&verdict)) {
      refresh_refused_.add();
      failure = denied(*denial);
      return false;
    }
    refreshed_.add();
    dequeue_expiry(session);
    session.refresh_requested = false;
    session.grant = std::move(std::get<std::unique_ptr<Grant>>(verdict));
    queue_expiry(socket, session.grant.get());
    revoke_subscriptions(socket);
    return true;
  }

  // Topics of namespaces whose rule is the token's patterns, which the current token no longer
  // grants. Subscriptions that rest on something else (the namespace lets anyone in, or a
  // subscription token granted the topic) are not the connection token's to take back.
  void revoke_subscriptions(WebSocket<Session>& socket) {
    for (const std::string& topic : socket.subscriptions()) {
      if (pubsub::is_hidden_topic(topic)) continue;  // goes with its topic (leave_presence)
      if (namespace_rules(config_, topic).subscribe != SubscribeRule::token) continue;
      if (!auth_.may_subscribe(socket.data().grant.get(), topic, {})) continue;
      socket.unsubscribe(topic);
      leave_presence(socket, topic);
      revoked_.add();
      std::string& message = parsers().reply;
      message.assign(R"({"type":"unsubscribed","topic":")");
      message += topic;
      message += R"(","reason":"the refreshed token does not grant subscribe on this topic"})";
      socket.send(message);
    }
  }

  // After the connection left topic: its join/leave subscription goes too, and it leaves presence.
  void leave_presence(WebSocket<Session>& socket, std::string_view topic) {
    socket.unsubscribe(join_leave_topic(topic));
    presence_.leave(socket.data().present, topic, socket.data().client, socket.data().grant.get());
  }

  // The answer comes from the engine (Redis: later, on its loop), then back on this loop.
  bool ask_presence(WebSocket<Session>& socket, const Request& request, bool stats,
                    Failure& failure) {
    if (!request.topic_is_string) {
      failure = {ErrorCode::bad_request, "topic (a string) is required"};
      return false;
    }
    if (auto refusal = presence_.check(request.topic, socket.is_subscribed(request.topic))) {
      failure = *refusal;
      return false;
    }
    parsers().ack_later = true;
    presence_.read(
        request.topic, stats,
        [this, handle = socket.handle(), id = std::string(request.id)](const std::string* fields) {
          std::optional<std::string> answer;
          if (fields != nullptr) answer = *fields;
          handle.run([this, id, answer](WebSocket<Session>& socket) {
            if (!answer)
              return fail(socket, id,
                          {ErrorCode::engine_unavailable,
                           "the cluster engine cannot read the presence now"});
            succeed(socket, id, *answer);
          });
        });
    return true;
  }

  bool publish_json(WebSocket<Session>& socket, const Request& request, Failure& failure) {
    if (!request.topic_is_string) {
      failure = {ErrorCode::bad_request, "topic (a string) is required"};
      return false;
    }
    if (const auto topic_failure = check_publish_topic(request.topic)) {
      failure = *topic_failure;
      return false;
    }
    if (!request.has_data) {
      failure = {ErrorCode::bad_request, "data is required"};
      return false;
    }
    if (const auto denial = check_may_publish(socket, request.topic)) {
      failure = *denial;
      return false;
    }
    if (!take_token(socket.data())) {
      failure = {ErrorCode::rate_limited, "publish rate exceeded"};
      return false;
    }
    const std::uint64_t tag = ++socket.data().last_tag;
    const PublishResult result = socket.publish(
        request.topic, message_envelope(request.topic, request.data), MessageKind::text, tag);
    if (!result.accepted) {
      failure = {ErrorCode::engine_unavailable, "the cluster engine is unavailable; not delivered"};
      return false;
    }
    if (result.pending) {
      // No id, no ack: but a refusal still gets its error, so the outcome is always awaited.
      socket.data().pending.push_back({tag, std::string(request.id), {}, {}});
      parsers().ack_later = true;
    } else if (!request.id.empty()) {
      append_offset(parsers().ack_fields, result);
    }
    publishes_websocket_.add();
    return true;
  }

  std::optional<Failure> check_may_publish(WebSocket<Session>& socket, std::string_view topic) {
    if (auto denial =
            auth_.may_publish(socket.data().grant.get(), topic, socket.is_subscribed(topic)))
      return denied(*denial);
    return std::nullopt;
  }

  // A refusal's text lives in the loop's buffers until the reply is written.
  static Failure denied(Denial& denial) {
    const ErrorCode code = denial.code == "subscription_token_required"
                               ? ErrorCode::subscription_token_required
                           : denial.code == "bad_token" ? ErrorCode::bad_token
                                                        : ErrorCode::forbidden;
    parsers().denial = std::move(denial.message);
    return {code, parsers().denial};
  }

  bool take_token(Session& session) {
    const auto now = std::chrono::steady_clock::now();
    const auto rate = static_cast<double>(config_.max_publish_rate);
    if (session.tokens < 0) {
      session.tokens = rate;
    } else {
      const double elapsed = std::chrono::duration<double>(now - session.refilled).count();
      session.tokens = std::min(rate, session.tokens + elapsed * rate);
    }
    session.refilled = now;
    if (session.tokens < 1) {
      rate_limited_.add();
      return false;
    }
    session.tokens -= 1;
    return true;
  }

  // fields: more of the ack after the id (history positions, an offset); an ack that has them
  // is sent even to a request without an id.
  void succeed(WebSocket<Session>& socket, std::string_view id, std::string_view fields = {}) {
    socket.data().malformed_in_row = 0;
    if (id.empty() && fields.empty()) return;
    std::string& reply = parsers().reply;
    reply.assign(R"({"type":"ack")");
    if (!id.empty()) {
      reply += R"(,"id":)";
      reply += id;
    }
    if (!fields.empty()) {
      reply += ',';
      reply += fields;
    }
    reply += '}';
    socket.send(reply);
  }

  void fail(WebSocket<Session>& socket, std::string_view id, Failure failure) {
    std::string& reply = parsers().reply;
    reply.assign(R"({"type":"error",)");
    if (!id.empty()) {
      reply += R"("id":)";
      reply += id;
      reply += ',';
    }
    reply += R"("code":")";
    reply += code_name(failure.code);
    reply += R"(","message":)";
    obs::append_json_string(reply, failure.message);
    reply += '}';
    socket.send(reply);
    if (is_malformed(failure.code) && ++socket.data().malformed_in_row >= kMalformedLimit)
      socket.close(1008, "too many malformed requests");
  }

  App& app_;
  const Config& config_;
  TopicAuth auth_;
  TopicPresence presence_;
  Counter publishes_websocket_, rate_limited_;
  Counter refreshed_, refresh_refused_, refresh_requests_, expired_, revoked_;
};

}  // namespace

void add_topic_routes(App& app) {
  auto endpoint = std::make_shared<TopicEndpoint>(app);
  WebSocketBehavior<Session> behavior;
  behavior.slow_consumer = app.config().slow_consumer;
  // The application protocol a client names beside a pylon.token.<jwt> entry: the answer must
  // name a protocol the client offered, and never the token.
  behavior.subprotocols = {"pylon.v1"};
  behavior.upgrade = [endpoint](const HttpRequest& request,
                                Session& session) -> std::optional<HttpResponse> {
    auto verdict = endpoint->auth().authenticate(request);
    if (auto* refusal = std::get_if<HttpResponse>(&verdict)) return std::move(*refusal);
    session.grant = std::move(std::get<std::unique_ptr<Grant>>(verdict));
    return std::nullopt;
  };
  behavior.open = [endpoint](WebSocket<Session>& socket) { endpoint->on_open(socket); };
  behavior.close = [endpoint](WebSocket<Session>& socket, std::uint16_t, std::string_view) {
    endpoint->on_close(socket);
  };
  behavior.published = [endpoint](WebSocket<Session>& socket, std::uint64_t tag,
                                  const PublishResult& result) {
    endpoint->on_published(socket, tag, result);
  };
  behavior.subscribed = [endpoint](WebSocket<Session>& socket, std::uint64_t tag,
                                   std::string_view topic,
                                   const HistorySubscription& subscription) {
    endpoint->on_subscribed(socket, tag, topic, subscription);
  };
  behavior.message = [endpoint](WebSocket<Session>& socket, std::string_view message,
                                MessageKind kind) {
    if (kind == MessageKind::text)
      endpoint->on_text(socket, message);
    else
      endpoint->on_binary(socket, message);
  };
  app.ws<Session>("/ws", std::move(behavior));
  app.on_reload([endpoint] { endpoint->auth().reload(); });
  if (endpoint->auth().enabled()) app.on_loop_tick([endpoint] { endpoint->on_tick(); });
  std::shared_ptr<ApiKeys> keys;
  if (!app.config().api_keys.empty()) {
    keys = std::make_shared<ApiKeys>(app.config(), app.metrics());
    app.on_reload([keys] { keys->reload(); });
  }
  add_http_publish_route(app, keys);
  add_user_command_routes(app, std::move(keys), [endpoint](const UserCommand& command) {
    apply_user_command<Session>(command);
    endpoint->unsubscribed_by_backend(command);
  });
}

}  // namespace pylon
