// Topics with history on a server connection: subscribing at a known position and recovering
// what the client missed (docs/protocol.md "History and recovery"). Part of Connection
// (connection.hpp).
#include <algorithm>

#include "server/connection.hpp"
#include "server/worker.hpp"

namespace pylon::detail {

std::optional<HistorySubscription> Connection::subscribe_with_history(std::string_view topic,
                                                                      const StreamPosition* since) {
  if (!subscribe(topic)) return std::nullopt;
  Server& server = worker_.server();
  HistorySubscription result;
  const auto policy = server.history_policy(topic);
  if (!policy) return result;
  result.history = true;
  // Live first, then the history (the registry has this loop before the stream is locked): a
  // publication after the position read below reaches this subscriber live, one at or before
  // it is in what was read, and one already in this loop's inbox is under the floor.
  std::vector<pubsub::MessageRef> missed;  // a recovery, not a delivery: allocating is fine
  {
    pubsub::History::Locked stream =
        server.history->lock(topic, *policy, pubsub::History::now_ms());
    result.position = {stream.top(), stream.epoch()};
    if (since != nullptr) result.recovered = stream.read_after(since->offset, since->epoch, missed);
  }
  auto& subscriptions = spill_->subscriptions;
  const auto subscribed = std::find_if(subscriptions.begin(), subscriptions.end(),
                                       [topic](const Topic* item) { return item->name == topic; });
  spill_->floors.set(*subscribed, result.position.offset);
  if (since != nullptr) server.counters->recoveries[result.recovered ? 0 : 1].add();
  send_history(missed);
  result.sent = missed.size();
  return result;
}

void Connection::send_history(std::span<const pubsub::MessageRef> missed) {
  if (missed.empty()) return;
  worker_.server().counters->history_sent.add(missed.size());
  count_delivered(missed);
  // Through the connection's output, as replies go: in order with what this read already
  // answered, and never dropped for backpressure (history_size bounds the burst).
  const bool own_window = dedicated() != nullptr && !deflate_params_.server_no_context_takeover;
  for (const auto& message : missed) {
    if (!own_window) {
      write_bytes(shared_frame(*message));
      continue;
    }
    const auto payload = std::span(reinterpret_cast<const std::uint8_t*>(message->payload().data()),
                                   message->payload_size);
    if (message->payload_size >= route_->compression.threshold)
      send_compressed(message->opcode, payload);
    else
      send_frame(message->opcode, payload);
  }
}

}  // namespace pylon::detail
