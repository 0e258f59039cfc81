// TopicClient (include/pylon/topic_client.hpp): subscriptions, positions and recovery over a
// WebSocketClient whose handlers (the profile's) find the TopicClient through user_data().
#include "pylon/topic_client.hpp"

#include <algorithm>
#include <charconv>

#include "client/topic_wire.hpp"
#include "obs/log.hpp"
#include "pubsub/topic_name.hpp"

namespace pylon {

struct TopicClient::Impl {
  struct Topic {
    std::string name;
    TopicPosition position;
    bool known = false;         // position holds what the server said and was delivered since
    std::uint64_t pending = 0;  // the id of the subscribe awaiting its ack; 0: none
    // After a gap: the id of the unsubscribe sent before subscribing again; deliveries until its
    // ack were on their way before it and are dropped (the recovery sends them again). 0: none.
    std::uint64_t draining = 0;
  };

  TopicClient& owner;
  ClientLoop& loop;
  std::shared_ptr<const ClientProfile> profile;
  TopicHandlers handlers;
  WebSocketClient* websocket = nullptr;     // while connected or reconnecting
  std::vector<Topic> topics;                // a client has few: searched linearly
  std::vector<std::uint64_t> unsubscribes;  // ids of unsubscribes awaiting their ack
  std::uint64_t next_id = 1;
  std::string request;  // reused by every request
  TopicClientStats stats;

  static Impl* of(WebSocketClient& client) { return static_cast<Impl*>(client.user_data()); }

  Topic* find(std::string_view name) const {
    const auto found = std::find_if(topics.begin(), topics.end(),
                                    [name](const Topic& topic) { return topic.name == name; });
    return found == topics.end() ? nullptr : const_cast<Topic*>(&*found);
  }
  void forget(std::string_view name) {
    std::erase_if(topics, [name](const Topic& topic) { return topic.name == name; });
  }

  void append_number(std::uint64_t value) {
    char digits[24];
    const auto [end, error] = std::to_chars(digits, digits + sizeof digits, value);
    request.append(digits, end);
  }

  // One subscribe per topic, so that an error names its topic; with `recover` from the last
  // delivered offset once the position is known (a reconnect, or a gap in the offsets).
  void send_subscribe(Topic& topic) {
    if (websocket == nullptr || !websocket->is_open()) return;
    request = R"({"type":"subscribe","topics":[)";
    obs::append_json_string(request, topic.name);
    request += ']';
    if (topic.known) {
      request += R"(,"recover":{)";
      obs::append_json_string(request, topic.name);
      request += R"(:{"offset":)";
      append_number(topic.position.offset);
      request += R"(,"epoch":)";
      obs::append_json_string(request, topic.position.epoch);
      request += "}}";
    }
    request += R"(,"id":)";
    topic.pending = next_id++;
    append_number(topic.pending);
    request += '}';
    websocket->send(request);
  }

  // A gap on an open connection: unsubscribe, then subscribe with `recover` from the last offset
  // delivered. The unsubscribe's ack marks the end of what was already on its way; after it the
  // topic's stream is that of a fresh connection: what was missed, the ack, the live stream.
  void resync(Topic& topic) {
    ++stats.gaps;
    request = R"({"type":"unsubscribe","topics":[)";
    obs::append_json_string(request, topic.name);
    request += R"(],"id":)";
    topic.draining = next_id++;
    append_number(topic.draining);
    request += '}';
    websocket->send(request);
    send_subscribe(topic);
  }

  void opened() {
    unsubscribes.clear();  // answers of the last connection never come
    for (Topic& topic : topics) send_subscribe(topic);
    if (handlers.on_open) handlers.on_open(owner);
  }

  void received(std::string_view text) {
    client::TopicMessage message;
    if (client::parse_topic_message(text, message)) return deliver(message);
    // One reader per thread: a reply is handled before the next one is read.
    thread_local client::ReplyReader reader;
    thread_local client::Reply reply;
    if (!reader.read(text, reply)) return;  // not the protocol's: nothing to act on
    switch (reply.kind) {
      case client::Reply::Kind::ack:
        return acked(reply);
      case client::Reply::Kind::error:
        return refused(reply);
      case client::Reply::Kind::unsubscribed:
        if (find(reply.topic) == nullptr) return;
        forget(reply.topic);
        if (handlers.on_unsubscribed) handlers.on_unsubscribed(owner, reply.topic, reply.text);
        return;
      case client::Reply::Kind::other:
        return;
    }
  }

  void deliver(const client::TopicMessage& message) {
    Topic* topic = find(message.topic);
    if (topic == nullptr) return;  // unsubscribed: what was in flight is not wanted
    if (topic->draining != 0) return;
    if (message.offset != 0 && topic->known) {
      switch (client::judge_offset(topic->position.offset, message.offset)) {
        case client::OffsetVerdict::duplicate:
          ++stats.duplicates;
          return;
        case client::OffsetVerdict::gap:
          // What a recovery sends is what the history has: every missed publication, or with
          // recovery = "cache" only the latest one, a gap by design. Outside a recovery the
          // publication is not delivered: the recovery sends it again after the missing ones.
          if (topic->pending == 0) return resync(*topic);
          break;
        case client::OffsetVerdict::next:
          break;
      }
      topic->position.offset = message.offset;
    }
    ++stats.delivered;
    if (handlers.on_message)
      handlers.on_message(owner,
                          {.topic = message.topic, .data = message.data, .offset = message.offset});
  }

  void acked(const client::Reply& reply) {
    if (reply.id == 0) return;
    if (std::erase(unsubscribes, reply.id) > 0) return;
    for (Topic& topic : topics) {
      if (topic.draining == reply.id) {
        topic.draining = 0;
        return;
      }
    }
    const auto subscribe = std::find_if(topics.begin(), topics.end(),
                                        [&reply](const Topic& t) { return t.pending == reply.id; });
    if (subscribe == topics.end()) {
      if (handlers.on_published) handlers.on_published(owner, reply.id, reply.offset);
      return;
    }
    subscribe->pending = 0;
    for (const client::ReplyPosition& position : reply.positions) {
      Topic* topic = find(position.topic);
      if (topic == nullptr) continue;
      // Recovered or not, the server's position is where the live stream continues.
      topic->known = true;
      topic->position.offset = position.offset;
      topic->position.epoch = position.epoch;
      if (position.recovery) ++(position.recovered ? stats.recovered : stats.not_recovered);
      if (handlers.on_subscribed)
        handlers.on_subscribed(owner, {.topic = position.topic,
                                       .offset = position.offset,
                                       .epoch = position.epoch,
                                       .recovery = position.recovery,
                                       .recovered = position.recovered});
    }
  }

  void refused(const client::Reply& reply) {
    if (reply.id != 0) {
      std::erase(unsubscribes, reply.id);
      for (Topic& topic : topics)
        if (topic.draining == reply.id) topic.draining = 0;
      std::erase_if(topics, [&reply](const Topic& topic) { return topic.pending == reply.id; });
    }
    if (handlers.on_error) handlers.on_error(owner, reply.id, reply.code, reply.text);
  }

  // The WebSocketClient is freed after this event unless it reconnects.
  void ended(WebSocketClient& client) {
    if (!client.reconnecting()) {
      client.set_user_data(nullptr);
      websocket = nullptr;
    }
    for (Topic& topic : topics) topic.pending = topic.draining = 0;
  }

  void detach() {
    if (websocket == nullptr) return;
    websocket->set_user_data(nullptr);
    websocket->close();
    websocket = nullptr;
  }
};

std::shared_ptr<const ClientProfile> TopicClient::make_profile(std::string_view url,
                                                               ClientOptions options) {
  ClientHandlers handlers{
      .on_open =
          [](WebSocketClient& client) {
            if (Impl* impl = Impl::of(client)) impl->opened();
          },
      .on_message =
          [](WebSocketClient& client, std::string_view text, MessageKind kind) {
            Impl* impl = Impl::of(client);
            if (impl != nullptr && kind == MessageKind::text) impl->received(text);
          },
      .on_close =
          [](WebSocketClient& client, std::uint16_t code, std::string_view reason) {
            Impl* impl = Impl::of(client);
            if (impl == nullptr) return;
            impl->ended(client);
            if (impl->handlers.on_close) impl->handlers.on_close(impl->owner, code, reason);
          },
      .on_error =
          [](WebSocketClient& client, std::string_view error) {
            Impl* impl = Impl::of(client);
            if (impl == nullptr) return;
            // On an open connection on_close follows and ends it; otherwise this is the end.
            if (!client.is_open()) impl->ended(client);
            if (impl->handlers.on_connection_error)
              impl->handlers.on_connection_error(impl->owner, error);
          },
  };
  return make_client_profile(url, std::move(handlers), std::move(options));
}

TopicClient::TopicClient(ClientLoop& loop, std::shared_ptr<const ClientProfile> profile,
                         TopicHandlers handlers)
    : impl_(std::make_unique<Impl>(Impl{.owner = *this,
                                        .loop = loop,
                                        .profile = std::move(profile),
                                        .handlers = std::move(handlers)})) {}

TopicClient::~TopicClient() {
  impl_->detach();
}

void TopicClient::connect() {
  impl_->detach();
  impl_->websocket = &impl_->loop.connect(impl_->profile);
  impl_->websocket->set_user_data(impl_.get());
}

void TopicClient::close(std::uint16_t code, std::string_view reason) {
  if (impl_->websocket == nullptr) return;
  // Open: on_close follows, where the handle is let go. Otherwise it is gone without an event.
  const bool open = impl_->websocket->is_open();
  impl_->websocket->close(code, reason);
  if (!open) impl_->websocket = nullptr;
}

bool TopicClient::subscribe(std::string_view topic) {
  if (!pubsub::is_valid_topic(topic)) return false;
  if (impl_->find(topic) != nullptr) return true;
  impl_->topics.push_back({.name = std::string(topic)});
  impl_->send_subscribe(impl_->topics.back());
  return true;
}

void TopicClient::unsubscribe(std::string_view topic) {
  if (impl_->find(topic) == nullptr) return;
  impl_->forget(topic);
  WebSocketClient* websocket = impl_->websocket;
  if (websocket == nullptr || !websocket->is_open()) return;
  std::string& request = impl_->request;
  request = R"({"type":"unsubscribe","topics":[)";
  obs::append_json_string(request, topic);
  request += R"(],"id":)";
  impl_->unsubscribes.push_back(impl_->next_id);
  impl_->append_number(impl_->next_id++);
  request += '}';
  websocket->send(request);
}

std::uint64_t TopicClient::publish(std::string_view topic, std::string_view json) {
  WebSocketClient* websocket = impl_->websocket;
  if (websocket == nullptr || !websocket->is_open()) return 0;
  std::string& request = impl_->request;
  request = R"({"type":"publish","topic":)";
  obs::append_json_string(request, topic);
  request += R"(,"data":)";
  request += json;
  request += R"(,"id":)";
  const std::uint64_t id = impl_->next_id++;
  impl_->append_number(id);
  request += '}';
  return websocket->send(request) == SendStatus::dropped ? 0 : id;
}

const TopicPosition* TopicClient::position(std::string_view topic) const noexcept {
  const Impl::Topic* found = impl_->find(topic);
  return found != nullptr && found->known ? &found->position : nullptr;
}

bool TopicClient::is_open() const noexcept {
  return impl_->websocket != nullptr && impl_->websocket->is_open();
}

const TopicClientStats& TopicClient::stats() const noexcept {
  return impl_->stats;
}

WebSocketClient* TopicClient::websocket() noexcept {
  return impl_->websocket;
}

}  // namespace pylon
