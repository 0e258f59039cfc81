#include "cluster/redis_engine.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "cluster/channel_message.hpp"
#include "cluster/hiredis_adapter.hpp"
#include "cluster/redis_history.hpp"
#include "cluster/redis_presence.hpp"
#include "cluster/redis_url.hpp"
#include "net/event_loop.hpp"
#include "obs/log.hpp"

namespace pylon::cluster {
namespace {

using obs::LogLevel;

// The control channel's name after the prefix: '#' is outside the topic charset
// (pubsub/topic_name.hpp), so no topic maps to it.
constexpr std::string_view kControlChannel = "#control";

// SUBSCRIBE arguments per command when re-subscribing many channels at once.
constexpr std::size_t kChannelsPerSubscribe = 256;

enum class Role : std::uint8_t { subscriber, publisher };
enum class LinkState : std::uint8_t {
  down,         // no context; the timer is the next attempt
  handshaking,  // connecting, then AUTH / SELECT / PING in flight; the timer is the deadline
  ready,
};

class RedisEngine;

// One connection to Redis. The timer is the retry while down and the deadline while handshaking.
// Every hiredis callback finds its Link through redisAsyncContext::data; the engine clears that
// pointer before it frees a context itself, so callbacks run by the free are ignored.
struct Link : net::TimerNode {
  Link(RedisEngine& engine, Role role, net::EventLoop& loop)
      : engine(engine), role(role), adapter(loop) {}
  RedisEngine& engine;
  Role role;
  LinkState state = LinkState::down;
  HiredisAdapter adapter;
  redisAsyncContext* context = nullptr;
  std::uint64_t backoff_ms = 0;
  std::size_t handshake_replies = 0;  // replies still awaited before ready
  std::size_t pending_replies = 0;    // publisher: PUBLISHes not answered yet
};

const char* role_name(Role role) {
  return role == Role::subscriber ? "subscriber" : "publisher";
}

Link* link_of(const redisAsyncContext* context) {
  return static_cast<Link*>(context->data);
}

class RedisEngine final : public pubsub::ClusterEngine {
 public:
  RedisEngine(net::EventLoop& loop, RedisAddress address, std::string prefix,
              pubsub::DeliverFunction deliver, pubsub::ActiveTopicsFunction active_topics,
              pubsub::ControlFunction control, MetricsRegistry& metrics,
              const RedisEngineLimits& limits)
      : loop_(loop),
        address_(std::move(address)),
        url_for_logs_(address_.redacted()),
        prefix_(std::move(prefix)),
        deliver_(std::move(deliver)),
        active_topics_(std::move(active_topics)),
        control_(std::move(control)),
        limits_(limits),
        instance_id_(random_instance_id()),
        random_(std::random_device{}()),
        up_(metrics.gauge("pylon_engine_up",
                          "1 while the cluster engine can reach the other instances")),
        disconnects_(metrics.counter("pylon_engine_disconnects_total",
                                     "established cluster engine connections lost")),
        messages_in_(
            metrics.counter("pylon_engine_messages_total",
                            "messages exchanged with other instances through the cluster engine",
                            {{"direction", "in"}})),
        messages_out_(
            metrics.counter("pylon_engine_messages_total",
                            "messages exchanged with other instances through the cluster engine",
                            {{"direction", "out"}})),
        history_(prefix_, instance_id_, deliver_, metrics),
        presence_(prefix_, loop),
        subscriber_(*this, Role::subscriber, loop),
        publisher_(*this, Role::publisher, loop) {
    for (Link* link : {&subscriber_, &publisher_}) {
      link->fire = &RedisEngine::on_timer;
      link->backoff_ms = limits_.initial_backoff_ms;
      connect(*link);
    }
  }

  ~RedisEngine() override {
    for (Link* link : {&subscriber_, &publisher_}) {
      net::TimerWheel::cancel(*link);
      if (link->context != nullptr) {
        redisAsyncContext* context = link->context;
        link->context = nullptr;
        context->data = nullptr;
        redisAsyncFree(context);
      }
    }
    if (available_.load(std::memory_order_relaxed)) up_.add(-1);
  }

  bool available() const noexcept override { return available_.load(std::memory_order_acquire); }

  void subscribe(std::string_view topic) override {
    if (!channels_.emplace(topic).second) return;
    history_.track(topic);
    // While the subscriber is not ready, the channel is subscribed when it is (with the rest).
    if (subscriber_.state == LinkState::ready) send_channels("SUBSCRIBE", {std::string(topic)});
  }

  void unsubscribe(std::string_view topic) override {
    // Only a channel this engine subscribed is unsubscribed (hiredis refuses UNSUBSCRIBE on a
    // connection with no subscription, and Redis would not care anyway).
    if (channels_.erase(std::string(topic)) == 0) return;
    history_.forget(topic);
    if (subscriber_.state == LinkState::ready) send_channels("UNSUBSCRIBE", {std::string(topic)});
  }

  void publish(std::string_view topic, ws::Opcode opcode, std::string_view payload) override {
    send(topic, opcode, payload);
  }

  void send_control(std::string_view message) override {
    send(kControlChannel, ws::Opcode::text, message);
  }

  // Kept by history_ until Redis answers, whatever the links' state (the server refuses new
  // publishes while unavailable; those already accepted are sent again once it is back).
  void append(pubsub::HistoryAppend publication, pubsub::AppendDone done) override {
    messages_out_.add();
    history_.append(std::move(publication), std::move(done));
  }

  void read(std::string topic, const pubsub::HistoryPolicy& policy,
            std::optional<std::uint64_t> since, pubsub::ReadDone done) override {
    history_.read(std::move(topic), policy, since, std::move(done));
  }

  void presence_join(std::string topic, PresenceMember member, std::uint64_t ttl_ms) override {
    presence_.join(std::move(topic), std::move(member), ttl_ms);
  }
  void presence_leave(std::string topic, std::string client) override {
    presence_.leave(std::move(topic), std::move(client));
  }
  void read_presence(std::string topic, pubsub::PresenceDone done) override {
    presence_.read(std::move(topic), std::move(done));
  }

 private:
  // PUBLISH prefix+name, pipelined.
  void send(std::string_view name, ws::Opcode opcode, std::string_view payload) {
    // The server refuses publishes while unavailable; a publish racing a failure is dropped here.
    if (!available_.load(std::memory_order_relaxed) || publisher_.context == nullptr) return;
    channel_buffer_.assign(prefix_);
    channel_buffer_.append(name);
    encode_channel_message(message_buffer_, instance_id_, opcode, payload);
    const char* argv[3] = {"PUBLISH", channel_buffer_.data(), message_buffer_.data()};
    const std::size_t lengths[3] = {7, channel_buffer_.size(), message_buffer_.size()};
    // hiredis formats each command into its output buffer and allocates a callback record per
    // command: the one per-message allocation of this engine, which hiredis's API does not let
    // us avoid.
    if (redisAsyncCommandArgv(publisher_.context, &RedisEngine::on_publish_reply, nullptr, 3, argv,
                              lengths) != REDIS_OK)
      return;
    ++publisher_.pending_replies;
    messages_out_.add();
    if (publisher_backlog_over_limit()) {
      congested_ = true;
      set_available(false, "publisher backlog over its limit (Redis is not reading fast enough)");
    }
  }

  // ----- connections -----

  void connect(Link& link) {
    redisAsyncContext* context = address_.kind == RedisAddress::Kind::tcp
                                     ? redisAsyncConnect(address_.host.c_str(), address_.port)
                                     : redisAsyncConnectUnix(address_.path.c_str());
    if (context == nullptr) {
      lost(link, "out of memory creating a Redis context", false);
      return;
    }
    if (context->err != 0) {
      // Immediate failure (unix socket missing, connection refused on loopback, bad address).
      const std::string reason = context->errstr;
      redisAsyncFree(context);
      lost(link, reason, false);
      return;
    }
    // Keep-alive lets a dead peer (no FIN: a partition, a crashed host) be noticed.
    if (address_.kind == RedisAddress::Kind::tcp) redisEnableKeepAlive(&context->c);
    context->data = &link;
    link.context = context;
    link.state = LinkState::handshaking;
    link.adapter.attach(context);
    redisAsyncSetConnectCallback(context, &RedisEngine::on_connect);
    redisAsyncSetDisconnectCallback(context, &RedisEngine::on_disconnect);

    // Queued now, written by hiredis once the socket connects: AUTH, SELECT (publisher), PING.
    // The link is ready when PING answers; an error answer to any of them fails the attempt.
    // The subscriber sends no SUBSCRIBE before that, so every regular reply it awaits comes
    // before the first pub/sub message (hiredis matches them in order).
    link.handshake_replies = 0;
    if (!address_.password.empty()) {
      if (address_.user.empty()) {
        const char* argv[2] = {"AUTH", address_.password.c_str()};
        const std::size_t lengths[2] = {4, address_.password.size()};
        send_handshake(link, 2, argv, lengths);
      } else {
        const char* argv[3] = {"AUTH", address_.user.c_str(), address_.password.c_str()};
        const std::size_t lengths[3] = {4, address_.user.size(), address_.password.size()};
        send_handshake(link, 3, argv, lengths);
      }
    }
    if (link.role == Role::publisher && address_.db != 0) {
      const std::string db = std::to_string(address_.db);
      const char* argv[2] = {"SELECT", db.c_str()};
      const std::size_t lengths[2] = {6, db.size()};
      send_handshake(link, 2, argv, lengths);
    }
    if (link.role == Role::publisher) {
      // The history and presence scripts, loaded on every connection (a restarted Redis forgot
      // them): their SHA-1s come back in the answers, before anything uses them.
      for (auto [script, sha] : {std::pair(RedisHistory::append_script(), &history_.append_sha),
                                 std::pair(RedisHistory::read_script(), &history_.read_sha),
                                 std::pair(RedisPresence::write_script(), &presence_.write_sha),
                                 std::pair(RedisPresence::read_script(), &presence_.read_sha)}) {
        const char* argv[3] = {"SCRIPT", "LOAD", script.data()};
        const std::size_t lengths[3] = {6, 4, script.size()};
        send_handshake(link, 3, argv, lengths, sha);
      }
    }
    const char* argv[1] = {"PING"};
    const std::size_t lengths[1] = {4};
    send_handshake(link, 1, argv, lengths);
    loop_.timers().schedule(link, loop_.now_ms() + limits_.connect_timeout_ms);
  }

  // answer: where a string answer is kept (SCRIPT LOAD's SHA-1), or nullptr.
  void send_handshake(Link& link, int argc, const char** argv, const std::size_t* lengths,
                      std::string* answer = nullptr) {
    if (redisAsyncCommandArgv(link.context, &RedisEngine::on_handshake_reply, answer, argc, argv,
                              lengths) == REDIS_OK)
      ++link.handshake_replies;
  }

  void on_handshake_done(Link& link) {
    net::TimerWheel::cancel(link);
    link.state = LinkState::ready;
    link.backoff_ms = limits_.initial_backoff_ms;
    if (link.role == Role::subscriber) {
      // Every channel this instance has interest in, whether the server told us while we were
      // down or its table says so now.
      for (auto& topic : active_topics_()) channels_.insert(std::move(topic));
      send_channels("SUBSCRIBE", {std::string(kControlChannel)});
      std::vector<std::string> batch;
      batch.reserve(std::min(channels_.size(), kChannelsPerSubscribe));
      for (const auto& topic : channels_) {
        batch.push_back(topic);
        if (batch.size() == kChannelsPerSubscribe) {
          send_channels("SUBSCRIBE", batch);
          batch.clear();
        }
      }
      if (!batch.empty()) send_channels("SUBSCRIBE", batch);
    } else {
      congested_ = false;
      history_.publisher_ready(link.context);
      presence_.publisher_ready(link.context);
    }
    if (subscriber_.state == LinkState::ready && publisher_.state == LinkState::ready &&
        !congested_)
      set_available(true, {});
  }

  void send_channels(const char* command, const std::vector<std::string>& topics) {
    std::vector<std::string> channels;
    channels.reserve(topics.size());
    std::vector<const char*> argv{command};
    std::vector<std::size_t> lengths{std::char_traits<char>::length(command)};
    for (const auto& topic : topics) {
      channels.push_back(prefix_ + topic);
      argv.push_back(channels.back().data());
      lengths.push_back(channels.back().size());
    }
    redisAsyncCommandArgv(subscriber_.context, &RedisEngine::on_subscriber_reply, nullptr,
                          static_cast<int>(argv.size()), argv.data(), lengths.data());
  }

  // The link's context is gone (freed by hiredis, or by us with `data` cleared): count, report,
  // and retry after the backoff.
  void lost(Link& link, std::string_view reason, bool was_ready) {
    net::TimerWheel::cancel(link);
    link.context = nullptr;
    link.state = LinkState::down;
    link.handshake_replies = 0;
    link.pending_replies = 0;
    if (was_ready) disconnects_.add();
    if (link.role == Role::publisher) {
      congested_ = false;
      history_.publisher_lost();
      presence_.publisher_lost();
    } else {
      history_.subscriber_lost();
    }
    set_available(false, std::string(role_name(link.role)) + ": " + std::string(reason));
    // Jitter in [d/2, d] so instances that lost the same Redis do not return in lockstep.
    const std::uint64_t delay = link.backoff_ms / 2 + random_() % (link.backoff_ms / 2 + 1);
    link.backoff_ms = std::min(link.backoff_ms * 2, limits_.max_backoff_ms);
    loop_.timers().schedule(link, loop_.now_ms() + delay);
  }

  // Tears down a context from inside one of its reply callbacks: hiredis defers the free until
  // the callback returns.
  void fail(Link& link, std::string_view reason) {
    redisAsyncContext* context = link.context;
    const bool was_ready = link.state == LinkState::ready;
    context->data = nullptr;
    redisAsyncFree(context);
    lost(link, reason, was_ready);
  }

  void set_available(bool up, std::string_view reason) {
    if (up == available_.load(std::memory_order_relaxed)) {
      if (!up && !outage_logged_) log_outage(reason);
      return;
    }
    available_.store(up, std::memory_order_release);
    up_.add(up ? 1 : -1);
    if (up) {
      obs::log(LogLevel::info,
               ever_up_ ? "cluster engine available again" : "cluster engine connected to redis",
               {{"url", url_for_logs_},
                {"channels", static_cast<std::uint64_t>(channels_.size())},
                {"down_ms", ever_up_ ? loop_.now_ms() - down_since_ms_ : std::uint64_t{0}}});
      ever_up_ = true;
      outage_logged_ = false;
    } else {
      down_since_ms_ = loop_.now_ms();
      log_outage(reason);
    }
  }

  // Once per outage, not per retry: the next line is the one saying it is back.
  void log_outage(std::string_view reason) {
    if (outage_logged_) return;
    outage_logged_ = true;
    obs::log(LogLevel::warn,
             ever_up_
                 ? "cluster engine unavailable; publishes are refused until it is back"
                 : "cluster engine cannot reach redis yet; publishes are refused until it does",
             {{"url", url_for_logs_}, {"reason", reason}});
  }

  bool publisher_backlog_over_limit() const noexcept {
    const redisAsyncContext* context = publisher_.context;
    return sdslen(context->c.obuf) > limits_.max_pending_bytes ||
           publisher_.pending_replies > limits_.max_pending_replies;
  }

  void on_publisher_progress() {
    if (!congested_) return;
    const redisAsyncContext* context = publisher_.context;
    if (context == nullptr) return;
    if (sdslen(context->c.obuf) <= limits_.max_pending_bytes / 2 &&
        publisher_.pending_replies <= limits_.max_pending_replies / 2) {
      congested_ = false;
      if (subscriber_.state == LinkState::ready && publisher_.state == LinkState::ready)
        set_available(true, {});
    }
  }

  void on_message(std::string_view channel, std::string_view bytes) {
    if (!channel.starts_with(prefix_)) return;
    const std::string_view name = channel.substr(prefix_.size());
    // Every instance delivers a publication with history, its publisher's too.
    if (history_.on_message(name, bytes)) {
      messages_in_.add();
      return;
    }
    const auto message = decode_channel_message(bytes);
    if (!message) {
      malformed_log_.log(
          LogLevel::warn, "cluster engine ignored a malformed message on a redis channel",
          {{"channel", channel}, {"bytes", static_cast<std::uint64_t>(bytes.size())}});
      return;
    }
    // No echo twice: this instance delivered its own publishes locally before sending them.
    if (message->sender == instance_id_) return;
    messages_in_.add();
    if (name == kControlChannel) {
      if (control_) control_(message->payload);
      return;
    }
    deliver_(name, message->opcode, message->payload, 0);
  }

  // ----- hiredis callbacks (C function pointers) -----

  static void on_timer(net::TimerNode& node) {
    auto& link = static_cast<Link&>(node);
    RedisEngine& engine = link.engine;
    if (link.state == LinkState::down) {
      engine.connect(link);
      return;
    }
    if (link.state == LinkState::handshaking && link.context != nullptr) {
      // Not on any hiredis stack here: the free is immediate.
      redisAsyncContext* context = link.context;
      context->data = nullptr;
      redisAsyncFree(context);
      engine.lost(link, "no answer within the connect timeout", false);
    }
  }

  static void on_connect(const redisAsyncContext* context, int status) {
    Link* link = link_of(context);
    if (link == nullptr || status == REDIS_OK)
      return;  // the handshake's PING says when it is ready
    // hiredis frees the context after this returns, without calling on_disconnect.
    const std::string reason = context->c.errstr;
    const_cast<redisAsyncContext*>(context)->data = nullptr;
    link->engine.lost(*link, reason, false);
  }

  static void on_disconnect(const redisAsyncContext* context, int status) {
    Link* link = link_of(context);
    if (link == nullptr) return;
    const std::string reason = context->err != 0 ? context->errstr : "connection closed";
    const_cast<redisAsyncContext*>(context)->data = nullptr;
    link->engine.lost(*link, reason, link->state == LinkState::ready);
  }

  static void on_handshake_reply(redisAsyncContext* context, void* reply_pointer, void* answer) {
    Link* link = link_of(context);
    auto* reply = static_cast<redisReply*>(reply_pointer);
    if (link == nullptr || reply == nullptr || link->state != LinkState::handshaking) return;
    if (reply->type == REDIS_REPLY_ERROR) {
      link->engine.fail(*link, std::string_view(reply->str, reply->len));
      return;
    }
    if (answer != nullptr && reply->type == REDIS_REPLY_STRING)
      static_cast<std::string*>(answer)->assign(reply->str, reply->len);
    if (--link->handshake_replies == 0) link->engine.on_handshake_done(*link);
  }

  static void on_publish_reply(redisAsyncContext* context, void* reply_pointer, void*) {
    Link* link = link_of(context);
    auto* reply = static_cast<redisReply*>(reply_pointer);
    if (link == nullptr || reply == nullptr) return;
    if (link->pending_replies > 0) --link->pending_replies;
    RedisEngine& engine = link->engine;
    if (reply->type == REDIS_REPLY_ERROR)
      engine.publish_error_log_.log(
          LogLevel::warn, "redis refused a PUBLISH",
          {{"url", engine.url_for_logs_}, {"error", std::string_view(reply->str, reply->len)}});
    engine.on_publisher_progress();
  }

  static void on_subscriber_reply(redisAsyncContext* context, void* reply_pointer, void*) {
    Link* link = link_of(context);
    auto* reply = static_cast<redisReply*>(reply_pointer);
    if (link == nullptr || reply == nullptr) return;
    // ["message", channel, bytes]; ["subscribe", channel, count] tells history a channel is in
    // effect; unsubscribe confirmations need nothing.
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    const redisReply* kind = reply->element[0];
    const redisReply* channel = reply->element[1];
    const redisReply* bytes = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING || channel->type != REDIS_REPLY_STRING) return;
    const std::string_view kind_name(kind->str, kind->len);
    const std::string_view channel_name(channel->str, channel->len);
    RedisEngine& engine = link->engine;
    if (kind_name == "subscribe" && channel_name.starts_with(engine.prefix_))
      engine.history_.subscribed(channel_name.substr(engine.prefix_.size()));
    if (kind_name != "message") return;
    if (bytes->type != REDIS_REPLY_STRING) return;
    engine.on_message(channel_name, std::string_view(bytes->str, bytes->len));
  }

  net::EventLoop& loop_;
  const RedisAddress address_;
  const std::string url_for_logs_;
  const std::string prefix_;
  pubsub::DeliverFunction deliver_;
  pubsub::ActiveTopicsFunction active_topics_;
  pubsub::ControlFunction control_;
  const RedisEngineLimits limits_;
  const InstanceId instance_id_;
  std::minstd_rand random_;  // backoff jitter only

  Gauge up_;
  Counter disconnects_;
  Counter messages_in_;
  Counter messages_out_;
  obs::LogRateLimit malformed_log_{1};
  obs::LogRateLimit publish_error_log_{1};

  std::atomic<bool> available_{false};
  bool congested_ = false;
  bool ever_up_ = false;
  bool outage_logged_ = false;
  std::uint64_t down_since_ms_ = 0;
  // Topics with local interest: subscribed on the subscriber connection while it is ready, and
  // subscribed again each time it becomes ready.
  std::unordered_set<std::string> channels_;
  std::string channel_buffer_;  // reused by publish(): no allocation per message on our side
  std::string message_buffer_;

  RedisHistory history_;  // uses deliver_, prefix_ and instance_id_, declared before it
  RedisPresence presence_;
  Link subscriber_;
  Link publisher_;
};

}  // namespace

std::unique_ptr<pubsub::ClusterEngine> make_redis_engine(
    net::EventLoop& loop, const RedisOptions& options, pubsub::DeliverFunction deliver,
    pubsub::ActiveTopicsFunction active_topics, pubsub::ControlFunction control,
    MetricsRegistry& metrics, const RedisEngineLimits& limits) {
  RedisAddress address = parse_redis_url(options.url);
  return std::make_unique<RedisEngine>(loop, std::move(address), options.prefix, std::move(deliver),
                                       std::move(active_topics), std::move(control), metrics,
                                       limits);
}

}  // namespace pylon::cluster
