// pylon's pub/sub client: the /ws protocol of `pylon serve` (docs/protocol.md) on a
// WebSocketClient, with recovery. It remembers, per topic with history, the offset and epoch of
// the last publication it delivered (from messages and subscribe acks); after a reconnect it
// subscribes again with `recover`, so the application sees every publication once, in offset
// order, across drops, restarts of an instance and moves to another instance (Redis engine), as
// long as the topic's history covers the outage. When it does not, on_subscribed says
// recovered = false: the application reloads its state from its own source.
//
//   pylon::ClientLoop loop;
//   pylon::TopicClient chat(loop, pylon::TopicClient::make_profile("ws://127.0.0.1:8080/ws",
//                               {.reconnect = {.enabled = true}}),
//                           {.on_message = [](pylon::TopicClient&, const pylon::Publication& p) {
//                              std::printf("%.*s\n", int(p.data.size()), p.data.data()); }});
//   chat.subscribe("chat:lobby");
//   chat.connect();
//   loop.run();
//
// Offsets: a delivery at or below the last one delivered is dropped (a duplicate). One past the
// next expected on the live stream (a gap: the server dropped messages for a slow consumer with
// slow_consumer = "drop") is not delivered either: the client unsubscribes and subscribes again
// with `recover` from the last one, drops what was already on its way, and delivers what the
// server sends back in order. What a recovery sends is delivered as it comes: all that was missed,
// or with the topic's recovery = "cache" only the latest publication. Topics without history are
// delivered as they come, with offset 0.
//
// Ownership: the TopicClient owns its subscriptions and positions, which outlive connections; it
// uses a WebSocketClient of the loop while connected. Destroying it closes the connection
// without further events. It must not outlive its ClientLoop.
//
// Threads: everything (construction, calls, destruction) on the loop's thread, also before run()
// starts (like WebSocketClient); handlers run there. A handler may call any method, also close().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/client.hpp"

namespace pylon {

class TopicClient;

// A publication delivered to the application. Views are valid during the call only.
struct Publication {
  std::string_view topic;
  std::string_view data;     // the publisher's JSON value, byte for byte
  std::uint64_t offset = 0;  // 1, 2, 3 ... per topic with history; 0 without history
};

// Where a topic with history stands: the offset of the last publication delivered and the
// epoch it belongs to (docs/protocol.md "History and recovery").
struct TopicPosition {
  std::uint64_t offset = 0;
  std::string epoch;
};

// The server's answer to a subscribe of a topic with history. Views valid during the call only.
struct SubscribeResult {
  std::string_view topic;
  std::uint64_t offset = 0;  // the position now: what was delivered up to here
  std::string_view epoch;
  // A recovery was asked (a reconnect, or a gap): whether every missed publication was sent
  // (they were delivered before this call). False: the history did not cover what was missed
  // (another epoch, or too old): the application should reload this topic's state.
  bool recovery = false;
  bool recovered = false;
};

struct TopicHandlers {
  // Connected (again); the subscriptions are already sent, with `recover` where a position is
  // known. Publishing here is fine.
  std::function<void(TopicClient&)> on_open;
  std::function<void(TopicClient&, const Publication&)> on_message;
  // Acks of subscribes to topics with history (topics without history are subscribed silently).
  std::function<void(TopicClient&, const SubscribeResult&)> on_subscribed;
  // The ack of publish() number `id`; `offset` is the publication's on a topic with history, else
  // 0.
  std::function<void(TopicClient&, std::uint64_t id, std::uint64_t offset)> on_published;
  // An error answer of the server: `id` of the request (0 for none), its code and text
  // (docs/protocol.md "Error codes"). A refused subscribe forgets the topic.
  std::function<void(TopicClient&, std::uint64_t id, std::string_view code,
                     std::string_view message)>
      on_error;
  // The server ended a subscription (docs/protocol.md "Messages"); the topic is forgotten.
  std::function<void(TopicClient&, std::string_view topic, std::string_view reason)>
      on_unsubscribed;
  // The connection's own events, as ClientHandlers has them (a reconnect may follow: see
  // ClientOptions::reconnect and WebSocketClient::reconnecting()).
  std::function<void(TopicClient&, std::uint16_t code, std::string_view reason)> on_close;
  std::function<void(TopicClient&, std::string_view error)> on_connection_error;
};

// What the client did about offsets, since it was made.
struct TopicClientStats {
  std::uint64_t delivered = 0;      // publications handed to on_message
  std::uint64_t duplicates = 0;     // deliveries dropped: at or below the last one
  std::uint64_t gaps = 0;           // deliveries past the next offset: a recovery followed
  std::uint64_t recovered = 0;      // recoveries answered recovered = true
  std::uint64_t not_recovered = 0;  // recoveries answered recovered = false
};

class TopicClient {
 public:
  // A profile whose handlers are the TopicClient's: make it once at start-up (it may read the
  // trust store for wss://) and share it among TopicClients of any loop. Throws what
  // make_client_profile throws.
  static std::shared_ptr<const ClientProfile> make_profile(std::string_view url,
                                                           ClientOptions options = {});

  TopicClient(ClientLoop& loop, std::shared_ptr<const ClientProfile> profile,
              TopicHandlers handlers);
  ~TopicClient();
  TopicClient(const TopicClient&) = delete;
  TopicClient& operator=(const TopicClient&) = delete;

  // Starts connecting (nothing happens before it). After close(), connects again and subscribes
  // with `recover`, as a reconnect does. A connection still closing is abandoned.
  void connect();
  // Closes the connection (no reconnect follows); subscriptions and positions stay for connect().
  void close(std::uint16_t code = 1000, std::string_view reason = {});

  // Remembered and sent now when open, again after every reconnect. False for a name that is not
  // a topic (docs/protocol.md "Topic names"). Subscribing twice is one subscription.
  bool subscribe(std::string_view topic);
  void unsubscribe(std::string_view topic);
  // Publishes `json` (one JSON value, sent verbatim) with a request id, returned and acked by
  // on_published (or answered by on_error). 0: not sent (not open, or dropped by backpressure):
  // publications are not queued across reconnects, the application decides what to resend.
  std::uint64_t publish(std::string_view topic, std::string_view json);

  // The position of a topic with history, once known; nullptr otherwise.
  const TopicPosition* position(std::string_view topic) const noexcept;
  bool is_open() const noexcept;
  const TopicClientStats& stats() const noexcept;
  // The connection while there is one (nullptr otherwise), e.g. for buffered_amount().
  WebSocketClient* websocket() noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pylon
